"""Recognise a weights file by its first bytes, never by its name (``.pth.tar`` is a zip, not a tar).

Files that are not weights but often stand in for them (a Git LFS pointer checked out without
``git lfs``, an HTML error or login page saved by a browser or ``wget``, an empty or cut-off download)
each get a sentence saying what they are and what to do.
"""

from __future__ import annotations

import re

from .errors import CheckpointError

ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
NPY_MAGIC = b"\x93NUMPY"
LFS_POINTER = b"version https://git-lfs.github.com/spec/"
HEAD_BYTES = 1024

FORMATS = ("zip", "pickle", "safetensors")
"""What ``detect_format`` returns: a zip archive (PyTorch zip or .npz, told apart by their members),
a pickle (the legacy PyTorch format, confirmed by its magic number), or safetensors."""


def detect_format(head: bytes, size: int, source: str) -> str:
    """Name the format of a file from its first bytes, or explain what the file is instead.

    Parameters
    ----------
    head : bytes
        The first ``HEAD_BYTES`` bytes of the file (fewer if it is shorter).
    size : int
        The file's size in bytes.
    source : str
        The file name for messages.

    Returns
    -------
    str
        One of ``FORMATS``.
    """
    if size == 0:
        raise CheckpointError(f"{source}: is empty (0 bytes): the download or copy failed; fetch the file again")
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    if size >= 10 and head[8:9] == b"{":
        return "safetensors"
    raise CheckpointError(f"{source}: {_describe_other(head, size)}")


def _describe_other(head: bytes, size: int) -> str:
    text = head.lstrip().lower()
    if head.startswith(LFS_POINTER):
        match = re.search(rb"size (\d+)", head)
        real_size = f" of {int(match.group(1)):,} bytes" if match else ""
        return (
            f"is a Git LFS pointer ({size} bytes), not the weights{real_size}: run `git lfs pull` in its "
            "repository or download the file itself"
        )
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in text:
        return (
            "is an HTML page, not weights (probably an error, login or redirect page saved in place of "
            "the file): check the URL (on Hugging Face use /resolve/, not /blob/) and download it again"
        )
    if text.startswith(b"<?xml"):
        return "is an XML document, not weights (often a cloud-storage error such as AccessDenied): check the URL"
    if head.startswith(EMPTY_ZIP_MAGIC):
        return "is an empty zip archive: it holds no weights"
    if head.startswith(NPY_MAGIC):
        return "is a single NumPy array (.npy), not a weights file: ghostnp reads a dict of arrays saved with np.savez"
    if head.startswith(b"\x1f\x8b"):
        return "is gzip-compressed: decompress it first (gunzip) and pass the result"
    if head[257:262] == b"ustar":
        return (
            "is a tar archive (the pre-1.0 PyTorch format, which ghostnp does not read): "
            "load it with an old torch and save it again with a recent one"
        )
    if size < 10:
        return f"is truncated: {size} bytes are too few for any weights format; download it again"
    return (
        f"is not a weights format ghostnp recognises (first bytes {head[:16]!r}); it reads PyTorch "
        "checkpoints (.pth, .pth.tar, .bin, .pt), safetensors and ghostnp .npz files"
    )
