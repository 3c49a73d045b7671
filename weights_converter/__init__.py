"""Read GhostNet / GhostNetV2 weights safely, with numpy and the standard library only.

- ``read_checkpoint(path) -> (state_dict, info)``: PyTorch zip or legacy checkpoints, safetensors, or
  ghostnp ``.npz``, recognised by their bytes; pickles are interpreted with an allowlist, never executed.
- ``convert(src, out=None) -> Path``: write ghostnp's ``.npz`` (weights and JSON metadata, no pickle).
- ``python -m weights_converter SRC [-o OUT.npz]``: the same on the command line.

Every bad file raises :class:`weights_converter.CheckpointError` with a message naming the file.
The package knows nothing of ghostnp: it reads files into dicts of arrays. Which network the arrays
belong to is ghostnp's question (``ghostnp.weights.recognise``; ``ghostnp convert`` checks it).
"""

from .convert import CONVERTER_VERSION, convert, write_npz
from .errors import CheckpointError
from .reader import read_checkpoint

__version__ = CONVERTER_VERSION

__all__ = [
    "CONVERTER_VERSION",
    "CheckpointError",
    "convert",
    "read_checkpoint",
    "write_npz",
]
