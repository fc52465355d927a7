# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""The notebooks in ``notebooks/`` run top to bottom (nbclient) and are stored without outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "python3"
"""Jupyter's native kernel name: with ipykernel installed in this interpreter, nbclient starts the kernel with this
interpreter (``sys.executable``), so a fresh virtual environment needs no registered kernel spec."""


def _run(notebook: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    """Execute a notebook in ``cwd``, failing on the first cell that raises (the kernel inherits ``HF_HUB_OFFLINE``)."""
    client = nbclient.NotebookClient(
        notebook, kernel_name=KERNEL, timeout=600, allow_errors=False, resources={"metadata": {"path": str(cwd)}}
    )
    return client.execute()


def test_there_are_notebooks() -> None:
    assert [path.name for path in NOTEBOOKS] == [
        "01_quickstart.ipynb",
        "02_benchmark.ipynb",
        "03_deploy_openvino.ipynb",
        "04_own_data.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {index} has outputs; strip them before committing"
            assert cell.execution_count is None, f"{path.name}: cell {index} has an execution count"
    assert notebook.metadata.get("kernelspec", {}).get("name") == KERNEL


def test_the_python3_kernel_is_this_interpreter(tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.prefix)")])
    output = _run(notebook, tmp_path).cells[0].outputs[0]["text"].strip()
    assert Path(output).resolve() == Path(sys.prefix).resolve()


@pytest.mark.slow  # 15-110 s a notebook on 2 CPU cores; the four took 5.3 min on a busy machine
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    before = set((REPO_ROOT / "notebooks").iterdir())
    try:
        _run(notebook, tmp_path)
    except nbclient.exceptions.CellExecutionError as error:
        pytest.fail(f"{path.name}: a cell failed:\n{str(error)[-4000:]}")
    assert (tmp_path / "results" / "notebooks").is_dir(), "the notebook should write under results/notebooks/"
    assert set((REPO_ROOT / "notebooks").iterdir()) == before, "the notebook wrote into the repository"
