"""safetensors files, read with numpy alone and every header rule checked.

Layout: an 8-byte little-endian header length N (at most 100 MB, ``8 + N <= file size``), N bytes of JSON
``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}``, then the data
buffer. Offsets are relative to the buffer and must tile it exactly, from 0, without overlap, hole or
trailing bytes; ``prod(shape) * itemsize == end - begin``. BF16 has no numpy dtype and is decoded by hand.
"""

from __future__ import annotations

import json
import math

import numpy as np

from .errors import CheckpointError
from .tensors import bfloat16_to_float32

MAX_HEADER_BYTES = 100_000_000

DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8"}
"""The safetensors dtypes ghostnp reads, as numpy dtypes (BF16 as its uint16 bit patterns)."""


def _unique_keys(pairs: list) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r:.60}")
        result[key] = value
    return result


def read_header(data: bytes, source: str) -> tuple[dict[str, dict], int]:
    """Parse and check the header; return ``({name: entry}, data_start)`` with entries sorted by offset."""
    if len(data) < 8:
        raise CheckpointError(f"{source}: is truncated: a safetensors file needs at least 8 bytes")
    header_size = int.from_bytes(data[:8], "little")
    if header_size > MAX_HEADER_BYTES:
        raise CheckpointError(
            f"{source}: the safetensors header claims {header_size:,} bytes, more than the 100 MB limit"
        )
    if 8 + header_size > len(data):
        raise CheckpointError(
            f"{source}: is truncated: the safetensors header claims {header_size:,} bytes but only "
            f"{len(data) - 8:,} follow the length field; download the file again"
        )
    try:
        header = json.loads(data[8 : 8 + header_size].decode("utf-8"), object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CheckpointError(f"{source}: the safetensors header is not valid JSON ({error})") from error
    if type(header) is not dict:
        raise CheckpointError(f"{source}: the safetensors header is a JSON {type(header).__name__}, not an object")
    metadata = header.pop("__metadata__", {})
    if type(metadata) is not dict or not all(type(value) is str for value in metadata.values()):
        raise CheckpointError(f"{source}: the safetensors __metadata__ must map strings to strings")
    for name, entry in header.items():
        _check_entry(name, entry, source)
    entries = dict(sorted(header.items(), key=lambda item: tuple(item[1]["data_offsets"])))
    _check_tiling(entries, len(data) - 8 - header_size, source)
    return entries, 8 + header_size


def _check_entry(name: str, entry, source: str) -> None:
    if type(entry) is not dict or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise CheckpointError(f"{source}: safetensors entry {name!r} must have exactly dtype, shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPES:
        raise CheckpointError(f"{source}: tensor {name!r} has dtype {dtype!r:.20}; ghostnp reads {', '.join(DTYPES)}")
    if type(shape) is not list or not all(type(n) is int and n >= 0 for n in shape):
        raise CheckpointError(f"{source}: tensor {name!r} has shape {shape!r:.80}, not a list of sizes")
    if not (type(offsets) is list and len(offsets) == 2 and all(type(n) is int and n >= 0 for n in offsets)
            and offsets[0] <= offsets[1]):  # fmt: skip
        raise CheckpointError(f"{source}: tensor {name!r} has data_offsets {offsets!r:.80}, not [begin, end]")
    nbytes = math.prod(shape) * np.dtype(DTYPES[dtype]).itemsize
    if nbytes != offsets[1] - offsets[0]:
        raise CheckpointError(
            f"{source}: tensor {name!r} of shape {shape} ({dtype}) needs {nbytes} bytes but its offsets "
            f"span {offsets[1] - offsets[0]}"
        )


def _check_tiling(entries: dict[str, dict], buffer_size: int, source: str) -> None:
    cursor = 0
    for name, entry in entries.items():
        begin, end = entry["data_offsets"]
        if begin != cursor:
            problem = "overlaps the tensor before it" if begin < cursor else f"leaves a hole of {begin - cursor} bytes"
            raise CheckpointError(f"{source}: tensor {name!r} at data offset {begin} {problem}")
        cursor = end
    if cursor > buffer_size:
        raise CheckpointError(
            f"{source}: is truncated: its tensors need {cursor:,} data bytes, the file has {buffer_size:,}"
        )
    if cursor < buffer_size:
        raise CheckpointError(f"{source}: has {buffer_size - cursor:,} trailing bytes after its last tensor")


def read_safetensors(data: bytes, source: str) -> dict[str, np.ndarray]:
    """Read every tensor of a safetensors file.

    Parameters
    ----------
    data : bytes
        The whole file.
    source : str
        The file name for messages.

    Returns
    -------
    dict of str to ndarray
        Each tensor in its own dtype (F64 float64, F32 float32, F16 float16, I64 int64), BF16 decoded to
        float32; fresh arrays in the file's order.
    """
    entries, data_start = read_header(data, source)
    arrays = {}
    for name, entry in entries.items():
        begin, end = entry["data_offsets"]
        flat = np.frombuffer(data, dtype=DTYPES[entry["dtype"]], count=math.prod(entry["shape"]),
                             offset=data_start + begin)  # fmt: skip
        if entry["dtype"] == "BF16":
            flat = bfloat16_to_float32(flat)
        arrays[name] = flat.reshape(entry["shape"]).copy()
    return arrays
