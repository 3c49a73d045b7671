"""The op table's specification: every op agrees with ``torch.nn.functional`` (the same semantics, NCHW/OIHW).

Each op has a property test over random shapes (hypothesis) and one case computed by hand. All tests run
once per backend (the ``ops`` fixture of ``conftest.py``), so the Numba table is held to the same spec.

How results are compared: PyTorch computes the expected result in float64 from the very values the op was
given. A float64 result must agree to ``1e-10``, a float32 one to ``1e-5``, relative to a scale: the largest
magnitude of the expected result or, for sums of products (conv, linear, BN, mean), the largest sum of the
terms' magnitudes (the same op on absolute values). Rounding error is proportional to the terms, not to
their sum, which may cancel to almost nothing; an indexing or padding bug is an error of order 1.
"""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import conv_cases

from ghostnp.ops import OP_NAMES

RTOL = {np.float64: 1e-10, np.float32: 1e-5}
DTYPES = [np.float64, np.float32]

seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from(DTYPES)
sizes = st.integers(1, 20)
property_test = settings(max_examples=60, deadline=None)

# Every op of the table, each with a property test against PyTorch and a hand-computed case below.
SPECIFIED_OPS = {
    "conv2d", "batch_norm", "relu", "sigmoid", "hard_sigmoid", "avg_pool_2x2", "global_avg_pool",
    "upsample_nearest", "linear", "add", "multiply", "concat_channels", "slice_channels", "flatten",
    "dropout",
}  # fmt: skip


def test_every_op_of_the_table_is_specified_here(ops):
    assert set(OP_NAMES) == SPECIFIED_OPS, "an op was added to or removed from the table: specify it here"
    assert all(callable(getattr(ops, name)) for name in OP_NAMES)


def normal(rng, shape, dtype, contiguous=True):
    """Standard normal values of ``shape`` in ``dtype``; a non-contiguous (transposed) view if asked."""
    if contiguous or len(shape) < 2:
        return rng.standard_normal(shape).astype(dtype)
    return rng.standard_normal(shape[:-2] + shape[:-3:-1]).astype(dtype).swapaxes(-1, -2)  # strided view


def t64(a):
    """A NumPy array (any dtype, any strides) as a float64 torch tensor with the same values."""
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def assert_matches(actual, expected, dtype, scale=None):
    """``actual`` has ``dtype`` and ``expected``'s shape, and max |actual - expected| <= RTOL * scale."""
    expected = expected.numpy() if isinstance(expected, torch.Tensor) else expected
    assert actual.dtype == dtype, f"dtype {actual.dtype}, expected {np.dtype(dtype)}"
    assert actual.shape == expected.shape
    if scale is None:
        scale = np.abs(expected).max(initial=0.0)
    error = np.abs(actual.astype(np.float64) - expected).max(initial=0.0)
    assert error <= RTOL[dtype] * scale, f"max abs error {error:.3g} > {RTOL[dtype]:g} * scale {scale:.3g}"


def assert_each_close(actual, expected, dtype):
    """Element-wise relative agreement, for ops whose every output is rounded once (sigmoid, hard-sigmoid):
    |actual - expected| <= RTOL * |expected| + the dtype's smallest normal number (tails underflow)."""
    expected = expected.numpy()
    assert actual.dtype == dtype and actual.shape == expected.shape
    bound = RTOL[dtype] * np.abs(expected) + np.finfo(dtype).tiny
    worst = np.argmax(np.abs(actual - expected) - bound, axis=None)
    assert (np.abs(actual - expected) <= bound).all(), f"{actual.flat[worst]!r} != {expected.flat[worst]!r}"


# ---------------------------------------------------------------------------------------------------- conv2d


@property_test
@given(case=conv_cases(), dtype=dtypes, weight_dtype=dtypes, seed=seeds)
def test_conv2d_matches_torch(ops, case, dtype, weight_dtype, seed):
    rng = np.random.default_rng(seed)
    x = normal(rng, (case["n"], case["c_in"], *case["hw"]), dtype, case["contiguous"])
    weight = normal(rng, (case["c_out"], case["c_in"] // case["groups"], *case["kernel"]), weight_dtype)
    bias = normal(rng, (case["c_out"],), weight_dtype) if case["bias"] else None
    geometry = {"stride": case["stride"], "padding": case["padding"], "groups": case["groups"]}

    out = ops.conv2d(x, weight, bias, act=case["act"], **geometry)

    b64 = None if bias is None else t64(bias)
    expected = F.conv2d(t64(x), t64(weight), b64, **geometry)
    if case["act"] == "relu":
        expected = F.relu(expected)
    terms = F.conv2d(t64(x).abs(), t64(weight).abs(), None if bias is None else b64.abs(), **geometry)
    assert_matches(out, expected, dtype, scale=terms.max().item())


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_by_hand(ops, dtype):
    x = np.arange(1, 10, dtype=dtype).reshape(1, 1, 3, 3)  # [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    ones = np.ones((1, 1, 3, 3), dtype)
    np.testing.assert_array_equal(ops.conv2d(x, ones), [[[[45]]]])
    np.testing.assert_array_equal(
        ops.conv2d(x, ones, padding=1),
        [[[[12, 21, 16], [27, 45, 33], [24, 39, 28]]]],  # 3 x 3 neighbourhood sums
    )
    # Cross-correlation, not convolution: the top-left tap w[0, 0] reads the pixel up and to the left.
    corner_and_centre = np.array([[[[1, 0, 0], [0, 10, 0], [0, 0, 0]]]], dtype)
    expected = [[[[10, 20, 30], [40, 51, 62], [70, 84, 95]]]]
    np.testing.assert_array_equal(ops.conv2d(x, corner_and_centre, padding=1), expected)
    np.testing.assert_array_equal(
        ops.conv2d(x, corner_and_centre, np.array([0.5], dtype), stride=2, padding=1), [[[[10.5, 30.5], [70.5, 95.5]]]]
    )
    np.testing.assert_array_equal(ops.conv2d(-x, corner_and_centre, padding=1, act="relu"), np.zeros_like(x))
    # Depthwise: each channel its own 1 x 1 weight. (1, 5) kernel, padding (0, 2): a shift along W only.
    two_channels = np.stack([x[0, 0], x[0, 0]])[None]  # (1, 2, 3, 3)
    depthwise = ops.conv2d(two_channels, np.array([2, -1], dtype).reshape(2, 1, 1, 1), groups=2)
    np.testing.assert_array_equal(depthwise, np.stack([2 * x[0, 0], -x[0, 0]])[None])
    row = np.array([[[[1, 2, 3, 4, 5]]]], dtype)
    np.testing.assert_array_equal(
        ops.conv2d(row, np.array([[[[1, 0, 0, 0, 0]]]], dtype), padding=(0, 2)), [[[[0, 0, 1, 2, 3]]]]
    )
    assert ops.conv2d(x, ones).dtype == dtype


def test_conv2d_rejects_an_unknown_activation(ops):
    with pytest.raises(ValueError, match="relu"):
        ops.conv2d(np.zeros((1, 1, 3, 3)), np.ones((1, 1, 1, 1)), act="gelu")


# ------------------------------------------------------------------------------------------------ batch_norm


batch_norm_shapes = st.tuples(st.integers(1, 3), st.integers(1, 8)).flatmap(
    lambda nc: st.just(nc) | st.tuples(st.just(nc[0]), st.just(nc[1]), sizes, sizes)
)  # (N, C) after the head, or (N, C, H, W)


@property_test
@given(shape=batch_norm_shapes, dtype=dtypes, param_dtype=dtypes, seed=seeds)
def test_batch_norm_matches_torch(ops, shape, dtype, param_dtype, seed):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = normal(rng, shape, dtype)
    weight, bias, mean = (normal(rng, (c,), param_dtype) for _ in range(3))
    var = rng.uniform(0.0, 3.0, c).astype(param_dtype)  # includes near-zero variances: eps matters

    out = ops.batch_norm(x, weight, bias, mean, var)

    expected = F.batch_norm(t64(x), t64(mean), t64(var), t64(weight), t64(bias), training=False, eps=1e-5)
    terms = F.batch_norm(t64(x).abs(), -t64(mean).abs(), t64(var), t64(weight).abs(), t64(bias).abs(), eps=1e-5)
    assert_matches(out, expected, dtype, scale=terms.abs().max().item())


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_by_hand(ops, dtype):
    x = np.array([2, 4, 6], dtype).reshape(1, 1, 1, 3)
    one = lambda v: np.array([v], dtype)  # noqa: E731
    # (x - 2) / sqrt(4) * 3 + 1
    np.testing.assert_array_equal(ops.batch_norm(x, one(3), one(1), one(2), one(4), eps=0.0), [[[[1, 4, 7]]]])
    # The default eps is 1e-5: 1 / sqrt(0 + 1e-5) = 316.2277...
    default_eps = ops.batch_norm(np.ones((1, 1), dtype), one(1), one(0), one(0), one(0))
    np.testing.assert_allclose(default_eps, [[316.22776601683796]], rtol=RTOL[dtype])
    assert default_eps.dtype == dtype


# ------------------------------------------------------------------------------------------------ activations

elementwise_shapes = st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple)


@property_test
@given(shape=elementwise_shapes, dtype=dtypes, seed=seeds, magnitude=st.sampled_from([1.0, 10.0, 1000.0]))
def test_activations_match_torch(ops, shape, dtype, seed, magnitude):
    x = (magnitude * normal(np.random.default_rng(seed), shape, dtype)).astype(dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        relu, sigmoid, hard_sigmoid = ops.relu(x), ops.sigmoid(x), ops.hard_sigmoid(x)
    np.testing.assert_array_equal(relu, F.relu(torch.from_numpy(x)).numpy())
    assert relu.dtype == dtype
    assert_each_close(sigmoid, torch.sigmoid(t64(x)), dtype)
    assert_each_close(hard_sigmoid, F.relu6(t64(x) + 3) / 6, dtype)
    assert_each_close(hard_sigmoid, F.hardsigmoid(t64(x)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_activations_by_hand(ops, dtype):
    x = np.array([-2.0, 0.0, 3.0], dtype)
    np.testing.assert_array_equal(ops.relu(x), [0.0, 0.0, 3.0])
    extreme = np.array([0.0, np.log(3.0), -np.log(3.0), 1000.0, -1000.0], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning, and the limits 1 and 0
        np.testing.assert_allclose(ops.sigmoid(extreme), [0.5, 0.75, 0.25, 1.0, 0.0], rtol=RTOL[dtype], atol=0)
    np.testing.assert_array_equal(
        ops.hard_sigmoid(np.array([-4.0, -3.0, 0.0, 1.5, 3.0, 5.0], dtype)), [0.0, 0.0, 0.5, 0.75, 1.0, 1.0]
    )
    assert ops.relu(x).dtype == ops.sigmoid(x).dtype == ops.hard_sigmoid(x).dtype == dtype


# ------------------------------------------------------------------------------------------------- pooling


@property_test
@given(n=st.integers(1, 2), c=st.integers(1, 4), h=st.integers(2, 20), w=st.integers(2, 20), dtype=dtypes,
       seed=seeds, contiguous=st.booleans())  # fmt: skip
def test_avg_pool_2x2_matches_torch_floor_mode(ops, n, c, h, w, dtype, seed, contiguous):
    x = normal(np.random.default_rng(seed), (n, c, h, w), dtype, contiguous)
    out = ops.avg_pool_2x2(x)
    assert out.shape == (n, c, h // 2, w // 2)
    expected = F.avg_pool2d(t64(x), kernel_size=2, stride=2, ceil_mode=False)
    assert_matches(out, expected, dtype, scale=F.avg_pool2d(t64(x).abs(), 2, 2).max().item())


@pytest.mark.parametrize("dtype", DTYPES)
def test_avg_pool_2x2_by_hand(ops, dtype):
    x = np.arange(15, dtype=dtype).reshape(1, 1, 3, 5)  # the last row and column are dropped
    np.testing.assert_array_equal(ops.avg_pool_2x2(x), [[[[3.0, 5.0]]]])  # (0+1+5+6)/4, (2+3+7+8)/4
    assert ops.avg_pool_2x2(x).dtype == dtype


@pytest.mark.parametrize("hw", [(1, 5), (5, 1), (1, 1)])
def test_avg_pool_2x2_rejects_maps_smaller_than_2x2(ops, hw):
    with pytest.raises(ValueError, match=f"{hw[0]} x {hw[1]}"):
        ops.avg_pool_2x2(np.zeros((1, 2, *hw)))


@property_test
@given(n=st.integers(1, 2), c=st.integers(1, 4), h=sizes, w=sizes, dtype=dtypes, seed=seeds)
def test_global_avg_pool_matches_torch(ops, n, c, h, w, dtype, seed):
    x = normal(np.random.default_rng(seed), (n, c, h, w), dtype)
    expected = F.adaptive_avg_pool2d(t64(x), 1)
    assert_matches(ops.global_avg_pool(x), expected, dtype, scale=np.abs(x).astype(np.float64).mean(axis=(2, 3)).max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_global_avg_pool_by_hand(ops, dtype):
    x = np.array([[[[1, 2], [3, 6]], [[-1, 1], [0, 0]]]], dtype)  # (1, 2, 2, 2)
    np.testing.assert_array_equal(ops.global_avg_pool(x), [[[[3.0]], [[0.0]]]])
    assert ops.global_avg_pool(x).dtype == dtype


# --------------------------------------------------------------------------------------------- upsampling


def test_upsample_nearest_matches_torch_for_all_sizes_1_to_20(ops):
    """Every (in, out) pair of 1..20 along H, with a different, non-square pair along W."""
    for h_in in range(1, 21):
        for h_out in range(1, 21):
            w_in, w_out = 21 - h_in, 1 + (h_out * 7) % 20
            x = np.arange(2 * h_in * w_in, dtype=np.float64).reshape(1, 2, h_in, w_in)  # all values distinct
            expected = F.interpolate(torch.from_numpy(x), size=(h_out, w_out), mode="nearest").numpy()
            out = ops.upsample_nearest(x, (h_out, w_out))
            np.testing.assert_array_equal(out, expected, f"{x.shape} -> {h_out, w_out}")


def test_upsample_nearest_matches_torch_at_every_gate_size_of_the_network(ops):
    """The DFC gate goes from (s // 2) back to s: every side s of a gated map for inputs up to 2048 (the first
    gated stage runs at 1/4 resolution)."""
    for s in range(2, 513):
        x = np.arange(s // 2, dtype=np.float32).reshape(1, 1, s // 2, 1)
        expected = F.interpolate(torch.from_numpy(x), size=(s, 1), mode="nearest").numpy()
        np.testing.assert_array_equal(ops.upsample_nearest(x, (s, 1)), expected, f"{s // 2} -> {s}")


@property_test
@given(n=st.integers(1, 2), c=st.integers(1, 3), h_in=sizes, w_in=sizes, h_out=sizes, w_out=sizes, dtype=dtypes,
       seed=seeds, contiguous=st.booleans())  # fmt: skip
def test_upsample_nearest_matches_torch_on_random_maps(ops, n, c, h_in, w_in, h_out, w_out, dtype, seed, contiguous):
    x = normal(np.random.default_rng(seed), (n, c, h_in, w_in), dtype, contiguous)
    out = ops.upsample_nearest(x, (h_out, w_out))
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, F.interpolate(torch.from_numpy(np.array(x)), size=(h_out, w_out)).numpy())


@property_test
@given(h_in=st.integers(1, 300), h_out=st.integers(1, 600), dtype=dtypes)
def test_upsample_nearest_uses_torch_float32_index_rule_at_large_sizes(ops, h_in, h_out, dtype):
    """Beyond ~80 outputs the ratio's float32 rounding decides some indices. ghostnp follows ATen's float32
    rule for every dtype (PyTorch's float64 kernel rounds differently at some non-gate ratios, e.g. 2 -> 164;
    the two agree on every gate size, see the test above)."""
    x = np.arange(h_in, dtype=dtype).reshape(1, 1, h_in, 1)
    expected = F.interpolate(torch.arange(h_in, dtype=torch.float32).reshape(1, 1, h_in, 1), size=(h_out, 1))
    np.testing.assert_array_equal(ops.upsample_nearest(x, (h_out, 1)), expected.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_upsample_nearest_by_hand(ops, dtype):
    """PyTorch's legacy rule src = floor(dst * in / out): not 'nearest-exact', not np.repeat."""
    x = np.array([10, 20, 30], dtype).reshape(1, 1, 3, 1)
    np.testing.assert_array_equal(ops.upsample_nearest(x, (7, 1)).ravel(), [10, 10, 10, 20, 20, 30, 30])
    np.testing.assert_array_equal(ops.upsample_nearest(x, (2, 1)).ravel(), [10, 20])  # 0, floor(1.5) = 1
    # 2 -> 82: row 41 reads 41 * float32(2 / 82) = 0.99999994, so source row 0 (exact arithmetic says 1)
    rows = ops.upsample_nearest(np.array([0, 1], dtype).reshape(1, 1, 2, 1), (82, 1)).ravel()
    np.testing.assert_array_equal(np.flatnonzero(rows), np.arange(42, 82))
    x = np.arange(6, dtype=dtype).reshape(1, 1, 2, 3)  # rows 2 -> 5: 0,0,0,1,1; cols 3 -> 4: 0,0,1,2
    expected = [[0, 0, 1, 2], [0, 0, 1, 2], [0, 0, 1, 2], [3, 3, 4, 5], [3, 3, 4, 5]]
    np.testing.assert_array_equal(ops.upsample_nearest(x, (5, 4))[0, 0], expected)
    assert ops.upsample_nearest(x, (5, 4)).dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_dfc_gate_geometry_7_to_3_to_7(ops, dtype):
    """The last stage at 224 x 224: a 7 x 7 map is pooled to 3 x 3 (row and column 6 dropped), then
    upsampled back with rows and columns 0, 0, 0, 1, 1, 2, 2."""
    x = np.arange(49, dtype=dtype).reshape(1, 1, 7, 7)
    pooled = ops.avg_pool_2x2(x)
    np.testing.assert_array_equal(pooled[0, 0], [[4, 6, 8], [18, 20, 22], [32, 34, 36]])  # 14 i + 2 j + 4
    gate = ops.upsample_nearest(pooled, (7, 7))
    p = pooled[0, 0]
    np.testing.assert_array_equal(gate[0, 0], p[[0, 0, 0, 1, 1, 2, 2]][:, [0, 0, 0, 1, 1, 2, 2]])
    expected = F.interpolate(F.avg_pool2d(torch.from_numpy(x), 2, 2), size=(7, 7), mode="nearest")
    np.testing.assert_array_equal(gate, expected.numpy())
    assert gate.dtype == dtype


# ----------------------------------------------------------------------------------------- linear and friends


@property_test
@given(n=st.integers(1, 4), n_in=st.integers(1, 30), n_out=st.integers(1, 30), bias=st.booleans(), dtype=dtypes,
       weight_dtype=dtypes, seed=seeds)  # fmt: skip
def test_linear_matches_torch(ops, n, n_in, n_out, bias, dtype, weight_dtype, seed):
    rng = np.random.default_rng(seed)
    x, weight = normal(rng, (n, n_in), dtype), normal(rng, (n_out, n_in), weight_dtype)
    b = normal(rng, (n_out,), weight_dtype) if bias else None
    b64 = None if b is None else t64(b)
    terms = F.linear(t64(x).abs(), t64(weight).abs(), None if b is None else b64.abs())
    assert_matches(ops.linear(x, weight, b), F.linear(t64(x), t64(weight), b64), dtype, scale=terms.max().item())


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_by_hand(ops, dtype):
    x = np.array([[1, 2]], dtype)
    weight = np.array([[1, 0], [0, 1], [1, 1]], dtype)
    np.testing.assert_array_equal(ops.linear(x, weight, np.array([0, 0, 10], dtype)), [[1, 2, 13]])
    np.testing.assert_array_equal(ops.linear(x, weight), [[1, 2, 3]])
    assert ops.linear(x, weight).dtype == dtype


@property_test
@given(n=st.integers(1, 2), ca=st.integers(1, 4), cb=st.integers(1, 4), h=sizes, w=sizes, dtype=dtypes, seed=seeds)
def test_elementwise_and_channel_ops_match_torch(ops, n, ca, cb, h, w, dtype, seed):
    rng = np.random.default_rng(seed)
    a, b, c = normal(rng, (n, ca, h, w), dtype), normal(rng, (n, ca, h, w), dtype), normal(rng, (n, cb, h, w), dtype)
    per_channel = normal(rng, (n, ca, 1, 1), dtype)  # an SE gate
    ta, tb, tc, tg = (torch.from_numpy(v) for v in (a, b, c, per_channel))
    for out, expected in [
        (ops.add(a, b), ta + tb),
        (ops.multiply(a, b), ta * tb),
        (ops.multiply(a, per_channel), ta * tg),
        (ops.concat_channels(a, c), torch.cat([ta, tc], dim=1)),
        (ops.slice_channels(ops.concat_channels(a, c), ca + cb - 1), torch.cat([ta, tc], dim=1)[:, : ca + cb - 1]),
        (ops.flatten(a), ta.flatten(1)),
        (ops.flatten(per_channel), tg.flatten(1)),
    ]:
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, expected.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_elementwise_and_channel_ops_by_hand(ops, dtype):
    a = np.array([1, 2], dtype).reshape(1, 2, 1, 1)
    b = np.array([3, -4], dtype).reshape(1, 2, 1, 1)
    np.testing.assert_array_equal(ops.add(a, b).ravel(), [4, -2])
    np.testing.assert_array_equal(ops.multiply(a, b).ravel(), [3, -8])
    np.testing.assert_array_equal(ops.multiply(np.ones((1, 2, 2, 2), dtype), a)[0, :, 1, 1], [1, 2])
    np.testing.assert_array_equal(ops.concat_channels(a, b).ravel(), [1, 2, 3, -4])
    np.testing.assert_array_equal(ops.slice_channels(ops.concat_channels(a, b), 3).ravel(), [1, 2, 3])
    np.testing.assert_array_equal(ops.flatten(ops.concat_channels(a, b)), [[1, 2, 3, -4]])
    for op in (ops.add, ops.multiply, ops.concat_channels):
        assert op(a, b).dtype == dtype
    assert ops.slice_channels(a, 1).dtype == ops.flatten(a).dtype == dtype


@property_test
@given(n=st.integers(1, 3), f=sizes, rate=st.sampled_from([0.0, 0.2, 0.5, 0.9]), dtype=dtypes, seed=seeds)
def test_dropout_matches_torch_given_its_mask(ops, n, f, rate, dtype, seed):
    """F.dropout in training draws a mask and rescales the kept units; given the mask torch drew (read off its
    output: the inputs are never 0), the op computes the same. At inference (no mask) it returns its input
    itself, as ``F.dropout(x, p, training=False)`` does."""
    rng = np.random.default_rng(seed)
    x = normal(rng, (n, f), dtype)
    torch.manual_seed(seed)
    expected = F.dropout(t64(x), rate, training=True)
    keep = (expected != 0).numpy().astype(dtype)
    out = ops.dropout(x, rate, keep)
    assert_matches(out, expected, dtype)
    assert ops.dropout(x, rate) is x


def test_dropout_by_hand(ops):
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_array_equal(ops.dropout(x, 0.5, np.array([[1.0, 0.0, 0.0, 1.0]])), [[2.0, 0.0, 0.0, 8.0]])
