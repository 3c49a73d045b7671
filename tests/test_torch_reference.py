"""The PyTorch reference model is itself checked against published facts before anything is checked against it.

Facts (from the GhostNetV2 paper, the authors' code and timm 1.0.31): the state_dict key lists in
``tests/data/keys_*.tsv``, and the parameter and multiply-add totals below.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch_reference import (
    MODELS,
    GhostBottleneck,
    GhostModule,
    SqueezeExcite,
    build_torch_model,
    build_torch_model_width,
    hard_sigmoid,
    make_divisible,
    randomize_batchnorm,
    state_dict_numpy,
    torch_forward,
)

DATA = Path(__file__).parent / "data"

# name -> (parameters, conv + linear multiply-adds at 224 x 224 in millions, rounded to 0.1 M)
PUBLISHED_TOTALS = {
    "ghostnetv2_100": (6_156_908, 167.0),
    "ghostnetv2_130": (8_960_404, 269.3),
    "ghostnetv2_160": (12_392_698, 398.6),
    "ghostnet_100": (5_182_508, 141.2),
}
DFC_PARAMS_AT_WIDTH_1 = 974_400  # the 14 DFC branches of ghostnetv2_100
DFC_BRANCHES = 14


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {name: build_torch_model(name) for name in MODELS}


def read_key_list(name):
    """[(key, shape, dtype)] from ``tests/data/keys_<name>.tsv`` (header: key, shape, dtype)."""
    lines = (DATA / f"keys_{name}.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["key", "shape", "dtype"]
    return [(key, tuple(json.loads(shape)), dtype) for key, shape, dtype in (line.split("\t") for line in lines[1:])]


@pytest.mark.parametrize("name", list(MODELS))
def test_state_dict_keys_order_shapes_and_dtypes_match_the_key_list(models, name):
    actual = [(k, tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in models[name].state_dict().items()]
    expected = read_key_list(name)
    assert len(actual) == len(expected) == (512 if name == "ghostnet_100" else 764)
    assert actual == expected


@pytest.mark.parametrize("name", list(MODELS))
def test_parameter_total_matches_the_published_count(models, name):
    assert sum(p.numel() for p in models[name].parameters()) == PUBLISHED_TOTALS[name][0]


def test_dfc_attention_sits_in_ghost1_of_blocks_2_to_15_of_v2_only(models):
    def dfc_modules(model):
        return [n for n, m in model.named_modules() if isinstance(m, GhostModule) and m.short_conv is not None]

    v2 = dfc_modules(models["ghostnetv2_100"])
    assert len(v2) == DFC_BRANCHES
    assert all(n.endswith(".ghost1") for n in v2)
    assert "blocks.0.0.ghost1" not in v2 and "blocks.1.0.ghost1" not in v2 and "blocks.2.0.ghost1" in v2
    assert dfc_modules(models["ghostnet_100"]) == []
    dfc_params = sum(p.numel() for n, p in models["ghostnetv2_100"].named_parameters() if ".short_conv." in n)
    assert dfc_params == DFC_PARAMS_AT_WIDTH_1


def count_multiply_adds(model, height, width):
    """Conv + linear multiply-adds of one image (BN, activations, pooling and gating not counted)."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output[0].numel() * module.in_channels // module.groups * kh * kw
        else:
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, 3, height, width))
    for handle in handles:
        handle.remove()
    return total


@pytest.mark.parametrize("name", list(MODELS))
def test_multiply_adds_at_224_match_the_published_count(models, name):
    assert round(count_multiply_adds(models[name], 224, 224) / 1e6, 1) == PUBLISHED_TOTALS[name][1]


@pytest.mark.parametrize(("height", "width"), [(33, 40), (193, 257)])
def test_forward_runs_at_odd_non_square_sizes(models, height, width):
    x = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(1))
    model = models["ghostnetv2_100"]
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model(x)
    side = lambda s: (s + 31) // 32  # five stride-2 stages, each (s + 1) // 2  # noqa: E731
    assert features.shape == (2, 960, side(height), side(width))
    assert logits.shape == (2, 1000)
    assert torch.isfinite(logits).all()


def test_33_is_the_smallest_input_the_dfc_pool_accepts(models):
    """At 32 the last stage is 1 x 1 and its 2 x 2 average pool has nothing to pool."""
    with torch.no_grad():
        models["ghostnetv2_100"](torch.zeros(1, 3, 33, 33))
        with pytest.raises(RuntimeError):
            models["ghostnetv2_100"](torch.zeros(1, 3, 33, 32))
        models["ghostnet_100"](torch.zeros(1, 3, 32, 32))  # V1 has no DFC pool


def test_any_width_builds_with_divisible_channels():
    model = build_torch_model_width(0.5, v2=True, num_classes=10)
    assert model.conv_stem.out_channels == 8 and model.classifier.out_features == 10
    ghost_modules = [m for m in model.modules() if isinstance(m, GhostModule)]
    assert len(ghost_modules) == 32 and all(m.out_chs % 4 == 0 for m in ghost_modules)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 48)).shape == (1, 10)


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(ValueError, match="ghostnetv2_100"):
        build_torch_model("ghostnetv3")


def test_make_divisible_rounds_to_multiples_of_4_never_far_below():
    assert [make_divisible(v) for v in (16, 18, 20.8, 1.3 * 72, 3, 0.25 * 72, 0.25 * 120, 7.5)] == [
        16, 20, 20, 92, 4, 20, 32, 8,
    ]  # fmt: skip


def test_hard_sigmoid_is_clip_x_plus_3_over_6():
    x = torch.tensor([-4.0, -3.0, 0.0, 1.5, 3.0, 5.0])
    assert hard_sigmoid(x).tolist() == [0.0, 0.0, 0.5, 0.75, 1.0, 1.0]


def batchnorms(model):
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def test_randomize_batchnorm_makes_every_batchnorm_non_trivial_and_is_seeded():
    model = randomize_batchnorm(build_torch_model_width(0.5), seed=3)
    for bn in batchnorms(model):
        assert (bn.running_mean != 0).all() and (bn.running_var != 1).all() and (bn.running_var > 0).all()
        assert (bn.weight != 1).all() and (bn.bias != 0).all() and bn.num_batches_tracked > 0
    same = randomize_batchnorm(build_torch_model_width(0.5), seed=3)
    other = randomize_batchnorm(build_torch_model_width(0.5), seed=4)
    for a, b, c in zip(batchnorms(model), batchnorms(same), batchnorms(other)):
        assert torch.equal(a.running_var, b.running_var) and torch.equal(a.bias, b.bias)
        assert not torch.equal(a.running_var, c.running_var)


def test_state_dict_numpy_is_flat_in_the_asked_dtype_with_num_batches_tracked():
    model = randomize_batchnorm(build_torch_model("ghostnet_100"), seed=0)
    for dtype in (np.float32, np.float64):
        arrays = state_dict_numpy(model, dtype)
        assert list(arrays) == list(model.state_dict())
        for key, value in model.state_dict().items():
            expected_dtype = np.int64 if key.endswith("num_batches_tracked") else dtype
            assert arrays[key].dtype == expected_dtype and arrays[key].shape == tuple(value.shape)
            np.testing.assert_array_equal(arrays[key], value.numpy().astype(expected_dtype))


def test_torch_forward_follows_the_input_dtype():
    model = randomize_batchnorm(build_torch_model_width(0.5, num_classes=7), seed=0)
    x = np.random.default_rng(0).standard_normal((2, 3, 40, 36))
    logits64 = torch_forward(model, x)
    logits32 = torch_forward(model, x.astype(np.float32))
    assert logits64.dtype == np.float64 and logits32.dtype == np.float32 and logits64.shape == (2, 7)
    assert np.abs(logits32 - logits64).max() <= 1e-5 * np.abs(logits64).max()


def test_ghost_module_keeps_out_chs_of_an_odd_width():
    module = GhostModule(4, 5, relu=True, mode="attn")
    assert module.primary_conv[0].out_channels == 3 and module.cheap_operation[0].groups == 3
    with torch.no_grad():
        assert module(torch.randn(2, 4, 7, 9)).shape == (2, 5, 7, 9)
        assert module.dfc_gate(torch.randn(2, 4, 7, 9)).shape == (2, 5, 3, 4)


def test_ghost_module_attn_is_original_times_the_gate():
    """With the gate's last BN set to output 0, sigmoid gives 0.5 everywhere: attn = original / 2."""
    torch.manual_seed(0)
    attn = randomize_batchnorm(GhostModule(6, 8, relu=True, mode="attn"), seed=0).eval()
    original = GhostModule(6, 8, relu=True, mode="original").eval()
    original.load_state_dict({k: v for k, v in attn.state_dict().items() if "short_conv" not in k})
    x = torch.randn(2, 6, 9, 7)
    with torch.no_grad():
        attn.short_conv[5].weight.zero_()
        attn.short_conv[5].bias.zero_()
        assert torch.allclose(attn(x), 0.5 * original(x), rtol=0, atol=1e-7)
        attn.short_conv[5].bias.fill_(-1000.0)  # gate shut
        assert attn(x).abs().max() == 0


def test_ghost_module_rejects_unknown_modes():
    with pytest.raises(ValueError, match="attn"):
        GhostModule(4, 4, mode="dfc")


def test_squeeze_excite_reduced_width_and_gate_range():
    se = SqueezeExcite(72, 0.25)
    assert (se.conv_reduce.out_channels, se.conv_expand.out_channels) == (20, 72)
    x = torch.rand(2, 72, 5, 5)
    with torch.no_grad():
        ratio = se(x) / x
    assert ratio.min() >= 0 and ratio.max() <= 1
    assert torch.allclose(ratio, ratio[:, :, :1, :1].expand_as(ratio))  # one gate per (image, channel)


@pytest.mark.parametrize(
    ("in_chs", "out_chs", "stride", "identity_shortcut"),
    [(16, 16, 1, True), (16, 24, 2, False), (80, 112, 1, False), (24, 24, 2, False)],
)
def test_bottleneck_shortcut_and_output_size(in_chs, out_chs, stride, identity_shortcut):
    block = GhostBottleneck(in_chs, 2 * in_chs, out_chs, 3, stride, se_ratio=0.25, mode="attn").eval()
    assert (len(block.shortcut) == 0) == identity_shortcut
    assert (block.conv_dw is None) == (stride == 1)
    with torch.no_grad():
        y = block(torch.randn(1, in_chs, 7, 10))
    assert y.shape == (1, out_chs, (7 - 1) // stride + 1, (10 - 1) // stride + 1)
