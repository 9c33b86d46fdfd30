"""Every notebook in `notebooks/` runs top to bottom without an error (nbclient, kernel `python3`).

Each notebook is copied to a temporary folder and run there, so it cannot lean on files beside it; the
kernel's archive store is a temporary folder too (`VP_JUPYTER_STORE`, inherited by the kernel).
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 300        # one cell, on a loaded 2-core machine (they take seconds)
WIDGET_STATE_LIMIT = 300 * 1024     # bytes of widget state the executed quick-start notebook may store


def test_the_notebooks_are_there() -> None:
    names = [path.name for path in NOTEBOOKS]
    assert names == ["01_quickstart.ipynb", "02_timeseries_farfield.ipynb", "03_sweep.ipynb", "04_form.ipynb",
                     "05_uncertainty_and_report.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_self_contained(path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    source = "\n".join(cell.source for cell in notebook.cells)
    assert "shared" not in source and "reference" not in source, "notebooks must not use ../shared"
    assert notebook.metadata.kernelspec.name == "python3"
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        "commit notebooks without outputs (CI runs them)"


@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_without_error(path: Path, tmp_path: Path, monkeypatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    store = tmp_path / "store"
    monkeypatch.setenv("VP_JUPYTER_STORE", str(store))      # the kernel inherits it
    work = tmp_path / "work"
    work.mkdir()
    copy = work / path.name
    shutil.copy(path, copy)
    notebook = nbformat.read(copy, as_version=4)
    client = nbclient.NotebookClient(notebook, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                                     resources={"metadata": {"path": str(work)}})
    started = time.monotonic()
    client.execute()                # raises CellExecutionError on the first cell with an error
    elapsed = time.monotonic() - started
    errors = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if output.get("output_type") == "error"]
    assert errors == []
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code_cells)
    # runs are recorded in the kernel's store (the temporary one); sweeps are not stored by default
    runs = [p for p in store.iterdir() if p.name != ".staging"] if store.is_dir() else []
    assert (runs == []) if path.name == "03_sweep.ipynb" else (runs != [])
    if path.name == "01_quickstart.ipynb":
        # the saved widget state of its form stays small: the form builds widgets for what it shows
        state = json.dumps(notebook.metadata.get("widgets", {}))
        assert "quick start outfall" in state          # the form's state is there
        assert len(state) < WIDGET_STATE_LIMIT, f"{len(state) / 1024:.0f} KB of widget state"
    print(f"{path.name}: {elapsed:.1f} s")
