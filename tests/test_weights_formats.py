"""Valid checkpoints in every supported format load, and equal the torch tensors exactly.

Each file has the full key set and shapes of ghostnetv2_100 (tests/data/keys_ghostnetv2_100.tsv).
"""

import argparse
from collections import OrderedDict

import numpy as np
import pytest
import torch
from checkpoint_factory import (
    converted_values,
    expected_arrays,
    patch_location,
    reference_state_dict,
    replace_member,
    safetensors_bytes,
    save_zip,
    with_profiler_buffers,
    zip_member,
)

from weights_converter import read_checkpoint


@pytest.fixture(scope="module")
def state():
    return reference_state_dict("ghostnetv2_100", seed=1)


@pytest.fixture(scope="module")
def first_blocks(state):
    """The stem and first blocks only (same keys and shapes), where the network's size does not matter."""
    return OrderedDict(list(state.items())[:120])


def assert_same(weights: dict, expected: dict) -> None:
    assert list(weights) == list(expected)
    for key, value in expected.items():
        assert weights[key].dtype == np.float32, key
        assert weights[key].shape == value.shape, key
        np.testing.assert_array_equal(weights[key], value, err_msg=key)


@pytest.mark.parametrize("folder", ["archive", "ck_ghostnetv2_10.pth"])
def test_zip_with_any_inner_folder(tmp_path, first_blocks, folder):
    path = save_zip(first_blocks, tmp_path / "ck_ghostnetv2_10.pth.tar", folder=folder)
    weights, info = read_checkpoint(path)
    assert_same(weights, expected_arrays(first_blocks))
    assert info["format"] == "torch-zip"
    assert info["picked"] == "(top level)"
    assert info["dropped"] == [key for key in first_blocks if key.endswith("num_batches_tracked")]


def test_legacy_format(tmp_path, state):
    path = tmp_path / "legacy.pth"
    torch.save(state, path, _use_new_zipfile_serialization=False)
    weights, info = read_checkpoint(path)
    assert_same(weights, expected_arrays(state))
    assert info["format"] == "torch-legacy"


def test_pickle_protocol_4(tmp_path, first_blocks):
    path = tmp_path / "p4.pth"
    torch.save(first_blocks, path, pickle_protocol=4)
    assert zip_member(path, "/data.pkl")[:2] == b"\x80\x04"
    assert_same(read_checkpoint(path)[0], expected_arrays(first_blocks))


def test_official_release_shape_with_profiler_buffers(tmp_path, state):
    official = with_profiler_buffers(state)
    path = save_zip(official, tmp_path / "ck_ghostnetv2_10.pth.tar", folder="ck_ghostnetv2_10.pth")
    weights, info = read_checkpoint(path)
    assert_same(weights, expected_arrays(state))
    assert "total_ops" in info["dropped"] and "conv_stem.total_params" in info["dropped"]
    assert len(info["dropped"]) == len(official) - len(weights)


def test_training_checkpoint_picks_ema_and_strips_module_prefix(tmp_path, state):
    ema = OrderedDict((key, value + 1 if value.is_floating_point() else value) for key, value in state.items())
    checkpoint = {
        "epoch": 12,
        "arch": "ghostnetv2_100",
        "state_dict": OrderedDict((f"module.{key}", value) for key, value in state.items()),
        "state_dict_ema": OrderedDict((f"module.{key}", value) for key, value in ema.items()),
        "optimizer": {"state": {0: {"momentum_buffer": torch.ones(3)}}, "param_groups": [{"lr": 0.1}]},
        "args": argparse.Namespace(model="ghostnetv2_100", lr=0.1, epochs=300, amp=True),
        "metric": 75.3,
    }
    path = tmp_path / "model_best.pth.tar"
    torch.save(checkpoint, path)
    weights, info = read_checkpoint(path)
    assert_same(weights, expected_arrays(ema))
    assert info["picked"] == "state_dict_ema"
    assert info["also_present"] == ["state_dict"]


def test_compiled_model_prefix_under_model_key(tmp_path, first_blocks):
    path = tmp_path / "compiled.pt"
    torch.save({"model": OrderedDict((f"_orig_mod.{key}", value) for key, value in first_blocks.items())}, path)
    weights, info = read_checkpoint(path)
    assert_same(weights, expected_arrays(first_blocks))
    assert info["picked"] == "model"


def test_storages_saved_from_cuda(tmp_path, first_blocks):
    path = save_zip(first_blocks, tmp_path / "gpu.pth")
    replace_member(path, "/data.pkl", patch_location(zip_member(path, "/data.pkl")))
    assert b"cuda:0" in zip_member(path, "/data.pkl")
    assert_same(read_checkpoint(path)[0], expected_arrays(first_blocks))


def test_safetensors_f32_whole_network(tmp_path, state):
    path = tmp_path / "model.safetensors"
    path.write_bytes(safetensors_bytes(state, "F32", metadata={"format": "pt"}))
    weights, info = read_checkpoint(path)
    assert_same(weights, expected_arrays(state))
    assert info["format"] == "safetensors"


@pytest.mark.parametrize("dtype", ["F16", "BF16", "F64"])
def test_safetensors_other_dtypes(tmp_path, first_blocks, dtype):
    path = tmp_path / "model.safetensors"
    path.write_bytes(safetensors_bytes(first_blocks, dtype))
    assert_same(read_checkpoint(path)[0], converted_values(first_blocks, dtype))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_torch_zip_in_other_float_dtypes(tmp_path, dtype):
    state = OrderedDict(weight=torch.randn(5, 3).to(dtype), bias=torch.randn(5).to(dtype))
    path = tmp_path / "cast.pth"
    torch.save(state, path)
    assert_same(read_checkpoint(path)[0], {key: value.float().numpy() for key, value in state.items()})


def test_non_contiguous_views_and_shared_storage(tmp_path):
    base = torch.randn(6, 5)
    state = OrderedDict(transposed=base.t(), row=base[2], strided=base[::2, 1::2], same=base)
    path = tmp_path / "views.pth"
    torch.save(state, path)
    weights = read_checkpoint(path)[0]
    assert_same(weights, {key: value.numpy() for key, value in state.items()})


def test_bf16_decoding_is_exact_for_every_finite_bit_pattern(tmp_path):
    bits = torch.arange(0, 2**16, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    finite = bits[torch.isfinite(bits)]
    path = tmp_path / "all_bf16.safetensors"
    path.write_bytes(safetensors_bytes({"weight": finite}, "BF16"))
    np.testing.assert_array_equal(read_checkpoint(path)[0]["weight"], finite.float().numpy())
