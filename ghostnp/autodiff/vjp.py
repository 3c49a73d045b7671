"""Vector-Jacobian products: one backward function per op of the op table, with PyTorch's conventions.

For an op ``out = f(x, ...)`` and the gradient ``grad_out = dL/d out`` of some scalar L, the VJP returns
``dL/dx = J_f(x)^T grad_out`` for each *activation* input (the arrays flowing through the network).
Every function has the signature::

    vjp_<op>(grad_out, out, *args, **kwargs) -> tuple of input gradients

where ``out``, ``args`` and ``kwargs`` are exactly what the forward op returned and received, and the tuple
holds one gradient per leading activation argument: ``(grad_x,)`` for unary ops and convolutions,
``(grad_a, grad_b)`` for ``add``, ``multiply`` and ``concat_channels``. :data:`VJPS` maps op names
(``ghostnp.ops.OP_NAMES``, plus the training-mode ops of :mod:`ghostnp.autodiff.training_ops`) to these
functions and their number of activation inputs; :class:`ghostnp.autodiff.record.Tape` walks them in reverse.

Ops with parameters (convolution, BatchNorm, linear) have a second function beside the first, with the
same signature, returning the gradients with respect to their parameters::

    vjp_<op>_params(grad_out, out, *args, **kwargs) -> (grad_weight, grad_bias)

(``grad_bias`` is None for a convolution without bias). :data:`PARAM_VJPS` maps op names to these and to
the positions of the parameter arguments (weight at 1, bias at 2 for every op of the network).

Kinks follow PyTorch: ReLU passes the gradient where its output is > 0 (zero at 0); hard-sigmoid
``relu6(x + 3) / 6`` passes ``1/6`` strictly inside (-3, 3) and zero at and beyond the clip points.
"""

import numpy as np

from ..ops.numpy_ops import BATCHNORM_EPS, _pair, nearest_source_index
from .training_ops import batch_normalized, channel_axes


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes along which an input of ``shape`` was broadcast: the VJP of broadcasting.

    grad : ndarray, the shape of the broadcast result, e.g. (N, C, H, W); shape : e.g. (N, C, 1, 1).
    """
    extra = grad.ndim - len(shape)
    grad = grad.sum(axis=tuple(range(extra))) if extra else grad  # leading axes the input did not have
    stretched = tuple(axis for axis, size in enumerate(shape) if size == 1 and grad.shape[axis] != 1)
    return grad.sum(axis=stretched, keepdims=True) if stretched else grad


def _through_conv_relu(grad_out, out, weight, stride, padding, groups, act):
    """What both convolution VJPs start from: the gradient through the fused ReLU (zero where the output was
    clipped), the per-axis stride and padding, and whether the convolution is pointwise (1 x 1, stride 1, no
    padding, one group: a plain matrix product)."""
    if act == "relu":
        grad_out = grad_out * (out > 0)
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    pointwise = weight.shape[2:] == (1, 1) and sh == sw == 1 and ph == pw == 0 and groups == 1
    return grad_out, (sh, sw), (ph, pw), pointwise


def vjp_conv2d(grad_out, out, x, weight, bias=None, stride=1, padding=0, groups=1, act=None):
    """Gradient of a convolution w.r.t. its input: the transposed convolution.

    grad_out : (N, C_out, H_out, W_out) -> grad_x : (N, C_in, H, W).

    Every forward tap ``out[.., y, x_] += w[o, c, i, j] * xpad[.., y*sH + i, x_*sW + j]`` sends
    ``w[o, c, i, j] * grad_out[.., y, x_]`` back to ``xpad[.., y*sH + i, x_*sW + j]``; the padding border is
    then cut off, and rows / columns the strided windows never reached keep a zero gradient.
    """
    grad_out, (sh, sw), (ph, pw), pointwise = _through_conv_relu(grad_out, out, weight, stride, padding, groups, act)
    n, c_in, h, w = x.shape
    c_out, c_in_per_group, kh, kw = weight.shape
    h_out, w_out = grad_out.shape[2:]
    weight = weight.astype(grad_out.dtype, copy=False)
    if pointwise:  # one product, W^T g
        grad_x = np.matmul(weight[:, :, 0, 0].T, grad_out.reshape(n, c_out, h * w))  # (N, C_in, H*W)
        return (grad_x.reshape(n, c_in, h, w),)
    wg = weight.reshape(groups, c_out // groups, c_in_per_group, kh, kw)  # (G, C_out/G, C_in/G, kH, kW)
    g = grad_out.reshape(n, groups, c_out // groups, h_out * w_out)  # (N, G, C_out/G, Ho*Wo)
    grad_xpad = np.zeros((n, groups, c_in_per_group, h + 2 * ph, w + 2 * pw), dtype=grad_out.dtype)
    for i in range(kh):
        for j in range(kw):
            if c_in_per_group == 1 and c_out == groups:  # depthwise: a per-channel scale
                tap = wg[None, :, :, 0, i, j, None] * g  # (N, G, 1, Ho*Wo)
            else:
                tap = np.matmul(np.swapaxes(wg[None, :, :, :, i, j], -1, -2), g)  # (N, G, C_in/G, Ho*Wo)
            window = grad_xpad[:, :, :, i : i + sh * (h_out - 1) + 1 : sh, j : j + sw * (w_out - 1) + 1 : sw]
            window += tap.reshape(n, groups, c_in_per_group, h_out, w_out)
    grad_xpad = grad_xpad.reshape(n, c_in, h + 2 * ph, w + 2 * pw)
    return (grad_xpad[:, :, ph : ph + h, pw : pw + w],)  # (N, C_in, H, W)


def vjp_conv2d_params(grad_out, out, x, weight, bias=None, stride=1, padding=0, groups=1, act=None):
    """Gradient of a convolution w.r.t. its weight and bias: the input correlated with the output gradient.

    grad_out : (N, C_out, H_out, W_out) -> grad_weight : (C_out, C_in / groups, kH, kW), grad_bias : (C_out,)
    (None without bias). Every forward tap ``out[n, o, y, x_] += w[o, c, i, j] * xpad[n, g C_in/G + c,
    y sH + i, x_ sW + j]`` gives ``grad_w[o, c, i, j] = sum over n, y, x_ of grad_out[n, o, y, x_] * xpad[...]``,
    one matrix product per tap (i, j) as in the forward op; ``grad_b[o]`` sums ``grad_out[:, o]``.
    """
    grad_out, (sh, sw), (ph, pw), pointwise = _through_conv_relu(grad_out, out, weight, stride, padding, groups, act)
    n, c_in, h, w = x.shape
    c_out, c_in_per_group, kh, kw = weight.shape
    h_out, w_out = grad_out.shape[2:]
    x = x.astype(grad_out.dtype, copy=False)
    grad_bias = None if bias is None else grad_out.sum(axis=(0, 2, 3))  # (C_out,)
    if pointwise:  # one product over N, H and W
        g = grad_out.reshape(n, c_out, h * w)  # (N, C_out, H*W)
        grad_weight = np.tensordot(g, x.reshape(n, c_in, h * w), axes=([0, 2], [0, 2]))  # (C_out, C_in)
        return grad_weight.reshape(weight.shape), grad_bias
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C_in, H + 2pH, W + 2pW)
    xg = xpad.reshape(n, groups, c_in_per_group, h + 2 * ph, w + 2 * pw)  # (N, G, C_in/G, Hp, Wp)
    g = grad_out.reshape(n, groups, c_out // groups, h_out * w_out)  # (N, G, C_out/G, Ho*Wo)
    grad_wg = np.zeros((groups, c_out // groups, c_in_per_group, kh, kw), dtype=grad_out.dtype)
    for i in range(kh):
        for j in range(kw):
            tap = xg[:, :, :, i : i + sh * (h_out - 1) + 1 : sh, j : j + sw * (w_out - 1) + 1 : sw]
            tap = tap.reshape(n, groups, c_in_per_group, h_out * w_out)  # (N, G, C_in/G, Ho*Wo)
            if c_in_per_group == 1 and c_out == groups:  # depthwise: a per-channel dot product
                grad_wg[:, 0, 0, i, j] = np.einsum("ngp,ngp->g", g[:, :, 0], tap[:, :, 0])  # (G,)
            else:
                grad_wg[:, :, :, i, j] = np.matmul(g, np.swapaxes(tap, -1, -2)).sum(axis=0)  # (G, C_out/G, C_in/G)
    return grad_wg.reshape(weight.shape), grad_bias


def vjp_batch_norm(grad_out, out, x, weight, bias, running_mean, running_var, eps=BATCHNORM_EPS):
    """Inference BatchNorm is a per-channel affine map: ``grad_x = grad_out * weight / sqrt(var + eps)``."""
    dt = grad_out.dtype
    scale = (weight.astype(dt) / np.sqrt(running_var.astype(dt) + dt.type(eps))).astype(dt)
    expand = (slice(None),) + (None,) * (x.ndim - 2)  # (C, 1, 1) for NCHW
    return (grad_out * scale[expand],)


def vjp_batch_norm_params(grad_out, out, x, weight, bias, running_mean, running_var, eps=BATCHNORM_EPS):
    """Inference BatchNorm w.r.t. weight and bias: ``grad_w[c] = sum grad_out * x_hat``, ``grad_b[c] = sum grad_out``.

    ``x_hat = (x - running_mean) / sqrt(running_var + eps)``; sums over every axis but the channels: (C,), (C,).
    """
    dt = grad_out.dtype
    axes, expand = channel_axes(x)
    inv_std = (1 / np.sqrt(running_var.astype(dt) + dt.type(eps))).astype(dt)
    x_hat = (x - running_mean.astype(dt)[expand]) * inv_std[expand]
    return (grad_out * x_hat).sum(axis=axes), grad_out.sum(axis=axes)


def vjp_batch_norm_training(grad_out, out, x, weight, bias, eps=BATCHNORM_EPS):
    """Training BatchNorm w.r.t. its input, through the batch statistics (which depend on every sample).

    With ``x_hat = (x - mean) / sqrt(var + eps)`` over the M = N H W values of a channel (biased ``var``):
    ``grad_x = weight / sqrt(var + eps) * (grad_out - (sum grad_out + x_hat * sum grad_out x_hat) / M)``,
    the mean's and the variance's share subtracted. (N, C, H, W) -> (N, C, H, W).
    """
    dt = grad_out.dtype
    axes, expand = channel_axes(x)
    x_hat, inv_std = batch_normalized(x, eps)  # (N, C, H, W), (C,)
    count = x.size // x.shape[1]  # M
    grad_bias, grad_weight = grad_out.sum(axis=axes), (grad_out * x_hat).sum(axis=axes)  # (C,), (C,)
    scale = weight.astype(dt) * inv_std  # (C,)
    return (scale[expand] * (grad_out - (grad_bias[expand] + x_hat * grad_weight[expand]) / dt.type(count)),)


def vjp_batch_norm_training_params(grad_out, out, x, weight, bias, eps=BATCHNORM_EPS):
    """Training BatchNorm w.r.t. weight and bias: as :func:`vjp_batch_norm_params`, with the batch's statistics."""
    axes, _ = channel_axes(x)
    x_hat, _ = batch_normalized(x, eps)
    return (grad_out * x_hat).sum(axis=axes), grad_out.sum(axis=axes)


def vjp_dropout(grad_out, out, x, rate, keep=None):
    """The gradient passes where the unit was kept, scaled like the forward: ``grad_out * keep / (1 - rate)``.

    Without a mask (inference) dropout is the identity, and so is its VJP. (N, F) -> (N, F).
    """
    if keep is None:
        return (grad_out,)
    return (grad_out * (keep / (1 - rate)).astype(grad_out.dtype),)


def vjp_relu(grad_out, out, x):
    """``grad_out`` where the output is positive, 0 elsewhere (PyTorch's choice at 0)."""
    return (grad_out * (out > 0),)


def vjp_sigmoid(grad_out, out, x):
    """``grad_out * s * (1 - s)`` with ``s`` the forward output."""
    return (grad_out * out * (1 - out),)


def vjp_hard_sigmoid(grad_out, out, x):
    """``grad_out / 6`` where ``0 < x + 3 < 6``, 0 at and beyond the clip points (PyTorch's relu6)."""
    shifted = x + x.dtype.type(3)
    inside = (shifted > 0) & (shifted < 6)
    return (grad_out * inside / grad_out.dtype.type(6),)


def vjp_avg_pool_2x2(grad_out, out, x):
    """Each input of a 2 x 2 window gets a quarter of its output's gradient; a dropped odd row/column, 0.

    grad_out : (N, C, H // 2, W // 2) -> grad_x : (N, C, H, W).
    """
    n, c, h, w = x.shape
    ho, wo = grad_out.shape[2:]
    quarter = grad_out / grad_out.dtype.type(4)
    grad_x = np.zeros(x.shape, dtype=grad_out.dtype)
    grad_x[:, :, : 2 * ho, : 2 * wo] = np.broadcast_to(  # (N, C, Ho, 2, Wo, 2) viewed as (N, C, 2Ho, 2Wo)
        quarter[:, :, :, None, :, None], (n, c, ho, 2, wo, 2)
    ).reshape(n, c, 2 * ho, 2 * wo)
    return (grad_x,)


def vjp_global_avg_pool(grad_out, out, x):
    """Every pixel gets ``1 / (H W)`` of its channel's gradient: (N, C, 1, 1) -> (N, C, H, W)."""
    h, w = x.shape[2:]
    return (np.broadcast_to(grad_out / grad_out.dtype.type(h * w), x.shape).copy(),)


def vjp_upsample_nearest(grad_out, out, x, size):
    """Scatter-add: each source pixel collects the gradients of all output pixels that copied it.

    grad_out : (N, C, H, W) -> grad_x : (N, C, h, w), with the legacy index map of ``upsample_nearest``
    (3 -> 7 copies rows 0, 0, 0, 1, 1, 2, 2, so row 0 of the source sums three output rows). The map never
    decreases, so the copies of a source row are a run of output rows: summed with one ``np.add.reduceat``
    per axis (rows, then columns); a source row no output copied keeps a zero gradient.
    """
    rows = nearest_source_index(x.shape[2], size[0])
    cols = nearest_source_index(x.shape[3], size[1])
    grad_x = _sum_runs(grad_out, rows, x.shape[2], axis=2)  # (N, C, h, W)
    return (_sum_runs(grad_x, cols, x.shape[3], axis=3),)  # (N, C, h, w)


def _sum_runs(grad, index, size, axis):
    """Sum ``grad`` along ``axis`` over the runs of a non-decreasing index map into ``size`` entries."""
    starts = np.flatnonzero(np.diff(index, prepend=-1))  # where each run of equal source indices begins
    summed = np.add.reduceat(grad, starts, axis=axis)
    shape = list(grad.shape)
    shape[axis] = size
    result = np.zeros(shape, dtype=grad.dtype)
    where = [slice(None)] * grad.ndim
    where[axis] = index[starts]
    result[tuple(where)] = summed
    return result


def vjp_linear(grad_out, out, x, weight, bias=None):
    """``grad_x = grad_out @ weight``: (N, out) -> (N, in)."""
    return (grad_out @ weight.astype(grad_out.dtype, copy=False),)


def vjp_linear_params(grad_out, out, x, weight, bias=None):
    """``grad_weight = grad_out.T @ x`` (out, in) and ``grad_bias = grad_out`` summed over the batch (out,)."""
    return grad_out.T @ x.astype(grad_out.dtype, copy=False), None if bias is None else grad_out.sum(axis=0)


def vjp_add(grad_out, out, a, b):
    """Both summands receive the gradient (summed over any axes they were broadcast along)."""
    return unbroadcast(grad_out, a.shape), unbroadcast(grad_out, b.shape)


def vjp_multiply(grad_out, out, a, b):
    """Product rule, with broadcasting undone: a gate (N, C, 1, 1) sums its gradient over H and W."""
    return unbroadcast(grad_out * b, a.shape), unbroadcast(grad_out * a, b.shape)


def vjp_concat_channels(grad_out, out, a, b):
    """Split the gradient at channel ``C_a``: (N, C_a + C_b, H, W) -> (N, C_a, H, W), (N, C_b, H, W)."""
    return grad_out[:, : a.shape[1]], grad_out[:, a.shape[1] :]


def vjp_slice_channels(grad_out, out, x, stop):
    """``out = x[:, :stop]``: the kept channels get the gradient, the dropped ones zero."""
    grad_x = np.zeros(x.shape, dtype=grad_out.dtype)
    grad_x[:, : out.shape[1]] = grad_out
    return (grad_x,)


def vjp_flatten(grad_out, out, x):
    """``out = x.reshape(N, -1)``: the gradient reshaped back to ``x.shape``."""
    return (grad_out.reshape(x.shape),)


# op name -> (its VJP, how many leading arguments are activations that receive a gradient)
VJPS = {
    "conv2d": (vjp_conv2d, 1),
    "batch_norm": (vjp_batch_norm, 1),
    "batch_norm_training": (vjp_batch_norm_training, 1),
    "dropout": (vjp_dropout, 1),
    "relu": (vjp_relu, 1),
    "sigmoid": (vjp_sigmoid, 1),
    "hard_sigmoid": (vjp_hard_sigmoid, 1),
    "avg_pool_2x2": (vjp_avg_pool_2x2, 1),
    "global_avg_pool": (vjp_global_avg_pool, 1),
    "upsample_nearest": (vjp_upsample_nearest, 1),
    "linear": (vjp_linear, 1),
    "add": (vjp_add, 2),
    "multiply": (vjp_multiply, 2),
    "concat_channels": (vjp_concat_channels, 2),
    "slice_channels": (vjp_slice_channels, 1),
    "flatten": (vjp_flatten, 1),
}

# op name -> (its parameter VJP, the positions of the parameter arguments it returns gradients for)
PARAM_VJPS = {
    "conv2d": (vjp_conv2d_params, (1, 2)),
    "batch_norm": (vjp_batch_norm_params, (1, 2)),
    "batch_norm_training": (vjp_batch_norm_training_params, (1, 2)),
    "linear": (vjp_linear_params, (1, 2)),
}
