"""The reference op table: vectorised NumPy with PyTorch's exact semantics.

Activations are NCHW, convolution weights OIHW, as in ``torch.nn.functional``. Every op keeps the dtype
of its input (float32 in, float32 out; float64 in, float64 out). Each op is one screen; its loop nest is
written as pseudo-code in the docstring, and the Numba table (``numba_ops``) implements the same
signatures with those loops made real.
"""

import numpy as np

BATCHNORM_EPS = 1e-5


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1, act=None):
    """2-D cross-correlation, as ``torch.nn.functional.conv2d`` (dilation 1, zero padding).

    Parameters
    ----------
    x : ndarray, shape (N, C_in, H, W)
    weight : ndarray, shape (C_out, C_in / groups, kH, kW)
    bias : ndarray, shape (C_out,), optional
    stride, padding : int or (int, int), per axis (H, W)
    groups : int, divides C_in and C_out; groups == C_in is a depthwise convolution.
    act : None or "relu", an activation applied to the result (fused in the Numba table).

    Returns
    -------
    ndarray, shape (N, C_out, H_out, W_out), H_out = (H + 2 pH - kH) // sH + 1 (likewise W).

    Loop nest::

        for n, o, y, x_, c, i, j:   # c over the C_in / groups inputs of o's group g = o // (C_out / groups)
            out[n, o, y, x_] += w[o, c, i, j] * xpad[n, g * C_in / groups + c, y * sH + i, x_ * sW + j]

    Here the pixel loops are vectorised: one matrix product per kernel tap (i, j).
    """
    n, c_in, h, w = x.shape
    c_out, c_in_per_group, kh, kw = weight.shape
    if c_in != c_in_per_group * groups or c_out % groups:
        raise ValueError(
            f"conv2d: weight {weight.shape} with groups={groups} needs {c_in_per_group * groups} input channels "
            f"and an output count divisible by {groups}; the input has shape {x.shape}"
        )
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    h_out, w_out = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    weight = weight.astype(x.dtype, copy=False)
    if kh == kw == 1 and sh == sw == 1 and ph == pw == 0 and groups == 1:
        out = np.matmul(weight[:, :, 0, 0], x.reshape(n, c_in, h * w))  # (N, C_out, H*W)
        out = out.reshape(n, c_out, h, w)
    else:
        xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C_in, H + 2pH, W + 2pW)
        xg = xpad.reshape(n, groups, c_in_per_group, h + 2 * ph, w + 2 * pw)  # (N, G, C_in/G, Hp, Wp)
        wg = weight.reshape(groups, c_out // groups, c_in_per_group, kh, kw)  # (G, C_out/G, C_in/G, kH, kW)
        out = np.zeros((n, groups, c_out // groups, h_out * w_out), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                tap = xg[:, :, :, i : i + sh * (h_out - 1) + 1 : sh, j : j + sw * (w_out - 1) + 1 : sw]
                tap = tap.reshape(n, groups, c_in_per_group, h_out * w_out)  # (N, G, C_in/G, Ho*Wo)
                if c_in_per_group == 1 and c_out == groups:  # depthwise: a per-channel scale
                    out += wg[None, :, :, 0, i, j, None] * tap
                else:
                    out += np.matmul(wg[None, :, :, :, i, j], tap)  # (N, G, C_out/G, Ho*Wo)
        out = out.reshape(n, c_out, h_out, w_out)
    if bias is not None:
        out += bias.astype(x.dtype, copy=False)[None, :, None, None]
    if act == "relu":
        out = relu(out)
    elif act is not None:
        raise ValueError(f"conv2d: unknown activation {act!r}; expected None or 'relu'")
    return out


def batch_norm(x, weight, bias, running_mean, running_var, eps=BATCHNORM_EPS):
    """Inference BatchNorm over the channel axis.

    ``y[n, c, h, w] = (x[n, c, h, w] - running_mean[c]) / sqrt(running_var[c] + eps) * weight[c] + bias[c]``

    x : ndarray, shape (N, C, H, W) or (N, C); returns the same shape.
    """
    dt = x.dtype
    scale = (weight.astype(dt) / np.sqrt(running_var.astype(dt) + dt.type(eps))).astype(dt)
    shift = (bias.astype(dt) - running_mean.astype(dt) * scale).astype(dt)
    expand = (slice(None),) + (None,) * (x.ndim - 2)  # (C, 1, 1) for NCHW
    return x * scale[expand] + shift[expand]


def relu(x):
    """``max(x, 0)`` element-wise; any shape."""
    return np.maximum(x, x.dtype.type(0))


def sigmoid(x):
    """The logistic function ``1 / (1 + exp(-x))`` element-wise, without overflow for large |x|."""
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def hard_sigmoid(x):
    """``clip(x + 3, 0, 6) / 6`` element-wise: the SE gate (``F.relu6(x + 3) / 6``)."""
    return np.clip(x + x.dtype.type(3), 0, 6) / x.dtype.type(6)


def avg_pool_2x2(x):
    """2 x 2 average pooling, stride 2, floor mode: an odd last row or column is dropped.

    x : ndarray, shape (N, C, H, W) with H, W >= 2; returns shape (N, C, H // 2, W // 2).

    Loop nest: ``out[n, c, y, x_] = mean(x[n, c, 2y:2y+2, 2x_:2x_+2])``.
    """
    n, c, h, w = x.shape
    if h < 2 or w < 2:
        raise ValueError(
            f"2 x 2 average pooling needs a feature map of at least 2 x 2, got {h} x {w}; "
            "make the input image larger (H, W >= 33 for GhostNetV2)"
        )
    ho, wo = h // 2, w // 2
    blocks = x[:, :, : 2 * ho, : 2 * wo].reshape(n, c, ho, 2, wo, 2)  # (N, C, Ho, 2, Wo, 2)
    return (blocks.sum(axis=(3, 5)) / x.dtype.type(4)).astype(x.dtype, copy=False)  # (N, C, H/2, W/2)


def global_avg_pool(x):
    """Mean over H and W: (N, C, H, W) -> (N, C, 1, 1)."""
    return x.mean(axis=(2, 3), keepdims=True, dtype=x.dtype)


def nearest_source_index(in_size, out_size):
    """Source index of every output position under PyTorch's legacy 'nearest' rule.

    ``src = min(floor(dst * scale), in_size - 1)`` with ``scale = in_size / out_size`` and the product taken
    in float32, as ATen does. Not 'nearest-exact' and not ``np.repeat``: 3 -> 7 gives 0, 0, 0, 1, 1, 2, 2.
    ATen's float64 kernel rounds some large ratios differently (2 -> 164 rows, row 82); the two rules agree
    for every gate size of the network (h // 2 -> h up to 1024 at least), and ghostnp always uses this one.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(src, in_size - 1)


def upsample_nearest(x, size):
    """Nearest upsampling with PyTorch's legacy rule: ``F.interpolate(x, size, mode='nearest')``.

    x : ndarray, shape (N, C, h, w); size : (H, W); returns shape (N, C, H, W).
    ``out[n, c, y, x_] = x[n, c, src_h[y], src_w[x_]]`` with ``src`` from :func:`nearest_source_index`.
    """
    rows = nearest_source_index(x.shape[2], size[0])
    cols = nearest_source_index(x.shape[3], size[1])
    return x[:, :, rows[:, None], cols[None, :]]  # (N, C, H, W)


def linear(x, weight, bias=None):
    """``x @ weight.T + bias``: x (N, in), weight (out, in), bias (out,) -> (N, out)."""
    out = x @ weight.astype(x.dtype, copy=False).T
    if bias is not None:
        out += bias.astype(x.dtype, copy=False)
    return out


def add(a, b):
    """Element-wise sum of two same-shaped arrays (the residual connection)."""
    return a + b


def multiply(a, b):
    """Element-wise product with broadcasting (gates: (N, C, H, W) * (N, C, 1, 1) or (N, C, H, W))."""
    return a * b


def concat_channels(a, b):
    """Concatenate along the channel axis: (N, Ca, H, W), (N, Cb, H, W) -> (N, Ca + Cb, H, W)."""
    return np.concatenate([a, b], axis=1)


def slice_channels(x, stop):
    """The first ``stop`` channels: (N, C, H, W) -> (N, stop, H, W) (a view, as ``x[:, :stop]``)."""
    return x[:, :stop]


def flatten(x):
    """Keep the batch axis, flatten the rest: (N, C, 1, 1) -> (N, C)."""
    return x.reshape(x.shape[0], -1)


def dropout(x, rate, keep=None):
    """Dropout, as ``F.dropout``: the identity at inference (``keep=None``); with a mask, kept units rescaled.

    x : ndarray, any shape, e.g. (N, 1280) before the classifier; rate : the probability of dropping a unit.
    keep : None, or an array of x's shape holding 1 for the kept units and 0 for the dropped ones (a
        training table draws it). Returns ``x`` itself without a mask, else ``x * keep / (1 - rate)``.
    """
    if keep is None:
        return x
    return x * (keep / (1 - rate)).astype(x.dtype)
