"""ghostnp: GhostNetV2 in pure NumPy, exact to PyTorch.

>>> import numpy as np, ghostnp
>>> model = ghostnp.create_model("ghostnetv2_100")          # seeded random weights; pretrained=True for real ones
>>> x = np.zeros((2, 3, 224, 224), np.float32)              # (N, 3, H, W), e.g. from ghostnp.preprocess
>>> model(x).shape
(2, 1000)
>>> ghostnp.classify("cat.jpg")                             # doctest: +SKIP
[Prediction(label='tabby, tabby cat', index=281, probability=0.61), ...]

The package is built in layers; each imports only from the layers below it (``lint-imports`` checks the
contracts in ``pyproject.toml``), and ``weights_converter`` beside it knows nothing of ghostnp:

==========================================  ===========================================================
``cli``                                     the ``ghostnp`` command
``inference``, ``teaching``, ``train``      classify and evaluate; receptive fields, plots, notebooks;
                                            training (each independent of the others)
``images``                                  decoding, preprocessing (with the published eval configs)
``autodiff``, ``weights``                   gradients (recording tables + VJPs); weight files, the cache
                                            and ``create_model``
``network``                                 layers (Ghost module, DFC attention), config table, model
``ops``                                     the op table: NumPy reference, Numba kernels
``errors``, ``progress``, ``cores``         the exceptions, the progress bar, the usable core count
==========================================  ===========================================================

``import ghostnp`` imports numpy and the standard library only; ``ghostnp.viz`` and ``ghostnp.notebook``
(matplotlib) and ``ghostnp.train`` are loaded when first used.
"""

import importlib

from .autodiff.record import input_gradient
from .errors import CheckpointError, DownloadError, GhostnpError, ImageError
from .images.decode import load_image, sample_image_path
from .images.preprocess import preprocess
from .inference.classification import Prediction, classify
from .inference.evaluation import ClassAccuracy, EvaluationResult, evaluate
from .network.params import fold_batchnorm
from .network.registry import expected_shapes, get_architecture, list_models
from .network.summary import summary
from .teaching.receptive_field import effective_receptive_field, theoretical_receptive_fields
from .weights.create import create_model
from .weights.files import load_weights

__version__ = "0.1.0"

_LAZY_MODULES = {"viz": "ghostnp.teaching.viz", "notebook": "ghostnp.teaching.notebook", "train": "ghostnp.train"}


def __getattr__(name):
    """``ghostnp.viz``, ``ghostnp.notebook`` and ``ghostnp.train``: imported on first use, so matplotlib is
    never loaded early."""
    if name in _LAZY_MODULES:
        return importlib.import_module(_LAZY_MODULES[name])
    raise AttributeError(f"module 'ghostnp' has no attribute {name!r}")


__all__ = [
    "CheckpointError",
    "ClassAccuracy",
    "DownloadError",
    "EvaluationResult",
    "GhostnpError",
    "ImageError",
    "Prediction",
    "classify",
    "create_model",
    "effective_receptive_field",
    "evaluate",
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
