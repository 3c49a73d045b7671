"""Read GhostNet / GhostNetV2 weights safely, with numpy and the standard library only.

- ``read_checkpoint(path) -> (state_dict, info)``: PyTorch zip or legacy checkpoints, safetensors, or
  ghostnp ``.npz``, recognised by their bytes; pickles are interpreted with an allowlist, never executed.
- ``detect_architecture(state_dict) -> name``: which model the keys and shapes belong to.
- ``convert(src, out=None, arch=None) -> Path``: write ghostnp's ``.npz`` with metadata.
- ``python -m weights_converter SRC [-o OUT.npz] [--arch NAME]``: the same on the command line.

Every bad file raises ``ghostnp.errors.CheckpointError`` with a message naming the file.
"""

from .architecture import check_architecture, compare_shapes, detect_architecture
from .convert import CONVERTER_VERSION, convert, write_npz
from .reader import read_checkpoint

__version__ = CONVERTER_VERSION

__all__ = [
    "read_checkpoint",
    "detect_architecture",
    "check_architecture",
    "compare_shapes",
    "convert",
    "write_npz",
    "CONVERTER_VERSION",
]
