"""The one family of exceptions ghostnp raises for bad files, bad images and failed downloads.

Every message says what went wrong, with which file, key or value, and what to do next.
They subclass ``ValueError`` (or ``OSError`` for downloads) so that generic handlers still catch them.
"""


class GhostnpError(Exception):
    """Base class of every error ghostnp raises on purpose."""


class CheckpointError(GhostnpError, ValueError):
    """A weights file is unreadable, malicious, truncated, or does not fit the architecture."""


class ImageError(GhostnpError, ValueError):
    """An image file cannot be decoded safely, or an image array is not usable."""


class DownloadError(GhostnpError, OSError):
    """A weights file could not be downloaded or verified (or the cache is offline)."""
