"""PyTorch zip checkpoints (``torch.save`` since 1.6), whatever the file is named.

Layout: one top-level folder (``archive/``, or the file's stem in older releases, e.g.
``ck_ghostnetv2_10.pth/``) holding ``data.pkl`` (the pickle), ``data/<key>`` (one raw record per storage),
and optionally ``byteorder`` ('little' or 'big'). Records are stored uncompressed, little-endian.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .errors import CheckpointError
from .pickle_machine import unpickle
from .tensors import StorageRef, decode_storage, materialize
from .torch_pickle import parse_storage_id, torch_globals
from .zip_archive import open_zip, read_member

MAX_PICKLE_BYTES = 256 * 1024 * 1024


def is_torch_zip(archive: zipfile.ZipFile) -> bool:
    """Whether a zip archive holds a PyTorch checkpoint (some ``<folder>/data.pkl``)."""
    return any(name.count("/") == 1 and name.endswith("/data.pkl") for name in archive.namelist())


def read_torch_zip(path: Path, source: str, choose) -> dict[str, np.ndarray]:
    """Unpickle a PyTorch zip checkpoint, let ``choose`` pick the weights, and read only those.

    Parameters
    ----------
    path : Path
    source : str
        The file name for messages.
    choose : callable
        ``choose(tree) -> dict[str, TensorRef]``: given the unpickled object (tensors as ``TensorRef``),
        returns the tensors to read.

    Returns
    -------
    dict of str to ndarray
        The chosen tensors, each a fresh array of its storage's dtype (bfloat16 decoded to float32).
    """
    with open_zip(path, source) as archive:
        folders = sorted({name[: -len("/data.pkl")] for name in archive.namelist()
                          if name.count("/") == 1 and name.endswith("/data.pkl")})  # fmt: skip
        if len(folders) != 1:
            raise CheckpointError(f"{source}: the zip archive holds {len(folders)} data.pkl files, expected one")
        folder = folders[0]
        names = set(archive.namelist())
        byteorder = _byteorder(archive, folder, source)
        pickle_size = archive.getinfo(f"{folder}/data.pkl").file_size
        if pickle_size > MAX_PICKLE_BYTES:
            raise CheckpointError(f"{source}: data.pkl declares {pickle_size:,} bytes, more than any checkpoint needs")
        pickle_bytes = read_member(archive, f"{folder}/data.pkl", pickle_size, source)

        def load_storage(pid) -> StorageRef:
            key, storage_type, numel, _ = parse_storage_id(pid, source, legacy=False)
            name = f"{folder}/data/{key}"
            if name not in names:
                raise CheckpointError(f"{source}: storage record {name!r} is missing from the zip archive")
            declared = archive.getinfo(name).file_size
            if declared != numel * storage_type.itemsize:
                raise CheckpointError(
                    f"{source}: storage record {name!r} holds {declared} bytes, but the pickle declares "
                    f"{numel} x {storage_type.itemsize} = {numel * storage_type.itemsize} bytes "
                    f"({storage_type.name}): the file is damaged or its sizes lie"
                )
            return StorageRef(key, storage_type, numel)

        tree, _ = unpickle(
            pickle_bytes, source=source, globals_table=torch_globals(source), persistent_load=load_storage
        )
        chosen = choose(tree)
        storages: dict[tuple[str, str], np.ndarray] = {}  # (key, storage type) -> decoded storage
        arrays = {}
        for name, tensor in chosen.items():
            storage = tensor.storage
            cache_key = (storage.key, storage.storage_type.name)
            if cache_key not in storages:
                size = storage.numel * storage.storage_type.itemsize
                raw = read_member(archive, f"{folder}/data/{storage.key}", size, source)
                storages[cache_key] = decode_storage(raw, storage.storage_type, byteorder)
            arrays[name] = materialize(tensor, storages[cache_key])
        return arrays


def _byteorder(archive: zipfile.ZipFile, folder: str, source: str) -> str:
    """'<' or '>' from the optional ``byteorder`` record (absent in files older than torch 1.12: little-endian)."""
    name = f"{folder}/byteorder"
    if name not in archive.namelist():
        return "<"
    size = archive.getinfo(name).file_size
    order = read_member(archive, name, size, source) if size <= 8 else b""
    if order not in (b"little", b"big"):
        raise CheckpointError(f"{source}: the zip's byteorder record says {order[:8]!r}, not 'little' or 'big'")
    return "<" if order == b"little" else ">"
