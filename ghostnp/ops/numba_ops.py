"""The fast op table: the signatures of ``numpy_ops``, with the hot loops compiled by Numba.

What runs where (measured on ghostnetv2_100, see ``benchmarks/README.md``):

- **Memory layout.** Every op whose output map has at most ``CHANNELS_LAST_PIXELS`` pixels (14 x 14: the
  last two stages) writes an (N, H, W, C) buffer and returns it as an (N, C, H, W) view, and every op
  reads such a view without a copy. The values, shapes and semantics are the reference's: only the memory
  order differs, so the loops of those ops run over the channels of a pixel (hundreds, contiguous) rather
  than over a channel's plane of 49 or 196 pixels, and no transposes sit between them. NumPy's own ops
  (``add``, ``multiply``, ...) keep the layout of their inputs. ``prepare_params`` lays the weights out
  once for these loops and products.
- ``conv2d`` with a 1 x 1 kernel, stride 1, no padding, one group (the pointwise convolutions) is a
  matrix product through NumPy's BLAS, which beats any loop we can write; Numba only adds the bias and the
  ReLU in the same pass (``bias_act``, ``bias_act_channels_last``). Depthwise convolutions (3 x 3 / 5 x 5 at
  stride 1 and 2) run ``depthwise_conv2d``, one channel at a time in cache, or on small output maps
  ``depthwise_conv2d_channels_last``; dense ones (the 3 x 3 stride-2 stem) are ``im2col`` and one matrix
  product; grouped ones that are neither run the direct loop ``conv2d_direct``.
- The fused ops: ``ghost_module`` is one matrix product written straight into the module's output buffer,
  then one pass per channel (bias, ReLU, the cheap depthwise 3 x 3 into the other half of the buffer, the
  DFC gate upsampled on the fly and multiplied in): no concatenation, no slice, no upsampled gate in
  memory; on small maps the same steps run channels last, one pixel's channels at a time.
  ``dfc_gate`` is the pooling kernel, one matrix product, one pass per channel (or per pixel on small
  maps) for the (1, 5) and (5, 1), then the sigmoid. ``squeeze_excite`` pools and gates small maps
  with two Numba loops over each pixel's channels and runs the rest on (N, C) rows.
- ``avg_pool_2x2`` and ``upsample_nearest`` are Numba loops; ``sigmoid`` is one Numba loop for float32
  (``exp`` as a polynomial) and takes float64's ``exp`` from NumPy.
- Every other op in ``OP_NAMES`` is the reference function itself (re-exported at the end of this file).

Inputs are made C-contiguous and weights cast to the input's dtype before a kernel is called, so each
kernel compiles for at most two signatures (float32, float64), cached on disk (``cache=True``).
"""

import functools

import numpy as np

from . import numba_kernels, numpy_ops
from .names import FUSED_OP_NAMES, OP_NAMES
from .numpy_ops import _pair, nearest_source_index

ACCELERATED = ("conv2d", "sigmoid", "avg_pool_2x2", "upsample_nearest", *FUSED_OP_NAMES)
__all__ = list(OP_NAMES + FUSED_OP_NAMES)
CHANNELS_LAST_PIXELS = 14 * 14  # ops whose output map is this small or smaller return channels-last buffers
NO_GATE = {np.dtype(np.float32): np.zeros((0, 0, 0, 0), np.float32), np.dtype(np.float64): np.zeros((0, 0, 0, 0))}


@functools.lru_cache(maxsize=1024)
def source_index(in_size, out_size):
    """``nearest_source_index``, computed once per pair of sizes (a few microseconds a call, twice per gated
    module). The kernels only read it; ``source_index(1, n)`` is n zeros (a module without gate)."""
    return nearest_source_index(in_size, out_size)


def channels_last(x, dtype=None):
    """``x`` (N, C, H, W) as a C-contiguous (N, H, W, C) array: no copy when ``x`` is a view of one."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1), dtype=dtype)


def as_nchw(x):
    """An (N, H, W, C) buffer as the (N, C, H, W) array the table's callers see (a view, no copy)."""
    return x.transpose(0, 3, 1, 2)


def prepare_params(params):
    """The parameters with the memory layout this table's kernels read, every value and shape unchanged.

    Pointwise weights (C_out, C_in, 1, 1) become views of (C_in, C_out) buffers, so that a channels-last
    product ``x @ W^T`` hands BLAS a contiguous matrix (a strided one ran up to 5 x slower on the 7 x 7
    maps); depthwise weights (C, 1, kH, kW) become views of (kH, kW, C) buffers, the taps the channels-last
    kernels read. ``GhostNet`` calls this once per set of parameters (``refresh``); any other array passes as it is.
    """
    prepared = {}
    for key, value in params.items():
        if value.ndim == 4 and value.shape[2:] == (1, 1):  # (C_out, C_in, 1, 1) over (C_in, C_out)
            value = np.ascontiguousarray(value[:, :, 0, 0].T).T[:, :, None, None]
        elif value.ndim == 4 and value.shape[1] == 1:  # (C, 1, kH, kW) over (kH, kW, C)
            value = np.ascontiguousarray(value[:, 0].transpose(1, 2, 0)).transpose(2, 0, 1)[:, None]
        prepared[key] = value
    return prepared


def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1, act=None):
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``; see ``numpy_ops.conv2d``.

    x : ndarray, shape (N, C_in, H, W); weight : (C_out, C_in / groups, kH, kW); bias : (C_out,) or None;
    stride, padding : int or (int, int); act : None or "relu" (fused). Returns (N, C_out, H_out, W_out).
    """
    if act not in (None, "relu"):
        raise ValueError(f"conv2d: unknown activation {act!r}; expected None or 'relu'")
    n, c_in, h, w = x.shape
    c_out, c_in_per_group, kh, kw = weight.shape
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    if c_in != c_in_per_group * groups or c_out % groups:
        raise ValueError(
            f"conv2d: weight of shape {weight.shape} with groups={groups} does not fit an input with "
            f"{c_in} channels; expected C_in == groups * weight.shape[1] and C_out divisible by groups"
        )
    h_out, w_out = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    dtype = x.dtype
    weight = weight.astype(dtype, copy=False)  # in the layout ``prepare_params`` gave it; each path below copies
    bias = np.zeros(c_out, dtype) if bias is None else np.ascontiguousarray(bias, dtype=dtype)
    small = h_out * w_out <= CHANNELS_LAST_PIXELS
    if kh == kw == 1 and sh == sw == 1 and ph == pw == 0 and groups == 1 and small:  # (N*H*W, C_in) @ W^T
        out = np.matmul(channels_last(x).reshape(n * h * w, c_in), weight[:, :, 0, 0].T)  # (N*H*W, C_out), BLAS
        numba_kernels.bias_act_channels_last(out, bias, act == "relu")
        return as_nchw(out.reshape(n, h, w, c_out))
    if kh == kw == 1 and sh == sw == 1 and ph == pw == 0 and groups == 1:
        out = np.matmul(weight[:, :, 0, 0], np.ascontiguousarray(x).reshape(n, c_in, h * w))  # (N, C_out, H*W)
        numba_kernels.bias_act(out, bias, act == "relu")
        return out.reshape(n, c_out, h, w)
    if c_in_per_group == 1 and c_out == groups and small:
        taps = np.ascontiguousarray(weight[:, 0].transpose(1, 2, 0))  # (kH, kW, C): no copy after prepare_params
        out = np.empty((n, h_out, w_out, c_out), dtype=dtype)
        numba_kernels.depthwise_conv2d_channels_last(channels_last(x), taps, bias, sh, sw, ph, pw, act == "relu", out)
        return as_nchw(out)
    x, weight = np.ascontiguousarray(x), np.ascontiguousarray(weight)
    if groups == 1:  # dense (the stem): the taps side by side (im2col), one matrix product per image
        columns = np.empty((n, c_in * kh * kw, h_out * w_out), dtype=dtype)
        numba_kernels.im2col(x, kh, kw, sh, sw, ph, pw, columns)
        out = np.matmul(weight.reshape(c_out, c_in * kh * kw), columns)  # (N, C_out, H_out * W_out), BLAS
        numba_kernels.bias_act(out, bias, act == "relu")
        return out.reshape(n, c_out, h_out, w_out)
    out = np.empty((n, c_out, h_out, w_out), dtype=dtype)
    if c_in_per_group == 1 and c_out == groups:
        numba_kernels.depthwise_conv2d(x, weight, bias, sh, sw, ph, pw, act == "relu", out)
    else:
        numba_kernels.conv2d_direct(x, weight, bias, sh, sw, ph, pw, act == "relu", out)
    return out


def sigmoid(x):
    """The logistic function ``1 / (1 + exp(-x))`` element-wise, without overflow; any shape."""
    x = np.ascontiguousarray(x)
    if x.dtype == np.float32:  # one pass, exp as a polynomial (2.4 x faster than NumPy's exp and a pass)
        out = np.empty_like(x)
        numba_kernels.logistic_float32(x, out)
        return out
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    out = np.empty_like(e)  # not in place: a loop whose output overlaps its inputs is not vectorised (2 x slower)
    numba_kernels.logistic_from_exp(x, e, out)
    return out


def avg_pool_2x2(x):
    """2 x 2 average pooling, stride 2, floor mode: (N, C, H, W) -> (N, C, H // 2, W // 2)."""
    n, c, h, w = x.shape
    if h < 2 or w < 2:
        raise ValueError(
            f"2 x 2 average pooling needs a feature map of at least 2 x 2, got {h} x {w}; "
            "make the input image larger (H, W >= 33 for GhostNetV2)"
        )
    if (h // 2) * (w // 2) <= CHANNELS_LAST_PIXELS:
        out = np.empty((n, h // 2, w // 2, c), dtype=x.dtype)
        numba_kernels.avg_pool_2x2_channels_last(channels_last(x), out)
        return as_nchw(out)
    x = np.ascontiguousarray(x)
    out = np.empty((n, c, h // 2, w // 2), dtype=x.dtype)
    numba_kernels.avg_pool_2x2(x, out)
    return out


def upsample_nearest(x, size):
    """Nearest upsampling with PyTorch's legacy rule: (N, C, h, w) -> (N, C, H, W), ``size = (H, W)``."""
    rows, cols = source_index(x.shape[2], size[0]), source_index(x.shape[3], size[1])
    x = np.ascontiguousarray(x)
    out = np.empty(x.shape[:2] + (size[0], size[1]), dtype=x.dtype)
    numba_kernels.upsample_nearest(x, rows, cols, out)
    return out


def ghost_module(x, primary_weight, primary_bias, cheap_weight, cheap_bias, out_chs, act=None, gate=None):
    """The Ghost module in one buffer, as ``ghostnp.ops.fused.ghost_module``: (N, C_in, H, W) -> (N, out_chs, H, W).

    primary_weight : (init_chs, C_in, 1, 1); cheap_weight : (init_chs, 1, 3, 3); the biases : (init_chs,);
    act : None or "relu"; gate : None or the half-resolution DFC gate (N, out_chs, h, w).
    Modules on maps of at most ``CHANNELS_LAST_PIXELS`` pixels run channels last (and return a view of
    their (N, H, W, out_chs) buffer), the others channels first: the one that was faster at each of the
    network's shapes (``benchmarks/README.md``).
    """
    n, c_in, h, w = x.shape
    init_chs = primary_weight.shape[0]
    dtype = x.dtype
    primary = primary_weight[:, :, 0, 0].astype(dtype, copy=False)  # (init_chs, C_in), .T contiguous if prepared
    primary_bias = np.ascontiguousarray(primary_bias, dtype=dtype)
    cheap_bias = np.ascontiguousarray(cheap_bias, dtype=dtype)
    rows, cols = (
        (source_index(1, h), source_index(1, w))
        if gate is None
        else (source_index(gate.shape[2], h), source_index(gate.shape[3], w))
    )
    if h * w <= CHANNELS_LAST_PIXELS:
        intrinsic = np.matmul(channels_last(x).reshape(n * h * w, c_in), primary.T)  # (N*H*W, init_chs), BLAS
        cheap_taps = np.ascontiguousarray(cheap_weight.reshape(init_chs, 9).T, dtype=dtype)  # (9, init_chs)
        gate = NO_GATE[dtype] if gate is None else channels_last(gate, dtype)  # (N, h, w, out_chs)
        out = np.empty((n, h, w, out_chs), dtype=dtype)
        numba_kernels.ghost_module_channels_last(
            intrinsic.reshape(n, h * w, init_chs), primary_bias, cheap_taps, cheap_bias, act == "relu", gate, rows,
            cols, out
        )  # fmt: skip
        return as_nchw(out)
    x = np.ascontiguousarray(x)
    out = np.empty((n, out_chs, h, w), dtype=dtype)
    for b in range(n):  # the intrinsic maps straight into the first init_chs channels of the output
        np.matmul(primary, x[b].reshape(c_in, h * w), out=out[b, :init_chs].reshape(init_chs, h * w))
    gate = NO_GATE[dtype] if gate is None else np.ascontiguousarray(gate, dtype=dtype)
    numba_kernels.ghost_module_epilogue(
        out,
        init_chs,
        primary_bias,
        np.ascontiguousarray(cheap_weight, dtype=dtype),
        cheap_bias,
        act == "relu",
        gate,
        rows,
        cols,
    )
    return out


def dfc_gate(x, reduce_weight, reduce_bias, row_weight, row_bias, col_weight, col_bias):
    """The half-resolution DFC gate, as ``ghostnp.ops.fused.dfc_gate``: (N, C_in, H, W) -> (N, C, H/2, W/2).

    Gates of at most ``CHANNELS_LAST_PIXELS / 4`` pixels (those of channels-last Ghost modules) are computed
    channels last and returned as a view of an (N, H/2, W/2, C) buffer, which ``ghost_module`` reads without a copy.
    """
    pooled = avg_pool_2x2(x)  # (N, C_in, H/2, W/2)
    n, c_in, h, w = pooled.shape
    dtype = pooled.dtype
    reduce = reduce_weight[:, :, 0, 0].astype(dtype, copy=False)  # (C, C_in), .T contiguous if prepared
    c = reduce.shape[0]
    biases = [np.ascontiguousarray(v, dtype=dtype) for v in (reduce_bias, row_bias, col_bias)]
    if 4 * h * w <= CHANNELS_LAST_PIXELS:
        r = np.matmul(channels_last(pooled).reshape(n * h * w, c_in), reduce.T)  # (N*h*w, C), BLAS
        row_taps = np.ascontiguousarray(row_weight.reshape(c, 5).T, dtype=dtype)  # (5, C)
        col_taps = np.ascontiguousarray(col_weight.reshape(c, 5).T, dtype=dtype)  # (5, C)
        out = np.empty((n, h, w, c), dtype=dtype)
        numba_kernels.dfc_gate_tail_channels_last(
            r.reshape(n, h, w, c), biases[0], row_taps, biases[1], col_taps, biases[2], out
        )
        return as_nchw(sigmoid(out))  # (N, C, h, w), a view of a channels-last buffer
    r = np.matmul(reduce, pooled.reshape(n, c_in, h * w)).reshape(n, c, h, w)  # (N, C, H/2, W/2)
    out = np.empty_like(r)
    row_weight, col_weight = (np.ascontiguousarray(v, dtype=dtype) for v in (row_weight, col_weight))
    numba_kernels.dfc_gate_tail(r, biases[0], row_weight, biases[1], col_weight, biases[2], out)
    return sigmoid(out)


def squeeze_excite(x, reduce_weight, reduce_bias, expand_weight, expand_bias):
    """The squeeze-and-excite channel gate, as ``ghostnp.ops.fused.squeeze_excite``: (N, C, H, W) -> same.

    The composition with the two 1 x 1 convolutions as matrix products on (N, C) rows. Maps of at most
    ``CHANNELS_LAST_PIXELS`` pixels (channels last, as this table's ops return them) are pooled and gated
    by two Numba loops over the channels of each pixel. The six calls of the table took 90 us at
    14 x 14 x 480; this takes 59.
    """
    n, c, h, w = x.shape
    dtype = x.dtype
    reduce, expand = (v[:, :, 0, 0].astype(dtype, copy=False) for v in (reduce_weight, expand_weight))
    small = h * w <= CHANNELS_LAST_PIXELS
    if small:
        pixels = channels_last(x).reshape(n, h * w, c)  # (N, H*W, C)
        pooled = np.empty((n, c), dtype=dtype)
        numba_kernels.channel_sums_channels_last(pixels, pooled)
        pooled /= dtype.type(h * w)  # (N, C): the mean
    else:
        pooled = numpy_ops.global_avg_pool(x).reshape(n, c)  # (N, C)
    s = numpy_ops.relu(pooled @ reduce.T + reduce_bias.astype(dtype, copy=False))  # (N, C_se): conv_reduce
    gate = numpy_ops.hard_sigmoid(s @ expand.T + expand_bias.astype(dtype, copy=False))  # (N, C): conv_expand
    if not small:
        return numpy_ops.multiply(x, gate[:, :, None, None])  # (N, C, H, W)
    out = np.empty((n, h * w, c), dtype=dtype)
    numba_kernels.scale_channels_last(pixels, gate, out)
    return as_nchw(out.reshape(n, h, w, c))  # (N, C, H, W), a view of a channels-last buffer


# Every other op is the reference function itself: cheap, or already a single NumPy pass.
globals().update({name: getattr(numpy_ops, name) for name in OP_NAMES if name not in ACCELERATED})
