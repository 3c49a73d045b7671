"""Model names to architectures: timm's names, any width, and a tiny test network.

``ghostnp.create_model`` (in :mod:`ghostnp.weights.create`) builds a model from a name and its weights.
"""

import re

from .architecture import build_architecture
from .params import param_shapes

# The official models (timm's names) and their width multipliers / versions.
MODELS = {
    "ghostnet_100": {"width": 1.0, "version": 1},
    "ghostnetv2_100": {"width": 1.0, "version": 2},
    "ghostnetv2_130": {"width": 1.3, "version": 2},
    "ghostnetv2_160": {"width": 1.6, "version": 2},
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
    """The :class:`~ghostnp.network.architecture.Architecture` for a model name.

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
