"""The README's Python example runs as written (in a scratch directory)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_wrapping_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(b for b in blocks if "memory.task(" in b)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(example, "README.md", "exec"), namespace)
    memory = namespace["memory"]
    assert os.path.exists(tmp_path / "team.db")
    stats = memory.stats()  # type: ignore[attr-defined]
    assert stats.nodes["Query"] == 1 and stats.nodes["Utterance"] == 2
    memory.close()  # type: ignore[attr-defined]
