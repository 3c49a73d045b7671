"""The reference op table: vectorised NumPy with PyTorch's exact semantics.

Activations are NCHW, convolution weights OIHW, as in ``torch.nn.functional``. Every op keeps the dtype
of its input (float32 in, float32 out; float64 in, float64 out). Each op is one screen; its loop nest is
written as pseudo-code in the docstring, and the Numba table (``numba_ops``) implements the same
signatures with those loops made real.
"""

import sys

import numpy as np

from . import fused

BATCHNORM_EPS = 1e-5
SMALL_PLANE = 1024  # depthwise: planes of at most this many pixels are run across channels
CACHE_FLOATS = 1 << 17  # depthwise: numbers per block of large planes (512 KiB in float32, in L2)
TINY_MAP = 7 * 7  # depthwise at stride 1: maps of at most this many pixels are run channels last


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

    Here the pixel loops are vectorised: dense and grouped convolutions are one matrix product per group
    over the taps gathered side by side (im2col); depthwise ones one per-channel multiply-add per tap over
    the whole batch, accumulated in place.
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
    elif c_in_per_group == 1 and c_out == groups:
        depthwise = _depthwise_channels_last if sh == sw == 1 and h_out * w_out <= TINY_MAP else _depthwise
        out = depthwise(x, weight[:, 0], (sh, sw), (ph, pw), (h_out, w_out))  # (N, C, H_out, W_out)
    else:
        xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C_in, H + 2pH, W + 2pW)
        xg = xpad.reshape(n, groups, c_in_per_group, h + 2 * ph, w + 2 * pw)  # (N, G, C_in/G, Hp, Wp)
        wg = weight.reshape(groups, c_out // groups, c_in_per_group * kh * kw)  # (G, C_out/G, C_in/G kH kW)
        taps = [
            xg[:, :, :, i : i + sh * (h_out - 1) + 1 : sh, j : j + sw * (w_out - 1) + 1 : sw]  # (N, G, C_in/G, Ho, Wo)
            for i in range(kh)
            for j in range(kw)
        ]
        columns = np.stack(taps, axis=3).reshape(n, groups, -1, h_out * w_out)  # (N, G, C_in/G kH kW, Ho*Wo)
        out = np.matmul(wg, columns).reshape(n, c_out, h_out, w_out)  # one product per group (im2col)
    if bias is not None:
        out += bias.astype(x.dtype, copy=False)[None, :, None, None]
    if act == "relu":
        np.maximum(out, np.zeros_like(out), out=out)  # in place: ``out`` is this op's own array (see relu)
    elif act is not None:
        raise ValueError(f"conv2d: unknown activation {act!r}; expected None or 'relu'")
    return out


def _depthwise(x, weight, stride, padding, out_hw):
    """Depthwise cross-correlation: x (N, C, H, W), weight (C, kH, kW) -> (N, C, H_out, W_out), no bias.

    The zero-padded input is split into its sH x sW stride phases, ``phase[a, b] = xpad[..., a::sH, b::sW]``
    (one phase at stride 1), each a plane of Hq x Wq flattened. Tap (i, j) then reads phase
    (i % sH, j % sW) at ``(y + i // sH) * Wq + x_ + j // sW`` for output pixel (y, x_): one offset for every
    pixel, so each tap is a per-channel scale of a *contiguous slice*, accumulated in place. The
    accumulator is Wq wide and its surplus columns (and the spare row) are dropped at the end.
    Large planes go a few channels at a time (they stay in cache); on small ones (7 x 7, 14 x 14) a
    channel's row is too short for NumPy's loops, so the slices run across all channels at once, each
    tap's weight repeated over its channel's plane.
    """
    (n, c, h, w), (kh, kw) = x.shape, weight.shape[1:]
    (sh, sw), (ph, pw), (h_out, w_out) = stride, padding, out_hw
    hq, wq = -(-(h + 2 * ph) // sh) + 1, -(-(w + 2 * pw) // sw)  # a phase plane: rows (+ 1 spare), columns
    phases = np.zeros((sh, sw, n, c, hq, wq), dtype=x.dtype)  # phases[a, b] = xpad[:, :, a::sH, b::sW]
    for a in range(sh):
        for b in range(sw):
            r0, q0 = -(-(ph - a) // sh), -(-(pw - b) // sw)  # the phase's first row and column inside x
            src = x[:, :, a + sh * r0 - ph :: sh, b + sw * q0 - pw :: sw]  # (N, C, ~H/sH, ~W/sW)
            phases[a, b, :, :, r0 : r0 + src.shape[2], q0 : q0 + src.shape[3]] = src
    plane = hq * wq
    flat = plane <= SMALL_PLANE  # one row of C planes per image, else one row per channel
    phases = phases.reshape(sh, sw, n, 1 if flat else c, -1)  # (sH, sW, N, rows, row length)
    acc = np.empty(phases.shape[2:], dtype=x.dtype)  # (N, rows, row length)
    length = acc.shape[2] - ((kh - 1) // sh * wq + (kw - 1) // sw)  # every slice stays inside its row
    if flat:  # each tap's weight repeated over its channel's plane: one multiply-add per tap over all channels
        repeated = np.repeat(weight.reshape(c, kh * kw).T, plane, axis=1)[:, :length]  # (kH * kW, length)
        total, product = acc[:, 0, :length], np.empty((n, length), dtype=x.dtype)  # (N, length) each
        for tap in range(kh * kw):
            i, j = divmod(tap, kw)
            start = (i // sh) * wq + j // sw
            src = phases[i % sh, j % sw, :, 0, start : start + length]  # (N, length)
            np.multiply(repeated[tap], src, out=product if tap else total)
            if tap:
                total += product
        return acc.reshape(n, c, hq, wq)[:, :, :h_out, :w_out]  # (N, C, H_out, W_out)
    block = max(1, CACHE_FLOATS // (n * plane))  # rows (channels) at a time, in cache
    product = np.empty((n, block, length), dtype=x.dtype)
    for r in range(0, c, block):
        rows = slice(r, r + block)
        for i in range(kh):
            for j in range(kw):
                start = (i // sh) * wq + j // sw
                src = phases[i % sh, j % sw, :, rows, start : start + length]  # (N, rows, length)
                if i == j == 0:
                    np.multiply(weight[rows, i, j, None], src, out=acc[:, rows, :length])
                else:
                    np.multiply(weight[rows, i, j, None], src, out=product[:, : src.shape[1]])
                    acc[:, rows, :length] += product[:, : src.shape[1]]
    return acc.reshape(n, c, hq, wq)[:, :, :h_out, :w_out]  # (N, C, H_out, W_out)


def _depthwise_channels_last(x, weight, stride, padding, out_hw):
    """:func:`_depthwise` at stride 1 on tiny maps (7 x 7 and 3 x 3, hundreds of channels), channels last.

    Each tap is one multiply-add of the shifted (N, H_out, W_out, C) window by the tap's C weights: NumPy's
    inner loop runs over the channels (contiguous) instead of a 9- or 49-pixel plane. Returns the result
    as an (N, C, H_out, W_out) view of that buffer; the ops after it (BatchNorm, ...) keep its layout.
    """
    (n, c, h, w), (kh, kw) = x.shape, weight.shape[1:]
    (ph, pw), (h_out, w_out) = padding, out_hw
    xpad = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x.dtype)  # (N, Hp, Wp, C)
    xpad[:, ph : ph + h, pw : pw + w] = x.transpose(0, 2, 3, 1)
    acc, product = (np.empty((n, h_out, w_out, c), dtype=x.dtype) for _ in range(2))
    for i in range(kh):
        for j in range(kw):
            np.multiply(xpad[:, i : i + h_out, j : j + w_out], weight[:, i, j], out=product if i or j else acc)
            if i or j:
                acc += product
    return acc.transpose(0, 3, 1, 2)  # (N, C, H_out, W_out)


def batch_norm(x, weight, bias, running_mean, running_var, eps=BATCHNORM_EPS):
    """Inference BatchNorm over the channel axis.

    ``y[n, c, h, w] = (x[n, c, h, w] - running_mean[c]) / sqrt(running_var[c] + eps) * weight[c] + bias[c]``

    x : ndarray, shape (N, C, H, W) or (N, C); returns the same shape.
    """
    dt = x.dtype
    scale = weight.astype(dt, copy=False) / np.sqrt(running_var.astype(dt, copy=False) + dt.type(eps))
    shift = bias.astype(dt, copy=False) - running_mean.astype(dt, copy=False) * scale
    expand = (slice(None),) + (None,) * (x.ndim - 2)  # (C, 1, 1) for NCHW
    out = x * scale[expand]  # one scale-and-shift: a new array, then the shift in place
    out += shift[expand]
    return out


def relu(x):
    """``max(x, 0)`` element-wise; any shape.

    Against an array of zeros, not the scalar 0: NumPy's ``maximum`` with a scalar runs a loop that is not
    vectorised, 2.8 x slower (166 vs 58 us on 24 x 112 x 112; ``np.zeros`` itself costs next to nothing).
    """
    return np.maximum(x, np.zeros_like(x))


def sigmoid(x):
    """The logistic function ``1 / (1 + exp(-x))`` element-wise, as PyTorch computes it; any shape.

    ``exp(-x)`` overflows to inf below x = -88 (float32) and gives ``1 / (1 + inf) = 0``, the right limit,
    so the overflow is expected and silenced. Four passes over one new array (2.4 x faster than the
    ``exp(-|x|)`` form, which needs a branch per element).
    """
    with np.errstate(over="ignore"):
        out = np.negative(x)
        np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)


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
    top, bottom = x[:, :, 0 : 2 * ho : 2], x[:, :, 1 : 2 * ho : 2]  # even and odd rows, (N, C, H/2, W)
    out = top[..., 0 : 2 * wo : 2] + top[..., 1 : 2 * wo : 2]  # (N, C, H/2, W/2)
    out += bottom[..., 0 : 2 * wo : 2]
    out += bottom[..., 1 : 2 * wo : 2]
    out /= x.dtype.type(4)
    return out


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
    return x[:, :, rows[:, None], cols]  # (N, C, H, W): one gather, the row index broadcast against the column


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


def prepare_params(params):
    """The parameters as this table runs them: as they are (a fast table may change their memory layout)."""
    return params


# --- fused ops: the reference compositions of ghostnp.ops.fused, run on this table -----------------------

_THIS_TABLE = sys.modules[__name__]


def ghost_module(x, primary_weight, primary_bias, cheap_weight, cheap_bias, out_chs, act=None, gate=None):
    """The Ghost module with BatchNorm folded, [gated]: (N, C_in, H, W) -> (N, out_chs, H, W).

    Runs :func:`ghostnp.ops.fused.ghost_module` on this table: 1 x 1 conv, depthwise 3 x 3, concatenate,
    slice, [multiply by the upsampled DFC gate].
    """
    return fused.ghost_module(
        _THIS_TABLE, x, primary_weight, primary_bias, cheap_weight, cheap_bias, out_chs, act, gate
    )


def dfc_gate(x, reduce_weight, reduce_bias, row_weight, row_bias, col_weight, col_bias):
    """The half-resolution DFC gate with BatchNorm folded: (N, C_in, H, W) -> (N, C, H // 2, W // 2).

    Runs :func:`ghostnp.ops.fused.dfc_gate` on this table: pool, 1 x 1, (1, 5), (5, 1), sigmoid.
    """
    return fused.dfc_gate(_THIS_TABLE, x, reduce_weight, reduce_bias, row_weight, row_bias, col_weight, col_bias)


def squeeze_excite(x, reduce_weight, reduce_bias, expand_weight, expand_bias):
    """The squeeze-and-excite channel gate: (N, C, H, W) -> (N, C, H, W).

    Runs :func:`ghostnp.ops.fused.squeeze_excite` on this table: mean, 1 x 1, ReLU, 1 x 1, hard sigmoid, multiply.
    """
    return fused.squeeze_excite(_THIS_TABLE, x, reduce_weight, reduce_bias, expand_weight, expand_bias)
