"""One way for tests to run the ``gmem`` command: in-process, offline, on a wide terminal.

The environment pins the fast hashing embedder and the heuristic reasoner, and clears
``GMEM_STORE``, so that a developer's own settings never leak into what a test sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from typer.testing import CliRunner, Result

from gmem.cli import app

ENV: dict[str, str | None] = {
    "GMEM_EMBEDDER": "hashing",
    "GMEM_LLM_BASE_URL": "",
    "GMEM_LLM_MODEL": "",
    "GMEM_STORE": None,
    "COLUMNS": "160",
}


def gmem(*args: str | Path, env: Mapping[str, str | None] | None = None) -> Result:
    """``gmem ARGS...`` with :data:`ENV` (plus ``env``), its output and exit code captured."""
    return CliRunner().invoke(app, [str(a) for a in args], env={**ENV, **(env or {})})
