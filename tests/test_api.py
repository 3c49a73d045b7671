"""The public API around the model: names, summary, intermediates, validation of weights and inputs,
BatchNorm folding, and the import-light promise."""

import subprocess
import sys

import numpy as np
import pytest

import ghostnp
from ghostnp.network.architecture import make_divisible

PUBLISHED = {  # params, multiply-adds at 224 (millions, one decimal): the reference table
    "ghostnetv2_100": (6_156_908, 167.0),
    "ghostnetv2_130": (8_960_404, 269.3),
    "ghostnetv2_160": (12_392_698, 398.6),
    "ghostnet_100": (5_182_508, 141.2),
}


@pytest.fixture(scope="module")
def tiny():
    return ghostnp.create_model("ghostnetv2_tiny", seed=1, dtype=np.float64)


@pytest.mark.parametrize("name", PUBLISHED)
def test_summary_reproduces_the_published_params_and_macs(name):
    table = ghostnp.summary(name, input_size=224)
    params, macs = PUBLISHED[name]
    assert table.total_params == params == ghostnp.create_model(name).num_params
    assert round(table.total_macs / 1e6, 1) == macs
    assert isinstance(table.total_params, int) and isinstance(table.total_macs, int)
    text = str(table)
    assert f"{params:,}" in text and f"{macs:.1f} M multiply-adds" in text


def test_summary_rows_by_hand_for_the_stem_and_classifier():
    rows = {row.name: row for row in ghostnp.summary("ghostnetv2_100", input_size=(224, 160)).rows}
    stem = rows["conv_stem"]  # 3x3 conv 3 -> 16, stride 2: 112 x 80 outputs, 27 MACs each; + BN weight, bias
    assert stem.output_shape == (16, 112, 80) and stem.macs == 16 * 112 * 80 * 27 and stem.params == 16 * 27 + 32
    assert rows["classifier"].macs == 1280 * 1000 and rows["classifier"].params == 1280 * 1000 + 1000
    assert rows["blocks.2.0.ghost1.short_conv.2"].output_shape == (72, 28, 20)  # DFC works at half resolution


def test_names_and_widths():
    assert ghostnp.list_models()[:4] == ["ghostnet_100", "ghostnetv2_100", "ghostnetv2_130", "ghostnetv2_160"]
    half = ghostnp.get_architecture("ghostnetv2_050")
    assert half.width == 0.5 and half.stem_chs == make_divisible(8) == 8
    with pytest.raises(ValueError, match="ghostnetv2_100"):
        ghostnp.create_model("ghostnetv3_100")


def test_forward_intermediates_names_every_block_and_dfc_gate():
    model = ghostnp.create_model("ghostnetv2_100")
    x = np.random.default_rng(0).normal(size=(1, 3, 65, 97)).astype(np.float32)
    logits, parts = model.forward_intermediates(x)
    np.testing.assert_array_equal(logits, model(x))
    assert all(spec.name in parts for spec in model.arch.blocks) and "blocks.9.0.conv" in parts
    gates = [k for k in parts if k.endswith(".gate")]
    assert len(gates) == 14 and len([k for k in parts if k.endswith(".gate_upsampled")]) == 14
    gate, up = parts["blocks.2.0.ghost1.short_conv.gate"], parts["blocks.2.0.ghost1.short_conv.gate_upsampled"]
    assert gate.shape == (1, 72, 8, 12) and up.shape == (1, 72, 17, 25)
    assert 0 < gate.min() and gate.max() < 1
    _, v1_parts = ghostnp.create_model("ghostnet_100").forward_intermediates(x)
    assert not [k for k in v1_parts if "gate" in k]


def test_weights_problems_are_reported_all_at_once(tiny):
    weights = tiny.state_dict()
    del weights["conv_stem.weight"], weights["classifier.bias"]
    weights["extra.weight"] = np.zeros(3, np.float32)
    weights["bn1.weight"] = np.zeros(5, np.float32)
    with pytest.raises(ghostnp.CheckpointError) as error:
        ghostnp.create_model("ghostnetv2_tiny", weights=weights)
    message = str(error.value)
    for text in (
        "2 missing",
        "conv_stem.weight",
        "classifier.bias",
        "1 unexpected",
        "extra.weight",
        "1 wrong shape",
        "bn1.weight: (5,) vs expected (16,)",
    ):
        assert text in message


def test_weights_of_another_model_name_the_model_they_fit(tiny):
    with pytest.raises(ghostnp.CheckpointError, match=r"do not fit ghostnetv2_100(.|\n)*They fit ghostnetv2_tiny"):
        ghostnp.create_model("ghostnetv2_100", weights=tiny.state_dict())


@pytest.mark.parametrize(
    "key,value,text",
    [
        ("conv_stem.weight", np.nan, "NaN or Inf"),
        ("bn1.running_var", -1.0, "negative running variances"),
    ],
)
def test_damaged_weights_are_refused(tiny, key, value, text):
    weights = tiny.state_dict()
    weights[key] = weights[key].copy()
    weights[key].flat[0] = value
    with pytest.raises(ghostnp.CheckpointError, match=text):
        ghostnp.create_model("ghostnetv2_tiny", weights=weights)


def test_profiler_buffers_and_step_counters_are_ignored(tiny):
    weights = tiny.state_dict()
    weights["conv_stem.total_ops"] = np.zeros(1)
    weights["conv_stem.total_params"] = np.zeros(1)
    x = np.random.default_rng(2).normal(size=(1, 3, 40, 40))
    np.testing.assert_array_equal(ghostnp.create_model("ghostnetv2_tiny", weights=weights)(x), tiny(x))


@pytest.mark.parametrize(
    "x,text",
    [
        (np.zeros((3, 40, 40), np.float32), "add a batch axis"),
        (np.zeros((1, 40, 40, 3), np.float32), "channels last"),
        (np.zeros((1, 1, 40, 40), np.float32), "3 channels"),
        (np.zeros((1, 3, 32, 40), np.float32), "at least 33"),
        (np.zeros((1, 3, 40, 40), np.uint8), "float32 or float64"),
        (np.zeros((1, 3, 40, 40), object), "float32 or float64"),
        (np.full((1, 3, 40, 40), np.nan, np.float32), "NaN or Inf"),
        ([[0.0]], "numpy array"),
    ],
)
def test_bad_input_gets_a_value_error_that_says_what_to_do(tiny, x, text):
    with pytest.raises(ValueError, match=text):
        tiny(x)


def test_fold_batchnorm_by_hand():
    params = {
        "conv_stem.weight": np.full((1, 1, 1, 1), 2.0),
        "bn1.weight": np.array([3.0]),
        "bn1.bias": np.array([1.0]),
        "bn1.running_mean": np.array([0.5]),
        "bn1.running_var": np.array([4.0 - 1e-5]),
    }
    folded = ghostnp.fold_batchnorm(params)
    # BN(2x) = (2x - 0.5) / 2 * 3 + 1 = 3x + 0.25
    assert set(folded) == {"conv_stem.weight", "conv_stem.bias"}
    np.testing.assert_allclose(folded["conv_stem.weight"].ravel(), [3.0])
    np.testing.assert_allclose(folded["conv_stem.bias"], [0.25])


def test_folded_model_equals_the_published_layers(tiny):
    folded = ghostnp.create_model("ghostnetv2_tiny", weights=tiny.state_dict(), fold_bn=True)
    x = np.random.default_rng(3).normal(size=(2, 3, 47, 35))
    np.testing.assert_allclose(folded(x), tiny(x), rtol=1e-12, atol=1e-12 * np.abs(tiny(x)).max())


def test_state_dict_has_pytorch_keys_including_step_counters(tiny):
    state = tiny.state_dict()
    assert state["bn1.num_batches_tracked"].dtype == np.int64 and state["bn1.num_batches_tracked"].shape == ()
    assert list(state).index("bn1.num_batches_tracked") == list(state).index("bn1.running_var") + 1


def test_import_ghostnp_imports_numpy_only():
    code = (
        "import sys, ghostnp\n"
        "heavy = ('numba', 'scipy', 'matplotlib', 'torch', 'PIL', 'tqdm', 'weights_converter')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
