"""Architecture recognition, ``convert`` and the command line; and that none of it needs torch."""

import json
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from checkpoint_factory import (
    expected_arrays,
    expected_shapes_from_table,
    reference_state_dict,
    save_zip,
    with_profiler_buffers,
)

import ghostnp
from ghostnp.errors import CheckpointError
from ghostnp.weights.files import convert_weights
from ghostnp.weights.recognise import check_architecture, detect_architecture
from weights_converter import CheckpointError as ConverterError
from weights_converter import convert, read_checkpoint
from weights_converter.cli import main
from weights_converter.convert import default_output

MODELS = ["ghostnetv2_100", "ghostnetv2_130", "ghostnetv2_160", "ghostnet_100"]
REPO = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def table_shapes():
    return {name: expected_shapes_from_table(name) for name in MODELS}


def zeros_like_table(shapes):
    return {key: np.zeros(shape, np.float32) for key, shape in shapes.items()}


@pytest.mark.parametrize("model", MODELS)
def test_detect_architecture_from_the_reference_key_tables(table_shapes, model):
    assert detect_architecture(zeros_like_table(table_shapes[model]), table_shapes) == model


@pytest.mark.parametrize("model", MODELS)
def test_ghostnp_expected_shapes_agree_with_the_reference_tables(table_shapes, model):
    assert ghostnp.expected_shapes(model) == table_shapes[model]
    assert detect_architecture(zeros_like_table(table_shapes[model])) == model


def test_no_match_lists_the_closest_models_differences(table_shapes):
    state = zeros_like_table(table_shapes["ghostnetv2_130"])
    del state["classifier.bias"]
    state["extra.weight"] = np.zeros(1, np.float32)
    state["conv_stem.weight"] = np.zeros((1, 3, 3, 3), np.float32)
    with pytest.raises(CheckpointError) as caught:
        detect_architecture(state, table_shapes, source="my.pth")
    message = str(caught.value)
    assert message.startswith("my.pth: ") and "the closest is ghostnetv2_130, which differs in 3 keys" in message
    assert "1 missing: classifier.bias" in message and "1 unexpected: extra.weight" in message
    assert "conv_stem.weight: (1, 3, 3, 3) vs expected (20, 3, 3, 3)" in message


def test_check_architecture_lists_every_difference(table_shapes):
    state = zeros_like_table(table_shapes["ghostnetv2_100"])
    with pytest.raises(CheckpointError, match=r"not fit ghostnetv2_130 \(\d+ differences\)(.|\n)*fit ghostnetv2_100\."):
        check_architecture(state, "ghostnetv2_130", table_shapes)
    check_architecture(state, "ghostnetv2_100", table_shapes)
    with pytest.raises(CheckpointError, match="unknown architecture 'resnet50'"):
        check_architecture(state, "resnet50", table_shapes)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("ck_ghostnetv2_10.pth.tar", "ck_ghostnetv2_10.npz"),
        ("model.safetensors", "model.npz"),
        ("v2.1.0.pth", "v2.1.0.npz"),
        ("weights", "weights.npz"),
        (".pth", ".pth.npz"),
    ],  # fmt: skip
)
def test_default_output_name(tmp_path, name, expected):
    assert default_output(tmp_path / name) == tmp_path / expected


@pytest.fixture(scope="module")
def official_checkpoint(tmp_path_factory):
    state = reference_state_dict("ghostnetv2_100", seed=3)
    folder = tmp_path_factory.mktemp("official")
    path = save_zip(with_profiler_buffers(state), folder / "ck_ghostnetv2_10.pth.tar", folder="ck_ghostnetv2_10.pth")
    return path, state


def test_convert_writes_weights_and_metadata_without_pickle(official_checkpoint, tmp_path):
    source, state = official_checkpoint
    out = convert_weights(source, tmp_path / "v2.npz")
    assert out == tmp_path / "v2.npz"
    weights, info = read_checkpoint(out)
    for key, value in expected_arrays(state).items():
        np.testing.assert_array_equal(weights[key], value)
    assert info["format"] == "npz"
    metadata = info["metadata"]
    assert metadata["architecture"] == "ghostnetv2_100"
    assert metadata["source_file"] == "ck_ghostnetv2_10.pth.tar"
    assert metadata["source_sha256"] == read_checkpoint(source)[1]["sha256"]
    assert metadata["converter_version"] == "0.1.0"
    with np.load(out, allow_pickle=False) as archive:  # the standard reader agrees, with pickle off
        assert json.loads(str(archive["__metadata__"])) == metadata
        np.testing.assert_array_equal(archive["conv_stem.weight"], state["conv_stem.weight"].numpy())
    assert [p.name for p in tmp_path.iterdir()] == ["v2.npz"]  # no temporary file left


def test_convert_refuses_a_wrong_arch_and_overwriting_the_source(official_checkpoint, tmp_path):
    source, _ = official_checkpoint
    with pytest.raises(CheckpointError, match="do not fit ghostnet_100"):
        convert_weights(source, tmp_path / "x.npz", arch="ghostnet_100")
    assert not (tmp_path / "x.npz").exists()
    npz = convert_weights(source, tmp_path / "v2.npz", arch="ghostnetv2_100")
    with pytest.raises(CheckpointError, match="refusing to overwrite the source") as caught:
        convert_weights(npz, npz)
    assert isinstance(caught.value.__cause__, ConverterError)  # the converter's error, re-raised as ghostnp's


def test_the_converter_alone_knows_no_architecture(official_checkpoint, tmp_path):
    """weights_converter writes what it read; the caller's ``describe`` adds metadata or refuses the weights."""
    source, state = official_checkpoint
    plain = convert(source, tmp_path / "plain.npz")
    assert "architecture" not in read_checkpoint(plain)[1]["metadata"]
    described = convert(source, tmp_path / "described.npz", describe=lambda weights, src: {"keys": len(weights)})
    assert read_checkpoint(described)[1]["metadata"]["keys"] == len(expected_arrays(state))

    def refuse(weights, src):
        raise ConverterError(f"{src}: not wanted")

    with pytest.raises(ConverterError, match="not wanted"):
        convert(source, tmp_path / "refused.npz", describe=refuse)
    assert not (tmp_path / "refused.npz").exists()


def test_cli_converts_and_reports(official_checkpoint, tmp_path, capsys):
    source, _ = official_checkpoint
    out = tmp_path / "cli.npz"
    assert main([str(source), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "torch-zip" in printed and f"{len(ghostnp.expected_shapes('ghostnetv2_100'))} arrays" in printed
    assert f"wrote {out}" in printed and "architecture" not in read_checkpoint(out)[1]["metadata"]


def test_cli_error_is_one_sentence_and_status_1(tmp_path, capsys):
    path = tmp_path / "page.pth"
    path.write_text("<html>rate limited</html>")
    assert main([str(path)]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"error: {path}: is an HTML page") and "Traceback" not in error


def test_cli_help_explains_the_formats(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "safetensors" in text and "ghostnp convert" in text and "Nothing in the file" in text


BLOCK_TORCH = """
import sys
class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, BlockTorch())
"""


def test_runs_where_torch_cannot_be_imported(official_checkpoint, tmp_path):
    source, _ = official_checkpoint
    out = tmp_path / "no_torch.npz"
    script = BLOCK_TORCH + (
        "from weights_converter.cli import main\n"
        f"status = main([{str(source)!r}, '-o', {str(out)!r}])\n"
        "assert 'torch' not in sys.modules\n"
        "sys.exit(status)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert zipfile.is_zipfile(out)


def test_module_entry_point(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "weights_converter", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0 and "python -m weights_converter" in completed.stdout


def test_read_checkpoint_of_converted_training_checkpoint_keeps_ema(tmp_path):
    state = reference_state_dict("ghostnetv2_100", seed=4)
    ema = OrderedDict((key, value * 2 if value.is_floating_point() else value) for key, value in state.items())
    path = tmp_path / "train.pth.tar"
    torch.save({"state_dict": state, "state_dict_ema": ema, "epoch": 5}, path)
    out = convert(path)
    weights, info = read_checkpoint(out)
    assert out == tmp_path / "train.npz"
    assert info["metadata"]["picked"] == "state_dict_ema"
    np.testing.assert_array_equal(weights["classifier.weight"], ema["classifier.weight"].numpy())


@pytest.mark.slow
def test_converted_training_checkpoint_gives_the_torch_models_logits(tmp_path):
    """End to end: a torch model's weights, saved as a DataParallel training checkpoint with the profiler's
    buffers, converted without torch, then run by ghostnp: the logits agree with torch's."""
    from torch_reference import build_torch_model, randomize_batchnorm, torch_forward

    model = randomize_batchnorm(build_torch_model("ghostnetv2_100"), seed=5)
    state = with_profiler_buffers(model.state_dict())
    path = tmp_path / "checkpoint.pth.tar"
    torch.save({"state_dict": OrderedDict((f"module.{key}", value) for key, value in state.items()), "epoch": 9}, path)
    weights, _ = read_checkpoint(convert(path))
    x = np.random.default_rng(0).standard_normal((1, 3, 96, 80)).astype(np.float32)
    logits = ghostnp.create_model("ghostnetv2_100", weights=weights)(x)
    np.testing.assert_allclose(logits, torch_forward(model, x), rtol=1e-4, atol=1e-4)
