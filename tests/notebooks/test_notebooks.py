"""Every notebook under notebooks/ runs top to bottom on a real Jupyter kernel.

Each one runs under a time limit and must draw every figure it promises: a cell that calls
``plt.show()`` or displays an image must leave a PNG behind. The Neo4j notebook joins when
``GMEM_NEO4J_URI`` names a server (``make test`` and ``.ci/run`` start one), the same rule
as the store fixture's Neo4j backend.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
NEEDS_NEO4J = {"04_neo4j.ipynb"}
RUNNABLE = [p for p in NOTEBOOKS if p.name not in NEEDS_NEO4J or os.environ.get("GMEM_NEO4J_URI")]
FIGURE_CALLS = ("plt.show()", "Image(")


def _read(path: Path) -> Any:
    return nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]  # nbformat is untyped


def _empty_neo4j() -> None:
    """Start the Neo4j notebook from an empty database, as the store fixture does: earlier
    tests leave vector indexes whose dimension may differ from the notebook's embedder."""
    from graph_store.neo4j import Neo4jStore

    store = Neo4jStore(os.environ["GMEM_NEO4J_URI"])
    try:
        store.delete_all()
    finally:
        store.close()


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path: Path) -> None:
    nb = _read(path)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "language_info" in nb.metadata
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"{path.name}: clear the outputs before committing (Kernel > Restart and Clear)"
            )


@pytest.mark.slow
@pytest.mark.timeout(420)
@pytest.mark.parametrize("path", RUNNABLE, ids=lambda p: p.name)
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    nb = _read(path)
    if path.name in NEEDS_NEO4J:
        _empty_neo4j()
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    assert not errors

    def pngs(cell: Any) -> int:
        return sum("image/png" in o.get("data", {}) for o in cell.outputs)

    assert sum(pngs(c) for c in code) >= 1, f"{path.name} drew no figure"
    for cell in code:
        if any(call in cell.source for call in FIGURE_CALLS):
            assert pngs(cell), f"{path.name}: no figure from cell\n{cell.source[:200]}"
