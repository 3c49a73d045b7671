"""The fast op table: the signatures of ``numpy_ops``, with the hot loops compiled by Numba.

What runs where (measured on ghostnetv2_100, see ``benchmarks/README.md``):

- ``conv2d`` with a 1 x 1 kernel, stride 1, no padding, one group (the 67 pointwise convolutions) is a
  matrix product through NumPy's BLAS, which beats any loop we can write; Numba only adds the bias and the
  ReLU in the same pass (``bias_act``). Depthwise convolutions (3 x 3 / 5 x 5 at stride 1 and 2) run
  ``depthwise_conv2d``, one channel at a time in cache, or on maps of 28 x 28 and smaller
  ``depthwise_conv2d_channels_last``, whose loops run over the channels of a pixel (hundreds) rather
  than the pixels of a small plane; the others (the 3 x 3 stride-2 stem) run the direct loop
  ``conv2d_direct``.
- The fused ops: ``ghost_module`` is one matrix product written straight into the module's output buffer,
  then one pass per channel (bias, ReLU, the cheap depthwise 3 x 3 into the other half of the buffer, the
  DFC gate upsampled on the fly and multiplied in): no concatenation, no slice, no upsampled gate in
  memory. Gated modules on 14 x 14 and smaller maps compute channels last instead (BLAS writes the
  product transposed, the loops run over channels, one transpose at the end). ``dfc_gate`` is the
  pooling kernel, one matrix product, one pass per channel for the (1, 5) and (5, 1) (channels last for
  7 x 7 and smaller gates, returned as a view that ``ghost_module`` reads without a copy), then the
  sigmoid over the whole gate with NumPy's vectorised ``exp``.
- ``avg_pool_2x2`` and ``upsample_nearest`` are Numba loops; ``sigmoid`` takes ``exp`` from NumPy (SIMD)
  and the rest from a Numba loop.
- Every other op in ``OP_NAMES`` is the reference function itself (re-exported at the end of this file).

Inputs are made C-contiguous and weights cast to the input's dtype before a kernel is called, so each
kernel compiles for at most two signatures (float32, float64), cached on disk (``cache=True``).
"""

import numpy as np

from . import numba_kernels, numpy_ops
from .names import FUSED_OP_NAMES, OP_NAMES
from .numpy_ops import _pair, nearest_source_index

ACCELERATED = ("conv2d", "sigmoid", "avg_pool_2x2", "upsample_nearest", *FUSED_OP_NAMES)
__all__ = list(OP_NAMES + FUSED_OP_NAMES)
CHANNELS_LAST_PIXELS = 14 * 14  # the largest map whose gated Ghost modules run channels last
DEPTHWISE_CHANNELS_LAST_PIXELS = 28 * 28  # depthwise convolutions on maps this small run channels last
NO_GATE = {np.dtype(np.float32): np.zeros((0, 0, 0, 0), np.float32), np.dtype(np.float64): np.zeros((0, 0, 0, 0))}


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
    x = np.ascontiguousarray(x)
    weight = np.ascontiguousarray(weight, dtype=x.dtype)
    bias = np.zeros(c_out, x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    if kh == kw == 1 and sh == sw == 1 and ph == pw == 0 and groups == 1:
        out = np.matmul(weight[:, :, 0, 0], x.reshape(n, c_in, h * w))  # (N, C_out, H*W), BLAS
        numba_kernels.bias_act(out, bias, act == "relu")
        return out.reshape(n, c_out, h, w)
    out = np.empty((n, c_out, h_out, w_out), dtype=x.dtype)
    if c_in_per_group == 1 and c_out == groups and h * w <= DEPTHWISE_CHANNELS_LAST_PIXELS:
        taps = np.ascontiguousarray(weight[:, 0].transpose(1, 2, 0))  # (kH, kW, C)
        numba_kernels.depthwise_conv2d_channels_last(x, taps, bias, sh, sw, ph, pw, act == "relu", out)
    elif c_in_per_group == 1 and c_out == groups:
        numba_kernels.depthwise_conv2d(x, weight, bias, sh, sw, ph, pw, act == "relu", out)
    else:
        numba_kernels.conv2d_direct(x, weight, bias, sh, sw, ph, pw, act == "relu", out)
    return out


def sigmoid(x):
    """The logistic function ``1 / (1 + exp(-x))`` element-wise, without overflow; any shape."""
    x = np.ascontiguousarray(x)
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    numba_kernels.logistic_from_exp(x, e, e)  # in place: each e[k] is read before it is overwritten
    return e


def avg_pool_2x2(x):
    """2 x 2 average pooling, stride 2, floor mode: (N, C, H, W) -> (N, C, H // 2, W // 2)."""
    n, c, h, w = x.shape
    if h < 2 or w < 2:
        raise ValueError(
            f"2 x 2 average pooling needs a feature map of at least 2 x 2, got {h} x {w}; "
            "make the input image larger (H, W >= 33 for GhostNetV2)"
        )
    x = np.ascontiguousarray(x)
    out = np.empty((n, c, h // 2, w // 2), dtype=x.dtype)
    numba_kernels.avg_pool_2x2(x, out)
    return out


def upsample_nearest(x, size):
    """Nearest upsampling with PyTorch's legacy rule: (N, C, h, w) -> (N, C, H, W), ``size = (H, W)``."""
    rows = nearest_source_index(x.shape[2], size[0])
    cols = nearest_source_index(x.shape[3], size[1])
    x = np.ascontiguousarray(x)
    out = np.empty(x.shape[:2] + (size[0], size[1]), dtype=x.dtype)
    numba_kernels.upsample_nearest(x, rows, cols, out)
    return out


def ghost_module(x, primary_weight, primary_bias, cheap_weight, cheap_bias, out_chs, act=None, gate=None):
    """The Ghost module in one buffer, as ``ghostnp.ops.fused.ghost_module``: (N, C_in, H, W) -> (N, out_chs, H, W).

    primary_weight : (init_chs, C_in, 1, 1); cheap_weight : (init_chs, 1, 3, 3); the biases : (init_chs,);
    act : None or "relu"; gate : None or the half-resolution DFC gate (N, out_chs, h, w).
    Gated modules on maps of at most ``CHANNELS_LAST_PIXELS`` pixels take the channels-last epilogue, the
    others the per-channel one: the one that was faster at each of the network's shapes (``benchmarks/README.md``).
    """
    n, c_in, h, w = x.shape
    init_chs = primary_weight.shape[0]
    x = np.ascontiguousarray(x)
    dtype = x.dtype
    out = np.empty((n, out_chs, h, w), dtype=dtype)
    primary = np.ascontiguousarray(primary_weight[:, :, 0, 0], dtype=dtype)  # (init_chs, C_in)
    primary_bias = np.ascontiguousarray(primary_bias, dtype=dtype)
    cheap_bias = np.ascontiguousarray(cheap_bias, dtype=dtype)
    if gate is None:
        rows, cols = np.zeros(h, np.int64), np.zeros(w, np.int64)
    else:
        rows, cols = nearest_source_index(gate.shape[2], h), nearest_source_index(gate.shape[3], w)
    if gate is not None and h * w <= CHANNELS_LAST_PIXELS:
        intrinsic = np.empty((n, h * w, init_chs), dtype=dtype)  # (N, H*W, init_chs), channels last
        for b in range(n):  # x^T @ primary^T: BLAS reads x transposed, no copy
            np.matmul(x[b].reshape(c_in, h * w).T, primary.T, out=intrinsic[b])
        cheap_taps = np.ascontiguousarray(cheap_weight.reshape(init_chs, 9).T, dtype=dtype)  # (9, init_chs)
        # (N, h, w, out_chs): no copy when the gate is channels last already (``dfc_gate`` on small maps)
        gate = np.ascontiguousarray(gate.transpose(0, 2, 3, 1), dtype=dtype)
        numba_kernels.ghost_module_channels_last(
            intrinsic, primary_bias, cheap_taps, cheap_bias, act == "relu", gate, rows, cols, out
        )
        return out
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

    Gates of at most ``CHANNELS_LAST_PIXELS / 4`` pixels are computed channels last and returned as a
    transposed view of an (N, H/2, W/2, C) buffer, which ``ghost_module`` reads without a copy.
    """
    pooled = avg_pool_2x2(x)  # (N, C_in, H/2, W/2)
    n, c_in, h, w = pooled.shape
    dtype = pooled.dtype
    reduce = np.ascontiguousarray(reduce_weight[:, :, 0, 0], dtype=dtype)  # (C, C_in)
    c = reduce.shape[0]
    biases = [np.ascontiguousarray(v, dtype=dtype) for v in (reduce_bias, row_bias, col_bias)]
    if 4 * h * w <= CHANNELS_LAST_PIXELS:
        r = np.matmul(pooled.reshape(n, c_in, h * w).transpose(0, 2, 1), reduce.T)  # (N, h*w, C), channels last
        row_taps = np.ascontiguousarray(row_weight.reshape(c, 5).T, dtype=dtype)  # (5, C)
        col_taps = np.ascontiguousarray(col_weight.reshape(c, 5).T, dtype=dtype)  # (5, C)
        out = np.empty((n, h, w, c), dtype=dtype)
        numba_kernels.dfc_gate_tail_channels_last(
            r.reshape(n, h, w, c), biases[0], row_taps, biases[1], col_taps, biases[2], out
        )
        return _sigmoid_in_place(out).transpose(0, 3, 1, 2)  # (N, C, h, w), a view of the channels-last buffer
    r = np.matmul(reduce, pooled.reshape(n, c_in, h * w)).reshape(n, c, h, w)  # (N, C, H/2, W/2)
    out = np.empty_like(r)
    row_weight, col_weight = (np.ascontiguousarray(v, dtype=dtype) for v in (row_weight, col_weight))
    numba_kernels.dfc_gate_tail(r, biases[0], row_weight, biases[1], col_weight, biases[2], out)
    return _sigmoid_in_place(out)


def _sigmoid_in_place(v):
    """``v`` (C-contiguous) overwritten by its logistic function, ``exp`` from NumPy (SIMD); returns ``v``."""
    numba_kernels.logistic_from_exp(v, np.exp(-np.abs(v)), v)
    return v


# Every other op is the reference function itself: cheap, or already a single NumPy pass.
globals().update({name: getattr(numpy_ops, name) for name in OP_NAMES if name not in ACCELERATED})
