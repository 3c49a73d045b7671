"""The one-line text progress bar that downloads and ``ghostnp classify`` draw on stderr (terminals only)."""

import sys

BAR_WIDTH = 30


def bar(done, total):
    """``[#########.....]``: ``done`` of ``total`` as a bar of :data:`BAR_WIDTH` characters."""
    filled = BAR_WIDTH * done // total
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}]"


def redraw(line):
    """Overwrite the current stderr line with ``line``."""
    print(f"\r{line}", end="", file=sys.stderr, flush=True)


def finish():
    """End the line of a finished bar."""
    print(file=sys.stderr, flush=True)
