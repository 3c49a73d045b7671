"""ghostnp.evaluate: labelled folders in every layout, scored exactly as the PyTorch reference's logits score them.

The folders are made from scikit-image's photographs (crops, flips, resizes; ``synthetic_imagenet.py``). The
network is GhostNetV2 at width 0.5 (``ghostnetv2_050``: the real structure, a third of the work) with random
weights whose classifier is rescaled so that the logits depend on the image (a random network's pooled
features barely do). Each image's class is chosen from the reference's ranking of its logits, so the set has
top-1 hits, top-5 hits and misses, and only classes whose logit stands apart from every other (by far more
than float32 rounding) are chosen: the expected figures cannot flip on a rounding difference.
"""

import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic_imagenet import LAYOUTS, layout_root, write_images, write_layout
from torch_reference import build_torch_model_width, randomize_batchnorm

import ghostnp
from ghostnp.cli.main import EXIT_FAILED_FILES, EXIT_NO_WEIGHTS, EXIT_WORKER_DIED, main
from ghostnp.images.datasets import DatasetError, find_labelled_images
from ghostnp.images.labels import imagenet_classes
from ghostnp.images.pipeline import preprocessed_batches
from ghostnp.inference.classification import eval_config
from ghostnp.inference.evaluation import true_class_ranks

MODEL = "ghostnetv2_050"
TARGET_RANKS = (0, 0, 1, 3, 6, 12)  # per image, cycled: top-1 hits, top-5 hits, misses
MARGIN = 0.02  # the chosen class's logit is this far from every other; ghostnp and PyTorch differ by ~2e-3 here


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """12 JPEG files, their labels, the weights file and the reference's logits (12, 1000)."""
    folder = tmp_path_factory.mktemp("photos")
    files = write_images(folder / "staging", 12, size=(250, 190))
    x = np.concatenate([ghostnp.preprocess(path) for path in files])  # (12, 3, 224, 224)
    torch.manual_seed(0)  # the convolutions' initialisation
    torch_model = randomize_batchnorm(build_torch_model_width(0.5), seed=11)
    with torch.no_grad():
        features = torch_model.forward_features(torch.from_numpy(x))  # (12, 480, 7, 7)
        pooled = torch.relu(torch_model.conv_head(features.mean((2, 3), keepdim=True))).flatten(1)  # (12, 1280)
        weight = torch_model.classifier.weight / (pooled.std(0) + 1e-6)
        torch_model.classifier.weight.copy_(weight)
        torch_model.classifier.bias.copy_(-weight @ pooled.mean(0))
        logits = torch_model(torch.from_numpy(x)).numpy()  # (12, 1000)
    weights = folder / "weights.pth"
    torch.save(torch_model.state_dict(), weights)
    labels = [isolated_class(row, TARGET_RANKS[i % len(TARGET_RANKS)]) for i, row in enumerate(logits)]
    return files, labels, weights, logits


def isolated_class(logits, rank):
    """The class at ``rank`` in the ranking of ``logits`` (1000,), or the next one down whose logit is at
    least MARGIN from every other class's."""
    order = np.argsort(-logits)
    for candidate in order[rank:]:
        others = np.delete(logits, candidate)
        if np.abs(others - logits[candidate]).min() > MARGIN:
            return int(candidate)
    raise AssertionError("no class stands apart from the others; change the seed")


def expected_figures(logits, labels):
    """top-1, top-5 and per-class {index: (count, top-1, top-5)} from the reference's logits, by torch.topk."""
    top5 = torch.topk(torch.from_numpy(logits), 5, dim=1).indices.numpy()  # (N, 5)
    labels = np.asarray(labels)
    hit1, hit5 = top5[:, 0] == labels, (top5 == labels[:, None]).any(axis=1)

    def percent(hits):  # of hits among images: 100 * hits / images, the way accuracy is quoted
        return 100 * int(hits.sum()) / len(hits)

    per_class = {
        int(c): (int((labels == c).sum()), percent(hit1[labels == c]), percent(hit5[labels == c]))
        for c in np.unique(labels)
    }
    return percent(hit1), percent(hit5), per_class


def assert_scores_equal(result, logits, labels):
    top1, top5, per_class = expected_figures(logits, labels)
    assert 0 < result.top1 < result.top5 < 100  # the set has top-1 hits, top-5 hits and misses
    assert (result.top1, result.top5, result.count, result.failed) == (top1, top5, len(labels), [])
    assert {c: (a.count, a.top1, a.top5) for c, a in result.per_class.items()} == per_class
    assert all(a.wnid == imagenet_classes()[c].wnid for c, a in result.per_class.items())


@pytest.mark.parametrize("workers", [0, 2])
def test_scores_equal_the_pytorch_reference_for_both_backends(reference, backend, workers, tmp_path):
    files, labels, weights, logits = reference
    write_layout(tmp_path, "wnid folders", files, labels)
    result = ghostnp.evaluate(tmp_path, MODEL, weights=weights, backend=backend, batch_size=5, workers=workers)
    assert_scores_equal(result, logits, labels)
    assert result.layout == "wnid folders" and result.images_per_second > 0 and result.seconds > 0


@pytest.mark.parametrize("layout", [layout for layout in LAYOUTS if layout != "wnid folders"])
def test_every_layout_gives_the_same_scores(reference, layout, tmp_path):
    files, labels, weights, logits = reference
    labels_file = write_layout(tmp_path, layout, files, labels)
    result = ghostnp.evaluate(layout_root(tmp_path, layout), MODEL, weights=weights, labels=labels_file, workers=0)
    assert_scores_equal(result, logits, labels)


def test_limit_scores_the_first_images_in_sorted_order(reference, tmp_path):
    files, labels, weights, logits = reference
    write_layout(tmp_path, "index folders", files, labels)
    dataset = find_labelled_images(tmp_path)
    assert [(int(p.parent.name), p.name) for p in dataset.paths] == sorted(
        (label, f.name) for f, label in zip(files, labels)
    )
    first = [[f.name for f in files].index(path.name) for path in dataset.paths[:4]]
    result = ghostnp.evaluate(tmp_path, MODEL, weights=weights, limit=4, workers=0)
    top1, top5, _ = expected_figures(logits[first], [labels[i] for i in first])
    assert (result.count, result.top1, result.top5) == (4, top1, top5)


def test_true_class_ranks_by_hand():
    logits = np.array([[0.1, 0.9, 0.5, 0.7], [3.0, 1.0, 2.0, 0.0]])
    np.testing.assert_array_equal(true_class_ranks(logits, np.array([1, 2])), [0, 1])
    np.testing.assert_array_equal(true_class_ranks(logits, np.array([0, 3])), [3, 3])


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "tiny.npz"
    np.savez(path, **ghostnp.create_model("ghostnetv2_tiny", seed=2).state_dict())
    return path


@pytest.mark.parametrize("workers", [0, 2])
def test_broken_truncated_and_non_image_files_are_reported_and_skipped(reference, tiny_weights, workers, tmp_path):
    files, labels, _, _ = reference
    clean, broken = tmp_path / "clean", tmp_path / "broken"
    write_layout(clean, "wnid folders", files[:6], labels[:6])
    write_layout(broken, "wnid folders", files[:6], labels[:6])
    folder = broken / imagenet_classes()[labels[0]].wnid
    (folder / "truncated.JPEG").write_bytes(files[0].read_bytes()[:2000])
    (folder / "text.JPEG").write_text("<html>a saved web page, not a JPEG</html>")
    (folder / "empty.JPEG").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # hidden files are not images to score
    options = {"weights": tiny_weights, "workers": workers, "batch_size": 4}
    result = ghostnp.evaluate(broken, "ghostnetv2_tiny", **options)
    expected = ghostnp.evaluate(clean, "ghostnetv2_tiny", **options)
    assert sorted(name.rsplit("/", 1)[-1] for name, _ in result.failed) == [
        "empty.JPEG",
        "notes.txt",
        "text.JPEG",
        "truncated.JPEG",
    ]
    reasons = {name.rsplit("/", 1)[-1]: reason for name, reason in result.failed}
    assert "empty" in reasons["empty.JPEG"] and "truncated" in reasons["truncated.JPEG"].lower()
    assert "not an image" in reasons["notes.txt"] and all(name in reasons[name] for name in reasons)
    assert (result.count, result.top1, result.top5) == (6, expected.top1, expected.top5)


def test_errors_name_the_problem_and_the_accepted_layouts(reference, tmp_path):
    files, labels, _, _ = reference
    with pytest.raises(DatasetError, match="is empty. Accepted layouts: class folders named by WordNet id"):
        find_labelled_images(tmp_path)
    (tmp_path / "n01440764").mkdir()
    (tmp_path / "cats").mkdir()
    with pytest.raises(DatasetError, match="'cats'.*neither all WordNet ids nor all class indices"):
        find_labelled_images(tmp_path)
    (tmp_path / "cats").rmdir()
    with pytest.raises(DatasetError, match="holds no images"):
        find_labelled_images(tmp_path)
    (tmp_path / "n99999999").mkdir()
    with pytest.raises(DatasetError, match="not ImageNet-1k WordNet ids: 'n99999999'"):
        find_labelled_images(tmp_path)
    with pytest.raises(DatasetError, match="not class indices 0..999"):
        (tmp_path / "numbers" / "1000").mkdir(parents=True)
        find_labelled_images(tmp_path / "numbers")
    with pytest.raises(DatasetError, match="is not a folder"):
        find_labelled_images(tmp_path / "missing")


def test_labels_file_errors(reference, tmp_path):
    files, labels, _, _ = reference
    labels_file = write_layout(tmp_path, "val.txt", files[:3], labels[:3])
    images = layout_root(tmp_path, "val.txt")
    with pytest.raises(DatasetError, match="holds files but no class folders.*--labels"):
        find_labelled_images(images)
    labels_file.write_text(labels_file.read_text() + "img_9999.JPEG 5\n")
    with pytest.raises(DatasetError, match="names 1 file.*not in .*'img_9999.JPEG'"):
        find_labelled_images(images, labels_file)
    labels_file.write_text(f"{files[0].name} n99999999\n")
    with pytest.raises(DatasetError, match="line 1: n99999999 is not an ImageNet-1k WordNet id"):
        find_labelled_images(images, labels_file)
    labels_file.write_text(f"{files[0].name} 1000\n")
    with pytest.raises(DatasetError, match="'1000' is not a WordNet id .* or a class index 0..999"):
        find_labelled_images(images, labels_file)
    labels_file.write_text("65\n970\n230\n")
    with pytest.raises(DatasetError, match="An index per line is ambiguous"):
        find_labelled_images(images, labels_file)
    labels_file.write_text("n01440764\n")
    with pytest.raises(DatasetError, match="1 lines and the folder 3 files"):
        find_labelled_images(images, labels_file)
    labels_file.write_text("a b c\n")
    with pytest.raises(DatasetError, match="in no format ghostnp reads"):
        find_labelled_images(images, labels_file)
    with pytest.raises(DatasetError, match="does not exist"):
        find_labelled_images(images, tmp_path / "missing.txt")


def run_cli(argv):
    out = io.StringIO()
    return main(argv, out=out), out.getvalue()


def test_cli_table_json_limit_and_exit_statuses(reference, tiny_weights, tmp_path, capsys, monkeypatch):
    files, labels, _, _ = reference
    write_layout(tmp_path / "set", "wnid folders", files, labels)
    tiny = ["--model", "ghostnetv2_tiny", "--weights", str(tiny_weights), "--workers", "0"]
    status, out = run_cli(["evaluate", str(tmp_path / "set"), *tiny])
    expected = ghostnp.evaluate(tmp_path / "set", "ghostnetv2_tiny", weights=tiny_weights, workers=0)
    table = dict(line.split(None, 1) for line in out.splitlines())
    assert status == 0 and list(table) == ["model", "layout", "top-1", "top-5", "count", "failed", "time"]
    assert table["top-1"] == f"{expected.top1:.3f} %" and table["count"] == "12" and table["failed"] == "0"
    assert table["layout"].startswith("wnid folders") and "images/s" in table["time"]

    status, out = run_cli(["evaluate", str(tmp_path / "set"), *tiny, "--json", "--limit", "5"])
    record = json.loads(out)
    assert (
        status == 0
        and record["count"] == 5
        and record["failed"] == []
        and sum(c["count"] for c in record["per_class"]) == 5
    )
    assert {"top1", "top5", "images_per_second", "seconds", "layout", "model"} <= set(record)
    assert capsys.readouterr().err == ""  # no progress bar, no messages in --json mode

    (tmp_path / "set" / imagenet_classes()[labels[0]].wnid / "broken.JPEG").write_bytes(b"not a JPEG")
    status, out = run_cli(["evaluate", str(tmp_path / "set"), *tiny, "--json"])
    assert status == EXIT_FAILED_FILES and json.loads(out)["count"] == 12
    assert "broken.JPEG" in json.loads(out)["failed"][0]["file"] and "broken.JPEG" in capsys.readouterr().err

    status, _ = run_cli(["evaluate", str(tmp_path / "set" / imagenet_classes()[labels[0]].wnid), *tiny])
    assert status == 2 and "Accepted layouts" in capsys.readouterr().err

    monkeypatch.setenv("GHOSTNP_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("GHOSTNP_OFFLINE", "1")
    status, _ = run_cli(["evaluate", str(tmp_path / "set"), "--limit", "1"])
    assert status == EXIT_NO_WEIGHTS and "ck_ghostnetv2_10.pth.tar" in capsys.readouterr().err


def children_of(pid):
    """The process ids of ``pid``'s children (Linux: /proc/PID/task/*/children)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the worker processes through /proc")
def test_a_killed_worker_ends_the_run_with_a_clear_error(reference, tiny_weights, tmp_path):
    files, labels, _, _ = reference
    write_layout(tmp_path, "wnid folders", files * 10, labels * 10)  # same names per class: 12 distinct files
    for i, path in enumerate(sorted(tmp_path.rglob("*.JPEG")) * 5):  # 60 files, a few seconds of work
        shutil.copy(path, path.with_name(f"copy_{i}_{path.name}"))
    command = [sys.executable, "-m", "ghostnp", "evaluate", str(tmp_path), "--model", "ghostnetv2_tiny"]
    command += ["--weights", str(tiny_weights), "--workers", "2", "--batch-size", "1", "--json"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not children_of(run.pid) and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.01)
        workers = children_of(run.pid)
        assert workers, "the run started no worker process"
        os.kill(workers[0], signal.SIGKILL)
        _, err = run.communicate(timeout=60)  # a hang fails here
    finally:
        run.kill()
    assert run.returncode == EXIT_WORKER_DIED
    assert "a worker process decoding images died" in err and "--workers 0" in err and "Traceback" not in err


def test_pipeline_batches_are_in_order_bounded_and_report_failures():
    class Recorded(list):
        """A list that records which slices the pipeline has taken out of it (one per task submitted)."""

        taken = 0

        def __getitem__(self, index):
            if isinstance(index, slice):
                Recorded.taken += 1
            return super().__getitem__(index)

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40 + i, 50, 3), dtype=np.uint8) for i in range(10)]
    sources = Recorded(images[:3] + [np.zeros((8, 8), np.float32)] + images[3:])  # position 3 is refused
    config = eval_config("ghostnetv2_100")
    for workers, threads in ((0, False), (2, True), (1, False)):
        Recorded.taken = 0
        batches = preprocessed_batches(sources, config, batch_size=2, workers=workers, prefetch=3, threads=threads)
        first = next(batches)
        assert Recorded.taken == (1 if workers == 0 else 3)  # never more than prefetch batches in flight
        rest = list(batches)
        assert [b.positions for b in [first, *rest]] == [[0, 1], [2], [4, 5], [6, 7], [8, 9], [10]]
        assert [b.failures for b in [first, *rest]][1][0][0] == 3 and "float32" in rest[0].failures[0][1]
        inputs = np.concatenate([b.inputs for b in [first, *rest]])  # (10, 3, 224, 224)
        np.testing.assert_array_equal(inputs, np.concatenate([ghostnp.preprocess(i) for i in images]))


def test_the_model_pickles_and_maps_over_a_process_pool(backend):
    model = ghostnp.create_model("ghostnetv2_tiny", seed=3, backend=backend)
    x = np.random.default_rng(0).normal(size=(2, 3, 64, 64)).astype(np.float32)
    copy = pickle.loads(pickle.dumps(model))
    assert (copy.backend, copy.arch) == (model.backend, model.arch)
    np.testing.assert_array_equal(copy(x), model(x))
    weight_bytes = sum(v.nbytes for v in model.params.values())
    assert len(pickle.dumps(model)) < 1.1 * weight_bytes  # each weight once: the folded copy is rebuilt
    with ProcessPoolExecutor(2) as pool:
        logits = list(pool.map(model, [x[:1], x[1:]]))
    np.testing.assert_allclose(np.concatenate(logits), model(x), rtol=1e-6, atol=1e-6)
