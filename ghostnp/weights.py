"""Weights from files: any supported checkpoint format to the flat state_dict-keyed dict.

The file formats (PyTorch zip and legacy checkpoints, safetensors, ghostnp's ``.npz``) are read by the
``weights_converter`` package, with numpy and the standard library only: no PyTorch, no ``pickle.load``.
"""

from pathlib import Path


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

    weights, _ = read_checkpoint(Path(path))
    return weights
