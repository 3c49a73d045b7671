"""The Numba loops against the NumPy reference: each loop run as plain Python (tiny sizes) and compiled.

``numba_kernels._name`` is the readable loop, ``numba_kernels.name`` its compiled twin; both must give the
reference table's result to rounding. The whole op table is also held to ``tests/test_ops.py`` through
the ``backend`` fixture; this file checks the kernels' own contracts (in-place outputs, strides, padding,
groups, fused bias + ReLU) and that the table has exactly the reference's ops and signatures.
"""

import inspect

import numpy as np
import pytest

pytest.importorskip("numba")

from ghostnp.ops import FUSED_OP_NAMES, OP_NAMES, numba_kernels, numba_ops, numpy_ops

RTOL = {np.float64: 1e-10, np.float32: 1e-5}
DTYPES = [np.float64, np.float32]
KERNEL_KINDS = ["python", "jit"]

# (N, C_in, H, W), (C_out, C_in / G, kH, kW), stride, padding, groups: every conv shape class the model has
CONV_CASES = [
    ((2, 3, 7, 6), (3, 1, 3, 3), (1, 1), (1, 1), 3),  # depthwise 3x3, the Ghost cheap operation
    ((1, 4, 9, 8), (4, 1, 5, 5), (2, 2), (2, 2), 4),  # depthwise 5x5 stride 2 (conv_dw), odd H
    ((1, 3, 6, 5), (3, 1, 3, 3), (2, 2), (1, 1), 3),  # depthwise 3x3 stride 2, odd W
    ((2, 2, 5, 7), (2, 1, 1, 5), (1, 1), (0, 2), 2),  # DFC along W
    ((2, 2, 7, 5), (2, 1, 5, 1), (1, 1), (2, 0), 2),  # DFC along H
    ((1, 2, 3, 3), (2, 1, 5, 5), (1, 1), (2, 2), 2),  # kernel larger than the map: mostly padding
    ((1, 3, 9, 9), (4, 3, 3, 3), (2, 2), (1, 1), 1),  # dense stem 3x3 stride 2
    ((1, 4, 5, 6), (6, 2, 3, 3), (1, 2), (0, 1), 2),  # grouped, unequal strides and paddings
    ((1, 3, 4, 4), (5, 3, 1, 1), (2, 2), (0, 0), 1),  # 1x1 stride 2: not the BLAS path
]


def kernel(name, kind):
    """The loop ``_name`` as plain Python, or its compiled twin ``name``."""
    return getattr(numba_kernels, f"_{name}" if kind == "python" else name)


def assert_close(actual, expected, dtype):
    assert actual.dtype == expected.dtype == dtype and actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=RTOL[dtype])


def assert_conv_kernel(name, kind, dtype, seed, x_shape, w_shape, stride, padding, groups, channels_last=False):
    """Kernel ``name`` on random x, weight and bias gives ``numpy_ops.conv2d``'s result, with and without ReLU,
    writing every element of its output. ``channels_last``: x and out as (N, H, W, C), the weight as taps."""
    rng = np.random.default_rng(seed)
    x, weight = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    bias = rng.standard_normal(w_shape[0]).astype(dtype)
    if channels_last:  # (N, H, W, C) and the (kH, kW, C) taps
        args = np.ascontiguousarray(x.transpose(0, 2, 3, 1)), np.ascontiguousarray(weight[:, 0].transpose(1, 2, 0))
    else:
        args = x, weight
    for relu in (False, True):
        expected = numpy_ops.conv2d(x, weight, bias, stride, padding, groups, "relu" if relu else None)
        out = np.full(np.array(expected.shape)[[0, 2, 3, 1]] if channels_last else expected.shape, np.nan, dtype)
        kernel(name, kind)(*args, bias, *stride, *padding, relu, out)  # every element must be written
        assert_close(np.ascontiguousarray(out.transpose(0, 3, 1, 2)) if channels_last else out, expected, dtype)


@pytest.mark.parametrize("kind", KERNEL_KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, groups", CONV_CASES)
def test_conv2d_direct_matches_reference(kind, dtype, x_shape, w_shape, stride, padding, groups):
    assert_conv_kernel("conv2d_direct", kind, dtype, 0, x_shape, w_shape, stride, padding, groups)


@pytest.mark.parametrize("kind", KERNEL_KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, groups", [c for c in CONV_CASES if c[4] == 1])
def test_im2col_is_the_padded_input_under_each_tap(kind, dtype, x_shape, w_shape, stride, padding, groups):
    """Row (c, i, j) of the columns is the zero-padded input under tap (i, j) of channel c, one per output pixel."""
    x = np.random.default_rng(14).standard_normal(x_shape).astype(dtype)
    (n, c_in, h, w), (kh, kw), (sh, sw), (ph, pw) = x.shape, w_shape[2:], stride, padding
    h_out, w_out = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    expected = np.stack(
        [xpad[:, :, i : i + sh * h_out : sh, j : j + sw * w_out : sw] for i in range(kh) for j in range(kw)], axis=2
    ).reshape(n, c_in * kh * kw, h_out * w_out)
    columns = np.full(expected.shape, np.nan, dtype)  # every element must be written
    kernel("im2col", kind)(x, kh, kw, sh, sw, ph, pw, columns)
    np.testing.assert_array_equal(columns, expected)  # a gather: exact


DEPTHWISE_CASES = [case for case in CONV_CASES if case[1][1] == 1 and case[4] == case[0][1] == case[1][0]]


@pytest.mark.parametrize("kind", KERNEL_KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "x_shape, w_shape, stride, padding, groups",
    DEPTHWISE_CASES
    + [((1, 3, 7, 7), (3, 1, 5, 5), (2, 2), (2, 2), 3), ((2, 2, 14, 13), (2, 1, 3, 3), (1, 1), (1, 1), 2)],
)
def test_depthwise_conv2d_matches_reference(kind, dtype, x_shape, w_shape, stride, padding, groups):
    assert_conv_kernel("depthwise_conv2d", kind, dtype, 5, x_shape, w_shape, stride, padding, groups)


@pytest.mark.parametrize("kind", KERNEL_KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "x_shape, w_shape, stride, padding, groups",
    DEPTHWISE_CASES
    + [((1, 5, 7, 7), (5, 1, 5, 5), (2, 2), (2, 2), 5), ((2, 3, 6, 5), (3, 1, 3, 3), (1, 1), (1, 1), 3)],
)
def test_depthwise_conv2d_channels_last_matches_reference(kind, dtype, x_shape, w_shape, stride, padding, groups):
    """The small-map depthwise kernel: taps given as (kH, kW, C), input and output (N, H, W, C)."""
    assert_conv_kernel(
        "depthwise_conv2d_channels_last", kind, dtype, 9, x_shape, w_shape, stride, padding, groups, channels_last=True
    )


@pytest.mark.parametrize("kind", KERNEL_KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_chs, hw, gated", [(6, (5, 7), False), (5, (7, 7), True), (4, (3, 2), True)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_ghost_module_epilogue_matches_the_composition(kind, dtype, out_chs, hw, gated, channels_last):
    """After the 1 x 1 product: bias, ReLU, the cheap 3 x 3 into the second half, the gate, in one buffer.

    The per-channel epilogue finds the product in the output's first channels; the channels-last one
    takes it as (N, H * W, init_chs), the cheap weights as (9, init_chs) and the gate as (N, h, w, C), and
    writes (N, H, W, out_chs).
    """
    rng = np.random.default_rng(6)
    init_chs = -(-out_chs // 2)
    n, (h, w) = 2, hw
    primary = rng.standard_normal((n, init_chs, h, w)).astype(dtype)  # the 1 x 1 product, before its bias
    primary_bias, cheap_bias = (rng.standard_normal(init_chs).astype(dtype) for _ in range(2))
    cheap_weight = rng.standard_normal((init_chs, 1, 3, 3)).astype(dtype)
    gate = rng.uniform(size=(n, out_chs, h // 2, w // 2)).astype(dtype) if gated else np.zeros((0, 0, 0, 0), dtype)
    rows, cols = (numpy_ops.nearest_source_index(s // 2, s) for s in hw)
    for relu in (False, True):
        act = "relu" if relu else None
        intrinsic = numpy_ops.conv2d(primary, np.eye(init_chs)[:, :, None, None], primary_bias, act=act)
        ghost = numpy_ops.conv2d(intrinsic, cheap_weight, cheap_bias, padding=1, groups=init_chs, act=act)
        expected = np.concatenate([intrinsic, ghost], axis=1)[:, :out_chs]
        if gated:
            expected = expected * numpy_ops.upsample_nearest(gate, hw)
        out = np.full((n, out_chs, h, w), np.nan, dtype)
        if channels_last:
            primary_last = np.ascontiguousarray(primary.reshape(n, init_chs, h * w).transpose(0, 2, 1))
            cheap_taps = np.ascontiguousarray(cheap_weight.reshape(init_chs, 9).T)
            gate_last = np.ascontiguousarray(gate.transpose(0, 2, 3, 1))
            out_last = np.full((n, h, w, out_chs), np.nan, dtype)
            kernel("ghost_module_channels_last", kind)(
                primary_last, primary_bias, cheap_taps, cheap_bias, relu, gate_last, rows, cols, out_last
            )
            out = np.ascontiguousarray(out_last.transpose(0, 3, 1, 2))
        else:
            out[:, :init_chs] = primary
            kernel("ghost_module_epilogue", kind)(
                out, init_chs, primary_bias, cheap_weight, cheap_bias, relu, gate, rows, cols
            )
        assert_close(out, expected, dtype)


@pytest.mark.parametrize("kind", KERNEL_KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw", [(7, 7), (3, 2), (1, 6)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_dfc_gate_tail_matches_the_composition(kind, dtype, hw, channels_last):
    """Bias, the (1, 5) and the (5, 1) depthwise convolutions with their biases: the gate before its sigmoid."""
    rng = np.random.default_rng(7)
    n, c = 2, 3
    r = rng.standard_normal((n, c) + hw).astype(dtype)
    reduce_bias, row_bias, col_bias = (rng.standard_normal(c).astype(dtype) for _ in range(3))
    row_weight, col_weight = (rng.standard_normal((c, 1) + k).astype(dtype) for k in [(1, 5), (5, 1)])
    expected = r + reduce_bias[:, None, None]
    expected = numpy_ops.conv2d(expected, row_weight, row_bias, padding=(0, 2), groups=c)
    expected = numpy_ops.conv2d(expected, col_weight, col_bias, padding=(2, 0), groups=c)
    if channels_last:  # (N, h, w, C) in and out, the taps as (5, C)
        out = np.full((n,) + hw + (c,), np.nan, dtype)
        row_taps, col_taps = (np.ascontiguousarray(v.reshape(c, 5).T) for v in (row_weight, col_weight))
        r_last = np.ascontiguousarray(r.transpose(0, 2, 3, 1))
        kernel("dfc_gate_tail_channels_last", kind)(r_last, reduce_bias, row_taps, row_bias, col_taps, col_bias, out)
        out = out.transpose(0, 3, 1, 2)
    else:
        out = np.full_like(r, np.nan)
        kernel("dfc_gate_tail", kind)(r, reduce_bias, row_weight, row_bias, col_weight, col_bias, out)
    assert_close(np.ascontiguousarray(out), expected, dtype)


@pytest.mark.parametrize("kind", KERNEL_KINDS)
def test_conv2d_direct_by_hand(kind):
    """A 3 x 3 box filter with padding 1 sums each pixel's neighbourhood; bias -10 and ReLU clip it."""
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)  # [[0 1 2] [3 4 5] [6 7 8]]
    out = np.empty((1, 1, 3, 3))
    kernel("conv2d_direct", kind)(x, np.ones((1, 1, 3, 3)), np.array([-10.0]), 1, 1, 1, 1, True, out)
    box_sums = np.array([[8, 15, 12], [21, 36, 27], [20, 33, 24]], dtype=np.float64)
    np.testing.assert_array_equal(out[0, 0], np.maximum(box_sums - 10, 0))


@pytest.mark.parametrize("kind", KERNEL_KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_bias_act_in_place(kind, dtype):
    rng = np.random.default_rng(1)
    out, bias = rng.standard_normal((2, 3, 5)).astype(dtype), rng.standard_normal(3).astype(dtype)
    for relu in (False, True):
        y = out.copy()
        kernel("bias_act", kind)(y, bias, relu)
        expected = out + bias[:, None]
        assert_close(y, np.maximum(expected, 0) if relu else expected, dtype)


@pytest.mark.parametrize("kind", KERNEL_KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_bias_act_channels_last_in_place(kind, dtype):
    rng = np.random.default_rng(11)
    out, bias = rng.standard_normal((6, 5)).astype(dtype), rng.standard_normal(5).astype(dtype)
    for relu in (False, True):
        y = out.copy()
        kernel("bias_act_channels_last", kind)(y, bias, relu)
        expected = out + bias
        assert_close(y, np.maximum(expected, 0) if relu else expected, dtype)


@pytest.mark.parametrize("kind", KERNEL_KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("h, w", [(4, 6), (5, 7), (2, 3)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_avg_pool_2x2_matches_reference(kind, dtype, h, w, channels_last):
    x = np.random.default_rng(2).standard_normal((2, 3, h, w)).astype(dtype)
    if channels_last:  # (N, H, W, C) in and out
        out = np.full((2, h // 2, w // 2, 3), np.nan, dtype)
        kernel("avg_pool_2x2_channels_last", kind)(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), out)
        out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
    else:
        out = np.full((2, 3, h // 2, w // 2), np.nan, dtype)
        kernel("avg_pool_2x2", kind)(x, out)
    assert_close(out, numpy_ops.avg_pool_2x2(x), dtype)


@pytest.mark.parametrize("kind", KERNEL_KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_matches_reference(kind, dtype):
    x = np.array([[-1000.0, -30.0, -1.5, 0.0, 1e-3, 2.0, 40.0, 1000.0]], dtype)
    e = np.exp(-np.abs(x))
    out = np.empty_like(x)
    kernel("logistic_from_exp", kind)(x, e, out)
    assert_close(out, numpy_ops.sigmoid(x), dtype)
    kernel("logistic_from_exp", kind)(x, e, e)  # in place too (slower: the loop is not vectorised)
    assert_close(e, numpy_ops.sigmoid(x), dtype)


@pytest.mark.parametrize("kind", KERNEL_KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_channel_sums_and_scale_channels_last(kind, dtype):
    """Squeeze-and-excite's two loops over pixel rows (N, P, C): the sum over pixels, the gate multiplied in."""
    rng = np.random.default_rng(10)
    x, gate = rng.standard_normal((2, 9, 5)).astype(dtype), rng.uniform(size=(2, 5)).astype(dtype)
    sums, scaled = np.full((2, 5), np.nan, dtype), np.full_like(x, np.nan)
    kernel("channel_sums_channels_last", kind)(x, sums)
    kernel("scale_channels_last", kind)(x, gate, scaled)
    assert_close(sums, x.sum(axis=1), dtype)
    np.testing.assert_array_equal(scaled, x * gate[:, None, :])  # one rounding each: exactly NumPy's product


@pytest.mark.parametrize("kind", KERNEL_KINDS)
def test_float32_logistic_is_within_two_epsilons_of_the_exact_one(kind):
    """The float32 logistic with ``exp`` as a polynomial, against the logistic computed in float64: relative
    error below 2 ** -22 wherever the result is a normal float32, at most the smallest normal number below."""
    grid = np.linspace(-100, 100, 40002)  # about every 0.005, through the range where exp(-|x|) leaves float32
    edges = [0.0, -0.0, 1e-30, -1e-30, np.log(3.0), 87.0, -87.0, -87.3, -87.4, -88.0, -88.7, -104.0, 1e4, -1e4]
    x = np.concatenate([grid, edges, np.random.default_rng(8).standard_normal(2000) * 6]).astype(np.float32)
    out = np.full_like(x, np.nan)
    kernel("logistic_float32", kind)(x.reshape(2, -1), out.reshape(2, -1))  # any shape, viewed flat
    x64 = x.astype(np.float64)
    e = np.exp(-np.abs(x64))
    exact = np.where(x64 >= 0, 1 / (1 + e), e / (1 + e))
    tiny = np.finfo(np.float32).tiny
    bound = np.where(exact >= tiny, 2.0**-22 * exact, tiny)
    assert out.dtype == np.float32 and np.all(np.abs(out - exact) <= bound)
    np.testing.assert_array_equal(out[np.abs(x) >= 1e4], [1.0, 0.0])  # the limits, exactly


@pytest.mark.parametrize("kind", KERNEL_KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [(7, 7), (6, 9), (3, 2)])
def test_upsample_nearest_matches_reference(kind, dtype, size):
    x = np.random.default_rng(3).standard_normal((2, 2, 3, 4)).astype(dtype)
    rows = numpy_ops.nearest_source_index(3, size[0])
    cols = numpy_ops.nearest_source_index(4, size[1])
    out = np.empty((2, 2) + size, dtype)
    kernel("upsample_nearest", kind)(x, rows, cols, out)
    np.testing.assert_array_equal(out, numpy_ops.upsample_nearest(x, size))  # a gather: exact


def test_table_has_the_reference_ops_and_signatures():
    """Every op of OP_NAMES and FUSED_OP_NAMES, with the reference's signature; the accelerated ones are new."""
    for name in OP_NAMES + FUSED_OP_NAMES:
        fast, reference = getattr(numba_ops, name), getattr(numpy_ops, name)
        assert inspect.signature(fast) == inspect.signature(reference), name
        assert (fast is not reference) == (name in numba_ops.ACCELERATED), name
    assert set(numba_ops.ACCELERATED) <= set(OP_NAMES + FUSED_OP_NAMES)


@pytest.mark.parametrize("dtype", DTYPES)
def test_table_conv2d_pointwise_strided_input_and_none_bias(dtype):
    """The BLAS path (1x1, stride 1) and the direct path, fed a non-contiguous input and no bias."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 5, 6, 4)).astype(dtype).swapaxes(2, 3)  # (2, 5, 4, 6), strided
    for w_shape, groups in [((7, 5, 1, 1), 1), ((5, 1, 3, 3), 5)]:
        weight = rng.standard_normal(w_shape)  # float64 weights: cast to the input's dtype
        for act in (None, "relu"):
            expected = numpy_ops.conv2d(x, weight, None, 1, w_shape[2] // 2, groups, act)
            assert_close(numba_ops.conv2d(x, weight, None, 1, w_shape[2] // 2, groups, act), expected, dtype)


def test_table_conv2d_rejects_unknown_activation_and_bad_groups():
    x, weight = np.zeros((1, 4, 3, 3)), np.zeros((4, 1, 3, 3))
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        numba_ops.conv2d(x, weight, act="gelu")
    with pytest.raises(ValueError, match="groups=2"):
        numba_ops.conv2d(x, weight, groups=2)


def as_channels_last_view(x):
    """The same (N, C, H, W) values, held in an (N, H, W, C) buffer: the layout the table returns on small maps."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw", [(14, 14), (15, 14), (7, 5)])  # at, above and below CHANNELS_LAST_PIXELS
@pytest.mark.parametrize("layout", ["channels first", "channels last", "prepared weights"])
def test_table_ops_in_either_memory_layout(dtype, hw, layout):
    """Inputs and weights in any memory layout give the reference's values: an op's output layout (channels last
    on maps of at most ``CHANNELS_LAST_PIXELS``) and ``prepare_params`` are the table's business, not its callers'."""
    assert hw[0] * hw[1] - numba_ops.CHANNELS_LAST_PIXELS in (0, 14, -161)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 6) + hw).astype(dtype)
    weights = {
        "pointwise": rng.standard_normal((5, 6, 1, 1)),
        "depthwise": rng.standard_normal((6, 1, 3, 3)),
        "depthwise 5x5": rng.standard_normal((6, 1, 5, 5)),
        "ghost primary": rng.standard_normal((4, 6, 1, 1)),
        "ghost cheap": rng.standard_normal((4, 1, 3, 3)),
        "dfc reduce": rng.standard_normal((7, 6, 1, 1)),
        "dfc row": rng.standard_normal((7, 1, 1, 5)),
        "dfc col": rng.standard_normal((7, 1, 5, 1)),
    }
    bias = {key: rng.standard_normal(value.shape[0]) for key, value in weights.items()}
    fed_x = x if layout == "channels first" else as_channels_last_view(x)
    fed = numba_ops.prepare_params(weights) if layout == "prepared weights" else weights
    for key in weights:
        np.testing.assert_array_equal(fed[key], weights[key])
    gate = rng.uniform(size=(2, 7, hw[0] // 2, hw[1] // 2)).astype(dtype)

    def convs(table, *names):  # (weight, bias, weight, bias, ...) of the named convolutions
        return tuple(v for name in names for v in (table[name], bias[name]))

    cases = [  # op, its convolutions, its other arguments
        ("conv2d", ["pointwise"], (), {"act": "relu"}),
        ("conv2d", ["depthwise"], (1, 1, 6), {}),
        ("conv2d", ["depthwise 5x5"], (2, 2, 6), {}),
        ("avg_pool_2x2", [], (), {}),
        ("global_avg_pool", [], (), {}),
        ("ghost_module", ["ghost primary", "ghost cheap"], (7,), {"act": "relu", "gate": gate}),
        ("dfc_gate", ["dfc reduce", "dfc row", "dfc col"], (), {}),
    ]
    for name, names, rest, kwargs in cases:
        actual = getattr(numba_ops, name)(fed_x, *convs(fed, *names), *rest, **kwargs)
        expected = getattr(numpy_ops, name)(x, *convs(weights, *names), *rest, **kwargs)
        assert_close(np.ascontiguousarray(actual), expected, dtype)


def test_prepare_params_keeps_every_value_and_shape():
    rng = np.random.default_rng(13)
    params = {
        "conv.weight": rng.standard_normal((8, 3, 1, 1)),
        "dw.weight": rng.standard_normal((8, 1, 5, 5)),
        "stem.weight": rng.standard_normal((4, 3, 3, 3)),
        "conv.bias": rng.standard_normal(8),
        "classifier.weight": rng.standard_normal((10, 8)),
    }
    prepared = numba_ops.prepare_params(params)
    assert list(prepared) == list(params)
    for key, value in params.items():
        assert prepared[key].shape == value.shape and prepared[key].dtype == value.dtype, key
        np.testing.assert_array_equal(prepared[key], value)
    assert prepared["conv.weight"][:, :, 0, 0].T.flags.c_contiguous  # what a channels-last product reads
    assert prepared["dw.weight"][:, 0].transpose(1, 2, 0).flags.c_contiguous  # the (kH, kW, C) taps
    for key in ("stem.weight", "conv.bias", "classifier.weight"):
        assert prepared[key] is params[key]
    assert numpy_ops.prepare_params(params) is params
