"""The research notebooks: committed without outputs, and each runs top to bottom on a fresh kernel.

Each notebook is executed with nbclient in its own temporary working folder (the notebooks create their
own temporary `HM_DATA_DIR`); it must raise no error and produce at least one figure. `04_real_data` runs
twice: with the real data folder when it exists, and with `HM_SHARED_DATA` pointing at a missing folder,
where its real-data cells must skip cleanly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
TIMEOUT_S = 240


def _ids(paths):
    return [p.stem for p in paths]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or an execution count; strip them"
    assert nb.cells[0].cell_type == "markdown" and "**Question:**" in nb.cells[0].source


def _execute(path: Path, workdir: Path) -> list:
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def _images(outputs) -> int:
    return sum(1 for out in outputs if "image/png" in out.get("data", {}))


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """The kernel inherits this process's environment: no HM_* setting of the developer leaks in."""
    for name in list(os.environ):
        if name.startswith("HM_") and name != "HM_SHARED_DATA":
            monkeypatch.delenv(name)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return monkeypatch


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_and_draws(path, tmp_path, clean_env):
    outputs = _execute(path, tmp_path)
    errors = [out for out in outputs if out.get("output_type") == "error"]
    assert not errors, errors
    assert _images(outputs) >= 1, f"{path.name} produced no figure"


@pytest.mark.slow
def test_real_data_notebook_skips_cleanly_without_the_data(tmp_path, clean_env):
    path = NOTEBOOKS_DIR / "04_real_data.ipynb"
    clean_env.setenv("HM_SHARED_DATA", str(tmp_path / "no-such-folder"))
    outputs = _execute(path, tmp_path)
    text = "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")
    assert "Real data folder not found" in text
    assert "skipped" in text
    assert _images(outputs) >= 1  # the class-to-level chart needs no data
