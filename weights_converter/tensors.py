"""PyTorch tensors as inert records: storage types, storage references, tensor views, and their checks.

A PyTorch checkpoint stores each tensor as a view (offset, shape, stride) into a flat storage of one dtype.
The pickle only describes these; the bytes live elsewhere (a zip record, or after the pickle in the legacy
format). Every view is checked against its storage's declared length before anything is allocated, and
every storage's declared length against the real bytes before they are read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import CheckpointError

MAX_DIMS = 16


@dataclass(frozen=True)
class StorageType:
    """A typed storage class as pickled by ``torch.save`` (e.g. ``torch.FloatStorage``)."""

    name: str
    dtype: str  # a numpy dtype without byte order, or "bfloat16" (decoded by hand)

    @property
    def itemsize(self) -> int:
        return 2 if self.dtype == "bfloat16" else np.dtype(self.dtype).itemsize


STORAGE_TYPES = {
    storage_type.name: storage_type
    for storage_type in (
        StorageType("DoubleStorage", "f8"),
        StorageType("FloatStorage", "f4"),
        StorageType("HalfStorage", "f2"),
        StorageType("BFloat16Storage", "bfloat16"),
        StorageType("LongStorage", "i8"),
        StorageType("IntStorage", "i4"),
        StorageType("ShortStorage", "i2"),
        StorageType("CharStorage", "i1"),
        StorageType("ByteStorage", "u1"),
        StorageType("BoolStorage", "b1"),
    )
}
"""The storage classes ghostnp reads, by their name in the ``torch`` module."""


@dataclass(frozen=True, eq=False)
class StorageRef:
    """``numel`` elements of ``storage_type``, starting ``offset`` elements into the record named ``key``."""

    key: str
    storage_type: StorageType
    numel: int
    offset: int = 0


@dataclass(frozen=True, eq=False)
class TensorRef:
    """A strided view into a storage: ``tensor[i, j, ...] = storage[offset + i * stride[0] + j * stride[1] ...]``."""

    storage: StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _is_int(value) -> bool:
    return type(value) is int


def make_tensor(storage, offset, shape, stride, source: str) -> TensorRef:
    """Check a pickled view against its storage and return it as a ``TensorRef``.

    The view may only address elements that exist (``offset + sum((n - 1) * s) < storage.numel``) and may
    not have more elements than its storage (which rules out stride-0 views that would allocate more
    memory than the file holds).
    """
    if not isinstance(storage, StorageRef):
        raise CheckpointError(f"{source}: a tensor's storage is a {type(storage).__name__}, not a storage record")
    if not (
        _is_int(offset)
        and type(shape) is tuple
        and type(stride) is tuple
        and len(shape) == len(stride) <= MAX_DIMS
        and all(_is_int(n) and n >= 0 for n in shape + stride)
        and offset >= 0
    ):
        raise CheckpointError(
            f"{source}: tensor view in storage {storage.key!r} is malformed "
            f"(offset {offset!r}, shape {shape!r}, stride {stride!r})"
        )
    numel = math.prod(shape)
    if numel == 0:
        if math.prod(max(n, 1) for n in shape) > 2**31:
            raise CheckpointError(f"{source}: empty tensor in storage {storage.key!r} has absurd shape {shape}")
        return TensorRef(storage, offset, shape, stride)
    last = offset + sum((n - 1) * s for n, s in zip(shape, stride))
    if last >= storage.numel or numel > storage.numel:
        raise CheckpointError(
            f"{source}: a tensor of shape {shape} (offset {offset}, stride {stride}) reaches element {last} "
            f"of storage {storage.key!r}, which has only {storage.numel} elements: the file is damaged or malicious"
        )
    return TensorRef(storage, offset, shape, stride)


def bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    """Decode bfloat16 values given as their uint16 bit patterns (exact: bf16 is the top half of a float32).

    Parameters
    ----------
    bits : ndarray of uint16, any shape

    Returns
    -------
    ndarray of float32, same shape
    """
    return (bits.astype(np.uint32) << 16).view(np.float32)


def decode_storage(raw: bytes, storage_type: StorageType, byteorder: str) -> np.ndarray:
    """Turn a storage's raw bytes into a flat array (bfloat16 becomes float32).

    Parameters
    ----------
    raw : bytes, length numel * itemsize (checked by the caller)
    storage_type : StorageType
    byteorder : {"<", ">"}

    Returns
    -------
    ndarray, shape (numel,)
    """
    if storage_type.dtype == "bfloat16":
        return bfloat16_to_float32(np.frombuffer(raw, dtype=byteorder + "u2"))
    return np.frombuffer(raw, dtype=np.dtype(storage_type.dtype).newbyteorder(byteorder))


def materialize(tensor: TensorRef, storage: np.ndarray) -> np.ndarray:
    """Copy a checked view out of its decoded storage.

    Parameters
    ----------
    tensor : TensorRef
        A view checked by ``make_tensor`` against ``storage``'s length.
    storage : ndarray, shape (tensor.storage.numel,)

    Returns
    -------
    ndarray, shape tensor.shape, a fresh contiguous copy
    """
    if math.prod(tensor.shape) == 0:
        return np.zeros(tensor.shape, dtype=storage.dtype)
    strides = tuple(s * storage.itemsize for s in tensor.stride)
    view = np.lib.stride_tricks.as_strided(storage[tensor.offset :], tensor.shape, strides, writeable=False)
    return np.array(view)
