"""Weights from files: any supported checkpoint format to the flat state_dict-keyed dict, and back.

The file formats (PyTorch zip and legacy checkpoints, safetensors, ghostnp's ``.npz``) are read by the
``weights_converter`` package, with numpy and the standard library only: no PyTorch, no ``pickle.load``.
The converter knows nothing of ghostnp; this module is where its errors become ``ghostnp.CheckpointError``
and where the architecture of converted weights is recognised.
"""

import contextlib
from pathlib import Path

from ..errors import CheckpointError


@contextlib.contextmanager
def converter_errors():
    """Re-raise the converter's ``CheckpointError`` as ghostnp's (same message, the original as cause)."""
    import weights_converter

    try:
        yield
    except weights_converter.CheckpointError as error:
        raise CheckpointError(str(error)) from error


def load_weights(path):
    """Read a weights file into ``{state_dict key: float32 ndarray}``.

    Parameters
    ----------
    path : str or Path
        A PyTorch checkpoint (``.pth``, ``.pth.tar``, ``.bin``; zip or legacy format, bare or inside a
        training checkpoint's ``state_dict`` / ``state_dict_ema`` / ``model``), a ``.safetensors`` file or
        a ghostnp ``.npz``. The format is recognised by its content, not its name.

    Raises
    ------
    ghostnp.CheckpointError
        The file is missing, truncated, of an unknown format, or unsafe. Nothing in a file is executed.
    """
    from weights_converter import read_checkpoint

    with converter_errors():
        weights, _ = read_checkpoint(Path(path))
    return weights


def convert_weights(src, out=None, arch=None):
    """Convert a weights file to ghostnp's ``.npz``, checking that it holds a network ghostnp builds.

    Parameters
    ----------
    src : str or Path
        Any file :func:`load_weights` reads.
    out : str or Path, optional
        Where to write; defaults to ``src`` with its weight suffixes replaced by ``.npz``.
    arch : str, optional
        The expected architecture (e.g. 'ghostnetv2_100'); by default it is recognised from the keys and
        shapes. Either way the weights must fit the architecture exactly. It is stored in the metadata.

    Returns
    -------
    Path
        The written ``.npz``.
    """
    import weights_converter

    from .recognise import check_architecture, detect_architecture

    def describe(weights, source):
        if arch is None:
            return {"architecture": detect_architecture(weights, source=source)}
        check_architecture(weights, arch, source=source)
        return {"architecture": arch}

    with converter_errors():
        return Path(weights_converter.convert(src, out, describe=describe))
