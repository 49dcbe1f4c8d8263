"""Hostile input through the CLI (issue 10, item 10): fuzzed files, namespaces, ids and
task texts. A refusal is one ``error:`` line and exit code 2, never a traceback, and it
leaves the store as it was; markup in stored text is printed, never interpreted."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import Result

from tests.cli import gmem

MARKUP = "[/bold] [/INST] [red]x[/] [link=file:///etc/passwd]y[/link]"

_TEXT = st.text(
    st.characters(codec=None, exclude_categories=()), min_size=0, max_size=30
) | st.sampled_from([MARKUP, "[/x]", "\x00", "\u2028", "\ud800", "a" * 300, "langgraph:x"])
_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _digest(path: Path) -> str:
    """The store file and its write-ahead log (a write lands in the log first)."""
    digest = hashlib.sha256(path.read_bytes())
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        digest.update(wal.read_bytes())
    return digest.hexdigest()


def _check(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 2), (result.exit_code, result.output)
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    runs = root / "runs.jsonl"
    record = {
        "task": f"fix the {MARKUP} widget",
        "success": True,
        "steps": [{"agent": "a[/x]", "role": "actor", "content": MARKUP, "action": "[/bold]"}],
    }
    runs.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    store = root / "memory.db"
    result = gmem("--store", store, "ingest", runs, "-n", "team[/x]")
    assert result.exit_code == 0, result.output
    return store


@pytest.fixture
def store(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "memory.db"
    shutil.copy(built, copy)
    return copy


def test_markup_in_stored_text_is_shown_literally(store: Path) -> None:
    exported = json.loads(gmem("--store", store, "export", "--format", "json").stdout)
    qid = next(n["id"] for n in exported["nodes"] if n["kind"] == "Query")
    for args in (
        ["show", qid],
        ["stats", "-n", "team[/x]"],
        ["insights", "-n", "team[/x]"],
        ["recall", "fix the widget", "-n", "team[/x]"],
    ):
        result = gmem("--store", store, *args)
        assert result.exit_code == 0, (args, result.output)
    shown = gmem("--store", store, "show", qid).stdout
    assert "[/bold]" in shown and "[/INST]" in shown


@_SETTINGS
@given(namespace=_TEXT, text=_TEXT)
def test_fuzzed_names_and_texts(store: Path, namespace: str, text: str) -> None:
    before = _digest(store)
    for args in (
        ["stats", "-n", namespace],
        ["insights", "-n", namespace],
        ["recall", text, "-n", namespace],
        ["show", text],
        ["forget", "--task", text, "--yes"],
        ["export", "--format", "graphml", "-n", namespace],
    ):
        try:
            result = gmem("--store", store, *args)
        except UnicodeEncodeError:  # the test runner cannot pass a lone surrogate as argv
            continue
        _check(result)
    assert _digest(store) == before


@_SETTINGS
@given(data=st.binary(max_size=400) | st.text(max_size=200).map(str.encode))
def test_fuzzed_ingest_files(store: Path, tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    before = _digest(store)
    result = gmem("--store", store, "ingest", path)
    _check(result)
    if result.exit_code == 2:
        assert _digest(store) == before
