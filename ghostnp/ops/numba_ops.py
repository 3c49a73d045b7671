"""The fast op table: the signatures of ``numpy_ops``, with the hot loops compiled by Numba.

What runs where (measured on ghostnetv2_100, see ``benchmarks/README.md``):

- ``conv2d`` with a 1 x 1 kernel, stride 1, no padding, one group (the 67 pointwise convolutions) is a
  matrix product through NumPy's BLAS, which beats any loop we can write; Numba only adds the bias and the
  ReLU in the same pass (``bias_act``). Depthwise convolutions (3 x 3 / 5 x 5 at stride 1 and 2, the
  DFC branch's (1, 5) and (5, 1)) run ``depthwise_conv2d``, one channel at a time in cache; the others
  (the 3 x 3 stride-2 stem) run the direct loop ``conv2d_direct``.
- The fused ops: ``ghost_module`` is one matrix product written straight into the module's output buffer,
  then one pass per channel (bias, ReLU, the cheap depthwise 3 x 3 into the other half of the buffer, the
  DFC gate upsampled on the fly and multiplied in): no concatenation, no slice, no upsampled gate in
  memory. ``dfc_gate`` is the pooling kernel, one matrix product and one pass per channel for the
  (1, 5), (5, 1) and the sigmoid.
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
    if c_in_per_group == 1 and c_out == groups:
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
    """
    n, c_in, h, w = x.shape
    init_chs = primary_weight.shape[0]
    x = np.ascontiguousarray(x)
    dtype = x.dtype
    out = np.empty((n, out_chs, h, w), dtype=dtype)
    primary = np.ascontiguousarray(primary_weight[:, :, 0, 0], dtype=dtype)  # (init_chs, C_in)
    for b in range(n):  # the intrinsic maps straight into the first init_chs channels of the output
        np.matmul(primary, x[b].reshape(c_in, h * w), out=out[b, :init_chs].reshape(init_chs, h * w))
    if gate is None:
        gate, rows, cols = NO_GATE[dtype], np.zeros(h, np.int64), np.zeros(w, np.int64)
    else:
        gate = np.ascontiguousarray(gate, dtype=dtype)
        rows, cols = nearest_source_index(gate.shape[2], h), nearest_source_index(gate.shape[3], w)
    numba_kernels.ghost_module_epilogue(
        out,
        init_chs,
        np.ascontiguousarray(primary_bias, dtype=dtype),
        np.ascontiguousarray(cheap_weight, dtype=dtype),
        np.ascontiguousarray(cheap_bias, dtype=dtype),
        act == "relu",
        gate,
        rows,
        cols,
    )
    return out


def dfc_gate(x, reduce_weight, reduce_bias, row_weight, row_bias, col_weight, col_bias):
    """The half-resolution DFC gate, as ``ghostnp.ops.fused.dfc_gate``: (N, C_in, H, W) -> (N, C, H/2, W/2)."""
    pooled = avg_pool_2x2(x)  # (N, C_in, H/2, W/2)
    n, c_in, h, w = pooled.shape
    dtype = pooled.dtype
    reduce = np.ascontiguousarray(reduce_weight[:, :, 0, 0], dtype=dtype)  # (C, C_in)
    r = np.matmul(reduce, pooled.reshape(n, c_in, h * w)).reshape(n, reduce.shape[0], h, w)  # (N, C, H/2, W/2)
    out = np.empty_like(r)
    weights = (reduce_bias, row_weight, row_bias, col_weight, col_bias)
    numba_kernels.dfc_gate_tail(r, *(np.ascontiguousarray(v, dtype=dtype) for v in weights), out)
    return out


# Every other op is the reference function itself: cheap, or already a single NumPy pass.
globals().update({name: getattr(numpy_ops, name) for name in OP_NAMES if name not in ACCELERATED})
