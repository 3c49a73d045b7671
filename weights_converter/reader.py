"""``read_checkpoint``: any supported weights file to a clean flat float32 state_dict."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from . import formats, state_dict
from .errors import CheckpointError
from .npz import read_npz
from .safetensors import read_safetensors
from .tensors import TensorRef
from .torch_legacy import read_torch_legacy
from .torch_zip import is_torch_zip, read_torch_zip
from .zip_archive import open_zip

UNEXPECTED = "unexpected internal error"
"""Marks the message of an error the format readers did not anticipate (a bug to report)."""


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Read a weights file safely and return its cleaned state_dict.

    Formats are recognised by their bytes: PyTorch zip (``torch.save`` since 1.6; ``.pth``, ``.pth.tar``,
    ``.bin``, any inner folder), PyTorch legacy, safetensors (F32, F16, BF16, F64, I64) and ghostnp
    ``.npz``. Nothing in the file is executed; every declared size is checked before allocation.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    state_dict : dict of str to ndarray of float32
        Keys as in PyTorch's ``model.state_dict()`` without 'module.' / '_orig_mod.' prefixes and without
        ``num_batches_tracked`` / ``total_ops`` / ``total_params``; values finite, running variances >= 0.
    info : dict
        ``format`` ('torch-zip', 'torch-legacy', 'safetensors' or 'npz'), ``picked`` (where the weights
        were found: '(top level)', 'state_dict_ema', ...), ``also_present`` (other wrapper keys holding
        tensors), ``dropped`` (original keys left out), ``sha256`` (of the file), ``source`` (the path),
        and for ``.npz`` files written by ``convert`` their ``metadata``.

    Raises
    ------
    CheckpointError
        For every file that is missing, unreadable, truncated, malicious, lies about sizes, or holds
        no usable weights; the message names the file and the problem.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise CheckpointError(f"{source}: no such file" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        return _read(path, source)
    except CheckpointError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, RecursionError, OverflowError, MemoryError) as error:
        raise CheckpointError(
            f"{source}: could not be read ({UNEXPECTED}: {type(error).__name__}: {error}); the file is "
            "probably damaged. Please report this with the file to the ghostnp maintainers"
        ) from error


def _read(path: Path, source: str) -> tuple[dict[str, np.ndarray], dict]:
    with open(path, "rb") as file:
        head = file.read(formats.HEAD_BYTES)
    kind = formats.detect_format(head, path.stat().st_size, source)
    info = {"source": source, "sha256": file_sha256(path), "metadata": {}}

    def choose(tree) -> dict[str, TensorRef]:
        weights, info["picked"], info["also_present"] = state_dict.find_weights(tree, source)
        cleaned, info["dropped"] = state_dict.clean_keys(weights, source)
        return cleaned

    if kind == "zip":
        with open_zip(path, source) as archive:
            if is_torch_zip(archive):
                info["format"] = "torch-zip"
            elif archive.namelist() and all(name.endswith(".npy") for name in archive.namelist()):
                info["format"] = "npz"
                arrays, info["metadata"] = read_npz(archive, source)
            else:
                raise CheckpointError(
                    f"{source}: is a zip archive but neither a PyTorch checkpoint (no <folder>/data.pkl) "
                    f"nor an .npz (members such as {archive.namelist()[:3]})"
                )
        if info["format"] == "torch-zip":
            arrays = read_torch_zip(path, source, choose)
        else:
            arrays = choose(arrays)
    elif kind == "pickle":
        info["format"] = "torch-legacy"
        arrays = read_torch_legacy(path.read_bytes(), source, choose)
    else:
        info["format"] = "safetensors"
        arrays = choose(read_safetensors(path.read_bytes(), source))
    return state_dict.check_values(arrays, source), info
