"""ghostnp: GhostNetV2 in pure NumPy, exact to PyTorch.

>>> import ghostnp
>>> model = ghostnp.create_model("ghostnetv2_100")          # random weights
>>> logits = model(x)                                       # x: (N, 3, H, W) float32

``import ghostnp`` imports numpy and the standard library only.
"""

from .classification import Prediction, classify
from .errors import CheckpointError, DownloadError, GhostnpError, ImageError
from .images import load_image, sample_image_path
from .params import fold_batchnorm
from .registry import create_model, expected_shapes, get_architecture, list_models
from .preprocess import preprocess
from .summary import summary
from .weights import load_weights

__version__ = "0.1.0"

__all__ = [
    "Prediction",
    "classify",
    "load_image",
    "load_weights",
    "preprocess",
    "sample_image_path",
    "CheckpointError",
    "DownloadError",
    "GhostnpError",
    "ImageError",
    "create_model",
    "expected_shapes",
    "fold_batchnorm",
    "get_architecture",
    "list_models",
    "summary",
]
