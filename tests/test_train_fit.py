"""``ghostnp.train.fit`` and what training does to a model: it learns, it is reproducible, frozen parameters
stay bit-identical, the trained weights run on every backend and load into PyTorch, and bad input gets
an error that says what to do."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch_reference import TorchFromArchitecture

import ghostnp
from ghostnp.train import SGD, AdamW, fit, loss_and_grads


def colour_problem(n=24, size=33, seed=0):
    """Three classes: the image's red, green or blue channel is brighter, under strong noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.normal(0.0, 1.0, (n, 3, size, size))
    images[np.arange(n), labels] += 1.0
    return images.astype(np.float32), labels


def tiny(num_classes=3, **options):
    return ghostnp.create_model("ghostnetv2_tiny", num_classes=num_classes, seed=1, **options)


def test_fit_learns_a_small_problem():
    images, labels = colour_problem()
    model = tiny()
    history = fit(model, images, labels, epochs=6, batch_size=8, optimizer=AdamW(3e-3), progress=False)
    assert history["epoch"] == [1, 2, 3, 4, 5, 6] and len(history["loss"]) == 6
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["accuracy"][-1] >= 0.8  # chance is 1/3
    assert ghostnp.train.accuracy(model, images, labels) >= 0.8  # in inference mode, with the new statistics


def test_fit_is_reproducible_with_a_seed():
    images, labels = colour_problem(n=12)
    runs = []
    for seed in (4, 4, 5):
        model = tiny()
        history = fit(model, images, labels, epochs=2, batch_size=4, optimizer=SGD(0.05, momentum=0.9), seed=seed,
                      progress=False)  # fmt: skip
        runs.append((history, model.state_dict()))
    (h1, s1), (h2, s2), (h3, s3) = runs
    assert h1 == h2 and all(np.array_equal(s1[k], s2[k]) for k in s1)
    assert h1["loss"] != h3["loss"]  # another seed: another order of batches and other dropout masks


def test_a_frozen_prefix_stays_bit_identical_and_the_rest_trains():
    images, labels = colour_problem(n=12)
    model = tiny()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    trainable = ["blocks.3", "conv_head", "classifier"]
    fit(model, images, labels, epochs=2, batch_size=4, optimizer=SGD(0.1, momentum=0.9), trainable=trainable,
        progress=False)  # fmt: skip
    after = model.state_dict()
    for key in before:
        inside = any(key.startswith(prefix + ".") for prefix in trainable)
        if not inside:
            assert np.array_equal(before[key], after[key]), f"{key} changed but is frozen"
        elif not key.endswith("num_batches_tracked"):
            assert not np.array_equal(before[key], after[key]), f"{key} did not train"
    assert after["blocks.3.0.ghost1.primary_conv.1.num_batches_tracked"] == 2 * 3  # 2 epochs of 3 batches
    assert after["bn1.num_batches_tracked"] == 0


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_after_training_every_backend_runs_the_new_weights(backend):
    if backend == "numba":
        pytest.importorskip("numba")
    images, labels = colour_problem(n=8)
    model = tiny(backend=backend, dtype=np.float64)
    before = model(images[:2].astype(np.float64))
    fit(model, images, labels, epochs=1, batch_size=4, optimizer=SGD(0.1), progress=False)
    reference = tiny(weights=model.state_dict(), backend="numpy")  # a fresh model from the trained weights
    x = images[:2].astype(np.float64)
    assert not np.allclose(model(x), before)
    np.testing.assert_allclose(model(x), reference(x), rtol=1e-9, atol=1e-9 * np.abs(reference(x)).max())


@pytest.mark.parametrize("backend, fold_bn", [("numpy", True), ("numba", False), ("numba", True)])
def test_an_optimizer_step_alone_is_seen_by_a_folded_model_and_refresh_covers_in_place_edits(backend, fold_bn):
    """Folded, or laid out for the numba table (``prepare_params``), the run parameters are made anew."""
    if backend == "numba":
        pytest.importorskip("numba")
    model = tiny(backend=backend, fold_bn=fold_bn, dtype=np.float64)
    x = colour_problem(n=2)[0].astype(np.float64)
    before = model(x)
    _, grads = loss_and_grads(model, x, [0, 1], drop_rate=0.0)
    SGD(0.5).step(model.params, grads)  # replaces arrays: the next call re-folds
    stepped = model(x)
    assert not np.allclose(stepped, before)
    np.testing.assert_allclose(stepped, tiny(weights=model.state_dict())(x), rtol=1e-9)
    model.params["classifier.bias"][:] += 1.0  # an in-place edit is invisible until refresh()
    model.refresh()
    np.testing.assert_allclose(model(x), stepped + 1.0, rtol=1e-9)


def test_state_dict_saves_weights_that_ghostnp_and_pytorch_both_load(tmp_path):
    images, labels = colour_problem(n=8)
    model = tiny(dtype=np.float64)
    fit(model, images, labels, epochs=1, batch_size=4, optimizer=SGD(0.1), progress=False)
    state = model.state_dict()
    assert state["bn1.num_batches_tracked"].dtype == np.int64 and int(state["bn1.num_batches_tracked"]) == 2
    np.savez(tmp_path / "trained.npz", **state)
    loaded = tiny(weights=str(tmp_path / "trained.npz"))
    x = images[:2]
    np.testing.assert_allclose(loaded(x), model(x).astype(np.float32), rtol=1e-4, atol=1e-5)

    torch_model = TorchFromArchitecture(model.arch).double()
    result = torch_model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert int(torch_model.bn1.num_batches_tracked) == 2
    with torch.no_grad():
        expected = torch_model.eval()(torch.from_numpy(x.astype(np.float64))).numpy()
    np.testing.assert_allclose(model(x.astype(np.float64)), expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


# ------------------------------------------------------------------------------------------- bad input


def test_targets_out_of_range_or_of_the_wrong_shape_are_refused_before_anything_changes():
    model = tiny()
    x = colour_problem(n=2)[0]
    before = model.params["bn1.running_mean"]
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\), got 3 at position 1.*num_classes=K"):
        loss_and_grads(model, x, [0, 3])
    with pytest.raises(ValueError, match=r"2 class indices.*got shape \(2, 3\).*not one-hot"):
        loss_and_grads(model, x, np.eye(3)[[0, 1]])
    with pytest.raises(ValueError, match=r"integer class indices, got dtype float64"):
        loss_and_grads(model, x, np.array([0.0, 1.0]))
    assert model.params["bn1.running_mean"] is before and model.num_batches_tracked["bn1"] == 0


def test_a_diverging_loss_names_the_step_and_suggests_a_lower_learning_rate():
    images, labels = colour_problem(n=8)
    with pytest.raises(FloatingPointError, match=r"at step \d+ \(epoch \d, batch \d of 2\).*Lower the learning rate"):
        with np.errstate(all="ignore"):
            fit(tiny(), images, labels, epochs=3, batch_size=4, optimizer=SGD(1e30), progress=False)


def test_a_trainable_prefix_that_matches_nothing_is_named():
    images, labels = colour_problem(n=4)
    with pytest.raises(ValueError, match=r"trainable prefix 'head' matches no parameter.*'conv_head', 'classifier'"):
        fit(tiny(), images, labels, epochs=1, batch_size=2, optimizer=SGD(0.1), trainable=["classifier", "head"],
            progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="batch_size must be between 2"):
        fit(tiny(), images, labels, epochs=1, batch_size=1, optimizer=SGD(0.1), progress=False)


def test_ghostnp_train_is_reached_from_ghostnp_without_heavy_imports():
    code = (
        "import sys, ghostnp; ghostnp.train.SGD(0.1); "
        "heavy = [m for m in ('torch', 'numba', 'matplotlib', 'scipy', 'tqdm') if m in sys.modules]; print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_a_new_head_fine_tunes_on_frozen_features_and_leaves_the_original_alone():
    images, labels = colour_problem(n=12)
    base = ghostnp.create_model("ghostnetv2_tiny", seed=1)  # 1000 classes
    model = ghostnp.train.with_new_head(base, num_classes=3, seed=2)
    assert model.params["classifier.weight"].shape == (3, 128) and model.arch.num_classes == 3
    history = fit(model, images, labels, epochs=3, batch_size=4, optimizer=SGD(0.02, momentum=0.9),
                  trainable="classifier", progress=False)  # fmt: skip
    assert history["loss"][-1] < history["loss"][0]
    for key, value in base.params.items():
        if not key.startswith("classifier."):
            assert model.params[key] is value  # untouched, still shared
    assert base.params["classifier.weight"].shape == (1000, 128)


def test_a_pickled_model_keeps_its_dropout_rate_and_batchnorm_counters():
    images, labels = colour_problem(n=4)
    model = tiny(drop_rate=0.3)
    fit(model, images, labels, epochs=1, batch_size=2, optimizer=SGD(0.01), progress=False)
    copy = pickle.loads(pickle.dumps(model))
    assert copy.drop_rate == 0.3 and copy.num_batches_tracked == model.num_batches_tracked
    assert copy.num_batches_tracked["bn1"] == 2
