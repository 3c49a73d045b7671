"""Training steps of whole networks against PyTorch in ``model.train()`` mode, in float64.

ghostnp's seeded random weights (non-trivial BatchNorm statistics) are loaded into the PyTorch reference;
both compute the loss of the same batch in training mode. The loss, every parameter gradient, every
updated running statistic and ``num_batches_tracked`` must agree within 1e-9 relative (per tensor, max |a - b|
over max |b|); then three steps of SGD (momentum, weight decay, Nesterov) and of AdamW on three batches must
give the same parameters. Dropout is compared with the mask ghostnp drew, given to the reference.

Some gradients are exactly zero: the bias of a BatchNorm whose output reaches the loss only through
convolutions into training-mode BatchNorms (``shortcut.1`` before ``shortcut.2`` / ``.3``), since those
subtract the batch mean. Both sides then hold rounding noise (~1e-17), which no relative measure can
compare; a tensor is therefore measured against the larger of its own largest value and a millionth of
the largest gradient of the network (``ZERO_FLOOR``), which leaves every other tensor's measure unchanged.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch_reference import TorchFromArchitecture, build_torch_model

import ghostnp
from ghostnp.network.params import is_trainable
from ghostnp.train import SGD, AdamW, cosine_lr, loss_and_grads, step_lr

RTOL = 1e-9
ZERO_FLOOR = 1e-6
# (N, H, W). Batch 3, not 2: the DFC branch of the last stage pools 2 x 2 maps to 1 x 1, where a BatchNorm over
# two values (x_hat = -1, +1) amplifies rounding a thousandfold (measured 3.5e-10 at batch 2, 1.8e-11 at 3).
SIZES = {"ghostnetv2_tiny": (3, 33, 40), "ghostnetv2_100": (3, 64, 64), "ghostnet_100": (3, 64, 64)}
HEAD_CHS = {"ghostnetv2_tiny": 128, "ghostnetv2_100": 1280, "ghostnet_100": 1280}


def relative_error(actual, expected, floor=0.0):
    """max |actual - expected| / max |expected| (or ``floor`` when larger)."""
    expected = expected.detach().numpy() if isinstance(expected, torch.Tensor) else expected
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(np.abs(expected).max(), floor)
    assert scale > 0
    return float(np.abs(actual - expected).max() / scale)


def gradient_errors(grads, expected_grads):
    """{key: relative error} of every gradient, each against its own scale or ZERO_FLOOR of the largest."""
    floor = ZERO_FLOOR * max(float(g.abs().max()) for g in expected_grads.values())
    return {key: relative_error(grads[key], expected_grads[key], floor) for key in grads}


def pair(name, drop_rate=0.0, num_classes=1000):
    """A ghostnp model (float64, seeded) and the PyTorch reference with the same weights, in training mode."""
    model = ghostnp.create_model(name, seed=5, dtype=np.float64, drop_rate=drop_rate, num_classes=num_classes)
    if name == "ghostnetv2_tiny":
        torch_model = TorchFromArchitecture(model.arch, dropout=drop_rate)
    else:
        torch_model = build_torch_model(name, num_classes=num_classes)
        torch_model.dropout = drop_rate
    state = {k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()}
    torch_model.double().load_state_dict(state)
    return model, torch_model.train()


def batch(name, seed, num_classes=1000):
    n, h, w = SIZES[name]
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3, h, w)), rng.integers(0, num_classes, n)


def torch_loss_and_grads(torch_model, x, targets, label_smoothing=0.0):
    torch_model.zero_grad()
    logits = torch_model(torch.from_numpy(x))
    loss = F.cross_entropy(logits, torch.from_numpy(targets), label_smoothing=label_smoothing)
    loss.backward()
    return loss.item(), {k: p.grad for k, p in torch_model.named_parameters()}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SIZES))
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1], ids=["no-smoothing", "smoothing"])
def test_loss_gradients_and_running_statistics_match_pytorch(name, label_smoothing):
    model, torch_model = pair(name)
    x, targets = batch(name, seed=1)

    loss, grads = loss_and_grads(model, x, targets, label_smoothing=label_smoothing)
    expected_loss, expected_grads = torch_loss_and_grads(torch_model, x, targets, label_smoothing)

    assert abs(loss - expected_loss) <= RTOL * abs(expected_loss)
    assert set(grads) == set(expected_grads) == {k for k in model.params if is_trainable(k)}
    errors = gradient_errors(grads, expected_grads)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= RTOL, f"{worst}: {errors[worst]:.3g}"
    buffers = dict(torch_model.named_buffers())
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            assert int(value) == int(buffers[key]) == 1, key
        elif not is_trainable(key):
            assert relative_error(value, buffers[key]) <= RTOL, key


@pytest.mark.parametrize("name", ["ghostnetv2_tiny", "ghostnetv2_100"])
def test_dropout_before_the_classifier_matches_pytorch_with_the_same_mask(name):
    """The mask is ``rng.random((N, head_chs)) >= rate`` of the generator passed as ``rng``."""
    model, torch_model = pair(name, drop_rate=0.2)
    x, targets = batch(name, seed=2)
    keep = np.random.default_rng(7).random((len(x), HEAD_CHS[name])) >= 0.2
    torch_model.dropout_keep = torch.from_numpy(keep.astype(np.float64))

    loss, grads = loss_and_grads(model, x, targets, rng=np.random.default_rng(7))
    expected_loss, expected_grads = torch_loss_and_grads(torch_model, x, targets)

    assert abs(loss - expected_loss) <= RTOL * abs(expected_loss)
    for key in ("classifier.weight", "conv_head.weight", "conv_stem.weight"):
        assert relative_error(grads[key], expected_grads[key]) <= RTOL, key
    assert not np.all(keep) and np.all(grads["classifier.weight"][:, ~keep.any(axis=0)] == 0)


def test_drop_rate_zero_turns_dropout_off_and_none_takes_the_models():
    x, targets = batch("ghostnetv2_tiny", seed=3)

    def loss(seed, **options):  # a fresh model each time: a training forward moves the running statistics
        model = ghostnp.create_model("ghostnetv2_tiny", seed=1, dtype=np.float64, **options)
        return loss_and_grads(model, x, targets, rng=seed)[0]

    assert ghostnp.create_model("ghostnetv2_tiny").drop_rate == 0.2
    assert loss(1, drop_rate=0.0) == loss(2, drop_rate=0.0)  # no dropout: the seed does not matter
    assert loss(1) != loss(2) and loss(1) == loss(1) and loss(1) != loss(1, drop_rate=0.0)


# ---------------------------------------------------------------------------------------------- optimizers

OPTIMIZERS = {
    "sgd": (lambda: SGD(0.05), lambda p: torch.optim.SGD(p, 0.05)),
    "sgd-momentum-decay": (
        lambda: SGD(0.05, momentum=0.9, weight_decay=1e-3),
        lambda p: torch.optim.SGD(p, 0.05, momentum=0.9, weight_decay=1e-3),
    ),
    "sgd-nesterov": (
        lambda: SGD(0.05, momentum=0.9, weight_decay=1e-3, nesterov=True),
        lambda p: torch.optim.SGD(p, 0.05, momentum=0.9, weight_decay=1e-3, nesterov=True),
    ),
    "adamw": (
        lambda: AdamW(2e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
        lambda p: torch.optim.AdamW(p, 2e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_three_optimizer_steps_match_pytorch(optimizer):
    model, torch_model = pair("ghostnetv2_tiny", num_classes=10)
    ours, theirs = OPTIMIZERS[optimizer][0](), OPTIMIZERS[optimizer][1](torch_model.parameters())
    for step in range(3):
        x, targets = batch("ghostnetv2_tiny", seed=10 + step, num_classes=10)
        _, grads = loss_and_grads(model, x, targets, label_smoothing=0.1)
        ours.step(model.params, grads)
        torch_loss_and_grads(torch_model, x, targets, label_smoothing=0.1)
        theirs.step()
    expected = {k: v.detach() for k, v in torch_model.state_dict().items()}
    errors = {k: relative_error(v, expected[k]) for k, v in model.params.items()}
    worst = max(errors, key=errors.get)
    assert errors[worst] <= RTOL, f"{worst}: {errors[worst]:.3g}"
    moved = relative_error(model.params["conv_stem.weight"], pair("ghostnetv2_tiny")[0].params["conv_stem.weight"])
    assert moved > 1e-6  # the steps did change the weights


def test_optimizers_by_hand():
    params = {"w": np.array([1.0, -2.0])}
    SGD(0.5).step(params, {"w": np.array([2.0, 2.0])})
    np.testing.assert_array_equal(params["w"], [0.0, -3.0])
    sgd = SGD(1.0, momentum=0.5)
    params = {"w": np.zeros(1)}
    for _ in range(2):
        sgd.step(params, {"w": np.ones(1)})
    np.testing.assert_array_equal(params["w"], [-(1 + 1.5)])  # buffers 1, then 0.5 * 1 + 1
    params = {"w": np.zeros(1)}
    AdamW(0.1, weight_decay=0.0).step(params, {"w": np.array([3.0])})  # the first Adam step is lr * sign(g)
    np.testing.assert_allclose(params["w"], [-0.1], rtol=1e-7)


def test_optimizers_reject_bad_settings():
    with pytest.raises(ValueError, match="Nesterov momentum needs momentum > 0"):
        SGD(0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"lr must be >= 0.0, got -1"):
        SGD(-1)
    with pytest.raises(ValueError, match=r"betas\[1\] must be in \[0.0, 1.0\), got 1.0"):
        AdamW(betas=(0.9, 1.0))


def test_schedules_match_pytorchs_schedulers():
    for make, ours in [
        (lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7, eta_min=0.01),
         lambda e: cosine_lr(e, epochs=7, base_lr=0.3, min_lr=0.01)),
        (lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
         lambda e: step_lr(e, base_lr=0.3, step_size=3, gamma=0.5)),
    ]:  # fmt: skip
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
        scheduler = make(optimizer)
        for epoch in range(7):
            assert abs(ours(epoch) - optimizer.param_groups[0]["lr"]) <= 1e-12
            optimizer.step()
            scheduler.step()
