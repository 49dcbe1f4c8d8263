"""How the CLI shows memory: rich tables for people, plain JSON-able dicts for scripts.

Both forms are built from the same engine objects here, so that ``--json`` never lags
behind what the tables show.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from gmem.llm.protocol import UsageLedger
from graph_store.model import Insight, Outcome
from graph_store.ops import Counts

if TYPE_CHECKING:
    from gmem.memory import TaskView
    from gmem.recall import Recall, RoleMemory

_MARK = {
    Outcome.SUCCESS: "[green]✓ success[/]",
    Outcome.FAILURE: "[red]✗ failure[/]",
    Outcome.UNKNOWN: "[yellow]? unknown[/]",
}


def console(stderr: bool = False, quiet: bool = False) -> Console:
    # No highlighting, and a fixed width when piped (rich's default of 80 columns wraps
    # every task line), so logs and CI output stay readable. ``quiet`` is for --json runs,
    # whose standard output must hold the JSON alone.
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or "COLUMNS" in os.environ else 120
    return Console(stderr=stderr, highlight=False, width=width, quiet=quiet)


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


class Bar:
    """What a command tells its progress bar; does nothing when no bar is drawn."""

    def __init__(self, progress: Progress | None = None, task: TaskID | None = None) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)

    def update(self, done: int, total: int | None = None) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, total=total)


@contextmanager
def progress(label: str, total: int | None = None) -> Iterator[Bar]:
    """A bar on standard error while long work runs, only on a terminal: piped or
    redirected, nothing is drawn, and scripts read only the result."""
    if not sys.stderr.isatty():
        yield Bar()
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with bar:
        yield Bar(bar, bar.add_task(label, total=total))


# Terminal controls but newline and tab: C0, DEL and C1. Agents' text is stored as they
# wrote it, and an escape sequence in a task ("\x1b[2J", "\x1b]0;title\x07") would
# otherwise clear the screen or retitle the window of whoever reads the memory.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Explicit bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069):
# one of them reorders everything after it on the line, so a task can read differently
# from what it says ("Trojan Source"). Marks (U+200E, U+200F) only nudge neutral
# characters and are common in right-to-left text, so they are shown as they are.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """Stored text as a terminal may show it: each control character becomes a visible
    escape (``\\x1b``, ``\\u202e``), the text itself is never dropped."""
    text = _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return _BIDI.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def clip(text: str, limit: int = 90) -> str:
    text = " ".join(printable(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def markup_safe(value: object) -> str:
    """Stored or user-given text to embed in a rich markup string: ``[/bold]`` in a task,
    ``[/x]`` in a namespace stay literal instead of being parsed (or crashing the render)."""
    return escape(printable(str(value)))


def cell(text: str, limit: int = 90) -> Text:
    """Stored text as a table cell, never parsed as rich markup ("[action]" stays)."""
    return Text(clip(text, limit))


def lesson_cell(text: str) -> Text:
    """An insight's whole text, wrapped by the table rather than cut: the end of a lesson
    is often the part that matters ("... then check the drawer first")."""
    return Text(" ".join(printable(text).split()), overflow="fold")


# ---- recall ---------------------------------------------------------------------------
def recall_json(recall: Recall, roles: Sequence[RoleMemory]) -> dict[str, Any]:
    return {
        "task": recall.task,
        "namespace": recall.namespace,
        "queries": [
            {
                "id": q.id,
                "task": q.task,
                "outcome": q.outcome.value,
                "similarity": round(q.similarity, 4),
                "relevance": round(q.relevance, 4),
                "hop": q.hop,
                "kept": q.kept,
            }
            for q in recall.queries
        ],
        "insights": [
            {
                "id": i.id,
                "text": i.text,
                "score": i.score,
                "roles": list(i.roles),
                "rank": round(i.rank, 4),
            }
            for i in recall.insights
        ],
        "trajectories": [
            {
                "query_id": t.query_id,
                "task": t.task,
                "outcome": t.outcome.value,
                "relevance": round(t.relevance, 4),
                "total_steps": t.total_steps,
                "steps": [
                    {
                        "agent": s.agent,
                        "role": s.role,
                        "content": s.content,
                        "action": s.action,
                        "observation": s.observation,
                    }
                    for s in t.steps
                ],
            }
            for t in recall.trajectories
        ],
        "roles": {
            m.role: {"text": m.text, "tokens": m.tokens, "insights": [i.id for i in m.insights]}
            for m in roles
        },
        "explain": recall.explain(),
    }


def recall_view(recall: Recall, roles: Sequence[RoleMemory]) -> RenderableType:
    if not recall.queries and not recall.insights:
        return Text(
            f"Nothing recalled for {printable(repr(recall.task))} "
            f"in namespace {printable(repr(recall.namespace))}."
        )
    queries = Table(title=escape(f"Past tasks recalled for: {clip(recall.task, 70)}"), expand=False)
    for col in ("id", "task", "outcome", "relevance", "shown"):
        queries.add_column(col)
    for q in recall.queries:
        queries.add_row(
            q.id[:8],
            cell(q.task, 60),
            _MARK[q.outcome],
            f"{q.relevance:.2f}",
            "yes" if q.kept else "",
        )
    parts: list[RenderableType] = [queries]
    if recall.insights:
        ins = Table(title="Insights reached upward")
        for col in ("id", "insight", "score", "rank"):
            ins.add_column(col, ratio=1 if col == "insight" else None, no_wrap=col != "insight")
        for i in recall.insights:
            ins.add_row(i.id[:8], lesson_cell(i.text), f"{i.score:.1f}", f"{i.rank:.2f}")
        parts.append(ins)
    parts.append(Text("Why:", style="bold"))
    parts.extend(Text("  " + printable(line)) for line in recall.explain())
    for m in roles:
        parts.append(Text(f"\nMemory for the {m.role} ({m.tokens} tokens):", style="bold"))
        parts.append(Text(printable(m.text) or "(nothing for this role)"))
    return Group(*parts)


# ---- insights -------------------------------------------------------------------------
def insight_json(node: Insight) -> dict[str, Any]:
    return node.props()


def insights_table(
    nodes: Sequence[Insight], title: str, empty: str = "No insights yet."
) -> RenderableType:
    if not nodes:
        return Text(empty)
    table = Table(title=title)
    for col in ("id", "insight", "score", "roles", "for/against", "state"):
        table.add_column(col, ratio=1 if col == "insight" else None, no_wrap=col != "insight")
    for n in nodes:
        table.add_row(
            n.id[:8],
            lesson_cell(n.text),
            f"{n.score:.1f}",
            cell(", ".join(n.roles) or "all"),
            f"{n.support_count}/{n.contradiction_count}",
            "[dim]retired[/]" if n.retired else "active",
        )
    return table


# ---- show -----------------------------------------------------------------------------
def task_json(view: TaskView, replies: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "query": view.query.props(),
        "attempts": {
            str(a): [{**u.props(), "replies_to": replies.get(u.id, [])} for u in utts]
            for a, utts in view.attempts.items()
        },
        "supports": [i.props() for i in view.supports],
        "contradicts": [i.props() for i in view.contradicts],
    }


def task_view(view: TaskView, replies: dict[str, list[str]]) -> RenderableType:
    q = view.query
    head = Text.from_markup(
        f"[bold]{markup_safe(q.text)}[/]\nid {q.id} · namespace {markup_safe(q.namespace)} · "
        f"latest {_MARK[q.outcome]} · "
        f"{q.attempts} attempt(s), {q.successes} succeeded"
    )
    parts: list[RenderableType] = [head]
    for attempt, utts in view.attempts.items():
        table = Table(title=f"Attempt {attempt}: interaction graph ({len(utts)} utterances)")
        for col in ("#", "agent (role)", "said / did", "replies to", "key"):
            table.add_column(col)
        index = {u.id: u.step for u in utts}
        for u in utts:
            said = clip(u.content, 60)
            if u.action:
                said += f"\n[action] {clip(u.action, 50)}"
            if u.observation:
                said += f"\n[seen] {clip(u.observation, 50)}"
            answered = sorted(index[r] for r in replies.get(u.id, []) if r in index)
            table.add_row(
                str(u.step),
                cell(f"{u.agent} ({u.role})"),
                Text(said),
                ", ".join(map(str, answered)),
                "★" if u.key_step else "",
            )
        parts.append(table)
    for label, nodes in (
        ("Insights it supports", view.supports),
        ("Insights it contradicts", view.contradicts),
    ):
        if nodes:
            parts.append(insights_table(nodes, label))
    return Group(*parts)


# ---- stats and usage ------------------------------------------------------------------
def stats_json(counts: Counts, namespaces: Sequence[str]) -> dict[str, Any]:
    return {
        "nodes": dict(counts.nodes),
        "edges": dict(counts.edges),
        "total_nodes": counts.total_nodes,
        "total_edges": counts.total_edges,
        "namespaces": list(namespaces),
    }


def stats_table(counts: Counts, title: str = "Memory size per tier") -> Table:
    table = Table(title=title)
    table.add_column("tier")
    table.add_column("nodes", justify="right")
    table.add_column("edges inside / from it", justify="right")
    tiers = (
        ("insights", "Insight", ("RELATED_TO", "SUPPORTS", "CONTRADICTS")),
        ("queries", "Query", ("SIMILAR_TO", "USED_MEMORY_OF", "HAS_TRACE")),
        ("interactions", "Utterance", ("REPLIES_TO", "NEXT")),
    )
    for name, kind, edges in tiers:
        detail = ", ".join(f"{e} {counts.edges[e]}" for e in edges if counts.edges.get(e))
        table.add_row(name, str(counts.nodes.get(kind, 0)), detail or "0")
    # Adapter records (LangGraph store items) share the store but are no tier of memory.
    if counts.nodes.get("Item"):
        table.add_row("store items", str(counts.nodes["Item"]), "-")
    table.add_row("[bold]total[/]", str(counts.total_nodes), str(counts.total_edges))
    return table


def usage_table(usage: UsageLedger, reasoner: str) -> Table:
    table = Table(title=f"Reasoner usage per memory operation ({reasoner})")
    for col in ("operation", "calls", "prompt tokens", "completion tokens", "failures"):
        table.add_column(col, justify="left" if col == "operation" else "right")
    for op, u in sorted(usage.by_operation.items()):
        table.add_row(
            op, str(u.calls), str(u.prompt_tokens), str(u.completion_tokens), str(u.failures)
        )
    total_calls = sum(u.calls for u in usage.by_operation.values())
    table.add_row(
        "[bold]total[/]",
        str(total_calls),
        str(sum(u.prompt_tokens for u in usage.by_operation.values())),
        str(sum(u.completion_tokens for u in usage.by_operation.values())),
        "",
    )
    return table


def usage_json(usage: UsageLedger) -> dict[str, dict[str, int]]:
    return {
        op: {
            "calls": u.calls,
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "failures": u.failures,
        }
        for op, u in sorted(usage.by_operation.items())
    }
