"""classify() end to end: an official-format checkpoint made with torch, ghostnp's path from file to labels,
checked against the PyTorch reference's softmax on the same preprocessed input."""

import numpy as np
import pytest
import torch
from torch_reference import build_torch_model, randomize_batchnorm

import ghostnp
from ghostnp.images.labels import imagenet_classes
from ghostnp.inference import classification
from ghostnp.inference.classification import Prediction, softmax, top_predictions


@pytest.fixture(scope="module")
def official_checkpoint(tmp_path_factory):
    """ghostnetv2_100 with random weights, saved as the authors' release is: a bare state_dict in the zip
    format, plus the FLOP profiler's float64 total_ops / total_params buffers."""
    torch_model = randomize_batchnorm(build_torch_model("ghostnetv2_100"), seed=3)
    state = dict(torch_model.state_dict())
    state["conv_stem.total_ops"] = torch.zeros(1, dtype=torch.float64)
    state["conv_stem.total_params"] = torch.zeros(1, dtype=torch.float64)
    path = tmp_path_factory.mktemp("weights") / "ck_ghostnetv2_10.pth.tar"
    torch.save(state, path)
    return path, torch_model


def test_classify_matches_pytorch_softmax(official_checkpoint):
    path, torch_model = official_checkpoint
    image = ghostnp.sample_image_path()
    predictions = ghostnp.classify(image, topk=5, weights=path)

    x = ghostnp.preprocess(image)  # (1, 3, 224, 224)
    with torch.no_grad():
        expected = torch.softmax(torch_model.float()(torch.from_numpy(x)).double(), dim=1).numpy()[0]
    assert [p.index for p in predictions] == list(np.argsort(-expected)[:5])
    np.testing.assert_allclose([p.probability for p in predictions], np.sort(expected)[::-1][:5], rtol=1e-4, atol=1e-7)
    assert all(isinstance(p, Prediction) and p.label == imagenet_classes()[p.index].name for p in predictions)


def test_a_list_is_classified_in_batches_like_one_by_one(official_checkpoint):
    path, _ = official_checkpoint
    gray = np.full((300, 240, 3), 128, np.uint8)
    images = [ghostnp.sample_image_path(), gray, ghostnp.sample_image_path()]
    together = ghostnp.classify(images, topk=3, weights=path, batch_size=2)
    assert len(together) == 3
    for image, predictions in zip(images, together):
        alone = ghostnp.classify(image, topk=3, weights=path)
        assert [p.index for p in alone] == [p.index for p in predictions]
        np.testing.assert_allclose([p.probability for p in alone], [p.probability for p in predictions], rtol=1e-5)


def test_the_model_is_loaded_once_and_reused(official_checkpoint, monkeypatch):
    path, _ = official_checkpoint
    ghostnp.classify(ghostnp.sample_image_path(), weights=path)
    monkeypatch.setattr(classification, "create_model", None)  # a second load would fail
    assert len(ghostnp.classify(ghostnp.sample_image_path(), weights=path)) == 5


def test_top_predictions_by_hand():
    logits = np.full((1, 1000), -1e9)
    logits[0, 281], logits[0, 285] = np.log(3.0), np.log(1.0)  # tabby cat 3 : 1 Egyptian cat
    best = top_predictions(logits, topk=2)[0]
    assert [p.index for p in best] == [281, 285]
    assert best[0].probability == pytest.approx(0.75) and best[1].probability == pytest.approx(0.25)
    assert best[0].label.startswith("tabby")


def test_softmax_is_stable_for_large_logits():
    p = softmax(np.array([[1000.0, 1000.0, -1000.0]]))
    np.testing.assert_allclose(p, [[0.5, 0.5, 0.0]])


def test_offline_with_the_official_file_put_in_the_cache_by_hand(official_checkpoint, tmp_path, monkeypatch):
    """The README's offline recipe: save ck_ghostnetv2_10.pth.tar under <cache>/ghostnetv2_100.in1k/, then
    classify with no --weights and no network."""
    import shutil

    from ghostnp.cli import main

    path, _ = official_checkpoint
    monkeypatch.setenv("GHOSTNP_HOME", str(tmp_path))
    monkeypatch.setenv("GHOSTNP_OFFLINE", "1")
    (tmp_path / "ghostnetv2_100.in1k").mkdir()
    shutil.copy(path, tmp_path / "ghostnetv2_100.in1k" / "ck_ghostnetv2_10.pth.tar")
    monkeypatch.setattr(classification, "_loaded_models", {})

    predictions = ghostnp.classify(ghostnp.sample_image_path(), topk=3)

    assert (tmp_path / "ghostnetv2_100.in1k.npz").exists()  # converted once, into the cache
    expected = ghostnp.classify(ghostnp.sample_image_path(), topk=3, weights=path)
    assert [p.index for p in predictions] == [p.index for p in expected]
    np.testing.assert_allclose([p.probability for p in predictions], [p.probability for p in expected], rtol=1e-6)
    assert main(["classify", "--sample", "--topk", "1"]) == 0
