"""The op a training table runs instead of inference BatchNorm: normalising with the batch's statistics.

PyTorch's ``model.train()`` changes what ``F.batch_norm`` computes: each channel is normalised with the mean
and the *biased* variance of the current batch (over N, H and W), and the running statistics are updated
from them (see :class:`ghostnp.autodiff.record.TrainingTape`). Inference ops never call this; only the
recording table of a training step does, so the op table of the backends stays what inference needs.
"""

import numpy as np

from ..ops.numpy_ops import BATCHNORM_EPS


def channel_axes(x):
    """The axes BatchNorm reduces over, and the index that broadcasts a (C,) vector against ``x``.

    x : (N, C, H, W) -> ((0, 2, 3), (slice(None), None, None)); x : (N, C) -> ((0,), (slice(None),)).
    """
    return (0, *range(2, x.ndim)), (slice(None),) + (None,) * (x.ndim - 2)


def batch_statistics(x):
    """Each channel's mean and biased variance over the batch: (N, C, H, W) -> (C,), (C,), in x's dtype."""
    axes, expand = channel_axes(x)
    mean = x.mean(axis=axes, dtype=x.dtype)
    centred = x - mean[expand]
    return mean, (centred * centred).mean(axis=axes, dtype=x.dtype)


def batch_normalized(x, eps=BATCHNORM_EPS):
    """``x_hat = (x - mean) / sqrt(var + eps)`` with the batch's statistics, and ``1 / sqrt(var + eps)`` (C,).

    What both VJPs of training BatchNorm start from. x : (N, C, H, W) or (N, C); x_hat has x's shape.
    """
    _, expand = channel_axes(x)
    mean, var = batch_statistics(x)
    inv_std = (1 / np.sqrt(var + x.dtype.type(eps))).astype(x.dtype)  # (C,)
    return (x - mean[expand]) * inv_std[expand], inv_std


def batch_norm_training(x, weight, bias, eps=BATCHNORM_EPS):
    """Training-mode BatchNorm, as ``F.batch_norm(x, ..., training=True)`` computes its output.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with ``mean``, ``var`` of :func:`batch_statistics`.

    x : ndarray, shape (N, C, H, W) or (N, C), with more than one value per channel; returns the same shape.
    """
    count = x.size // x.shape[1]
    if count < 2:
        raise ValueError(
            f"BatchNorm in training mode needs more than one value per channel, got an input of shape {x.shape}; "
            "train on batches of at least 2 images"
        )
    dt = x.dtype
    axes, expand = channel_axes(x)
    mean, var = batch_statistics(x)
    scale = (weight.astype(dt) / np.sqrt(var + dt.type(eps))).astype(dt)  # (C,)
    return (x - mean[expand]) * scale[expand] + bias.astype(dt)[expand]
