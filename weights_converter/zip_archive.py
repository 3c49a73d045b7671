"""Zip archives (PyTorch checkpoints and .npz files) read with every declared size checked.

``zipfile`` raises half a dozen exception types on damaged archives; this module turns each into a
``CheckpointError`` that names the file, and reads a member only after its declared size matches what the
caller expects, never more bytes than that.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import CheckpointError

MAX_MEMBERS = 100_000

ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, NotImplementedError,
              RuntimeError, struct.error, UnicodeDecodeError, OverflowError)  # fmt: skip
"""What ``zipfile`` raises on a damaged archive (NotImplementedError: unknown compression; RuntimeError: encrypted)."""


@contextmanager
def open_zip(path: Path, source: str) -> Iterator[zipfile.ZipFile]:
    """Open a zip archive, refusing truncated or ambiguous ones (missing central directory, duplicate names).

    Damage found while the archive is in use (``zipfile`` errors raised inside the ``with`` block) also
    becomes a ``CheckpointError``.
    """
    try:
        archive = zipfile.ZipFile(path)
    except ZIP_ERRORS as error:
        raise CheckpointError(
            f"{source}: is a zip archive that is truncated or damaged ({error}); download it again"
        ) from error
    with archive:
        names = archive.namelist()
        if len(names) > MAX_MEMBERS:
            raise CheckpointError(f"{source}: the zip archive has {len(names):,} members, more than {MAX_MEMBERS:,}")
        if len(set(names)) != len(names):
            raise CheckpointError(
                f"{source}: the zip archive has two members with the same name: it is damaged or crafted"
            )
        try:
            yield archive
        except ZIP_ERRORS as error:
            raise CheckpointError(f"{source}: the zip archive is damaged ({error}); download it again") from error


def read_member(archive: zipfile.ZipFile, name: str, size: int, source: str) -> bytes:
    """Read exactly ``size`` bytes from member ``name``, after checking that it declares that size.

    Reading to the end of the member makes ``zipfile`` verify its CRC-32, so flipped bytes are caught too.
    """
    info = archive.getinfo(name)
    if info.file_size != size:
        raise CheckpointError(
            f"{source}: zip member {name!r} holds {info.file_size} bytes where {size} are expected: "
            "the file is damaged or its sizes lie"
        )
    with archive.open(info) as member:
        data = member.read(size + 1)
    if len(data) != size:
        raise CheckpointError(f"{source}: zip member {name!r} has {len(data)} bytes but declares {size}")
    return data
