"""The loops behind the Numba op table, each written once as plain Python and bound with ``njit``.

Every kernel ``_name`` is an ordinary Python function (runnable, steppable, testable with
``NUMBA_DISABLE_JIT=1`` or by calling ``_name`` directly); ``name = njit(...)(_name)`` is its compiled
twin. Kernels write into an ``out`` array that the caller (``numba_ops``) allocates with the right shape
and dtype, so the loops contain no shape logic beyond the loop bounds. All arrays are C-contiguous and of
one float dtype (float32 or float64): two compiled signatures per kernel at most.

The kernels are serial on purpose: on the 2-core machine, ``parallel=True`` made the loops about 2 x
slower on one thread (the outlined loop body vectorises worse) and a 2-thread pool stalled for whole
scheduler ticks whenever another process ran (see ``benchmarks/README.md``). Threads, where they pay,
come from BLAS in the pointwise convolutions.
``fastmath`` stays off, so every sum is an ordinary IEEE sum and results match the NumPy table to
rounding.
"""

import numba
import numpy as np

_jit = numba.njit(cache=True, fastmath=False)


def _conv2d_direct(x, weight, bias, stride_h, stride_w, pad_h, pad_w, relu, out):
    """Grouped 2-D cross-correlation with bias and optional fused ReLU, by direct loops.

    Covers depthwise (groups == C_in == C_out), rectangular kernels such as (1, 5) and (5, 1), strides 1
    and 2, and small dense convolutions such as the stem (groups == 1).

    x : ndarray, shape (N, C_in, H, W)
    weight : ndarray, shape (C_out, C_in / G, kH, kW)
    bias : ndarray, shape (C_out,) (zeros for a convolution without bias)
    stride_h, stride_w, pad_h, pad_w : int, per-axis stride and zero padding
    relu : bool, apply ``max(., 0)`` to the result
    out : ndarray, shape (N, C_out, H_out, W_out), written in place; G is C_in / (C_in / G).

    Two passes. (1) Each zero-padded input plane is split into its ``sH * sW`` stride phases,
    ``phases[n, c, a, b, r * Wq + q] = xpad[n, c, r * sH + a, q * sW + b]``, so a strided convolution becomes a
    stride-1 one: tap (i, j) reads phase (i % sH, j % sW) shifted by (i // sH, j // sW). (2) Each output
    plane is accumulated tap by tap over the *flattened* phase plane: one contiguous, branch-free,
    vectorisable loop of about H_out * Wq multiply-adds per tap, whose Wq - W_out surplus columns per row
    are computed and then dropped when the plane is copied out with bias and ReLU.
    """
    n, c_in, h, w = x.shape
    c_out, c_in_per_group, kh, kw = weight.shape
    h_out, w_out = out.shape[2], out.shape[3]
    c_out_per_group = c_out // (c_in // c_in_per_group)
    hq = (h + 2 * pad_h + stride_h - 1) // stride_h  # rows of one phase plane
    wq = (w + 2 * pad_w + stride_w - 1) // stride_w  # columns of one phase plane
    phases = np.zeros((n, c_in, stride_h, stride_w, hq * wq), dtype=x.dtype)  # each phase plane flattened
    for image_channel_phase in range(n * c_in * stride_h * stride_w):
        image_channel, phase = image_channel_phase // (stride_h * stride_w), image_channel_phase % (stride_h * stride_w)
        b, c = image_channel // c_in, image_channel % c_in
        a, e = phase // stride_w, phase % stride_w  # this phase holds padded rows a::sH, columns e::sW
        q_lo = (pad_w - e + stride_w - 1) // stride_w  # first phase column inside the input
        q_hi = min(wq, (w - 1 + pad_w - e) // stride_w + 1)
        for rq in range(hq):
            iy = rq * stride_h + a - pad_h
            if 0 <= iy < h:
                dst = phases[b, c, a, e, rq * wq + q_lo :]  # (q_hi - q_lo,) used
                src = x[b, c, iy, q_lo * stride_w + e - pad_w :]  # every sW-th element used
                for k in range(q_hi - q_lo):
                    dst[k] = src[k * stride_w]
    span = (h_out - 1) * wq + w_out  # flat length covering every output pixel
    acc = np.empty(h_out * wq, dtype=x.dtype)  # one output plane, (H_out, Wq) flattened
    for image_channel in range(n * c_out):
        b, o = image_channel // c_out, image_channel % c_out
        first_in = (o // c_out_per_group) * c_in_per_group  # first input channel of o's group
        acc[:] = 0
        for c in range(c_in_per_group):
            for i in range(kh):
                for j in range(kw):
                    tap = weight[o, c, i, j]
                    src = phases[b, first_in + c, i % stride_h, j % stride_w, (i // stride_h) * wq + j // stride_w :]
                    for k in range(span):
                        acc[k] += tap * src[k]
        for oy in range(h_out):
            for ox in range(w_out):
                v = acc[oy * wq + ox] + bias[o]
                out[b, o, oy, ox] = 0 if relu and v < 0 else v


def _bias_act(out, bias, relu):
    """In place: ``out[n, c] += bias[c]``, then ``max(., 0)`` if ``relu``: the epilogue of a matmul conv.

    out : ndarray, shape (N, C, P) (P = H * W); bias : ndarray, shape (C,); relu : bool.
    """
    n, c, p = out.shape
    for image_channel in range(n * c):
        b, ch = image_channel // c, image_channel % c
        row = out[b, ch]  # (P,)
        shift = bias[ch]
        for k in range(p):
            row[k] += shift
            if relu and row[k] < 0:
                row[k] = 0


def _avg_pool_2x2(x, out):
    """2 x 2 average pooling, stride 2, floor mode: ``out[n, c, y, x_] = mean(x[n, c, 2y:2y+2, 2x_:2x_+2])``.

    x : ndarray, shape (N, C, H, W); out : ndarray, shape (N, C, H // 2, W // 2), written in place.
    """
    n, c, _, _ = x.shape
    h_out, w_out = out.shape[2], out.shape[3]
    for image_channel in range(n * c):
        b, ch = image_channel // c, image_channel % c
        for oy in range(h_out):
            top, bottom, row = x[b, ch, 2 * oy], x[b, ch, 2 * oy + 1], out[b, ch, oy]  # (W,), (W,), (W/2,)
            for ox in range(w_out):
                row[ox] = (top[2 * ox] + top[2 * ox + 1] + bottom[2 * ox] + bottom[2 * ox + 1]) / 4


def _logistic_from_exp(x, e, out):
    """The logistic function element-wise, given ``e = exp(-|x|)``: ``1 / (1 + e)`` for x >= 0, else ``e / (1 + e)``.

    Both branches are ``1 / (1 + exp(-x))`` rewritten so that nothing overflows. ``e`` comes from NumPy
    (``numba_ops.sigmoid``), whose ``exp`` is SIMD-vectorised; Numba's, without Intel SVML, is one scalar
    libm call per element and made this op 3 x slower.

    x, e, out : ndarray, same shape, viewed flat (any shape; ``out`` written in place).
    """
    flat_x, flat_e, flat_out = x.reshape(-1), e.reshape(-1), out.reshape(-1)
    for k in range(flat_x.size):
        flat_out[k] = (1 if flat_x[k] >= 0 else flat_e[k]) / (1 + flat_e[k])


def _upsample_nearest(x, rows, cols, out):
    """Gather ``out[n, c, y, x_] = x[n, c, rows[y], cols[x_]]`` (nearest upsampling by source index).

    x : ndarray, shape (N, C, h, w); rows : int64 ndarray, shape (H,); cols : int64 ndarray, shape (W,);
    out : ndarray, shape (N, C, H, W), written in place.
    """
    n, c, _, _ = x.shape
    h_out, w_out = out.shape[2], out.shape[3]
    for image_channel in range(n * c):
        b, ch = image_channel // c, image_channel % c
        for oy in range(h_out):
            src, row = x[b, ch, rows[oy]], out[b, ch, oy]  # (w,), (W,)
            for ox in range(w_out):
                row[ox] = src[cols[ox]]


conv2d_direct = _jit(_conv2d_direct)
bias_act = _jit(_bias_act)
avg_pool_2x2 = _jit(_avg_pool_2x2)
logistic_from_exp = _jit(_logistic_from_exp)
upsample_nearest = _jit(_upsample_nearest)
