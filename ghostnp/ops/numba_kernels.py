"""The loops behind the Numba op table, each written once as plain Python and bound with ``njit``.

Every kernel ``_name`` is an ordinary Python function (runnable, steppable, testable with
``NUMBA_DISABLE_JIT=1`` or by calling ``_name`` directly); ``name = njit(...)(_name)`` is its compiled
twin. Kernels write into an ``out`` array that the caller (``numba_ops``) allocates with the right shape
and dtype, so the loops contain no shape logic beyond the loop bounds. All arrays are C-contiguous and of
one float dtype (float32 or float64): two compiled signatures per kernel at most.

The kernels are serial and release the GIL (``nogil``): on the 2-core machine, ``parallel=True`` made
the loops about 2 x slower on one thread (the outlined loop body vectorises worse) and a 2-thread pool
stalled for whole scheduler ticks whenever another process ran (see ``benchmarks/README.md``). Threads
come from the model instead: a batch is split into one chunk per thread, each running these serial
kernels and one-thread BLAS (``GhostNet(..., threads=)``).
``fastmath`` stays off, so every sum is an ordinary IEEE sum and results match the NumPy table to
rounding.
"""

import math

import numba
import numpy as np

_jit = numba.njit(cache=True, fastmath=False, nogil=True)


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


def _depthwise_conv2d(x, weight, bias, stride_h, stride_w, pad_h, pad_w, relu, out):
    """Depthwise 2-D cross-correlation (groups == C_in == C_out) with bias and optional fused ReLU.

    x : ndarray, shape (N, C, H, W); weight : ndarray, shape (C, 1, kH, kW); bias : ndarray, shape (C,);
    stride_h, stride_w, pad_h, pad_w : int; relu : bool; out : ndarray, shape (N, C, H_out, W_out), written.

    The same two passes as :func:`_conv2d_direct`, one channel at a time: the channel's zero-padded plane
    is split into its stride phases in a small buffer (``sH * sW`` planes of Hq x Wq, in cache and reused
    for every channel: padding positions are never written, so they stay zero), then every tap is one
    contiguous multiply-add over the flattened phase plane, and the plane goes out with bias and ReLU.
    Every inner loop runs over 1-D slices indexed from 0 (``dst[k] = src[k]``): Numba vectorises those,
    not loops over computed offsets such as ``a[base + k]``, which stay scalar (measured 10 x slower).
    """
    n, c, h, w = x.shape
    kh, kw = weight.shape[2], weight.shape[3]
    h_out, w_out = out.shape[2], out.shape[3]
    hq = (h + 2 * pad_h + stride_h - 1) // stride_h  # rows of one phase plane
    wq = (w + 2 * pad_w + stride_w - 1) // stride_w  # columns of one phase plane
    phases = np.zeros((stride_h * stride_w, hq * wq), dtype=x.dtype)  # one channel's phase planes, flattened
    span = (h_out - 1) * wq + w_out  # flat length covering every output pixel
    acc = np.empty(h_out * wq, dtype=x.dtype)  # one output plane, (H_out, Wq) flattened
    for image_channel in range(n * c):
        b, ch = image_channel // c, image_channel % c
        for a in range(stride_h):
            for e in range(stride_w):
                q_lo = (pad_w - e + stride_w - 1) // stride_w  # first phase column inside the input
                q_hi = min(wq, (w - 1 + pad_w - e) // stride_w + 1)
                for rq in range(hq):
                    iy = rq * stride_h + a - pad_h
                    if 0 <= iy < h:
                        dst = phases[a * stride_w + e, rq * wq + q_lo :]  # (q_hi - q_lo,) used
                        src = x[b, ch, iy, q_lo * stride_w + e - pad_w :]  # every sW-th element used
                        if stride_w == 1:
                            for k in range(q_hi - q_lo):
                                dst[k] = src[k]
                        else:
                            for k in range(q_hi - q_lo):
                                dst[k] = src[k * stride_w]
        for i in range(kh):
            for j in range(kw):
                tap = weight[ch, 0, i, j]
                src = phases[(i % stride_h) * stride_w + j % stride_w, (i // stride_h) * wq + j // stride_w :]
                if i == 0 and j == 0:
                    for k in range(span):
                        acc[k] = tap * src[k]
                else:
                    for k in range(span):
                        acc[k] += tap * src[k]
        for oy in range(h_out):
            bias_act_row(out[b, ch, oy], acc[oy * wq :], bias[ch], relu)


def _bias_act_row(dst, src, shift, relu):
    """``dst[k] = src[k] + shift``, then ``max(., 0)`` if ``relu``, for k < len(dst): one epilogue row.

    The ReLU is a select against a zero of the array's dtype: ``max(v, 0)`` mixes in an integer and ran
    2.6 x slower (not vectorised).
    """
    zero = shift - shift
    if relu:
        for k in range(dst.size):
            v = src[k] + shift
            dst[k] = v if v > zero else zero
    else:
        for k in range(dst.size):
            dst[k] = src[k] + shift


def _ghost_module_epilogue(out, init_chs, primary_bias, cheap_weight, cheap_bias, relu, gate, rows, cols):
    """The Ghost module after its 1 x 1 matrix product, in place in its one output buffer.

    out : ndarray, shape (N, out_chs, H, W); channels ``[0, init_chs)`` hold the primary (intrinsic) 1 x 1
    convolution before its bias. Per channel c: bias (+ ReLU) in place; the cheap depthwise 3 x 3 (padding
    1) of that channel, + bias (+ ReLU), written straight into channel ``init_chs + c`` (only for
    ``init_chs + c < out_chs``: no concatenation, no slice); then, if ``gate`` has any element, both
    channels are multiplied by the DFC gate upsampled on the fly, ``gate[n, c', rows[y], cols[x_]]``.

    primary_bias, cheap_bias : (init_chs,); cheap_weight : (init_chs, 1, 3, 3); relu : bool;
    gate : (N, out_chs, h, w) half-resolution sigmoid gate, or shape (0, 0, 0, 0) for no gate;
    rows : int64 (H,), cols : int64 (W,): the nearest-upsampling source indices (unused without gate).
    """
    n, out_chs, h, w = out.shape
    wp = w + 2  # the padded plane, (H + 2, W + 2) flattened
    padded = np.zeros((h + 2) * wp, dtype=out.dtype)  # border stays zero: only the interior is written
    span = (h - 1) * wp + w
    acc = np.empty(h * wp, dtype=out.dtype)
    gate_row = np.empty(w, dtype=out.dtype)
    for image_channel in range(n * init_chs):
        b, ch = image_channel // init_chs, image_channel % init_chs
        intrinsic = out[b, ch]  # (H, W)
        for y in range(h):
            bias_act_row(intrinsic[y], intrinsic[y], primary_bias[ch], relu)
            dst, src = padded[(y + 1) * wp + 1 :], intrinsic[y]
            for k in range(w):
                dst[k] = src[k]
        ghost = init_chs + ch
        if ghost < out_chs:
            for i in range(3):
                for j in range(3):
                    tap, src = cheap_weight[ch, 0, i, j], padded[i * wp + j :]
                    if i == 0 and j == 0:
                        for k in range(span):
                            acc[k] = tap * src[k]
                    else:
                        for k in range(span):
                            acc[k] += tap * src[k]
            for y in range(h):
                bias_act_row(out[b, ghost, y], acc[y * wp :], cheap_bias[ch], relu)
        if gate.size == 0:
            continue
        for channel in (ch, ghost):
            if channel < out_chs:
                for y in range(h):
                    src, dst = gate[b, channel, rows[y]], out[b, channel, y]  # (w,), (W,)
                    for k in range(w):
                        gate_row[k] = src[cols[k]]
                    for k in range(w):
                        dst[k] *= gate_row[k]


def _dfc_gate_tail(r, reduce_bias, row_weight, row_bias, col_weight, col_bias, out):
    """The DFC branch after its 1 x 1 matrix product: bias, the (1, 5) and (5, 1) depthwise convolutions
    (paper Eq. 4, 5; padding 2 along the kernel's axis) with their biases, and the sigmoid.

    r : ndarray, shape (N, C, h, w), the pooled input's 1 x 1 convolution before its bias; reduce_bias,
    row_bias, col_bias : (C,); row_weight : (C, 1, 1, 5); col_weight : (C, 1, 5, 1);
    out : ndarray, shape (N, C, h, w), written: the half-resolution gate in (0, 1).

    One channel at a time in one flattened buffer of (h + 4) x (w + 4), zero outside the map: the (1, 5)
    taps are contiguous slices shifted by one column, the (5, 1) taps slices shifted by one row (as in
    :func:`_depthwise_conv2d`). The sigmoid ``1 / (1 + exp(-v))`` takes ``exp(-|v|)`` so that nothing
    overflows, as ``numpy_ops.sigmoid``.
    """
    n, c, h, w = r.shape
    wp = w + 4
    padded = np.zeros((h + 4) * wp, dtype=r.dtype)  # (h + 4, w + 4) flattened: 2 zero rows and columns each side
    span = (h - 1) * wp + w
    acc = np.empty(h * wp, dtype=r.dtype)
    for image_channel in range(n * c):
        b, ch = image_channel // c, image_channel % c
        for y in range(h):
            bias_act_row(padded[(y + 2) * wp + 2 :][:w], r[b, ch, y], reduce_bias[ch], False)
        for j in range(5):  # along W: the map's rows, read from column 2 - 2 + j
            tap, src = row_weight[ch, 0, 0, j], padded[2 * wp + j :]
            if j == 0:
                for k in range(span):
                    acc[k] = tap * src[k]
            else:
                for k in range(span):
                    acc[k] += tap * src[k]
        for y in range(h):
            bias_act_row(padded[(y + 2) * wp + 2 :][:w], acc[y * wp :], row_bias[ch], False)
        for i in range(5):  # along H: read from row 2 - 2 + i
            tap, src = col_weight[ch, 0, i, 0], padded[i * wp + 2 :]
            if i == 0:
                for k in range(span):
                    acc[k] = tap * src[k]
            else:
                for k in range(span):
                    acc[k] += tap * src[k]
        for y in range(h):
            src, dst = acc[y * wp :], out[b, ch, y]  # (w,) used
            for k in range(w):
                v = src[k] + col_bias[ch]
                e = math.exp(-abs(v))  # in (0, 1]: never overflows
                dst[k] = (1 if v >= 0 else e) / (1 + e)


conv2d_direct = _jit(_conv2d_direct)
bias_act = _jit(_bias_act)
avg_pool_2x2 = _jit(_avg_pool_2x2)
logistic_from_exp = _jit(_logistic_from_exp)
upsample_nearest = _jit(_upsample_nearest)
bias_act_row = _jit(_bias_act_row)
depthwise_conv2d = _jit(_depthwise_conv2d)
ghost_module_epilogue = _jit(_ghost_module_epilogue)
dfc_gate_tail = _jit(_dfc_gate_tail)
