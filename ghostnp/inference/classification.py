"""``classify``: from image files to ImageNet labels, the main job of ghostnp."""

import os
from contextlib import closing
from typing import NamedTuple

import numpy as np

from ..errors import ImageError
from ..images.labels import imagenet_classes
from ..images.pipeline import preprocessed_batches
from ..weights.create import create_model
from ..weights.pretrained import get_pretrained_config

DEFAULT_MODEL = "ghostnetv2_100"

_loaded_models = {}  # (model name, weights path, backend) -> GhostNet, so repeated calls load once


class Prediction(NamedTuple):
    """One of an image's top-k classes."""

    label: str  # readable ImageNet class name, e.g. "tabby, tabby cat"
    index: int  # the classifier output, 0..999
    probability: float  # softmax probability, in [0, 1]


def softmax(logits):
    """Row-wise softmax, computed in float64: (N, K) -> (N, K), rows sum to 1."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def top_predictions(logits, topk=5):
    """The ``topk`` most probable classes of each row of logits (N, 1000), as lists of :class:`Prediction`."""
    classes = imagenet_classes()
    probabilities = softmax(logits)
    result = []
    for row in probabilities:
        best = np.argsort(-row, kind="stable")[:topk]
        result.append([Prediction(classes[i].name, int(i), float(row[i])) for i in best])
    return result


def eval_config(model):
    """The evaluation transform settings for ``model``: its pretrained config, else the ImageNet default."""
    try:
        return get_pretrained_config(model)
    except ValueError:  # a width or test model without published weights: the same ImageNet transform
        return get_pretrained_config(DEFAULT_MODEL)


def load_model(model=DEFAULT_MODEL, weights=None, backend=None):
    """The model for ``classify``: ``weights`` (a path) if given, else the pretrained weights; cached."""
    key = (model, os.fspath(weights) if weights is not None else None, backend)
    if key not in _loaded_models:
        if weights is None:
            _loaded_models[key] = create_model(model, pretrained=True, backend=backend)
        else:
            _loaded_models[key] = create_model(model, weights=weights, backend=backend)
    return _loaded_models[key]


def classify(images, model=DEFAULT_MODEL, *, topk=5, weights=None, backend=None, batch_size=16, workers=None):
    """Classify one image or a list of images with an ImageNet-1k model.

    Parameters
    ----------
    images : a path, PIL image or (H, W, 3) uint8 array; or a list of them.
    model : a model name (``ghostnp.list_models()``).
    topk : how many classes to return per image.
    weights : a weights file; None loads the pretrained weights (downloading them once).
    backend : "numpy", "numba", "auto", or None (``GHOSTNP_BACKEND``).
    batch_size : images per forward pass.
    workers : processes decoding images beside the forward passes (:mod:`ghostnp.images.pipeline`); 0 decodes
        in this process. Default: one per usable core when there is more than one batch, else 0.

    Returns
    -------
    list[Prediction] for one image, sorted by probability (highest first); a list of those for a list.

    Raises
    ------
    ImageError
        For the first image that cannot be read (``ghostnp classify`` reports and skips them instead).

    Examples
    --------
    >>> ghostnp.classify("cat.jpg")[0]                                  # doctest: +SKIP
    Prediction(label='tabby, tabby cat', index=281, probability=0.61)
    """
    single = not isinstance(images, (list, tuple))
    sources = [images] if single else list(images)
    net = load_model(model, weights, backend)
    results = []
    batches = preprocessed_batches(sources, eval_config(model), batch_size=batch_size, workers=workers)
    with closing(batches):
        for batch in batches:
            if batch.failures:
                raise ImageError(batch.failures[0][1])
            results.extend(top_predictions(net(batch.inputs), topk))  # logits (B, 1000)
    return results[0] if single else results
