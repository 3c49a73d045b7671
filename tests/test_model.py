"""Whole networks against the PyTorch reference: all four models, random weights with randomised BatchNorm
statistics, square and non-square odd sizes, batch 1 and 3, float32 and float64."""

import types

import numpy as np
import pytest
import torch
from torch_reference import build_torch_model, randomize_batchnorm, state_dict_numpy, torch_forward

import ghostnp

OFFICIAL = ["ghostnetv2_100", "ghostnetv2_130", "ghostnetv2_160", "ghostnet_100"]
# (H, W), batch, dtype: every size, both batch sizes and both dtypes appear for every model.
CASES = [
    ((224, 224), 1, np.float32),
    ((224, 224), 1, np.float64),
    ((193, 257), 3, np.float32),
    ((33, 40), 3, np.float64),
    ((33, 40), 1, np.float32),
]
TOLERANCE = {np.float32: 1e-4, np.float64: 1e-9}  # max |ghostnp - torch| / max |torch|


def relative_error(actual, expected):
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


@pytest.fixture(scope="module", params=OFFICIAL)
def torch_and_weights(request):
    torch_model = randomize_batchnorm(build_torch_model(request.param), seed=OFFICIAL.index(request.param))
    return request.param, torch_model, state_dict_numpy(torch_model, np.float64), {}


def case_id(case):
    (h, w), batch, dtype = case
    return f"{h}x{w}-b{batch}-{np.dtype(dtype).name}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_logits_match_pytorch(torch_and_weights, backend, case):
    name, torch_model, weights, torch_logits = torch_and_weights
    size, batch, dtype = case
    model = ghostnp.create_model(name, weights={k: v.astype(dtype) for k, v in weights.items()}, backend=backend)
    x = np.random.default_rng(batch * size[0]).normal(size=(batch, 3, *size)).astype(dtype)

    logits = model(x)
    if case not in torch_logits:  # computed once, shared by the backends
        torch_logits[case] = torch_forward(torch_model, x)
    expected = torch_logits[case]

    assert logits.shape == (batch, 1000) and logits.dtype == dtype
    assert relative_error(logits, expected) < TOLERANCE[dtype]
    top5 = np.argsort(-logits, axis=1)[:, :5]
    np.testing.assert_array_equal(top5, np.argsort(-expected, axis=1)[:, :5])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_every_block_output_matches_pytorch(torch_and_weights, backend, dtype):
    """Block by block, each relative to its own scale: logits of a random network barely depend on its
    input, so a bug early in the network can hide in the logits but not here."""
    name, torch_model, weights, _ = torch_and_weights
    model = ghostnp.create_model(name, weights={k: v.astype(dtype) for k, v in weights.items()}, backend=backend)
    x = np.random.default_rng(11).normal(size=(2, 3, 65, 97)).astype(dtype)
    _, parts = model.forward_intermediates(x)

    torch_model.to(torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        y = torch.relu(torch_model.bn1(torch_model.conv_stem(torch.from_numpy(x))))
        assert relative_error(parts["conv_stem"], y.numpy()) < TOLERANCE[dtype]
        torch_blocks = [block for stage in torch_model.blocks for block in stage]
        names = [spec.name for spec in model.arch.blocks] + [model.arch.final_conv]
        for block_name, block in zip(names, torch_blocks, strict=True):
            y = block(y)
            key = block_name if block_name in parts else f"{block_name}.conv"
            assert relative_error(parts[key], y.numpy()) < TOLERANCE[dtype], block_name


def test_features_and_head_compose_like_timm(torch_and_weights):
    name, torch_model, weights, _ = torch_and_weights
    model = ghostnp.create_model(name, weights=weights)
    x = np.random.default_rng(7).normal(size=(2, 3, 65, 97))

    features = model.forward_features(x)
    pre_logits = model.forward_head(features, pre_logits=True)

    torch_model.double()
    with torch.no_grad():
        expected_features = torch_model.forward_features(torch.from_numpy(x))
        pooled = expected_features.mean((2, 3), keepdim=True)
        expected_pre_logits = torch.relu(torch_model.conv_head(pooled)).flatten(1).numpy()
    assert features.shape == expected_features.shape == (2, model.arch.final_chs, 3, 4)
    assert relative_error(features, expected_features.numpy()) < 1e-9
    assert pre_logits.shape == (2, 1280) and relative_error(pre_logits, expected_pre_logits) < 1e-9
    np.testing.assert_allclose(model.forward_head(features), model(x), rtol=1e-12)


def test_state_dict_round_trip_has_pytorch_keys(torch_and_weights):
    name, torch_model, weights, _ = torch_and_weights
    model = ghostnp.create_model(name, weights=weights)
    state = model.state_dict()
    assert list(state) == list(torch_model.state_dict())
    assert all(state[k].shape == tuple(v.shape) for k, v in torch_model.state_dict().items())
    again = ghostnp.create_model(name, weights=state)
    x = np.random.default_rng(1).normal(size=(1, 3, 40, 40))
    np.testing.assert_array_equal(again(x), model(x))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_batch_on_threads_is_split_once_and_equals_one_thread(backend, monkeypatch):
    """Chunks of ``CHUNK_IMAGES`` images on one pool: a chunk does not split itself again on a nested pool."""
    if backend == "numba":
        pytest.importorskip("numba")
    from ghostnp.network import model as model_module

    pools, real_pool = [], model_module.ThreadPoolExecutor
    monkeypatch.setattr(model_module, "ThreadPoolExecutor", lambda *args: pools.append(args) or real_pool(*args))
    monkeypatch.setattr(model_module, "CHUNK_IMAGES", 2)
    model = ghostnp.create_model("ghostnetv2_100", seed=3, backend=backend)
    x = np.random.default_rng(3).standard_normal((5, 3, 40, 36)).astype(np.float32)
    model.threads = 1
    one_thread = model(x)
    model.threads = 2
    np.testing.assert_allclose(model(x), one_thread, rtol=1e-5, atol=1e-5 * np.abs(one_thread).max())
    assert pools == [(2,)]  # 5 images: chunks of 2, 2 and 1 on one pool of two threads


@pytest.mark.parametrize("batch", [1, 3])
def test_numba_runs_every_blas_product_on_one_thread(batch):
    """With numba, BLAS runs on one thread for the whole call, the classifier's products included: OpenBLAS's
    threads spin for about 0.1 s after any product that used them, beside the next image's forward pass. The
    NumPy backend leaves BLAS as the user set it."""
    pytest.importorskip("numba")
    pytest.importorskip("threadpoolctl")
    from ghostnp.network.model import _blas_controller

    controller = _blas_controller().select(user_api="blas")  # NumPy's BLAS (loaded before any model ran)
    if not controller.lib_controllers:
        pytest.skip("no BLAS library that threadpoolctl can limit")
    seen = {}
    for backend in ("numba", "numpy"):
        model = ghostnp.create_model("ghostnetv2_tiny", seed=4, backend=backend)
        model.threads = 1
        table, linear = model.ops, model.ops.linear

        def linear_seeing_blas(*args, backend=backend, linear=linear):
            seen[backend] = max(lib.num_threads for lib in controller.lib_controllers)  # as it is now
            return linear(*args)

        ops = {name: getattr(table, name) for name in dir(table) if not name.startswith("_")}
        model.ops = types.SimpleNamespace(**{**ops, "linear": linear_seeing_blas})
        with controller.limit(limits=2):
            model(np.random.default_rng(4).standard_normal((batch, 3, 40, 40)).astype(np.float32))
    assert seen == {"numba": 1, "numpy": 2}
