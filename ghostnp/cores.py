"""How many cores this process may use: the one count that batch threads and decoding workers start from."""

import os


def usable_cores():
    """The number of cores this process may run on (its CPU affinity where the OS tells, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
