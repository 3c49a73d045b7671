"""The one exception the converter raises: a weights file it cannot read safely.

It subclasses ``ValueError`` so that generic handlers still catch it. The message names the file, says
what is wrong with it, and what to do next.
"""


class CheckpointError(ValueError):
    """A weights file is unreadable, malicious, truncated, or not a checkpoint at all."""
