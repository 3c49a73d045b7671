"""The fused ops of every table equal their reference compositions (``ghostnp.ops.fused``) of primitive ops.

``ghost_module`` and ``dfc_gate`` are what ``ghostnp.network.layers`` calls once BatchNorm is folded, and
``squeeze_excite`` what it calls whenever nothing is traced; each
table must give the result of the composition run on the NumPy table, to rounding, at the map sizes the
network has (7 x 7, 14 x 14, odd sizes), with and without the DFC gate, for an odd ``out_chs`` (the ghost
half is sliced) and a non-contiguous input. The network-level tests (``test_model.py``) run them too.
"""

import numpy as np
import pytest

from ghostnp.ops import FUSED_OP_NAMES, fused, numpy_ops

RTOL = {np.float64: 1e-10, np.float32: 1e-5}
DTYPES = [np.float64, np.float32]


def ghost_module_args(rng, dtype, n, in_chs, out_chs, hw, gated):
    init_chs = -(-out_chs // 2)
    x = rng.standard_normal((n, in_chs) + hw).astype(dtype)
    weights = (
        rng.standard_normal((init_chs, in_chs, 1, 1)),  # float64 weights: cast to the input's dtype
        rng.standard_normal(init_chs),
        rng.standard_normal((init_chs, 1, 3, 3)),
        rng.standard_normal(init_chs),
    )
    gate = rng.uniform(size=(n, out_chs, hw[0] // 2, hw[1] // 2)).astype(dtype) if gated else None
    return x, weights, gate


def test_every_fused_op_has_a_reference_composition(ops):
    for name in FUSED_OP_NAMES:
        assert callable(getattr(fused, name)) and callable(getattr(ops, name)), name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "n, in_chs, out_chs, hw, gated",
    [
        (1, 5, 8, (7, 7), False),
        (2, 4, 7, (14, 13), True),
        (1, 3, 6, (9, 8), True),
        (2, 6, 5, (3, 4), False),
        (1, 3, 6, (15, 14), True),  # above 14 x 14: the per-channel epilogue of the fast table
    ],
)
@pytest.mark.parametrize("act", [None, "relu"])
def test_ghost_module_equals_its_composition(ops, dtype, n, in_chs, out_chs, hw, gated, act):
    x, weights, gate = ghost_module_args(np.random.default_rng(out_chs), dtype, n, in_chs, out_chs, hw, gated)
    expected = fused.ghost_module(numpy_ops, x, *weights, out_chs, act, gate)
    actual = ops.ghost_module(x, *weights, out_chs, act, gate)
    assert actual.dtype == dtype and actual.shape == (n, out_chs) + hw
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "n, in_chs, chs, hw", [(1, 4, 6, (14, 14)), (2, 3, 5, (7, 9)), (1, 2, 3, (2, 3)), (1, 3, 4, (30, 29))]
)
def test_dfc_gate_equals_its_composition(ops, dtype, n, in_chs, chs, hw):
    rng = np.random.default_rng(chs)
    x = rng.standard_normal((n, in_chs) + hw).astype(dtype)[:, :, ::-1]  # a non-contiguous input
    shapes = [(chs, in_chs, 1, 1), chs, (chs, 1, 1, 5), chs, (chs, 1, 5, 1), chs]
    weights = [rng.standard_normal(shape) for shape in shapes]
    expected = fused.dfc_gate(numpy_ops, x, *weights)
    actual = ops.dfc_gate(x, *weights)
    assert actual.dtype == dtype and actual.shape == (n, chs, hw[0] // 2, hw[1] // 2)
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "n, chs, se_chs, hw", [(1, 8, 2, (7, 7)), (2, 6, 3, (14, 13)), (1, 5, 2, (15, 16)), (2, 4, 1, (1, 1))]
)
@pytest.mark.parametrize("layout", ["contiguous", "channels last", "reversed rows"])
def test_squeeze_excite_equals_its_composition(ops, dtype, n, chs, se_chs, hw, layout):
    """On every layout the network hands it: NCHW, a channels-last buffer seen as NCHW, a strided view."""
    rng = np.random.default_rng(chs)
    x = rng.standard_normal((n, chs) + hw).astype(dtype)
    if layout == "channels last":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    elif layout == "reversed rows":
        x = x[:, :, ::-1]
    shapes = [(se_chs, chs, 1, 1), se_chs, (chs, se_chs, 1, 1), chs]
    weights = [rng.standard_normal(shape) for shape in shapes]
    expected = fused.squeeze_excite(numpy_ops, x, *weights)
    actual = ops.squeeze_excite(x, *weights)
    assert actual.dtype == dtype and actual.shape == x.shape
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=RTOL[dtype])


def test_squeeze_excite_by_hand(ops):
    """Two channels, means 1 and 3; identity reduce and expand with biases -1 and 0: gates hard_sigmoid(0) = 0.5
    and hard_sigmoid(3) = 1; the first channel's pixels are halved, the second's kept."""
    x = np.stack([np.array([[0.0, 2.0], [1.0, 1.0]]), np.full((2, 2), 3.0)])[None]  # (1, 2, 2, 2)
    eye = np.eye(2)[:, :, None, None]
    out = ops.squeeze_excite(x, eye, np.array([-1.0, 0.0]), eye, np.zeros(2))
    np.testing.assert_array_equal(out, x * np.array([0.5, 1.0])[None, :, None, None])


def test_ghost_module_by_hand(ops):
    """One input channel of ones, identity 1 x 1, a 3 x 3 box filter: the ghost half counts each pixel's
    neighbours inside the map (4 at a corner, 6 on an edge, 9 inside); out_chs 3 keeps one ghost channel."""
    x = np.ones((1, 1, 3, 3))
    primary_weight, cheap_weight = np.ones((2, 1, 1, 1)), np.ones((2, 1, 3, 3))
    out = ops.ghost_module(x, primary_weight, np.zeros(2), cheap_weight, np.array([-5.0, 0.0]), 3, "relu")
    np.testing.assert_array_equal(out[0, :2], np.ones((2, 3, 3)))
    np.testing.assert_array_equal(out[0, 2], np.maximum(np.array([[4, 6, 4], [6, 9, 6], [4, 6, 4]]) - 5, 0))


def test_the_recording_table_runs_a_fused_op_as_its_primitives():
    """On the tape a fused op is its composition: every primitive is recorded, and gradients flow through."""
    from ghostnp.autodiff.record import Tape

    rng = np.random.default_rng(8)
    x, weights, gate = ghost_module_args(rng, np.float64, 1, 3, 5, (6, 6), gated=True)
    tape = Tape(x, gate)
    out = tape.ghost_module(x, *weights, 5, "relu", gate)
    assert [r.op for r in tape.records] == [
        "conv2d", "conv2d", "concat_channels", "slice_channels", "upsample_nearest", "multiply",
    ]  # fmt: skip
    np.testing.assert_allclose(out, numpy_ops.ghost_module(x, *weights, 5, "relu", gate), rtol=1e-12)
    grad_x, grad_gate = tape.gradient(out, np.ones_like(out))
    step = np.zeros_like(x)
    step[0, 1, 2, 3] = 1e-6
    numeric = (numpy_ops.ghost_module(x + step, *weights, 5, "relu", gate).sum() - out.sum()) / 1e-6
    assert abs(grad_x[0, 1, 2, 3] - numeric) < 1e-4 * max(1, abs(numeric))
    assert grad_gate.shape == gate.shape and np.any(grad_gate)
