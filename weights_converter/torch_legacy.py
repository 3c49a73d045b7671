"""PyTorch legacy checkpoints (``torch.save(..., _use_new_zipfile_serialization=False)``, before torch 1.6).

Layout: five pickles back to back, then the storages::

    pickle   magic number 0x1950a86a20f9469cfc6c
    pickle   protocol version 1001
    pickle   sys_info {'protocol_version': 1001, 'little_endian': True, 'type_sizes': {...}}
    pickle   the object, storages as persistent ids ('storage', type, key, location, numel, view)
    pickle   the list of storage keys, in the order their bytes follow
    per key  int64 numel, then numel x itemsize raw bytes

Each storage's count is checked against the numel its persistent id declares and against the bytes left.
"""

from __future__ import annotations

import numpy as np

from .errors import CheckpointError
from .pickle_machine import unpickle
from .tensors import StorageType, decode_storage, materialize
from .torch_pickle import parse_storage_id, storage_ref, torch_globals

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001


def read_torch_legacy(data: bytes, source: str, choose) -> dict[str, np.ndarray]:
    """Unpickle a legacy PyTorch checkpoint, let ``choose`` pick the weights, and decode only those.

    Parameters
    ----------
    data : bytes
        The whole file.
    source : str
        The file name for messages.
    choose : callable
        ``choose(tree) -> dict[str, TensorRef]``, as in ``read_torch_zip``.

    Returns
    -------
    dict of str to ndarray
        The chosen tensors, as in ``read_torch_zip``.
    """
    table = torch_globals(source)
    magic, position = unpickle(data, source=source, globals_table=table)
    if magic != MAGIC_NUMBER:
        raise CheckpointError(
            f"{source}: is a plain pickle, not a PyTorch checkpoint (no PyTorch magic number); "
            "ghostnp reads only PyTorch, safetensors and .npz weights"
        )
    version, position = unpickle(data, source=source, globals_table=table, start=position)
    if version != PROTOCOL_VERSION:
        raise CheckpointError(f"{source}: legacy PyTorch protocol version {version!r:.40} is not {PROTOCOL_VERSION}")
    sys_info, position = unpickle(data, source=source, globals_table=table, start=position)
    if type(sys_info) is not dict or type(sys_info.get("little_endian")) is not bool:
        raise CheckpointError(f"{source}: the legacy checkpoint's sys_info is malformed")
    byteorder = "<" if sys_info["little_endian"] else ">"

    declared: dict[str, tuple[StorageType, int]] = {}

    def load_storage(pid):
        key, storage_type, numel, view = parse_storage_id(pid, source, legacy=True)
        if declared.setdefault(key, (storage_type, numel)) != (storage_type, numel):
            raise CheckpointError(f"{source}: storage {key!r} is declared twice with different types or sizes")
        return storage_ref(key, storage_type, numel, view, source)

    tree, position = unpickle(data, source=source, globals_table=table, persistent_load=load_storage, start=position)
    keys, position = unpickle(data, source=source, globals_table=table, start=position)
    if type(keys) is not list or not all(type(key) is str for key in keys) or len(set(keys)) != len(keys):
        raise CheckpointError(f"{source}: the legacy checkpoint's list of storage keys is malformed")
    if set(keys) != set(declared):
        raise CheckpointError(
            f"{source}: the storage list names {len(keys)} storages but the tensors use {len(declared)} "
            f"(e.g. {sorted(set(keys) ^ set(declared))[0]!r:.40}): the file is damaged"
        )
    offsets = {}
    count_dtype = np.dtype(byteorder + "i8")
    for key in keys:
        storage_type, numel = declared[key]
        if position + 8 > len(data):
            raise CheckpointError(f"{source}: is truncated: storage {key!r} starts past the end of the file")
        count = int(np.frombuffer(data, count_dtype, count=1, offset=position)[0])
        if count != numel:
            raise CheckpointError(
                f"{source}: storage {key!r} says it holds {count} elements but its tensors declare {numel}: "
                "the file is damaged or its sizes lie"
            )
        position += 8
        offsets[key] = position
        position += numel * storage_type.itemsize
        if position > len(data):
            raise CheckpointError(
                f"{source}: is truncated: storage {key!r} needs {numel * storage_type.itemsize} bytes, "
                f"the file ends {position - len(data)} bytes early; download it again"
            )
    if position != len(data):
        raise CheckpointError(f"{source}: has {len(data) - position} unexpected bytes after its last storage")

    arrays = {}
    for name, tensor in choose(tree).items():
        storage = tensor.storage
        start = offsets[storage.key] + storage.offset * storage.storage_type.itemsize
        raw = data[start : start + storage.numel * storage.storage_type.itemsize]
        arrays[name] = materialize(tensor, decode_storage(raw, storage.storage_type, byteorder))
    return arrays
