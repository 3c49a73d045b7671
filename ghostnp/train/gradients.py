"""``loss_and_grads``: one training-mode forward and backward pass, the gradients keyed like the state_dict.

>>> import numpy as np, ghostnp
>>> model = ghostnp.create_model("ghostnetv2_tiny", num_classes=3)
>>> x = np.random.default_rng(0).normal(size=(4, 3, 33, 33))
>>> loss, grads = ghostnp.train.loss_and_grads(model, x, [0, 1, 2, 0], rng=0)
>>> grads["conv_stem.weight"].shape
(16, 3, 3, 3)
"""

import numpy as np

from ..autodiff.record import record_training
from ..network.model import check_input
from ..network.params import is_trainable
from .loss import check_targets, cross_entropy


def trainable_keys(params, trainable=None):
    """The keys of the parameters to train: every weight and bias, or those under the given prefixes.

    trainable : None (everything), or a state_dict prefix or a list of them: ``"classifier"``,
        ``["blocks.8", "blocks.9", "conv_head", "classifier"]``. A prefix matches a key equal to it or
        starting with it and a dot. BatchNorm running statistics are buffers and never trainable.
    """
    keys = [key for key in params if is_trainable(key)]
    if trainable is None:
        return keys
    prefixes = [trainable] if isinstance(trainable, str) else list(trainable)
    if not prefixes:
        raise ValueError("trainable is empty: pass None to train every parameter, or state_dict prefixes")
    for prefix in prefixes:
        if not any(_under(key, prefix) for key in keys):
            top = dict.fromkeys(key.split(".")[0] for key in keys)  # conv_stem, bn1, blocks, conv_head, classifier
            raise ValueError(
                f"trainable prefix {prefix!r} matches no parameter; prefixes are state_dict key starts such as "
                f"{', '.join(repr(t) for t in top)} or 'blocks.8' (see model.params)"
            )
    return [key for key in keys if any(_under(key, prefix) for prefix in prefixes)]


def _under(key, prefix):
    return key == prefix or key.startswith(prefix.rstrip(".") + ".")


def forward_backward(model, x, targets, *, label_smoothing=0.0, drop_rate=None, rng=None, trainable=None):
    """:func:`loss_and_grads` that also returns the training-mode logits (N, num_classes)."""
    keys = trainable_keys(model.params, trainable)
    targets = check_targets(targets, len(check_input(x)), model.arch.num_classes)
    if drop_rate is not None and not 0 <= drop_rate < 1:
        raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}; 0 turns dropout off")
    tape, logits = record_training(model, x, trainable=keys, rng=np.random.default_rng(rng), drop_rate=drop_rate)
    loss, grad_logits = cross_entropy(logits, targets, label_smoothing)
    _, grads = tape.backward(logits, grad_logits)
    dtypes = {key: model.params[key].dtype for key in keys}
    grads = {key: grads.get(key, np.zeros_like(model.params[key])).astype(dtypes[key], copy=False) for key in keys}
    return loss, grads, logits


def loss_and_grads(model, x, targets, *, label_smoothing=0.0, drop_rate=None, rng=None, trainable=None):
    """The mean cross-entropy of a batch in training mode, and its gradient for every trainable parameter.

    The forward pass is PyTorch's ``model.train()``: BatchNorm uses the batch's statistics and updates the
    model's running statistics and ``num_batches_tracked`` (so calling this changes ``model.params``'s
    buffers, as a PyTorch training forward does), and dropout drops units before the classifier.

    Parameters
    ----------
    model : :class:`ghostnp.network.model.GhostNet`, any backend (the pass runs on NumPy).
    x : ndarray, shape (N, 3, H, W), N >= 2, float32 or float64 (float64 for results exact to ~1e-12).
    targets : int array, shape (N,), class indices in [0, num_classes).
    label_smoothing : as ``F.cross_entropy``'s (0 to 1).
    drop_rate : dropout rate before the classifier; None for the model's ``drop_rate`` (0.2 by default).
    rng : a numpy Generator or seed for the dropout mask (None: fresh entropy).
    trainable : None for every parameter, or state_dict prefixes (see :func:`trainable_keys`): only those
        get gradients, and the BatchNorms outside them stay frozen in inference mode.

    Returns
    -------
    loss : float
    grads : dict[str, ndarray], one per trainable parameter, keyed and shaped like ``model.params``.
    """
    loss, grads, _ = forward_backward(
        model, x, targets, label_smoothing=label_smoothing, drop_rate=drop_rate, rng=rng, trainable=trainable
    )
    return loss, grads
