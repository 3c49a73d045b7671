"""Blocks against the PyTorch reference: the Ghost module in both modes, the DFC branch alone, squeeze-excite
and the Ghost bottleneck in all its variants (stride, SE, identity and conv shortcuts), float64, both
backends, with and without BatchNorm folded."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_reference import GhostBottleneck, GhostModule, SqueezeExcite, randomize_batchnorm

from ghostnp import fold_batchnorm
from ghostnp.network import layers
from ghostnp.network.architecture import BlockSpec, make_divisible
from ghostnp.ops import get_ops

PREFIX = "block"


def numpy_params(module, fold):
    """The module's state_dict under PREFIX, as float64 arrays; optionally BatchNorm-folded."""
    params = {f"{PREFIX}.{k}": v.detach().numpy().astype(np.float64) for k, v in module.state_dict().items()}
    params = {k: v for k, v in params.items() if not k.endswith("num_batches_tracked")}
    return fold_batchnorm(params) if fold else params


def torch_reference(module, x):
    with torch.no_grad():
        return module.double().eval()(torch.from_numpy(x)).numpy()


def assert_close(actual, expected):
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max())


channels = st.integers(1, 12)
sizes = st.integers(2, 17)


@settings(max_examples=25, deadline=None)
@given(
    in_chs=channels,
    out_chs=channels,
    h=sizes,
    w=sizes,
    mode=st.sampled_from(["original", "attn"]),
    use_act=st.booleans(),
    fold=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_ghost_module(backend, in_chs, out_chs, h, w, mode, use_act, fold, seed):
    torch.manual_seed(seed)
    module = randomize_batchnorm(GhostModule(in_chs, out_chs, relu=use_act, mode=mode), seed)
    x = np.random.default_rng(seed).normal(size=(2, in_chs, h, w))
    out = layers.ghost_module(
        get_ops(backend), numpy_params(module, fold), PREFIX, x, out_chs=out_chs, use_act=use_act, mode=mode
    )
    assert_close(out, torch_reference(module, x))


@settings(max_examples=25, deadline=None)
@given(in_chs=channels, out_chs=channels, h=sizes, w=sizes, seed=st.integers(0, 2**16))
def test_dfc_gate_alone_before_and_after_upsampling(backend, in_chs, out_chs, h, w, seed):
    torch.manual_seed(seed)
    module = randomize_batchnorm(GhostModule(in_chs, out_chs, mode="attn"), seed).double().eval()
    x = np.random.default_rng(seed).normal(size=(1, in_chs, h, w))
    trace = {}
    upsampled = layers.dfc_attention(
        get_ops(backend), numpy_params(module, False), f"{PREFIX}.short_conv", x, (h, w), trace=trace
    )
    with torch.no_grad():
        gate = module.dfc_gate(torch.from_numpy(x))
        expected_upsampled = torch.nn.functional.interpolate(gate, size=(h, w), mode="nearest").numpy()
    assert_close(trace[f"{PREFIX}.short_conv.gate"], gate.numpy())  # (1, out_chs, h // 2, w // 2)
    assert_close(upsampled, expected_upsampled)  # (1, out_chs, h, w)
    assert trace[f"{PREFIX}.short_conv.gate"].shape == (1, out_chs, h // 2, w // 2)


def test_dfc_gate_on_a_7x7_map_uses_the_legacy_nearest_rows(backend):
    """7 x 7 -> pool -> 3 x 3 -> upsample -> 7 x 7: rows and columns 0, 0, 0, 1, 1, 2, 2 (not np.repeat)."""
    module = randomize_batchnorm(GhostModule(4, 4, mode="attn"), seed=0).double()
    x = np.random.default_rng(0).normal(size=(1, 4, 7, 7))
    trace = {}
    layers.dfc_attention(get_ops(backend), numpy_params(module, False), f"{PREFIX}.short_conv", x, (7, 7), trace=trace)
    gate, upsampled = trace[f"{PREFIX}.short_conv.gate"], trace[f"{PREFIX}.short_conv.gate_upsampled"]
    rows = [0, 0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(upsampled, gate[:, :, rows][:, :, :, rows])


@settings(max_examples=20, deadline=None)
@given(chs=st.integers(4, 16), h=sizes, w=sizes, seed=st.integers(0, 2**16))
def test_squeeze_excite(backend, chs, h, w, seed):
    torch.manual_seed(seed)
    module = SqueezeExcite(chs, 0.25)
    x = np.random.default_rng(seed).normal(size=(2, chs, h, w))
    out = layers.squeeze_excite(get_ops(backend), numpy_params(module, False), PREFIX, x)
    assert_close(out, torch_reference(module, x))


@settings(max_examples=30, deadline=None)
@given(
    in_chs=st.integers(2, 12),
    mid_chs=st.integers(2, 16),
    out_chs=st.integers(2, 12),
    k=st.sampled_from([3, 5]),
    stride=st.sampled_from([1, 2]),
    se=st.sampled_from([0.0, 0.25]),
    mode=st.sampled_from(["original", "attn"]),
    h=st.integers(2, 15),
    w=st.integers(2, 15),
    fold=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_ghost_bottleneck(backend, in_chs, mid_chs, out_chs, k, stride, se, mode, h, w, fold, seed):
    torch.manual_seed(seed)
    module = randomize_batchnorm(GhostBottleneck(in_chs, mid_chs, out_chs, k, stride, se, mode), seed)
    se_chs = make_divisible(mid_chs * se) if se else 0
    spec = BlockSpec(PREFIX, 0, in_chs, mid_chs, out_chs, k, stride, se_chs, mode)
    x = np.random.default_rng(seed).normal(size=(2, in_chs, h, w))
    out = layers.ghost_bottleneck(get_ops(backend), numpy_params(module, fold), spec, x)
    assert_close(out, torch_reference(module, x))


@pytest.mark.parametrize(
    "in_chs,out_chs,stride",
    [(16, 16, 1), (80, 112, 1), (16, 24, 2)],
    ids=["identity", "conv-shortcut-stride-1 (blocks.6.3)", "conv-shortcut-stride-2"],
)
def test_bottleneck_shortcut_kinds_and_param_shapes(in_chs, out_chs, stride):
    spec = BlockSpec(PREFIX, 0, in_chs, 48, out_chs, 3, stride, 12, "attn")
    module = GhostBottleneck(in_chs, 48, out_chs, 3, stride, 0.25, "attn")
    expected = {f"{PREFIX}.{k}": tuple(v.shape) for k, v in module.state_dict().items() if "num_batches" not in k}
    assert layers.ghost_bottleneck_shapes(spec) == expected
    assert list(layers.ghost_bottleneck_shapes(spec)) == list(expected)  # state_dict order
    assert spec.has_conv_shortcut == (in_chs != out_chs or stride != 1)
