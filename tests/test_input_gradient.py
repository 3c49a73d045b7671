"""Whole-network input gradients (``ghostnp.autodiff.record``) against torch autograd on the reference model.

ghostnp's seeded random weights (non-trivial BatchNorm statistics) are loaded into the PyTorch reference
(``tests/torch_reference.py``; the tiny model is built from ghostnp's own block specs with the reference's
modules), both run in float64 on the same small odd-sized batch, and the gradients of a logit, of a block's
unit, of a Ghost module's channel and of the log-probability must agree to 1e-8 of the largest gradient.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch_reference import TorchFromArchitecture, build_torch_model

import ghostnp
from ghostnp.autodiff.record import Tape, input_gradient, record

RTOL = 1e-8
SIZE = (33, 40)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Grouped float64 convolutions run PyTorch's slow path, which many threads on a busy machine make
    10-100 times slower (measured: 0.2 s -> 15 s per backward pass at load 5 on 2 cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=["ghostnetv2_tiny", "ghostnetv2_100", "ghostnet_100"])
def models(request):
    """(ghostnp model, torch model with the same float64 weights)."""
    model = ghostnp.create_model(request.param, seed=3, dtype=np.float64)
    if request.param == "ghostnetv2_tiny":
        torch_model = TorchFromArchitecture(model.arch)
    else:
        torch_model = build_torch_model(request.param)
    torch_model.double().load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    return model, torch_model.eval()


def torch_gradient(torch_model, x, module_name=None, select=None):
    """d sum(select(result)) / dx, the result being the logits or the output of a named module."""
    captured = {}
    if module_name is not None:
        module = torch_model.get_submodule(module_name)
        module.register_forward_hook(lambda m, i, out: captured.update(out=out))
    xt = torch.from_numpy(x).requires_grad_()
    logits = torch_model(xt)
    result = captured["out"] if module_name is not None else logits
    (grad,) = torch.autograd.grad(select(result).sum(), xt)
    return grad.numpy()


def assert_gradients_match(actual, expected):
    assert actual.shape == expected.shape and actual.dtype == np.float64
    scale = np.abs(expected).max()
    assert scale > 0
    assert np.abs(actual - expected).max() <= RTOL * scale


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).normal(size=(2, 3, *SIZE))


def test_gradient_of_a_logit_matches_torch(models, x):
    model, torch_model = models
    assert_gradients_match(input_gradient(model, x, 7), torch_gradient(torch_model, x, select=lambda z: z[:, 7]))


def test_default_output_is_each_samples_top_logit(models, x):
    model, torch_model = models
    top = model(x).argmax(axis=1)
    expected = torch_gradient(torch_model, x, select=lambda z: z[torch.arange(len(top)), torch.from_numpy(top)])
    assert_gradients_match(input_gradient(model, x), expected)


def test_gradient_of_intermediate_units_matches_torch(models, x):
    model, torch_model = models
    block = model.arch.blocks[3]  # a DFC block in V2, with SE and a stride-2 conv shortcut in the tiny model
    unit = input_gradient(model, x, (block.name, (1, 1, 2)))
    assert_gradients_match(unit, torch_gradient(torch_model, x, block.name, lambda out: out[:, 1, 1, 2]))
    channel = input_gradient(model, x, (f"{block.name}.ghost1", 5))
    assert_gradients_match(channel, torch_gradient(torch_model, x, f"{block.name}.ghost1", lambda out: out[:, 5]))


def test_callable_output_gives_the_log_probability_gradient(models, x):
    model, torch_model = models

    def onehot_minus_softmax(logits):
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return np.eye(logits.shape[1])[[3, 9]] - p / p.sum(axis=1, keepdims=True)

    expected = torch_gradient(torch_model, x, select=lambda z: F.log_softmax(z, dim=1)[[0, 1], [3, 9]])
    assert_gradients_match(input_gradient(model, x, onehot_minus_softmax), expected)


def test_each_sample_gets_its_own_gradient_and_float32_works():
    model = ghostnp.create_model("ghostnetv2_tiny", seed=1)
    x = np.random.default_rng(1).normal(size=(2, 3, 37, 35)).astype(np.float32)
    both = input_gradient(model, x, 2)
    first = input_gradient(model, x[:1], 2)
    assert both.dtype == np.float32 and both.shape == x.shape
    np.testing.assert_allclose(both[:1], first, rtol=1e-5, atol=1e-6 * np.abs(first).max())


def test_the_tape_runs_the_same_network():
    model = ghostnp.create_model("ghostnetv2_tiny", seed=2, dtype=np.float64)
    x = np.random.default_rng(2).normal(size=(1, 3, 40, 33))
    tape, logits, intermediates = record(model, x)
    np.testing.assert_array_equal(logits, model(x))
    assert list(intermediates) == list(model.forward_intermediates(x)[1])
    assert {r.op for r in tape.records} >= {"conv2d", "upsample_nearest", "slice_channels", "flatten", "hard_sigmoid"}


def test_unknown_layer_names_the_keys():
    model = ghostnp.create_model("ghostnetv2_tiny")
    with pytest.raises(ValueError, match="unknown layer 'blocks.99'.*conv_stem"):
        input_gradient(model, np.zeros((1, 3, 33, 33), np.float32), ("blocks.99", 0))


def test_the_tape_refuses_an_array_made_outside_the_op_table():
    x = np.ones((1, 2, 3, 3))
    tape = Tape(x)
    y = tape.relu(x)
    with pytest.raises(ValueError, match=r"shape \(1, 2, 3, 3\).*outside the op table"):
        tape.sigmoid(y * 2)  # a NumPy product the tape never saw


def test_the_tape_traces_channel_slices_and_flatten_by_hand():
    x = np.array([[[[1.0]], [[-2.0]], [[3.0]]]])  # (1, 3, 1, 1)
    tape = Tape(x)
    kept = tape.slice_channels(tape.concat_channels(x, tape.relu(x)), 4)  # 1, -2, 3, relu(1): as the Ghost module
    doubled = tape.add(kept, kept)
    out = tape.linear(tape.flatten(doubled), np.array([[1.0, 10.0, 100.0, 1000.0]]))  # as the head
    (grad,) = tape.gradient(out, np.ones((1, 1)))
    np.testing.assert_array_equal(grad.ravel(), [2 * (1 + 1000), 2 * 10, 2 * 100])  # relu(x0) > 0 feeds 1000
    assert [r.op for r in tape.records] == ["relu", "concat_channels", "slice_channels", "add", "flatten", "linear"]
