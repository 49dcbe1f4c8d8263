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


def test_every_install_line_names_the_distribution() -> None:
    """The PyPI name ``gmem`` belongs to an unrelated project: the distribution is
    ``gmem-agents`` in pyproject.toml, and no install line in the README, the docs, the
    notebooks or an error message points a user at ``gmem`` itself."""
    import tomllib

    root = README.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["name"] == "gmem-agents"
    texts = [README, *(root / "docs").rglob("*.md"), *(root / "notebooks").rglob("*.ipynb")]
    texts += [*(root / "gmem").rglob("*.py"), *(root / "integrations").rglob("*.py")]
    wrong = [
        f"{path.relative_to(root)}: {match.group(0)}"
        for path in texts
        for match in re.finditer(r"pip install [\"']?gmem(?![-\w])", path.read_text())
    ]
    assert not wrong, wrong
    named = [p for p in texts if re.search(r"pip install [\"']?gmem-agents\b", p.read_text())]
    assert README in named and root / "docs" / "langgraph.md" in named
