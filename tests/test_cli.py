"""The ghostnp command, through main(argv) and as a subprocess; and the minimal install (numpy + pillow)."""

import io
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest

import ghostnp
from ghostnp.cli.main import EXIT_FAILED_FILES, EXIT_NO_WEIGHTS, main

REPO = Path(__file__).resolve().parent.parent
TINY = ["--model", "ghostnetv2_tiny"]


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "tiny.npz"
    np.savez(path, **ghostnp.create_model("ghostnetv2_tiny", seed=5).state_dict())
    return path


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GHOSTNP_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("GHOSTNP_OFFLINE", "1")
    return tmp_path / "cache"


def run(argv):
    out = io.StringIO()
    return main(argv, out=out), out.getvalue()


def test_classify_prints_a_table(tiny_weights):
    status, out = run(["classify", "--sample", *TINY, "--weights", str(tiny_weights), "--topk", "3"])
    lines = out.splitlines()
    assert status == 0 and lines[0].endswith("chelsea.jpg") and len(lines) == 4
    expected = ghostnp.classify(ghostnp.sample_image_path(), "ghostnetv2_tiny", topk=3, weights=tiny_weights)
    assert [int(line.split()[1]) for line in lines[1:]] == [p.index for p in expected]


def test_classify_json_and_a_folder_with_a_broken_file(tiny_weights, tmp_path, capsys):
    shutil.copy(ghostnp.sample_image_path(), tmp_path / "a.jpg")
    (tmp_path / "b.jpg").write_bytes(b"this is not a JPEG")
    (tmp_path / "notes.txt").write_text("not an image, not even tried")
    status, out = run(["classify", str(tmp_path), *TINY, "--weights", str(tiny_weights), "--json", "--topk", "2"])
    records = [json.loads(line) for line in out.splitlines()]
    assert status == EXIT_FAILED_FILES
    assert [Path(r["file"]).name for r in records] == ["a.jpg"]
    assert len(records[0]["predictions"]) == 2 and set(records[0]["predictions"][0]) == {
        "label",
        "index",
        "probability",
    }
    assert "b.jpg" in capsys.readouterr().err


def test_a_pattern_that_matches_nothing_is_reported(tiny_weights, tmp_path, capsys):
    status, _ = run(["classify", str(tmp_path / "*.jpg"), *TINY, "--weights", str(tiny_weights)])
    assert status == EXIT_FAILED_FILES and "*.jpg" in capsys.readouterr().err


def test_classify_a_missing_file_and_no_input(tiny_weights, capsys):
    status, _ = run(["classify", "missing.jpg", *TINY, "--weights", str(tiny_weights)])
    assert status == EXIT_FAILED_FILES and "missing.jpg" in capsys.readouterr().err
    status, _ = run(["classify", *TINY, "--weights", str(tiny_weights)])
    assert status == 2 and "--sample" in capsys.readouterr().err


def test_classify_without_weights_offline_explains_where_to_get_them(offline_cache, capsys):
    status, _ = run(["classify", "--sample"])
    err = capsys.readouterr().err
    assert status == EXIT_NO_WEIGHTS
    assert "ck_ghostnetv2_10.pth.tar" in err and str(offline_cache) in err and "--weights" in err


@pytest.mark.parametrize(
    "command", ["classify", "evaluate", "models", "summary", "convert", "download", "cache", "info", "bench"]
)
def test_every_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "example" in capsys.readouterr().out


def test_summary_models_info_and_cache(offline_cache):
    status, out = run(["summary", "ghostnetv2_100"])
    assert status == 0 and "6,156,908" in out and "167.0 M multiply-adds" in out
    status, out = run(["models"])
    assert status == 0 and "ghostnetv2_100.in1k" in out.splitlines()[1]
    status, out = run(["info"])
    assert status == 0 and str(offline_cache) in out
    status, out = run(["cache"])
    assert status == 0 and "empty" in out


def test_convert_then_classify_with_the_npz(tiny_weights, tmp_path):
    status, out = run(
        ["convert", str(tiny_weights), "-o", str(tmp_path / "converted.npz"), "--arch", "ghostnetv2_tiny"]
    )
    assert status == 0 and Path(out.strip()).exists()
    reloaded = ghostnp.load_weights(out.strip())
    original = ghostnp.load_weights(tiny_weights)
    assert list(reloaded) == list(original) and all(np.array_equal(reloaded[k], original[k]) for k in original)


def test_python_dash_m_runs_the_command(tiny_weights):
    result = subprocess.run(  # noqa: PLW1510  (the exit status is the subject of the test)
        [sys.executable, "-m", "ghostnp", "classify", "--sample", *TINY, "--weights", str(tiny_weights), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["file"].endswith("chelsea.jpg")


@pytest.mark.slow
def test_minimal_install_classifies_without_numba_scipy_matplotlib_or_torch(tiny_weights, tmp_path):
    """A fresh virtual environment with only numpy, pillow and ghostnp (--no-deps)."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "numpy", "pillow"], check=True, timeout=600)
    subprocess.run([*pip, "--no-deps", str(REPO)], check=True, timeout=600)
    script = (
        "import sys\n"
        "from ghostnp.cli import main\n"
        f"status = main(['classify', '--sample', '--model', 'ghostnetv2_tiny', '--weights', {str(tiny_weights)!r}])\n"
        "heavy = sorted(m for m in ('numba', 'scipy', 'matplotlib', 'torch') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(status)\n"
    )
    result = subprocess.run(  # noqa: PLW1510  (the exit status is the subject of the test)
        [str(python), "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout and "chelsea.jpg" in result.stdout
    command = subprocess.run(
        [str(env_dir / "bin" / "ghostnp"), "models"], capture_output=True, text=True, timeout=120, check=False
    )
    assert command.returncode == 0 and "ghostnetv2_100" in command.stdout


def test_bench_runs_the_checkouts_benchmark_script(capsys):
    """``ghostnp bench`` hands its options to benchmarks/bench.py of the checkout (here: --help, which exits 0)."""
    from ghostnp.cli.main import run_bench

    with pytest.raises(SystemExit) as exited:
        run_bench(None, None, ["--help"])
    assert exited.value.code == 0
    assert "--under-load" in capsys.readouterr().out  # an option only benchmarks/bench.py has
