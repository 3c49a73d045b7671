"""``create_model``: a network built from its name, with seeded random, given, or pretrained weights.

>>> model = create_model("ghostnetv2_tiny")
>>> model.arch.name, model.backend
('ghostnetv2_tiny', 'numpy')
"""

import os

import numpy as np

from ..errors import CheckpointError
from ..network.architecture import DROPOUT_RATE
from ..network.model import GhostNet
from ..network.params import compare_shapes, init_params
from ..network.registry import expected_shapes, get_architecture, list_models
from .files import load_weights


def create_model(
    name,
    weights=None,
    *,
    pretrained=False,
    seed=0,
    num_classes=1000,
    backend=None,
    fold_bn=None,
    dtype=np.float32,
    drop_rate=DROPOUT_RATE,
):
    """Build a model.

    Parameters
    ----------
    name : a name from :func:`list_models` (or a width, see :func:`get_architecture`).
    weights : None for a seeded random initialisation (non-trivial BatchNorm statistics); a dict of arrays
        keyed like the PyTorch state_dict (``num_batches_tracked`` may be present or absent); or the path of
        a weights file in any format :func:`ghostnp.load_weights` reads.
    pretrained : load the published ImageNet weights for ``name`` from the cache, downloading and
        converting them once if needed (see :mod:`ghostnp.weights.hub`). Excludes ``weights``.
    seed : the random initialisation's seed.
    backend : "numpy", "numba", "auto", or None (``GHOSTNP_BACKEND``, else numpy).
    fold_bn : fold BatchNorm into the convolutions (default: only for the numba backend).
    dtype : the random initialisation's dtype.
    drop_rate : dropout before the classifier when training (timm's default 0.2; 0 turns it off).

    Returns
    -------
    GhostNet
    """
    arch = get_architecture(name, num_classes)
    if pretrained:
        if weights is not None:
            raise ValueError("pass either weights=... or pretrained=True, not both")
        from .hub import fetch_pretrained  # imported lazily: only pretrained=True needs the cache

        weights = fetch_pretrained(name)
    if weights is None:
        return GhostNet(
            arch,
            init_params(arch, seed, dtype),
            backend=backend,
            fold_bn=fold_bn,
            source="random init",
            drop_rate=drop_rate,
        )
    source = "weights"
    if isinstance(weights, (str, os.PathLike)):
        source, weights = f"the weights in {weights}", load_weights(weights)
    if not isinstance(weights, dict):
        raise TypeError(
            "weights must be a dict of arrays keyed like the PyTorch state_dict or a file path, "
            f"got {type(weights).__name__}"
        )
    try:
        return GhostNet(arch, weights, backend=backend, fold_bn=fold_bn, source=source, drop_rate=drop_rate)
    except CheckpointError as error:
        fits = [
            other
            for other in list_models()
            if other != name and not compare_shapes(weights, expected_shapes(other)).count
        ]
        if fits:  # the commonest mistake: weights of another width or version
            raise CheckpointError(
                f"{error}\nThey fit {fits[0]}: create_model({fits[0]!r}, ...), or --model {fits[0]}."
            ) from None
        raise
