"""Make checkpoint files with torch, the way the official release and training scripts write them.

Keys and shapes come from ``tests/data/keys_<model>.tsv`` (dumped from the reference PyTorch models), so
these files have the exact structure of real GhostNet checkpoints without downloading anything.
Only the tests import torch; ``weights_converter`` itself never does.
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).parent / "data"


def key_table(model: str) -> list[tuple[str, tuple[int, ...], str]]:
    """``(key, shape, dtype)`` rows of ``tests/data/keys_<model>.tsv``, in the state_dict's order."""
    rows = []
    for line in (DATA / f"keys_{model}.tsv").read_text().splitlines()[1:]:
        key, shape, dtype = line.split("\t")
        rows.append((key, tuple(json.loads(shape)), dtype))
    return rows


def expected_shapes_from_table(model: str) -> dict[str, tuple[int, ...]]:
    """The shapes ``ghostnp.expected_shapes`` gives: every key of the table but ``num_batches_tracked``."""
    return {key: shape for key, shape, _ in key_table(model) if not key.endswith("num_batches_tracked")}


def reference_state_dict(model: str = "ghostnetv2_100", seed: int = 0) -> OrderedDict:
    """A state_dict with the model's keys and shapes and random values (running_var positive)."""
    generator = torch.Generator().manual_seed(seed)
    state = OrderedDict()
    for key, shape, dtype in key_table(model):
        if dtype == "int64":
            state[key] = torch.tensor(int(torch.randint(0, 1000, (), generator=generator)))
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator)
    return state


def small_state_dict(seed: int = 0) -> OrderedDict:
    """A few GhostNet-like tensors, for the many tests where the network's size does not matter."""
    generator = torch.Generator().manual_seed(seed)
    return OrderedDict(
        [
            ("conv_stem.weight", torch.randn(4, 3, 3, 3, generator=generator)),
            ("bn1.weight", torch.randn(4, generator=generator)),
            ("bn1.running_var", torch.rand(4, generator=generator) + 0.5),
            ("bn1.num_batches_tracked", torch.tensor(7)),
        ]
    )


def expected_arrays(state: dict) -> dict[str, np.ndarray]:
    """What ``read_checkpoint`` must return for ``state``: float32 values, ignorable keys left out."""
    return {key: value.float().numpy() for key, value in expected_state(state).items()}


def with_profiler_buffers(state: dict) -> OrderedDict:
    """The official release's shape: every module that owns weights also has float64 ``total_ops`` and
    ``total_params`` of shape [1] (left there by a FLOP counter), and so does the root module."""
    result = OrderedDict(state)
    modules = sorted({key.rsplit(".", 1)[0] for key in state})
    for module in modules:
        result[f"{module}.total_ops"] = torch.tensor([12345.0], dtype=torch.float64)
        result[f"{module}.total_params"] = torch.tensor([678.0], dtype=torch.float64)
    result["total_ops"] = torch.tensor([1e9], dtype=torch.float64)
    result["total_params"] = torch.tensor([6e6], dtype=torch.float64)
    return result


def rewrite_zip(path: Path, transform) -> None:
    """Rewrite a zip archive member by member: ``transform(name, data) -> (name, data)``."""
    with zipfile.ZipFile(path) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members:
            archive.writestr(*transform(name, data))


def save_zip(state, path: Path, folder: str = "archive", **torch_save_options) -> Path:
    """``torch.save`` in the zip format, then rename the inner folder (torch 2.x uses the file's stem)."""
    torch.save(state, path, **torch_save_options)
    rewrite_zip(path, lambda name, data: (folder + "/" + name.split("/", 1)[1], data))
    return path


def zip_member(path: Path, suffix: str) -> bytes:
    """The bytes of the zip member whose name ends with ``suffix`` (e.g. '/data.pkl')."""
    with zipfile.ZipFile(path) as archive:
        (name,) = [name for name in archive.namelist() if name.endswith(suffix)]
        return archive.read(name)


def replace_member(path: Path, suffix: str, new_data: bytes) -> None:
    """Replace the bytes of the zip member whose name ends with ``suffix``."""
    rewrite_zip(path, lambda name, data: (name, new_data if name.endswith(suffix) else data))


def zip_checkpoint(path: Path, data_pkl: bytes, records: dict[str, bytes] | None = None) -> Path:
    """A PyTorch-style zip archive around a hand-made pickle and storage records."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", b"little")
        for key, data in (records or {}).items():
            archive.writestr(f"archive/data/{key}", data)
        archive.writestr("archive/version", b"3\n")
    return path


def binunicode(text: str) -> bytes:
    """A pickle BINUNICODE opcode pushing ``text``."""
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def patch_location(data_pkl: bytes, old: str = "cpu", new: str = "cuda:0") -> bytes:
    """Change the storage location string in a protocol-2 ``data.pkl`` (as if saved from a GPU)."""
    assert binunicode(old) in data_pkl
    return data_pkl.replace(binunicode(old), binunicode(new))


SAFETENSORS_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
                      "I64": torch.int64}  # fmt: skip


def safetensors_bytes(state: dict, dtype: str = "F32", metadata: dict | None = None) -> bytes:
    """A safetensors file written by hand: tensors converted to ``dtype`` (int64 ones stay I64)."""
    header, chunks, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for key, value in state.items():
        kind = "I64" if value.dtype == torch.int64 else dtype
        tensor = value.to(SAFETENSORS_DTYPES[kind]).contiguous()
        raw = tensor.reshape(-1).view(torch.uint8).numpy().tobytes()
        header[key] = {"dtype": kind, "shape": list(tensor.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    return struct.pack("<Q", len(encoded)) + encoded + b"".join(chunks)


def converted_values(state: dict, dtype: str) -> dict[str, np.ndarray]:
    """The float32 values a ``dtype`` safetensors file of ``state`` holds after rounding to that dtype."""
    return {key: value.to(SAFETENSORS_DTYPES[dtype]).float().numpy() for key, value in expected_state(state).items()}


def expected_state(state: dict) -> dict:
    """``state`` without the keys ``read_checkpoint`` drops."""
    return {key: value for key, value in state.items()
            if key.rsplit(".", 1)[-1] not in ("num_batches_tracked", "total_ops", "total_params")}  # fmt: skip
