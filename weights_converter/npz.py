"""ghostnp's own ``.npz`` weights, read without pickle and with declared sizes checked first.

An ``.npz`` is a zip of ``.npy`` members. ``np.load`` allocates the shape a member's header declares before
reading it, so a 100-byte file can ask for terabytes; here each header is parsed with ``numpy.lib.format``,
object dtypes are refused (they would need pickle), and the declared size must equal the member's real
size before a byte of data is read. The converter stores its metadata as a 0-d unicode array
``__metadata__`` holding JSON.
"""

from __future__ import annotations

import json
import math
import zipfile

import numpy as np

from .errors import CheckpointError
from .zip_archive import read_member

METADATA_KEY = "__metadata__"
ALLOWED_KINDS = "fiub"  # float, signed and unsigned int, bool; "U" only for the metadata


def read_npz(archive: zipfile.ZipFile, source: str) -> tuple[dict[str, np.ndarray], dict]:
    """Read every array of an open ``.npz`` archive.

    Parameters
    ----------
    archive : zipfile.ZipFile
        Opened by ``zip_archive.open_zip``.
    source : str
        The file name for messages.

    Returns
    -------
    arrays : dict of str to ndarray
        Every member except the metadata, by its key (the member name without ``.npy``).
    metadata : dict
        The decoded ``__metadata__`` JSON object, or {} when the file has none.
    """
    arrays = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            raise CheckpointError(f"{source}: zip member {info.filename!r} is not a .npy array")
        arrays[info.filename[: -len(".npy")]] = _read_member(archive, info, source)
    metadata = arrays.pop(METADATA_KEY, None)
    if metadata is None:
        return arrays, {}
    if metadata.dtype.kind != "U" or metadata.shape != ():
        raise CheckpointError(f"{source}: {METADATA_KEY} must be a 0-d unicode array holding JSON")
    try:
        decoded = json.loads(str(metadata[()]))
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"{source}: {METADATA_KEY} is not valid JSON ({error})") from error
    if type(decoded) is not dict:
        raise CheckpointError(f"{source}: {METADATA_KEY} must hold a JSON object")
    return arrays, decoded


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str) -> np.ndarray:
    name = info.filename
    with archive.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
        except ValueError as error:
            raise CheckpointError(f"{source}: member {name!r} has a broken .npy header ({error})") from error
        header_size = member.tell()
    if dtype.hasobject or dtype.kind not in ALLOWED_KINDS + "U" or dtype.fields is not None:
        raise CheckpointError(
            f"{source}: member {name!r} is an array of {dtype}, which needs pickle or is not numeric: "
            "ghostnp reads only numeric arrays (allow_pickle is never used)"
        )
    if dtype.kind == "U" and name != METADATA_KEY + ".npy":
        raise CheckpointError(f"{source}: member {name!r} holds text, not numbers")
    nbytes = math.prod(shape) * dtype.itemsize
    if header_size + nbytes != info.file_size:
        raise CheckpointError(
            f"{source}: member {name!r} declares shape {shape} of {dtype} ({nbytes:,} bytes) but holds "
            f"{info.file_size - header_size:,} bytes of data: the file is damaged or its sizes lie"
        )
    raw = read_member(archive, name, info.file_size, source)[header_size:]
    flat = np.frombuffer(raw, dtype=dtype, count=math.prod(shape))
    return flat.reshape(shape, order="F" if fortran_order else "C").copy()
