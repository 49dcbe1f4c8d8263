"""The ``gmem`` command line on a small store built from tests/fixtures/trajectories.jsonl.

Most tests drive the app in-process (fast); a few run the installed script to check what a
user's shell sees: one ``error:`` line, exit code 2, no traceback.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gmem import __version__
from gmem.cli import app
from graph_store import EmbeddedStore, Insight
from graph_store.neo4j.dump import literal, split, string
from tests.cli import ENV, gmem

FIXTURES = Path(__file__).parent / "fixtures"
GOOD = FIXTURES / "trajectories.jsonl"
MALFORMED = FIXTURES / "malformed.jsonl"  # line 3: broken JSON; line 5: bad replies_to
HEAT_TASK = "put a hot apple on the diningtable."


def counts(store: Path) -> dict[str, object]:
    result = gmem("--store", store, "stats", "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def assert_user_error(result: Result, *needles: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("cli") / "memory.db"
    result = gmem("--store", store, "ingest", GOOD)
    assert result.exit_code == 0, result.output
    assert "Ingested 6 trajectories" in result.stdout
    return store


@pytest.fixture
def store(built: Path, tmp_path: Path) -> Path:
    """A private copy of the ingested store, for tests that change or might change it."""
    copy = tmp_path / "memory.db"
    shutil.copy(built, copy)
    return copy


def query_id(store: Path, text: str = HEAT_TASK) -> str:
    result = gmem("--store", store, "recall", text, "--json")
    found = [q["id"] for q in json.loads(result.stdout)["queries"] if q["task"] == text]
    assert found, result.stdout
    return str(found[0])


# ---- every command ----------------------------------------------------------------------
def test_version_and_help_with_examples() -> None:
    assert gmem("--version").stdout.strip() == f"gmem {__version__}"
    for command in (
        "demo",
        "recall",
        "ingest",
        "insights",
        "show",
        "stats",
        "export",
        "forget",
        "mcp",
    ):
        result = gmem(command, "--help")
        assert result.exit_code == 0, result.output
        assert "Example: gmem " in result.stdout, command


def test_stats(built: Path) -> None:
    data = counts(built)
    nodes = data["nodes"]
    assert isinstance(nodes, dict)
    assert {k: v for k, v in nodes.items() if k != "Insight"} == {"Query": 6, "Utterance": 33}
    assert data["namespaces"] == ["default", "lab"]
    table = gmem("--store", built, "stats")
    assert "interactions" in table.stdout and "33" in table.stdout
    lab = json.loads(gmem("--store", built, "stats", "--namespace", "lab", "--json").stdout)
    assert lab["nodes"]["Query"] == 1


def test_recall_finds_the_similar_task_and_explains_why(built: Path) -> None:
    result = gmem(
        "--store",
        built,
        "recall",
        "put a hot apple on the dining table",
        "--json",
        "--role",
        "actor",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["queries"][0]["task"] == HEAT_TASK and data["queries"][0]["kept"]
    assert "heat apple 1 with microwave 1" in data["roles"]["actor"]["text"]
    assert any("seed" in line for line in data["explain"])
    table = gmem("--store", built, "recall", "put a hot apple on the dining table", "-r", "planner")
    assert "Nothing recalled" in gmem("--store", built, "recall", "zebra").stdout
    assert "Why:" in table.stdout and "Memory for the planner" in table.stdout


def test_insights(store: Path) -> None:
    # Lessons need several attempts of one procedure: two successes and a failure.
    assert gmem("--store", store, "ingest", FIXTURES / "procedure.jsonl").exit_code == 0
    active = json.loads(gmem("--store", store, "insights", "--json").stdout)
    every = json.loads(gmem("--store", store, "insights", "--all", "--json").stdout)
    assert active and len(every) >= len(active)
    assert all(not i["retired"] for i in active)
    assert any(i["rule"] and i["rule"]["kind"] == "require" for i in active)
    for_actor = json.loads(gmem("--store", store, "insights", "--role", "actor", "--json").stdout)
    assert all(not i["roles"] or "actor" in i["roles"] for i in for_actor)
    assert "Insights" in gmem("--store", store, "insights", "--namespace", "default").stdout


def test_show_by_id_and_prefix(built: Path) -> None:
    qid = query_id(built)
    data = json.loads(gmem("--store", built, "show", qid, "--json").stdout)
    assert data["query"]["text"] == HEAT_TASK
    steps = data["attempts"]["1"]
    assert [u["step"] for u in steps] == list(range(7))
    assert steps[2]["replies_to"] == [steps[1]["id"]]
    table = gmem("--store", built, "show", qid[:8])
    assert table.exit_code == 0 and "interaction graph" in table.stdout
    assert "heat apple 1 with microwave 1" in table.stdout


def test_export_json_graphml_cypher(built: Path, tmp_path: Path) -> None:
    data = json.loads(gmem("--store", built, "export", "--format", "json").stdout)
    assert len(data["nodes"]) == counts(built)["total_nodes"]
    assert len(data["edges"]) == counts(built)["total_edges"]
    assert "embedding" not in data["nodes"][0]

    out = tmp_path / "g.graphml"
    assert gmem("--store", built, "export", "-f", "graphml", "-o", out).exit_code == 0
    root = ET.parse(out).getroot()
    ns = "{http://graphml.graphdrawing.org/xmlns}"
    assert len(root.findall(f".//{ns}node")) == len(data["nodes"])

    cypher = gmem("--store", built, "export", "-f", "cypher", "-n", "lab").stdout
    statements = split(cypher)
    assert sum("MERGE (n:Query" in st for st in statements) == 1
    assert any("MERGE (s)-[r:HAS_TRACE]->(d)" in st for st in statements)
    assert "node_kind: 'Query'" in cypher and "seq: " in cypher  # what Neo4jStore reads
    assert "$" not in cypher  # parameter-free


def test_export_json_reports_what_was_written(built: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.cypher"
    result = gmem("--store", built, "export", "-f", "cypher", "-o", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report == {
        "output": str(out),
        "format": "cypher",
        "nodes": counts(built)["total_nodes"],
        "edges": counts(built)["total_edges"],
    }
    data = json.loads(gmem("--store", built, "export", "--json").stdout)  # no -o: JSON export
    assert len(data["nodes"]) == report["nodes"]
    assert_user_error(gmem("--store", built, "export", "--json", "-f", "cypher"), "--json")


def test_cypher_literals_are_escaped() -> None:
    assert string('it\'s a \\ "q"\nnext') == "'it\\'s a \\\\ \"q\"\\nnext'"
    assert string("bell\x07") == "'bell\\u0007'"
    assert literal(["a", "b'"]) == "['a', 'b\\'']"
    assert literal({"k": [1, 2], "odd key": None}) == "{k: [1, 2], `odd key`: null}"
    assert literal(True) == "true" and literal(2.5) == "2.5"


def test_forget_task_and_namespace(store: Path) -> None:
    qid = query_id(store)
    before = counts(store)
    result = gmem("--store", store, "forget", "--task", qid, "--yes")
    assert result.exit_code == 0, result.output
    after = counts(store)
    assert after["nodes"]["Query"] == before["nodes"]["Query"] - 1  # type: ignore[index]
    assert after["nodes"]["Utterance"] == 33 - 7  # type: ignore[index]
    result = gmem("--store", store, "forget", "--namespace", "lab", "-y")
    assert result.exit_code == 0, result.output
    assert counts(store)["namespaces"] == ["default"]


def test_ingest_into_a_namespace(tmp_path: Path) -> None:
    store = tmp_path / "ns.db"
    assert gmem("--store", store, "ingest", GOOD, "--namespace", "team-a").exit_code == 0
    assert counts(store)["namespaces"] == ["lab", "team-a"]  # one line names its own


# ---- bad input: one line on stderr, exit code 2, store unchanged -------------------------
def test_unknown_store_scheme() -> None:
    assert_user_error(gmem("--store", "redis://localhost/0", "stats"), "unknown store URL scheme")


def test_missing_store_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    assert_user_error(gmem("--store", missing, "insights"), "no gmem store")
    assert not missing.exists()


def test_unreadable_file(store: Path, tmp_path: Path) -> None:
    before = counts(store)
    assert_user_error(gmem("--store", store, "ingest", tmp_path / "missing.jsonl"), "cannot read")
    assert_user_error(gmem("--store", store, "ingest", tmp_path), "cannot read")  # a folder
    assert counts(store) == before


def test_malformed_line_imports_nothing(store: Path) -> None:
    before = counts(store)
    line = assert_user_error(gmem("--store", store, "ingest", MALFORMED), "malformed.jsonl:3")
    assert "invalid JSON" in line
    assert counts(store) == before


def test_skip_bad_imports_the_rest(tmp_path: Path) -> None:
    store = tmp_path / "skip.db"
    result = gmem("--store", store, "ingest", MALFORMED, "--skip-bad")
    assert result.exit_code == 0, result.output
    assert "Ingested 4 trajectories" in result.stdout and "2 lines skipped" in result.stdout
    assert "malformed.jsonl:3" in result.stderr and "malformed.jsonl:5" in result.stderr
    assert counts(store)["nodes"]["Query"] == 4  # type: ignore[index]


def test_unknown_and_invalid_ids(store: Path) -> None:
    before = counts(store)
    assert_user_error(gmem("--store", store, "show", "0" * 32), "no task with id")
    assert_user_error(gmem("--store", store, "show", "not-an-id"), "invalid id")
    assert_user_error(gmem("--store", store, "show", "abcdef"), "no task with an id starting")
    assert_user_error(gmem("--store", store, "forget", "--task", "f" * 32, "--yes"), "no task")
    assert counts(store) == before


def test_invalid_and_unknown_namespaces(store: Path) -> None:
    before = counts(store)
    assert_user_error(gmem("--store", store, "stats", "--namespace", ""), "namespace")
    assert_user_error(gmem("--store", store, "recall", "x", "-n", "bad\x01name"), "namespace")
    assert_user_error(gmem("--store", store, "ingest", GOOD, "-n", "x" * 300), "namespace")
    assert_user_error(gmem("--store", store, "insights", "-n", "nobody"), "holds no memory")
    assert_user_error(gmem("--store", store, "forget", "-n", "nobody", "-y"), "holds no memory")
    assert counts(store) == before


def test_other_bad_usage(store: Path) -> None:
    before = counts(store)
    assert_user_error(gmem("--store", store, "export", "--format", "xml"), "unknown export format")
    assert_user_error(gmem("--store", store, "forget"), "exactly one of")
    assert_user_error(gmem("--store", store, "forget", "-n", "lab"), "without --yes")
    assert_user_error(gmem("--store", store, "recall", "  "), "must not be empty")
    assert_user_error(gmem("--store", store, "--embedder", "word2vec", "stats"), "embedder")
    assert_user_error(gmem("--store", store, "stats", "--bogus"), "--bogus")
    assert counts(store) == before


# ---- the installed script ---------------------------------------------------------------
def _script(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **{k: v for k, v in ENV.items() if v is not None}, "CI": "true"}
    env.pop("GMEM_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "gmem.cli", *map(str, args)],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


@pytest.mark.slow  # end to end through a subprocess or the whole demo
def test_ctrl_c_during_ingest_keeps_what_was_stored_and_says_how_to_finish(
    tmp_path: Path,
) -> None:
    # Five hundred real ScienceWorld trajectories through full evolution take far longer
    # than the wait below, so the interrupt lands in the middle of the import.
    corpus = Path(__file__).parents[1] / "benchmarks" / "corpora" / "scienceworld.jsonl.gz"
    lines = gzip.decompress(corpus.read_bytes()).decode("utf-8").splitlines()
    source = tmp_path / "runs.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = tmp_path / "memory.db"
    env = {**os.environ, **{k: v for k, v in ENV.items() if v is not None}, "CI": "true"}
    env.pop("GMEM_STORE", None)
    running = subprocess.Popen(
        [sys.executable, "-m", "gmem.cli", "--store", str(store), "ingest", str(source)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(600):  # until some trajectories are stored (or the import ended)
            if running.poll() is not None:
                break
            seen = gmem("--store", store, "stats", "--json") if store.exists() else None
            if seen is None or seen.exit_code != 0:  # not yet, or while the file is made
                time.sleep(0.2)
                continue
            if json.loads(seen.stdout)["nodes"].get("Query", 0) >= 3:
                break
            time.sleep(0.2)
        running.send_signal(signal.SIGINT)
        out, err = running.communicate(timeout=120)
    finally:
        if running.poll() is None:
            running.kill()
    assert running.returncode == 130, (running.returncode, out, err)
    assert "Traceback" not in err
    assert err.strip().splitlines() == [
        "interrupted; every trajectory stored before it is kept; run the same command "
        "again to store the rest (the stored ones are skipped)"
    ]
    kept = counts(store)["nodes"]
    assert isinstance(kept, dict) and kept["Query"] > 0
    rerun = subprocess.run(
        [sys.executable, "-m", "gmem.cli", "--store", str(store), "ingest", str(source)],
        check=False,
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert rerun.returncode == 0, rerun.stderr
    steps = [json.loads(line)["steps"] for line in lines]
    tasks = {json.loads(line)["task"] for line in lines}
    after = counts(store)["nodes"]
    assert isinstance(after, dict)
    assert after["Query"] == len(tasks) and after["Utterance"] == sum(map(len, steps))
    assert "already stored" in rerun.stdout


@pytest.mark.slow  # end to end through a subprocess or the whole demo
def test_script_reports_user_errors_without_traceback(store: Path, tmp_path: Path) -> None:
    done = _script("--store", store, "ingest", MALFORMED, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and done.stderr.startswith("error: ")
    assert "malformed.jsonl:3" in done.stderr and "Traceback" not in done.stderr
    done = _script("--store", "ftp://example.org/x", "stats", cwd=tmp_path)
    assert done.returncode == 2 and "unknown store URL scheme" in done.stderr
    assert "Traceback" not in done.stderr
    done = _script("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"gmem {__version__}"


@pytest.mark.slow  # end to end through a subprocess or the whole demo
def test_unreachable_neo4j_is_one_line_and_exit_2() -> None:
    import socket

    with socket.socket() as sock:  # a local port with nothing listening on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "gmem.cli", "--store", f"neo4j://127.0.0.1:{port}", "stats"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GMEM_NEO4J_PASSWORD": "x"},
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach Neo4j"), done.stderr


# ---- the CLI keeps its word ---------------------------------------------------------------
def test_ingest_reports_each_namespace_and_json(tmp_path: Path) -> None:
    store = tmp_path / "ns.db"
    result = gmem("--store", store, "ingest", GOOD)
    assert "5 into 'default', 1 into 'lab'" in result.stdout, result.stdout
    again = gmem("--store", tmp_path / "j.db", "ingest", MALFORMED, "--skip-bad", "--json")
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert data["ingested"] == 4 and sum(data["namespaces"].values()) == 4
    assert [s["line"] for s in data["skipped"]] == [3, 5]


def test_ingest_of_a_folder_says_so(tmp_path: Path) -> None:
    assert_user_error(gmem("--store", tmp_path / "x.db", "ingest", tmp_path), "is a folder")


def test_forget_json(store: Path) -> None:
    result = gmem("--store", store, "forget", "-n", "lab", "--yes", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["namespace"] == "lab" and data["nodes"] > 0
    assert counts(store)["namespaces"] == ["default"]


def _insight_store(path: Path, insights: list[Insight]) -> Path:
    with EmbeddedStore(path) as s:
        s.put_nodes(insights)
    return path


def test_insights_for_a_role_include_every_role_lessons_and_explain_an_empty_list(
    tmp_path: Path,
) -> None:
    lesson = "check the drawer before the cabinet " * 6 + "and finally LOOK-IN-THE-SINK."
    store = _insight_store(
        tmp_path / "roles.db",
        [
            Insight(text="heat it in the microwave first", roles=["actor"]),
            Insight(text=lesson, roles=[]),
        ],
    )
    planner = json.loads(gmem("--store", store, "insights", "-r", "planner", "--json").stdout)
    assert [i["text"] for i in planner] == [lesson]  # applies to every role
    table = gmem("--store", store, "insights", "--role", "planner").stdout
    assert "LOOK-IN-THE-SINK" in table.replace("\n", "").replace("│", "").replace(" ", "")
    only_actor = _insight_store(tmp_path / "actor.db", [Insight(text="x y z", roles=["actor"])])
    empty = gmem("--store", only_actor, "insights", "--role", "planner").stdout
    assert "No insights yet" not in empty
    assert "No insights for the planner" in empty and "actor" in empty


def test_recall_tables_wrap_long_lessons(tmp_path: Path) -> None:
    lesson = "when the apple is not on the counter " * 5 + "OPEN-THE-FRIDGE-LAST."
    store = _insight_store(tmp_path / "w.db", [Insight(text=lesson)])
    table = gmem("--store", store, "insights").stdout
    assert "…" not in table
    assert "OPEN-THE-FRIDGE-LAST" in table.replace("\n", "").replace("│", "").replace(" ", "")


def test_every_command_but_the_mcp_server_offers_json_and_an_example() -> None:
    """README: each command has ``--help`` with an example and ``--json`` output (the MCP
    server speaks JSON-RPC on standard output instead)."""
    import typer.main

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert {"recall", "ingest", "forget", "export", "demo", "migrate"} <= set(commands)
    for name in commands:
        text = gmem(name, "--help").stdout
        assert "Example" in text, name
        assert ("--json" in text) == (name != "mcp"), name


def test_global_options_after_the_command(built: Path) -> None:
    before = gmem("--store", built, "stats", "--json").stdout
    assert gmem("stats", "--json", "--store", built).stdout == before
    assert gmem("stats", "--store=" + str(built), "--json").stdout == before
    assert gmem("stats", "-s", built, "--json", "--embedder", "hashing").stdout == before


def test_embedder_help_lists_every_spec() -> None:
    text = " ".join(gmem("--help").stdout.split())
    for spec in ("minilm", "hashing", "openai:<model>", "auto"):
        assert spec in text, spec


def test_bad_config_variable_is_named(built: Path) -> None:
    result = CliRunner().invoke(
        app, ["--store", str(built), "stats"], env={**ENV, "GMEM_SEED_K": "many"}
    )
    assert_user_error(result, "GMEM_SEED_K", "'many'")


def test_python_dash_m_gmem_runs(tmp_path: Path) -> None:
    env = {**os.environ, **{k: v for k, v in ENV.items() if v is not None}}
    done = subprocess.run(
        [sys.executable, "-m", "gmem", "--version"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == f"gmem {__version__}", done.stderr


def _run_on(terminal: bool, args: list[str], env: dict[str, str]) -> bytes:
    """What ``gmem ARGS`` writes on standard error, a pseudo-terminal or a pipe."""
    import pty

    if not terminal:
        piped = subprocess.run(
            args, check=False, capture_output=True, env=env, timeout=180, stdin=subprocess.DEVNULL
        )
        assert piped.returncode == 0, piped.stderr
        return piped.stderr
    leader, follower = pty.openpty()
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=follower, env=env) as proc:
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the command is done
                break
            if not chunk:
                break
            drawn += chunk
        assert proc.wait(timeout=180) == 0
    os.close(leader)
    return drawn


@pytest.mark.slow  # end to end through a subprocess or the whole demo
def test_progress_bars_on_a_terminal_only(tmp_path: Path) -> None:
    """On a pseudo-terminal ingest, export and migrate draw a bar on stderr (embed too,
    with the gnn extra); piped, nothing is drawn (export's one-line report stays)."""
    env = {**os.environ, **{k: v for k, v in ENV.items() if v is not None}, "TERM": "xterm"}
    env.pop("GMEM_STORE", None)
    env.pop("CI", None)
    gmem_ = [sys.executable, "-m", "gmem"]
    for terminal in (False, True):
        db = tmp_path / f"{terminal}.db"
        commands = {
            b"ingest trajectories.jsonl": ["--store", str(db), "ingest", str(GOOD)],
            b"export": ["--store", str(db), "export", "--format", "json", "-o", str(db) + ".json"],
            b"migrate": ["migrate", "--from", str(db), "--to", str(tmp_path / f"{terminal}-m.db")],
        }
        if importlib.util.find_spec("torch") and importlib.util.find_spec("torch_geometric"):
            commands[b"embed"] = ["--store", str(db), "embed", "--epochs", "2"]
        for label, args in commands.items():
            stderr = _run_on(terminal, [*gmem_, *args], env)
            if terminal:
                assert label in stderr, (args, stderr[-500:])
            else:  # nothing drawn: no escape sequence, no bar ("━")
                assert b"\x1b[" not in stderr and "━".encode() not in stderr, (args, stderr)


def test_stored_terminal_controls_are_shown_not_obeyed(tmp_path: Path) -> None:
    # An agent's text may carry escape sequences (clear screen, retitle the window, C1
    # controls, a right-to-left override that makes the rest of the line read backwards);
    # a person reading memory must see them, not have the terminal run them.
    hostile = "wipe \x1b[2J\x1b]0;owned\x07 the mug \x9b31m now \u202egnp.exe\u2066x\u2069"
    store = tmp_path / "esc.db"
    line = {
        "task": f"clean the mug {hostile}",
        "success": True,
        "steps": [{"agent": "a", "role": "actor", "content": f"said {hostile}"}],
    }
    (tmp_path / "esc.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    assert gmem("--store", store, "ingest", tmp_path / "esc.jsonl").exit_code == 0
    lessons = _insight_store(tmp_path / "lessons.db", [Insight(text=f"lesson {hostile}")])
    qid = query_id(store, f"clean the mug {hostile}")
    outputs = {
        "recall": gmem("--store", store, "recall", "clean the mug", "-r", "actor"),
        "show": gmem("--store", store, "show", qid),
        "insights": gmem("--store", lessons, "insights"),
        "error": gmem("--store", store, "ingest", tmp_path / f"missing {hostile}.jsonl"),
    }
    for name, result in outputs.items():
        shown = result.output
        assert not any(c in shown for c in "\x1b\x07\x9b\u202e\u2066\u2069"), (name, shown)
        assert "\\x1b[2J" in shown, (name, shown)
        assert "\\u202egnp.exe\\u2066x\\u2069" in " ".join(shown.split()), (name, shown)
    # The stored text itself is unchanged, and --json keeps it exactly.
    data = json.loads(gmem("--store", store, "show", qid, "--json").stdout)
    assert data["query"]["text"] == f"clean the mug {hostile}"


def test_upgrade_of_an_embedded_store_changes_nothing_and_says_so(tmp_path: Path) -> None:
    store = tmp_path / "memory.db"
    assert gmem("--store", store, "ingest", GOOD).exit_code == 0
    before = store.read_bytes()
    result = gmem("upgrade", "--store", store, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"store": str(store), "changed": False}
    assert store.read_bytes() == before
    missing = gmem("--store", tmp_path / "nope.db", "upgrade")
    assert_user_error(missing, "no gmem store")
    assert not (tmp_path / "nope.db").exists()
