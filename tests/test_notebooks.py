"""The teaching notebooks: each runs top to bottom (fast mode, offline, empty weights cache), and each committed
``.ipynb`` holds exactly the cells of its jupytext ``.py`` source, without outputs.

The ``.py`` files (jupytext percent format) are the source; regenerate a notebook with
``jupytext --to ipynb notebooks/NAME.py``.
"""

import os
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py"))
CELL_TIMEOUT_SECONDS = 300


def test_the_notebooks_exist():
    names = [path.stem for path in NOTEBOOKS]
    assert names[:1] == ["01_tour"], names
    assert all((path.with_suffix(".ipynb")).exists() for path in NOTEBOOKS), "every .py needs its .ipynb"


@pytest.mark.slow
@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_in_fast_mode_without_network(source, tmp_path, monkeypatch):
    monkeypatch.setenv("GHOSTNP_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("GHOSTNP_OFFLINE", "1")  # the notebooks set it too; this covers the kernel's imports
    monkeypatch.setenv("GHOSTNP_HOME", str(tmp_path / "empty_cache"))  # no weights: the random-weights path
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    notebook = jupytext.read(source)
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=CELL_TIMEOUT_SECONDS, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell and the traceback, on any error
    first_output = "".join(out.get("text", "") for out in notebook.cells[1].get("outputs", []))
    assert "RANDOM weights" in first_output, "the first code cell must say that it runs on random weights"


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda path: path.stem)
def test_ipynb_matches_its_source_and_has_no_outputs(source):
    expected = jupytext.read(source).cells
    committed = nbformat.read(source.with_suffix(".ipynb"), as_version=4).cells
    regenerate = f"regenerate it: jupytext --to ipynb notebooks/{source.name}"
    assert [(c.cell_type, c.source) for c in committed] == [(c.cell_type, c.source) for c in expected], (
        f"{source.with_suffix('.ipynb').name} is out of sync with {source.name}; {regenerate}"
    )
    for cell in committed:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{source.stem}.ipynb has outputs; {regenerate}"
