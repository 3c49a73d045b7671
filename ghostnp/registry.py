"""Model names to architectures, and ``create_model``: timm's names, any width, and a tiny test network."""

import os
import re

import numpy as np

from .architecture import build_architecture
from .model import GhostNet
from .errors import CheckpointError
from .params import compare_shapes, init_params, param_shapes
from .weights import load_weights

# The official models (timm's names) and their width multipliers / versions.
MODELS = {
    "ghostnet_100": dict(width=1.0, version=1),
    "ghostnetv2_100": dict(width=1.0, version=2),
    "ghostnetv2_130": dict(width=1.3, version=2),
    "ghostnetv2_160": dict(width=1.6, version=2),
}

# A small GhostNetV2 with the real structure (stem, stride-2 stages, SE, conv and identity shortcuts, DFC
# from the third block on) for fast tests and teaching: 5 blocks instead of 16, a 64-wide final conv and a
# 128-wide head.
#              k, exp,  c,   se,   s
TINY_STAGES = (
    ((3, 8, 8, 0.0, 1),),
    ((3, 16, 12, 0.0, 2),),
    ((3, 24, 12, 0.25, 1), (5, 24, 16, 0.25, 2)),
    ((3, 32, 16, 0.0, 1),),
)
TINY_MODEL = "ghostnetv2_tiny"

_WIDTH_NAME = re.compile(r"^ghostnet(v2)?_(\d{2,3})$")


def list_models():
    """The official model names (timm's), then the tiny test model."""
    return [*MODELS, TINY_MODEL]


def get_architecture(name, num_classes=1000):
    """The :class:`~ghostnp.architecture.Architecture` for a model name.

    Accepts the names of :func:`list_models` and any width as ``ghostnetv2_<percent>`` or
    ``ghostnet_<percent>`` (e.g. ``ghostnetv2_050`` for width 0.5).
    """
    if name == TINY_MODEL:
        return build_architecture(1.0, 2, num_classes, stages=TINY_STAGES, final_conv_chs=64, head_chs=128, name=name)
    if name in MODELS:
        return build_architecture(num_classes=num_classes, name=name, **MODELS[name])
    match = _WIDTH_NAME.match(name)
    if match and int(match.group(2)) > 0:
        return build_architecture(int(match.group(2)) / 100, 2 if match.group(1) else 1, num_classes, name=name)
    raise ValueError(
        f"unknown model {name!r}; known: {', '.join(list_models())}, "
        "or any width as 'ghostnetv2_<percent>' / 'ghostnet_<percent>' (e.g. 'ghostnetv2_050')"
    )


def expected_shapes(name, num_classes=1000):
    """Every state_dict key of a model and its shape (``num_batches_tracked`` left out)."""
    return param_shapes(get_architecture(name, num_classes))


def create_model(
    name, weights=None, *, pretrained=False, seed=0, num_classes=1000, backend=None, fold_bn=None, dtype=np.float32
):
    """Build a model.

    Parameters
    ----------
    name : a name from :func:`list_models` (or a width, see :func:`get_architecture`).
    weights : None for a seeded random initialisation (non-trivial BatchNorm statistics); a dict of arrays
        keyed like the PyTorch state_dict (``num_batches_tracked`` may be present or absent); or the path of
        a weights file in any format :func:`ghostnp.load_weights` reads.
    pretrained : load the published ImageNet weights for ``name`` from the cache, downloading and
        converting them once if needed (see :mod:`ghostnp.hub`). Excludes ``weights``.
    seed : the random initialisation's seed.
    backend : "numpy", "numba", "auto", or None (``GHOSTNP_BACKEND``, else numpy).
    fold_bn : fold BatchNorm into the convolutions (default: only for the numba backend).
    dtype : the random initialisation's dtype.

    Returns
    -------
    GhostNet
    """
    arch = get_architecture(name, num_classes)
    if pretrained:
        if weights is not None:
            raise ValueError("pass either weights=... or pretrained=True, not both")
        from .hub import fetch_pretrained

        weights = fetch_pretrained(name)
    if weights is None:
        return GhostNet(arch, init_params(arch, seed, dtype), backend=backend, fold_bn=fold_bn, source="random init")
    source = "weights"
    if isinstance(weights, (str, os.PathLike)):
        source, weights = f"the weights in {weights}", load_weights(weights)
    if not isinstance(weights, dict):
        raise TypeError(
            f"weights must be a dict of arrays keyed like the PyTorch state_dict or a file path, got {type(weights).__name__}"
        )
    try:
        return GhostNet(arch, weights, backend=backend, fold_bn=fold_bn, source=source)
    except CheckpointError as error:
        fits = [other for other in list_models() if other != name and not compare_shapes(weights, expected_shapes(other)).count]
        if fits:  # the commonest mistake: weights of another width or version
            raise CheckpointError(f"{error}\nThey fit {fits[0]}: create_model({fits[0]!r}, ...), or --model {fits[0]}.") from None
        raise
