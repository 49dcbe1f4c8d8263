"""Reliability at the public boundary: commit outcomes, hostile input, JSONL, exports,
secrets, isolation, idempotent ingest and erasure (issue 10, part A)."""

from __future__ import annotations

import json
import math
import sqlite3
import tempfile
import xml.dom.minidom
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gmem.cli.export import to_graphml, to_json
from gmem.config import MemoryConfig
from gmem.embedding import HashingEmbedder
from gmem.errors import (
    EmbedderOutputError,
    GmemError,
    InvalidNamespaceError,
    LLMError,
    TrajectoryError,
    UserInputError,
)
from gmem.llm import HeuristicLLM
from gmem.llm.protocol import InsightRequest, InsightResult
from gmem.memory import Memory
from gmem.trajectory import read_jsonl
from graph_store import EmbeddedStore, GraphStore
from graph_store.model import NodeKind, QueryNode, query_id_for
from graph_store.redact import describe_exception, redact, redact_url
from tests.conftest import BACKENDS, open_backend

MARKER = "Marker-Pw-7f3a9c"


class FlakyLLM(HeuristicLLM):
    """The heuristic reasoner, except that deriving insights fails while ``down`` is set."""

    down = False

    def derive_insights(self, request: InsightRequest) -> InsightResult:
        if self.down:
            raise LLMError("the LLM endpoint is down")
        return super().derive_insights(request)


def _memory(store: Any = ":memory:", **config: Any) -> Memory:
    cfg = MemoryConfig(merge_every=0, **config)
    embedder = HashingEmbedder()
    return Memory(store, embedder=embedder, llm=FlakyLLM(embedder, cfg), config=cfg)


@pytest.fixture
def memory(store: GraphStore) -> Iterator[Memory]:
    """A memory on every backend of the ``store`` fixture (Neo4j when it runs)."""
    mem = _memory(store)
    yield mem
    mem.close()


def _fingerprint(mem: Memory) -> tuple[Any, ...]:
    counts = mem.stats()
    return (dict(counts.nodes), dict(counts.edges), mem.store.namespaces())


# ---- commit outcomes (no ghost outcomes) -------------------------------------------------
def test_failed_finish_inside_with_stores_nothing_and_is_not_refinished(memory: Memory) -> None:
    llm = memory.llm
    assert isinstance(llm, FlakyLLM)
    llm.down = True
    with pytest.raises(LLMError), memory.task("clean the mug") as t:
        t.record("a", "actor", "go to sinkbasin 1")
        t.finish(success=True)
    # The success was not stored, and no failure was stored in its place.
    assert memory.store.get_node(query_id_for("default", "clean the mug")) is None
    assert memory.stats().total_nodes == 0
    llm.down = False
    report = t.finish(success=True)  # nothing was committed, so a retry may store it
    node = memory.store.get_node(report.query_id)
    assert isinstance(node, QueryNode) and node.attempts == 1 and node.successes == 1


def test_callers_exception_is_reraised_as_itself_when_storing_fails(memory: Memory) -> None:
    llm = memory.llm
    assert isinstance(llm, FlakyLLM)
    llm.down = True

    class ToolCrash(Exception):
        pass

    with pytest.raises(ToolCrash) as caught, memory.task("clean the mug") as t:
        t.record("a", "actor", "go to sinkbasin 1")
        raise ToolCrash("the tool crashed")
    assert any("not stored" in note for note in caught.value.__notes__)
    assert memory.stats().total_nodes == 0


def test_stored_error_is_the_exception_type_only(memory: Memory) -> None:
    with pytest.raises(RuntimeError), memory.task("clean the mug") as t:
        t.record("a", "actor", "go to sinkbasin 1")
        raise RuntimeError(f"login failed with password={MARKER} at bolt://neo:{MARKER}@db")
    node = memory.store.get_node(query_id_for("default", "clean the mug"))
    assert isinstance(node, QueryNode) and node.metadata["error"] == "RuntimeError"
    assert MARKER not in json.dumps(node.props())


# ---- hostile input at record() and task() -----------------------------------------------
BAD_RECORDS: list[dict[str, Any]] = [
    {"agent": "a" * 201},
    {"agent": ""},
    {"agent": "a\x00b"},
    {"role": "r" * 201},
    {"role": 5},
    {"content": 5},
    {"content": "bad \ud800 text"},
    {"action": 123},
    {"observation": ["x"]},
    {"reward": "high"},
    {"reward": math.nan},
    {"reward": math.inf},
    {"reward": True},
    {"metadata": {"k": object()}},
    {"metadata": {"k": math.nan}},
    {"metadata": {1: "x"}},
    {"metadata": "not a mapping"},
]


def _deep(n: int) -> Any:
    value: Any = "leaf"
    for _ in range(n):
        value = {"k": value}
    return value


@pytest.mark.parametrize("bad", [*BAD_RECORDS, {"metadata": _deep(3000)}])
def test_record_refuses_hostile_values_with_gmem_errors(
    memory: Memory, bad: dict[str, Any]
) -> None:
    args: dict[str, Any] = {"agent": "a", "role": "actor", "content": "go to sinkbasin 1"}
    args.update(bad)
    t = memory.task("clean the mug")
    with pytest.raises(UserInputError):
        t.record(args.pop("agent"), args.pop("role"), args.pop("content"), **args)
    assert t.steps == []
    assert memory.stats().total_nodes == 0


@pytest.mark.parametrize(
    ("text", "namespace"),
    [("x\ud800", "default"), ("", "default"), ("ok", "n\udfff"), ("ok", "langgraph:users.carol")],
)
def test_task_refuses_bad_text_and_reserved_namespaces(
    memory: Memory, text: str, namespace: str
) -> None:
    with pytest.raises(UserInputError):
        memory.task(text, namespace=namespace)


def test_reserved_prefix_is_refused_but_reading_it_is_harmless(memory: Memory) -> None:
    with pytest.raises(InvalidNamespaceError):
        memory.ingest(
            {"task": "t", "success": True, "steps": [{"agent": "a", "role": "r", "content": "c"}]},
            namespace="langgraph:users.carol",
        )
    assert memory.recall("t", namespace="langgraph:users.carol").is_empty


class BrokenEmbedder(HashingEmbedder):
    def __init__(self, output: Any) -> None:
        super().__init__()
        self.output = output

    def embed(self, texts: Any) -> Any:
        return self.output(len(texts), self.dim)


@pytest.mark.parametrize(
    "output",
    [
        lambda n, d: np.full((n, d), np.nan, dtype=np.float32),
        lambda n, d: np.full((n, d), np.inf, dtype=np.float32),
        lambda n, d: np.ones(d, dtype=np.float32),
        lambda n, d: np.ones((n, 0), dtype=np.float32),
        lambda n, d: np.ones((n, d + 1), dtype=np.float32),
        lambda n, d: np.ones((n + 1, d), dtype=np.float32),
        lambda n, d: "not a matrix",
    ],
)
def test_bad_embedder_output_is_a_gmem_error_before_any_write(output: Any) -> None:
    embedder = BrokenEmbedder(output)
    cfg = MemoryConfig(merge_every=0)
    mem = Memory(":memory:", embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg)
    t = mem.task("clean the mug")
    t.record("a", "actor", "go to sinkbasin 1")
    with pytest.raises(EmbedderOutputError):
        t.finish(success=True)
    assert mem.stats().total_nodes == 0
    with pytest.raises(EmbedderOutputError):
        mem.recall("clean the mug")


_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    _TEXT,
    st.lists(st.integers(), max_size=3),
    st.dictionaries(_TEXT, st.one_of(st.floats(), _TEXT), max_size=3),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    agent=st.one_of(_TEXT, _ANY),
    role=st.one_of(_TEXT, _ANY),
    content=st.one_of(_TEXT, _ANY),
    action=_ANY,
    reward=_ANY,
    metadata=st.one_of(_ANY, st.dictionaries(_TEXT, _ANY, max_size=3)),
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_fuzzed_record_and_finish_raise_only_gmem_errors(
    backend: str, agent: Any, role: Any, content: Any, action: Any, reward: Any, metadata: Any
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        mem = _memory(open_backend(backend, Path(scratch)))
        _record_and_finish(mem, agent, role, content, action, reward, metadata)


def _record_and_finish(
    mem: Memory, agent: Any, role: Any, content: Any, action: Any, reward: Any, metadata: Any
) -> None:
    try:
        t = mem.task("clean the mug")
        try:
            t.record(agent, role, content, action=action, reward=reward, metadata=metadata)
        except GmemError:
            assert mem.stats().total_nodes == 0
            return
        report = t.finish(success=True)
        assert mem.store.get_node(report.query_id) is not None
    finally:
        mem.close()


# ---- JSONL --------------------------------------------------------------------------------
def _line(task: str, content: str = "go to sinkbasin 1", **extra: Any) -> str:
    record = {
        "task": task,
        "success": True,
        "steps": [{"agent": "a", "role": "actor", "content": content}],
        **extra,
    }
    return json.dumps(record, ensure_ascii=False)


def test_jsonl_splits_on_newline_only_and_accepts_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    lines = [_line("a\u2028b", "x\u0085y"), _line("c\u2029d", "\x0cform feed"), _line("e\r")]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode())
    got = [t for _, t in read_jsonl(path)]
    assert [getattr(t, "task", None) for t in got] == ["a\u2028b", "c\u2029d", "e\r"]


@pytest.mark.parametrize(
    "line",
    [
        '{"task":' + "[" * 100_000 + "]" * 100_000 + "}",
        _line("t", metadata=_deep(500)),
        json.dumps(
            {
                "task": "t",
                "success": True,
                "steps": [{"agent": "a", "role": "r", "content": "\ud800"}],
            }
        ),
        '{"task": "t", "success": true, "steps": [{"agent": "a", "role": "r", "content": "c", '
        '"reward": NaN}]}',
        '{"task": "t", "success": true, "steps": [{"agent": "a", "role": "r", "content": "c", '
        '"action": 123}]}',
        '{"task": ' + "1" * 5000 + "}",
        "[1, 2",
    ],
)
def test_jsonl_bad_lines_are_trajectory_errors(tmp_path: Path, line: str) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_text(_line("fine") + "\n" + line + "\n", encoding="utf-8", errors="surrogatepass")
    with pytest.raises(TrajectoryError):
        list(read_jsonl(path))
    mem = _memory()
    with pytest.raises(TrajectoryError):
        mem.ingest_jsonl(path)
    assert mem.stats().total_nodes == 0  # the good first line was not written either
    result = mem.ingest_jsonl(path, skip_bad=True)
    assert result.ingested == 1 and [n for n, _ in result.skipped] == [2]


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=300))
def test_fuzzed_jsonl_bytes_raise_only_gmem_errors(tmp_path_factory: Any, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "runs.jsonl"
    path.write_bytes(data)
    try:
        for _ in read_jsonl(path, skip_bad=True):
            pass
    except GmemError:
        pass


# ---- idempotent, resumable ingest ---------------------------------------------------------
def test_ingest_rerun_stores_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    lines = [_line(f"task {i % 3}", f"step for {i}") for i in range(6)]
    lines.append(_line("task 0", "step for 0", id="explicit-0"))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    mem = _memory(tmp_path / "m.db")
    first = mem.ingest_jsonl(path)
    assert first.ingested == 7 and first.already_stored == 0
    before = _fingerprint(mem)
    attempts = {q.text: q.attempts for q in mem.queries()}
    second = mem.ingest_jsonl(path)
    assert second.ingested == 0 and second.already_stored == 7
    assert _fingerprint(mem) == before
    assert (
        {q.text: q.attempts for q in mem.queries()}
        == attempts
        == {
            "task 0": 3,
            "task 1": 2,
            "task 2": 2,
        }
    )


def test_ingest_resumes_after_an_interrupted_run(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    lines = [_line(f"task {i}") for i in range(5)]
    path.write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")
    mem = _memory(tmp_path / "m.db")
    mem.ingest_jsonl(path)  # the run that "died" after two lines
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    resumed = mem.ingest_jsonl(path)
    assert (resumed.ingested, resumed.already_stored) == (3, 2)
    assert sorted(q.attempts for q in mem.queries()) == [1] * 5


# ---- exports --------------------------------------------------------------------------------
def test_exports_are_valid_with_control_characters_and_non_finite_numbers(memory: Memory) -> None:
    with memory.task("nul \x00 and \x1b escape \ud7ff", metadata={"x": 1.5}) as t:
        t.record("a", "actor", "said \x00\x08 \ufffe", action="act\x0b", reward=0.5)
        t.finish(success=True)
    snap = memory.graph()
    xml.dom.minidom.parseString(to_graphml(snap).encode())  # raises on malformed XML
    text = to_json(snap)
    assert "NaN" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard literal {c}"))


# ---- secrets --------------------------------------------------------------------------------
def test_redaction_masks_credentials() -> None:
    assert redact_url(f"bolt://neo4j:{MARKER}@db:7687") == "bolt://neo4j:***@db:7687"
    for text in (
        f"neo4j://neo4j:{MARKER}@host",
        f"Authorization: Bearer {MARKER}",
        f'{{"api_key": "{MARKER}"}}',
        f"GMEM_NEO4J_PASSWORD={MARKER}",
        f"sk-{MARKER}abcdef",
    ):
        assert MARKER not in redact(text), text
    assert MARKER not in describe_exception(ValueError(f"password: {MARKER}"))
    assert redact("the token budget is 600 tokens") == "the token budget is 600 tokens"


@pytest.mark.neo4j  # the driver parses the URL; no server is needed
def test_a_password_in_a_store_url_is_never_echoed(capsys: pytest.CaptureFixture[str]) -> None:
    from graph_store import open_store

    with pytest.raises(GmemError) as caught:
        open_store(f"bolt://neo4j:{MARKER}@127.0.0.1:1/?bad=option", connect_timeout_s=0.2)
    out = capsys.readouterr()
    assert MARKER not in str(caught.value) + out.out + out.err


def test_a_marker_password_never_reaches_the_store_file_or_exports(tmp_path: Path) -> None:
    mem = _memory(tmp_path / "m.db")
    with pytest.raises(ConnectionError), mem.task("clean the mug") as t:
        t.record("a", "actor", "go to sinkbasin 1")
        raise ConnectionError(f"postgres://admin:{MARKER}@db failed (password={MARKER})")
    snap = mem.graph()
    assert MARKER not in to_json(snap) + to_graphml(snap)
    mem.close()
    for file in tmp_path.glob("m.db*"):
        assert MARKER.encode() not in file.read_bytes()


# ---- forget is erasure ----------------------------------------------------------------------
def test_forget_task_erases_its_words_and_id_from_insights(tmp_path: Path) -> None:
    mem = _memory(tmp_path / "m.db")
    secret_task = "deliver the zyxwv parcel to the vault"
    for i in range(3):
        with mem.task(f"put the mug number {i} in the cabinet") as t:
            t.record("a", "actor", "go to the cabinet", action="go to cabinet 1")
            t.record("a", "actor", "put the mug in the cabinet", action="put mug in cabinet 1")
            t.finish(success=True)
    with mem.task(secret_task) as t:
        t.recall("actor")
        t.record("a", "actor", "open the zyxwv vault", action="open zyxwv vault")
        t.finish(success=True)
    qid = query_id_for("default", secret_task)
    mem.forget_task(qid)
    texts = json.dumps(
        [n.props() for n in mem.store.list_nodes(NodeKind.INSIGHT)]
        + [
            e.props
            for e in mem.store.get_edges(
                [n.id for n in mem.store.list_nodes(NodeKind.INSIGHT)], None, "both"
            )
        ]
    )
    assert "zyxwv" not in texts and qid not in texts
    mem.close()
    db = sqlite3.connect(tmp_path / "m.db")
    assert db.execute("PRAGMA secure_delete").fetchone()[0] in (0, 1)
    db.close()
    for file in tmp_path.glob("m.db*"):
        assert b"zyxwv" not in file.read_bytes(), file.name


def test_secure_delete_is_on(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s.db")
    assert store._db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    store.close()
