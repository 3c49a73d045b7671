"""The loops behind the Numba op table, each written once as plain Python and bound with ``njit``.

Every kernel ``_name`` is an ordinary Python function (runnable, steppable, testable with
``NUMBA_DISABLE_JIT=1`` or by calling ``_name`` directly); ``name = njit(...)(_name)`` is its compiled
twin. Kernels write into an ``out`` array that the caller (``numba_ops``) allocates with the right shape
and dtype, so the loops contain no shape logic beyond the loop bounds. All arrays are C-contiguous and of
one float dtype (float32 or float64): two compiled signatures per kernel at most.

The kernels are serial and release the GIL (``nogil``): on the 2-core machine, ``parallel=True`` made
the loops about 2 x slower on one thread (the outlined loop body vectorises worse) and a 2-thread pool
stalled for whole scheduler ticks whenever another process ran (see ``benchmarks/README.md``). Threads
come from the model instead: a batch is cut into chunks that the threads take from a queue, each running
these serial kernels and one-thread BLAS (``GhostNet(..., threads=)``); parallel twins of these kernels, and
``prange`` loops handing channel ranges to them, were measured again for one image and lost inside the network.
``fastmath`` stays off, so every sum is an ordinary IEEE sum and results match the NumPy table to
rounding. Division follows NumPy's rules (``error_model="numpy"``: no ZeroDivisionError check), which
lets it vectorise: Python's rule made ``1 / (1 + e)`` one scalar division per number, 4 x slower.
"""

import numba
import numpy as np

_jit = numba.njit(cache=True, fastmath=False, nogil=True, error_model="numpy")


def _conv2d_direct(x, weight, bias, stride_h, stride_w, pad_h, pad_w, relu, out):
    """Grouped 2-D cross-correlation with bias and optional fused ReLU, by direct loops.

    Covers any grouping, rectangular kernels such as (1, 5) and (5, 1), strides 1 and 2. The table runs it
    for grouped convolutions only: depthwise ones have their own kernels, dense ones (the stem) are
    :func:`_im2col` and one matrix product.

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


def _im2col(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, columns):
    """The input pixels under every tap, side by side: a dense convolution becomes one matrix product.

    x : ndarray, shape (N, C_in, H, W); kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w : int;
    columns : ndarray, shape (N, C_in * kH * kW, H_out * W_out), written:
    ``columns[n, (c * kH + i) * kW + j, y * W_out + x_] = xpad[n, c, y * sH + i, x_ * sW + j]`` (zero in the padding),
    so that ``weight.reshape(C_out, -1) @ columns[n]`` is the convolution of image n (the stem: 27 rows).

    Each input row needed is copied once into a zero-bordered row and split into its ``sW`` column phases
    (at stride 2 both in one pass); every tap's row of columns is then a contiguous copy from one phase.
    Reading every sW-th number once per tap instead made the stem's im2col 2 x slower.
    """
    n, c_in, h, w = x.shape
    w_out = (w + 2 * pad_w - kernel_w) // stride_w + 1
    h_out = columns.shape[2] // w_out
    wq = (w + 2 * pad_w + stride_w - 1) // stride_w  # columns of one phase of a padded row
    padded_row = np.zeros(wq * stride_w, dtype=x.dtype)  # zero in the padding: only the input's columns are written
    phases = np.empty((stride_w, wq), dtype=x.dtype)  # phases[e, q] = padded_row[q * sW + e]
    zero = x[0, 0, 0, 0] - x[0, 0, 0, 0]
    for b in range(n):
        for c in range(c_in):
            for i in range(kernel_h):
                for oy in range(h_out):
                    iy = oy * stride_h + i - pad_h
                    if iy < 0 or iy >= h:
                        for j in range(kernel_w):
                            columns[b, (c * kernel_h + i) * kernel_w + j, oy * w_out : (oy + 1) * w_out] = zero
                        continue
                    dst, src = padded_row[pad_w:], x[b, c, iy]
                    for k in range(w):
                        dst[k] = src[k]
                    if stride_w == 2:  # both phases in one pass over the row
                        even, odd = phases[0], phases[1]
                        for q in range(wq):
                            even[q] = padded_row[2 * q]
                            odd[q] = padded_row[2 * q + 1]
                    else:
                        for e in range(stride_w):
                            phase = phases[e]
                            for q in range(wq):
                                phase[q] = padded_row[q * stride_w + e]
                    for j in range(kernel_w):  # tap j: output column x_ reads padded column x_ * sW + j
                        dst = columns[b, (c * kernel_h + i) * kernel_w + j, oy * w_out :]
                        src = phases[j % stride_w, j // stride_w :]
                        for k in range(w_out):
                            dst[k] = src[k]


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


def _logistic_float32(x, out):
    """The logistic function of float32 numbers, ``1 / (1 + exp(-x))``, with ``exp`` as a polynomial: one
    vectorised pass where NumPy's float32 ``exp`` took 2.5 ns a number on the project machine (no SIMD
    ``exp`` for its AVX2) and Numba's is one libm call per number.

    x, out : float32 ndarray, same shape, viewed flat (``out`` written). The relative error to the exact
    logistic is below 2 ** -22 wherever that is a normal float32 (measured: 1.43 * 2 ** -23); a value below
    2 ** -126 may come out as 0. Float64 keeps NumPy's ``exp`` (``numba_ops.sigmoid``).

    ``e = exp(-|x|)`` (never overflows) is ``2 ** n * exp(r)`` with ``n = round(-|x| / ln 2)`` and ``|r| <=
    ln(2) / 2``: ``r`` by Cody and Waite's two-part ``ln 2``, ``exp(r)`` by the degree-7 polynomial of the
    Cephes library's ``expf``, ``2 ** n`` by writing ``n + 127`` into a float32's exponent bits (through an
    int32 view, the vectorisable way). Then ``1 / (1 + e)`` for x >= 0, else ``e / (1 + e)``.
    """
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)
    f = np.float32
    mantissa = np.empty(flat_x.size, dtype=np.float32)  # exp(r)
    exponent = np.empty(flat_x.size, dtype=np.int32)  # the bits of 2 ** n
    for k in range(flat_x.size):
        v = -flat_x[k] if flat_x[k] > 0 else flat_x[k]  # -|x|
        v = v if v > f(-88.0) else f(-88.0)  # n >= -127: 2 ** -127 is written as 0
        n = np.floor(v * f(1.44269504) + f(0.5))  # round(v / ln 2)
        r = (v - n * f(0.693359375)) + n * f(2.12194440e-4)  # v - n ln 2, ln 2 = 0.693359375 - 2.12194440e-4
        p = f(1.9875691500e-4)
        p = p * r + f(1.3981999507e-3)
        p = p * r + f(8.3334519073e-3)
        p = p * r + f(4.1665795894e-2)
        p = p * r + f(1.6666665459e-1)
        p = p * r + f(5.0000001201e-1)
        mantissa[k] = (p * r * r + r) + f(1.0)
        exponent[k] = (np.int32(n) + 127) << 23
    scale = exponent.view(np.float32)  # 2 ** n
    for k in range(flat_x.size):
        e = mantissa[k] * scale[k]
        flat_out[k] = (f(1.0) if flat_x[k] >= 0 else e) / (f(1.0) + e)


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
    At stride 2 one pass over each input row fills both column phases (``even[m], odd[m] = row[2m],
    row[2m + 1]``): one phase per pass, each reading every other number, took 70 % of the kernel's time.
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
        for iy in range(h):  # input row iy is row rq of the phases a (padded row iy + pH = rq * sH + a)
            a, rq = (iy + pad_h) % stride_h, (iy + pad_h) // stride_h
            row = x[b, ch, iy]  # (W,)
            if stride_w == 2:  # both column phases in one pass: input column 2m + r is padded column 2m + r + pW
                even = phases[a * 2 + pad_w % 2, rq * wq + pad_w // 2 :]
                odd = phases[a * 2 + (1 + pad_w) % 2, rq * wq + (1 + pad_w) // 2 :]
                for m in range(w // 2):
                    even[m] = row[2 * m]
                    odd[m] = row[2 * m + 1]
                if w % 2:
                    even[w // 2] = row[w - 1]
                continue
            for e in range(stride_w):
                q_lo = (pad_w - e + stride_w - 1) // stride_w  # first phase column inside the input
                q_hi = min(wq, (w - 1 + pad_w - e) // stride_w + 1)
                dst, src = phases[a * stride_w + e, rq * wq + q_lo :], row[q_lo * stride_w + e - pad_w :]
                if stride_w == 1:
                    for k in range(q_hi - q_lo):
                        dst[k] = src[k]
                else:  # every sW-th element of src
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


def _depthwise_conv2d_channels_last(x, taps, bias, stride_h, stride_w, pad_h, pad_w, relu, out):
    """:func:`_depthwise_conv2d` channels last, for small maps with many channels (14 x 14 x 672).

    x : ndarray, shape (N, H, W, C); taps : (kH, kW, C), ``taps[i, j, c] = weight[c, 0, i, j]``; bias : (C,);
    stride_h, stride_w, pad_h, pad_w : int; relu : bool; out : (N, H_out, W_out, C), written.

    Every output pixel is the sum of its in-bounds taps (the zero padding adds nothing), each a loop over
    the channels of one input pixel: hundreds, contiguous, vectorised, where a channel's plane of 49 or 196
    pixels would be mostly loop overhead.
    """
    n, h, w, c = x.shape
    kh, kw = taps.shape[0], taps.shape[1]
    h_out, w_out = out.shape[1], out.shape[2]
    acc = np.empty(c, dtype=x.dtype)
    zero = bias[0] - bias[0]
    for b in range(n):
        for oy in range(h_out):
            for ox in range(w_out):
                acc[:] = 0
                for i in range(kh):
                    iy = oy * stride_h + i - pad_h
                    for j in range(kw):
                        ix = ox * stride_w + j - pad_w
                        if 0 <= iy < h and 0 <= ix < w:
                            src, tap = x[b, iy, ix], taps[i, j]  # (C,), (C,)
                            for k in range(c):
                                acc[k] += tap[k] * src[k]
                dst = out[b, oy, ox]  # (C,)
                for k in range(c):
                    v = acc[k] + bias[k]
                    dst[k] = v if not relu or v > zero else zero


def _bias_act_channels_last(out, bias, relu):
    """In place: ``out[p, c] += bias[c]``, then ``max(., 0)`` if ``relu``: the epilogue of a channels-last
    matmul conv. out : ndarray, shape (P, C) (P = N * H * W); bias : ndarray, shape (C,); relu : bool."""
    zero = bias[0] - bias[0]
    for p in range(out.shape[0]):
        row = out[p]  # (C,)
        for k in range(row.size):
            v = row[k] + bias[k]
            row[k] = v if not relu or v > zero else zero


def _avg_pool_2x2_channels_last(x, out):
    """:func:`_avg_pool_2x2` channels last: x (N, H, W, C) -> out (N, H // 2, W // 2, C), written.

    The four numbers of a window are summed in the same order as the channels-first kernel's.
    """
    n, _, _, c = x.shape
    h_out, w_out = out.shape[1], out.shape[2]
    for b in range(n):
        for oy in range(h_out):
            for ox in range(w_out):
                t0, t1 = x[b, 2 * oy, 2 * ox], x[b, 2 * oy, 2 * ox + 1]  # (C,) each
                b0, b1 = x[b, 2 * oy + 1, 2 * ox], x[b, 2 * oy + 1, 2 * ox + 1]
                dst = out[b, oy, ox]
                for k in range(c):
                    dst[k] = (t0[k] + t1[k] + b0[k] + b1[k]) / 4


def _channel_sums_channels_last(x, out):
    """``out[n, c] = sum_p x[n, p, c]``: the channel sums of pixel rows (squeeze-and-excite's pooling).

    x : ndarray, shape (N, P, C) (P = H * W, channels last); out : (N, C), written. Each pixel's channels
    are added to the running sums in one contiguous pass, pixel after pixel.
    """
    n, p, c = x.shape
    for b in range(n):
        sums = out[b]  # (C,)
        sums[:] = 0
        for q in range(p):
            row = x[b, q]  # (C,)
            for k in range(c):
                sums[k] += row[k]


def _scale_channels_last(x, gate, out):
    """``out[n, p, c] = x[n, p, c] * gate[n, c]``: every pixel's channels times the image's channel gate.

    x, out : ndarray, shape (N, P, C) (channels last; ``out`` written); gate : (N, C).
    """
    n, p, c = x.shape
    for b in range(n):
        g = gate[b]  # (C,)
        for q in range(p):
            src, dst = x[b, q], out[b, q]  # (C,), (C,)
            for k in range(c):
                dst[k] = src[k] * g[k]


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

    The table runs it on maps larger than 14 x 14 (rows of 28 numbers and more; smaller maps run channels
    last). The gate is applied as the values are written, never in a pass of its own: each of the pair's
    half-resolution gate rows is widened once to W columns (``wide[r, x_] = gate[n, c', r, cols[x_]]``),
    and output row y is multiplied by ``wide[rows[y]]`` (ones without a gate: multiplying by 1 changes
    nothing). Gathering the gate per pixel in a separate pass cost as much as the rest of the kernel.
    """
    n, out_chs, h, w = out.shape
    wp = w + 2  # the padded plane, (H + 2, W + 2) flattened
    padded = np.zeros((h + 2) * wp, dtype=out.dtype)  # border stays zero: only the interior is written
    span = (h - 1) * wp + w
    acc = np.empty(h * wp, dtype=out.dtype)
    zero = primary_bias[0] - primary_bias[0]
    gated = gate.size != 0
    gate_h = gate.shape[2] if gated else 1
    wide = np.ones((2, gate_h, w), dtype=out.dtype)  # a channel pair's gate rows widened to W columns (ones: no gate)
    for image_channel in range(n * init_chs):
        b, ch = image_channel // init_chs, image_channel % init_chs
        ghost = init_chs + ch
        if gated:
            for r in range(gate_h):
                for pair, channel in enumerate((ch, min(ghost, out_chs - 1))):
                    src, dst = gate[b, channel, r], wide[pair, r]
                    for x in range(w):
                        dst[x] = src[cols[x]]
        shift = primary_bias[ch]
        for y in range(h):  # bias (+ ReLU); the result into the padded plane, times the gate into the output
            row, pad, g = out[b, ch, y], padded[(y + 1) * wp + 1 :], wide[0, rows[y] if gated else 0]
            for k in range(w):
                v = row[k] + shift
                v = v if not relu or v > zero else zero
                pad[k] = v
                row[k] = v * g[k]
        if ghost < out_chs:  # the 9 taps in one pass, summed in tap order: the rounding of one tap at a time
            (t0, t1, t2), (t3, t4, t5), (t6, t7, t8) = cheap_weight[ch, 0]
            s0, s1, s2 = padded[0:], padded[1:], padded[2:]  # tap (i, j) reads padded[i * wp + j + k]
            s3, s4, s5 = padded[wp:], padded[wp + 1 :], padded[wp + 2 :]
            s6, s7, s8 = padded[2 * wp :], padded[2 * wp + 1 :], padded[2 * wp + 2 :]
            for k in range(span):
                acc[k] = (
                    t0 * s0[k] + t1 * s1[k] + t2 * s2[k] + t3 * s3[k] + t4 * s4[k]
                    + t5 * s5[k] + t6 * s6[k] + t7 * s7[k] + t8 * s8[k]
                )  # fmt: skip
            shift = cheap_bias[ch]
            for y in range(h):
                row, a, g = out[b, ghost, y], acc[y * wp :], wide[1, rows[y] if gated else 0]
                for k in range(w):
                    v = a[k] + shift
                    v = v if not relu or v > zero else zero
                    row[k] = v * g[k]


def _ghost_module_channels_last(intrinsic, primary_bias, cheap_taps, cheap_bias, relu, gate, rows, cols, out):
    """The Ghost module after its 1 x 1 matrix product, channels last: the small-map epilogue.

    intrinsic : ndarray, shape (N, H * W, init_chs), the 1 x 1 convolution before its bias, one row of
    channels per pixel; primary_bias, cheap_bias : (init_chs,); cheap_taps : (9, init_chs),
    ``cheap_taps[3 i + j, c] = cheap_weight[c, 0, i, j]``; relu : bool; gate : (N, h, w, out_chs), the
    half-resolution DFC gate channels last, or shape (0, 0, 0, 0) for none; rows : int64 (H,), cols : int64
    (W,): the nearest-upsampling source indices (unused without gate); out : (N, H, W, out_chs), written.

    On a 7 x 7 or 14 x 14 map a channel's plane is 49 or 196 numbers, so the per-channel loops of
    :func:`_ghost_module_epilogue` are mostly loop overhead. Here every inner loop runs over the channels
    of one pixel instead (hundreds, contiguous, vectorised): (1) bias (+ ReLU) of each pixel's intrinsic
    channels into the first ``init_chs`` channels of its output row; (2) each pixel's ghost channels, the
    cheap depthwise 3 x 3 summed over the in-bounds neighbours' rows (the zero padding adds nothing), + bias
    (+ ReLU), into the rest of the row; (3) each pixel's row times the gate row of its source pixel.
    """
    n, hw, init_chs = intrinsic.shape
    h, w, out_chs = out.shape[1], out.shape[2], out.shape[3]
    ghost_chs = out_chs - init_chs
    acc = np.empty(ghost_chs, dtype=out.dtype)
    zero = primary_bias[0] - primary_bias[0]
    for b in range(n):
        plane = out[b].reshape(hw, out_chs)  # (H * W, out_chs)
        for p in range(hw):
            src, dst = intrinsic[b, p], plane[p]  # (init_chs,), (out_chs,)
            for c in range(init_chs):
                v = src[c] + primary_bias[c]
                dst[c] = v if not relu or v > zero else zero
        for p in range(hw):
            y, x = p // w, p % w
            acc[:] = 0
            for i in range(3):
                for j in range(3):
                    if 0 <= y + i - 1 < h and 0 <= x + j - 1 < w:
                        src, tap = plane[p + (i - 1) * w + j - 1], cheap_taps[3 * i + j]  # (out_chs,), (init_chs,)
                        for c in range(ghost_chs):
                            acc[c] += tap[c] * src[c]
            dst = plane[p, init_chs:]  # (ghost_chs,)
            for c in range(ghost_chs):
                v = acc[c] + cheap_bias[c]
                dst[c] = v if not relu or v > zero else zero
        if gate.size != 0:
            for p in range(hw):
                row, g = plane[p], gate[b, rows[p // w], cols[p % w]]  # (out_chs,), (out_chs,)
                for c in range(out_chs):
                    row[c] *= g[c]


def _dfc_gate_tail(r, reduce_bias, row_weight, row_bias, col_weight, col_bias, out):
    """The DFC branch after its 1 x 1 matrix product, before its sigmoid: bias, then the (1, 5) and
    (5, 1) depthwise convolutions (paper Eq. 4, 5; padding 2 along the kernel's axis) with their biases.

    r : ndarray, shape (N, C, h, w), the pooled input's 1 x 1 convolution before its bias; reduce_bias,
    row_bias, col_bias : (C,); row_weight : (C, 1, 1, 5); col_weight : (C, 1, 5, 1);
    out : ndarray, shape (N, C, h, w), written: the gate before its sigmoid (``numba_ops.dfc_gate`` applies
    it to the whole array at once, with NumPy's vectorised ``exp``: one libm call per element here made the
    28 x 28 and 56 x 56 gates several times slower).

    One channel at a time in one flattened buffer of (h + 4) x (w + 4), zero outside the map: the (1, 5)
    taps are contiguous slices shifted by one column, the (5, 1) taps slices shifted by one row (as in
    :func:`_depthwise_conv2d`).
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
        t0, t1, t2, t3, t4 = row_weight[ch, 0, 0]  # along W: the map's rows, tap j from column 2 - 2 + j
        s0, s1, s2, s3, s4 = (
            padded[2 * wp :],
            padded[2 * wp + 1 :],
            padded[2 * wp + 2 :],
            padded[2 * wp + 3 :],
            padded[2 * wp + 4 :],
        )
        for k in range(span):  # the 5 taps in one pass, summed in tap order
            acc[k] = t0 * s0[k] + t1 * s1[k] + t2 * s2[k] + t3 * s3[k] + t4 * s4[k]
        for y in range(h):
            bias_act_row(padded[(y + 2) * wp + 2 :][:w], acc[y * wp :], row_bias[ch], False)
        t0, t1, t2, t3, t4 = col_weight[ch, 0, :, 0]  # along H: tap i from row 2 - 2 + i
        s0, s1, s2, s3, s4 = (
            padded[2:],
            padded[wp + 2 :],
            padded[2 * wp + 2 :],
            padded[3 * wp + 2 :],
            padded[4 * wp + 2 :],
        )
        for k in range(span):
            acc[k] = t0 * s0[k] + t1 * s1[k] + t2 * s2[k] + t3 * s3[k] + t4 * s4[k]
        for y in range(h):
            bias_act_row(out[b, ch, y], acc[y * wp :], col_bias[ch], False)


def _dfc_gate_tail_channels_last(r, reduce_bias, row_taps, row_bias, col_taps, col_bias, out):
    """:func:`_dfc_gate_tail` channels last, for small gates (7 x 7, 3 x 3): every loop runs over channels.

    r : ndarray, shape (N, h, w, C), the 1 x 1 product before its bias, one row of channels per pixel;
    reduce_bias, row_bias, col_bias : (C,); row_taps, col_taps : (5, C), ``row_taps[j, c] =
    row_weight[c, 0, 0, j]``, ``col_taps[i, c] = col_weight[c, 0, i, 0]``; out : (N, h, w, C), written:
    the gate before its sigmoid. Each sum runs over the in-bounds taps only (the zero padding adds nothing).
    """
    n, h, w, c = r.shape
    along_w = np.empty((h, w, c), dtype=r.dtype)
    acc = np.empty(c, dtype=r.dtype)
    for b in range(n):
        for y in range(h):
            for x in range(w):
                row = r[b, y, x]  # (C,), in place: + reduce bias
                for k in range(c):
                    row[k] += reduce_bias[k]
        for y in range(h):
            for x in range(w):
                acc[:] = 0
                for j in range(5):  # along W, from column x - 2 + j
                    if 0 <= x + j - 2 < w:
                        src, tap = r[b, y, x + j - 2], row_taps[j]  # (C,), (C,)
                        for k in range(c):
                            acc[k] += tap[k] * src[k]
                dst = along_w[y, x]
                for k in range(c):
                    dst[k] = acc[k] + row_bias[k]
        for y in range(h):
            for x in range(w):
                acc[:] = 0
                for i in range(5):  # along H, from row y - 2 + i
                    if 0 <= y + i - 2 < h:
                        src, tap = along_w[y + i - 2, x], col_taps[i]  # (C,), (C,)
                        for k in range(c):
                            acc[k] += tap[k] * src[k]
                dst = out[b, y, x]
                for k in range(c):
                    dst[k] = acc[k] + col_bias[k]


conv2d_direct = _jit(_conv2d_direct)
im2col = _jit(_im2col)
bias_act = _jit(_bias_act)
bias_act_channels_last = _jit(_bias_act_channels_last)
avg_pool_2x2 = _jit(_avg_pool_2x2)
avg_pool_2x2_channels_last = _jit(_avg_pool_2x2_channels_last)
channel_sums_channels_last = _jit(_channel_sums_channels_last)
scale_channels_last = _jit(_scale_channels_last)
logistic_from_exp = _jit(_logistic_from_exp)
logistic_float32 = _jit(_logistic_float32)
upsample_nearest = _jit(_upsample_nearest)
bias_act_row = _jit(_bias_act_row)
depthwise_conv2d = _jit(_depthwise_conv2d)
depthwise_conv2d_channels_last = _jit(_depthwise_conv2d_channels_last)
ghost_module_epilogue = _jit(_ghost_module_epilogue)
ghost_module_channels_last = _jit(_ghost_module_channels_last)
dfc_gate_tail = _jit(_dfc_gate_tail)
dfc_gate_tail_channels_last = _jit(_dfc_gate_tail_channels_last)
