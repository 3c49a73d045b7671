"""The parameter VJPs and the training-mode ops of ``ghostnp.autodiff`` against torch autograd, in float64.

As in ``test_vjp.py``: for each op, our gradients for a random ``grad_out`` against ``torch.autograd.grad``
of the same ``torch.nn.functional`` op at the same values, the error measured against the gradient of the
op with every term made non-negative (so that cancellation can neither hide nor fake an error), over the
same shape strategies as the op tests, with a case computed by hand beside each property test.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import conv_arrays, conv_cases
from test_vjp import assert_close, torch_grads

from ghostnp.autodiff.training_ops import batch_norm_training
from ghostnp.autodiff.vjp import PARAM_VJPS, VJPS
from ghostnp.ops import numpy_ops

seeds = st.integers(0, 2**32 - 1)
property_test = settings(max_examples=40, deadline=None)
bn_shapes = st.sampled_from([(), (1, 1), (3, 5), (7, 2)])


def param_grads(op, forward, grad_out, *args, **kwargs):
    out = forward(*args, **kwargs)
    return PARAM_VJPS[op][0](grad_out, out, *args, **kwargs)


@property_test
@given(case=conv_cases(max_stride=3, max_size=13), seed=seeds)
def test_conv2d_weight_and_bias_gradients_match_torch(case, seed):
    rng = np.random.default_rng(seed)
    x, weight, bias, kwargs = conv_arrays(case, rng)
    grad_out = rng.standard_normal(numpy_ops.conv2d(x, weight, bias, **kwargs).shape)

    def conv(w, b=None, *, act=case["act"], inputs=x):
        y = F.conv2d(torch.from_numpy(inputs), w, b, case["stride"], case["padding"], 1, case["groups"])
        return F.relu(y) if act == "relu" else y

    grad_weight, grad_bias = param_grads("conv2d", numpy_ops.conv2d, grad_out, x, weight, bias, **kwargs)
    expected = torch_grads(conv, [weight] + ([bias] if bias is not None else []), grad_out)
    (scale,) = torch_grads(lambda w: conv(w, act=None, inputs=np.abs(x)), [np.abs(weight)], np.abs(grad_out))
    assert_close(grad_weight, expected[0], scale)
    if bias is None:
        assert grad_bias is None
    else:
        assert_close(grad_bias, expected[1], np.abs(grad_out).sum(axis=(0, 2, 3)))


def test_conv2d_weight_gradient_by_hand():
    # 1 x 1 x 2 x 2 input 1..4, a 1 x 1 kernel, output gradient of ones: d/dw = sum of the inputs = 10
    x = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    ones = np.ones((1, 1, 2, 2))
    grad_w, grad_b = param_grads("conv2d", numpy_ops.conv2d, ones, x, np.ones((1, 1, 1, 1)), np.ones(1))
    assert grad_w.item() == 10 and grad_b.item() == 4
    # a 2 x 2 kernel at stride 2, padding 1: each tap sees exactly one input pixel, at its corner window
    grad_w, _ = param_grads("conv2d", numpy_ops.conv2d, np.ones((1, 1, 2, 2)), x, np.ones((1, 1, 2, 2)), None,
                            stride=2, padding=1)  # fmt: skip
    np.testing.assert_array_equal(grad_w[0, 0], [[4, 3], [2, 1]])


@property_test
@given(n=st.integers(1, 3), c=st.integers(1, 6), hw=bn_shapes, seed=seeds)
def test_inference_batch_norm_weight_and_bias_gradients_match_torch(n, c, hw, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, *hw))
    weight, bias, mean = rng.standard_normal((3, c))
    var = rng.uniform(0.1, 2.0, c)
    grad_out = rng.standard_normal(x.shape)
    tm, tv = torch.from_numpy(mean), torch.from_numpy(var)
    actual = param_grads("batch_norm", numpy_ops.batch_norm, grad_out, x, weight, bias, mean, var)
    expected = torch_grads(lambda w, b: F.batch_norm(torch.from_numpy(x), tm, tv, w, b, False, 0.0, 1e-5),
                           [weight, bias], grad_out)  # fmt: skip
    axes, expand = (0, *range(2, x.ndim)), (slice(None),) + (None,) * len(hw)
    terms = np.abs(grad_out) * (np.abs(x) + np.abs(mean)[expand]) / np.sqrt(var + 1e-5)[expand]
    assert_close(actual[0], expected[0], terms.sum(axis=axes))
    assert_close(actual[1], expected[1], np.abs(grad_out).sum(axis=axes))


@property_test
@given(n=st.integers(1, 3), c=st.integers(1, 6), hw=bn_shapes, seed=seeds)
def test_training_batch_norm_matches_torch_forward_and_backward(n, c, hw, seed):
    rng = np.random.default_rng(seed)
    x = 2.0 + 3.0 * rng.standard_normal((n, c, *hw))  # an offset mean: the batch statistics must remove it
    assume(x.size // c >= 2)  # training BatchNorm needs two values per channel (tested below)
    weight, bias = rng.standard_normal((2, c))
    grad_out = rng.standard_normal(x.shape)

    def torch_bn(t, w, b):
        return F.batch_norm(t, None, None, w, b, True, 0.1, 1e-5)

    out = batch_norm_training(x, weight, bias)
    expected_out = torch_bn(*(torch.from_numpy(v) for v in (x, weight, bias)))
    assert_close(out, expected_out.numpy(), np.abs(expected_out.numpy()).max() + np.abs(bias).max())
    (grad_x,) = VJPS["batch_norm_training"][0](grad_out, out, x, weight, bias)
    grad_weight, grad_bias = PARAM_VJPS["batch_norm_training"][0](grad_out, out, x, weight, bias)
    expected = torch_grads(torch_bn, [x, weight, bias], grad_out)
    # scale: grad_x = w / std (g - mean g - x_hat mean(g x_hat)), the others sums of |g| |x_hat| and |g|
    axes = (0, *range(2, x.ndim))
    expand = (slice(None),) + (None,) * len(hw)
    std = np.sqrt(x.var(axis=axes) + 1e-5)
    x_hat_abs = np.abs((x - x.mean(axis=axes)[expand]) / std[expand])
    g = np.abs(grad_out)
    mean_g, mean_g_x_hat = g.mean(axis=axes)[expand], (g * x_hat_abs).mean(axis=axes)[expand]
    assert_close(grad_x, expected[0], (np.abs(weight) / std)[expand] * (g + mean_g + x_hat_abs * mean_g_x_hat))
    assert_close(grad_weight, expected[1], (np.abs(grad_out) * x_hat_abs).sum(axis=axes))
    assert_close(grad_bias, expected[2], np.abs(grad_out).sum(axis=axes))


def test_training_batch_norm_by_hand():
    # one channel, values 0 and 2: mean 1, biased variance 1, so x_hat = -1, +1 (up to eps)
    x = np.array([[0.0], [2.0]])
    out = batch_norm_training(x, np.array([3.0]), np.array([10.0]), eps=0.0)
    np.testing.assert_array_equal(out, [[7.0], [13.0]])
    # a gradient that only shifts the output is absorbed by the batch mean: zero input gradient
    (grad_x,) = VJPS["batch_norm_training"][0](np.ones((2, 1)), out, x, np.array([3.0]), np.array([10.0]), eps=0.0)
    np.testing.assert_array_equal(grad_x, [[0.0], [0.0]])


def test_training_batch_norm_needs_two_values_per_channel():
    with pytest.raises(ValueError, match=r"more than one value per channel.*\(1, 4, 1, 1\).*at least 2 images"):
        batch_norm_training(np.zeros((1, 4, 1, 1)), np.ones(4), np.zeros(4))


@property_test
@given(n=st.integers(1, 3), n_in=st.integers(1, 9), n_out=st.integers(1, 9), with_bias=st.booleans(), seed=seeds)
def test_linear_weight_and_bias_gradients_match_torch(n, n_in, n_out, with_bias, seed):
    rng = np.random.default_rng(seed)
    x, weight = rng.standard_normal((n, n_in)), rng.standard_normal((n_out, n_in))
    bias = rng.standard_normal(n_out) if with_bias else None
    grad_out = rng.standard_normal((n, n_out))
    grad_weight, grad_bias = param_grads("linear", numpy_ops.linear, grad_out, x, weight, bias)
    if with_bias:
        expected = torch_grads(lambda w, b: F.linear(torch.from_numpy(x), w, b), [weight, bias], grad_out)
        assert_close(grad_bias, expected[1], np.abs(grad_out).sum(axis=0))
    else:
        expected = torch_grads(lambda w: F.linear(torch.from_numpy(x), w), [weight], grad_out)
        assert grad_bias is None
    assert_close(grad_weight, expected[0], np.abs(grad_out).T @ np.abs(x))


def test_linear_weight_gradient_by_hand():
    grad_w, grad_b = param_grads("linear", numpy_ops.linear, np.array([[1.0], [2.0]]), np.array([[3.0], [4.0]]),
                                 np.zeros((1, 1)), np.zeros(1))  # fmt: skip
    assert grad_w.item() == 1 * 3 + 2 * 4 and grad_b.item() == 3


@property_test
@given(n=st.integers(1, 3), f=st.integers(1, 20), rate=st.sampled_from([0.0, 0.2, 0.5]), seed=seeds)
def test_dropout_gradient_matches_torch_with_the_same_mask(n, f, rate, seed):
    rng = np.random.default_rng(seed)
    x, grad_out = rng.standard_normal((2, n, f))
    keep = (rng.random((n, f)) >= rate).astype(np.float64)
    tk = torch.from_numpy(keep / (1 - rate))
    out = numpy_ops.dropout(x, rate, keep)
    (actual,) = VJPS["dropout"][0](grad_out, out, x, rate, keep)
    (expected,) = torch_grads(lambda t: t * tk, [x], grad_out)
    assert_close(actual, expected, np.abs(expected))
    (identity,) = VJPS["dropout"][0](grad_out, x, x, rate)  # inference: no mask
    assert identity is grad_out


def test_every_op_with_parameters_has_a_parameter_vjp():
    assert set(PARAM_VJPS) == {"conv2d", "batch_norm", "batch_norm_training", "linear"}
    assert set(PARAM_VJPS) <= set(VJPS)
