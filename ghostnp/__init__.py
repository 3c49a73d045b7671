"""ghostnp: GhostNetV2 in pure NumPy, exact to PyTorch.

>>> import numpy as np, ghostnp
>>> model = ghostnp.create_model("ghostnetv2_100")          # seeded random weights; pretrained=True for real ones
>>> x = np.zeros((2, 3, 224, 224), np.float32)              # (N, 3, H, W), e.g. from ghostnp.preprocess
>>> model(x).shape
(2, 1000)
>>> ghostnp.classify("cat.jpg")                             # doctest: +SKIP
[Prediction(label='tabby, tabby cat', index=281, probability=0.61), ...]

The code reads from the bottom up: ``ops`` (NumPy ops with PyTorch semantics; a Numba table beside them),
``layers`` (Ghost module, DFC attention, bottleneck), ``architecture`` (the config table), ``model``,
``registry``; then weights (``weights``, ``hub``, ``pretrained``), images (``images``, ``preprocess``,
``labels``), ``classification`` and ``cli``; and the teaching tools ``autograd``, ``receptive_field``, ``viz``.

``import ghostnp`` imports numpy and the standard library only.
"""

from .autograd import input_gradient
from .classification import Prediction, classify
from .errors import CheckpointError, DownloadError, GhostnpError, ImageError
from .images import load_image, sample_image_path
from .params import fold_batchnorm
from .preprocess import preprocess
from .receptive_field import effective_receptive_field, theoretical_receptive_fields
from .registry import create_model, expected_shapes, get_architecture, list_models
from .summary import summary
from .weights import load_weights

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "DownloadError",
    "GhostnpError",
    "ImageError",
    "Prediction",
    "classify",
    "create_model",
    "effective_receptive_field",
    "expected_shapes",
    "fold_batchnorm",
    "get_architecture",
    "input_gradient",
    "list_models",
    "load_image",
    "load_weights",
    "preprocess",
    "sample_image_path",
    "summary",
    "theoretical_receptive_fields",
]
