"""``convert``: a checkpoint in, ghostnp's ``.npz`` out (weights plus JSON metadata, no pickle).

The ``.npz`` holds one float32 array per state_dict key and ``__metadata__``, a 0-d unicode array with
JSON: the source file's name, format and sha256, the converter's version, and whatever the caller adds
(ghostnp adds the architecture it recognised). It is written to a
temporary file beside the target, flushed to disk, then renamed into place, so a crash never leaves a
half-written file under the target's name.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import CheckpointError
from .npz import METADATA_KEY
from .reader import read_checkpoint

CONVERTER_VERSION = "0.1.0"
SOURCE_SUFFIXES = (".tar", ".pth", ".pt", ".bin", ".ckpt", ".safetensors", ".npz")


def default_output(src: Path) -> Path:
    """``ck_ghostnetv2_10.pth.tar`` -> ``ck_ghostnetv2_10.npz`` in the same folder."""
    name = src.name
    while name.lower().endswith(SOURCE_SUFFIXES) and "." in name[1:]:
        name = name[: name.rindex(".")]
    return src.with_name(name + ".npz")


def write_npz(weights: dict[str, np.ndarray], metadata: dict, out: Path) -> None:
    """Write weights and metadata to ``out`` atomically (temporary file, fsync, rename).

    Parameters
    ----------
    weights : dict of str to ndarray
    metadata : dict
        JSON-serialisable; stored as the 0-d unicode array ``__metadata__``.
    out : Path
    """
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, allow_pickle=False, **weights, **{METADATA_KEY: np.array(json.dumps(metadata))})
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, out)
    except BaseException:
        os.unlink(temporary)
        raise


def convert(
    src: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    describe: Callable[[dict[str, np.ndarray], str], dict] | None = None,
) -> Path:
    """Convert a weights file to ghostnp's ``.npz``.

    Parameters
    ----------
    src : str or PathLike
        Any file ``read_checkpoint`` reads.
    out : str or PathLike, optional
        Where to write; defaults to ``src`` with its weight suffixes replaced by ``.npz``.
    describe : callable, optional
        ``describe(weights, source) -> dict``: more metadata to store (JSON-serialisable), computed from the
        weights before anything is written; it may raise to refuse them. ghostnp passes its architecture
        recogniser here.

    Returns
    -------
    Path
        The written ``.npz``.
    """
    src = Path(src)
    out = default_output(src) if out is None else Path(out)
    if out.exists() and out.resolve() == src.resolve():
        raise CheckpointError(f"{src}: refusing to overwrite the source; choose another output with -o")
    weights, info = read_checkpoint(src)
    extra = {} if describe is None else describe(weights, str(src))
    metadata = {
        "source_file": src.name,
        "source_sha256": info["sha256"],
        "source_format": info["format"],
        "picked": info["picked"],
        "dropped": len(info["dropped"]),
        "converter": "weights_converter",
        "converter_version": CONVERTER_VERSION,
        **extra,
    }
    write_npz(weights, metadata, out)
    return out
