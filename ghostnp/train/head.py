"""A new classifier for new classes: the same backbone, a fresh ``classifier`` of ``num_classes`` outputs.

>>> import ghostnp
>>> model = ghostnp.train.with_new_head(ghostnp.create_model("ghostnetv2_tiny"), num_classes=3)
>>> model.params["classifier.weight"].shape
(3, 128)
"""

import numpy as np

from ..network.model import GhostNet
from ..network.registry import get_architecture


def with_new_head(model, num_classes, *, seed=0):
    """A copy of ``model`` whose classifier maps the head's features to ``num_classes`` new classes.

    The new ``classifier.weight`` (num_classes, head_chs) and ``classifier.bias`` (num_classes,) are drawn
    as PyTorch initialises an ``nn.Linear`` (uniform in +-1 / sqrt(head_chs)), from ``seed``; every other
    array is shared with ``model`` (training replaces arrays, so the original is left unchanged). Backend,
    folding, threads, dropout rate and BatchNorm counters are those of ``model``. Fine-tune it with
    ``fit(..., trainable="classifier")``.
    """
    arch = get_architecture(model.arch.name, num_classes)
    head_chs = model.params["classifier.weight"].shape[1]
    bound = 1 / np.sqrt(head_chs)
    rng = np.random.default_rng(seed)
    dtype = model.params["classifier.weight"].dtype
    params = dict(model.state_dict())
    params["classifier.weight"] = rng.uniform(-bound, bound, (num_classes, head_chs)).astype(dtype)
    params["classifier.bias"] = rng.uniform(-bound, bound, num_classes).astype(dtype)
    return GhostNet(
        arch,
        params,
        backend=model.backend,
        fold_bn=model.fold_bn,
        threads=model.threads,
        source="the new head",
        drop_rate=model.drop_rate,
    )
