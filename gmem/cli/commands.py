"""The inspection and maintenance commands: recall, ingest, insights, show, stats, export, forget.

Each command opens memory, does one engine call, and hands the result to
:mod:`gmem.cli.render`. Errors are not caught here: the app's entry point turns every
:class:`gmem.errors.GmemError` into one ``error:`` line and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gmem.cli import render
from gmem.cli.export import FORMATS
from gmem.cli.settings import open_memory, settings, store_file
from gmem.errors import InvalidIdError, NotFoundError, UnknownNamespaceError, UserInputError
from graph_store.model import DEFAULT_NAMESPACE, check_namespace
from graph_store.redact import redact_url

if TYPE_CHECKING:
    from gmem.memory import Memory

NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n", help="Memory namespace.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def recall(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="The task to recall memory for.")],
    role: Annotated[
        str | None, typer.Option("--role", "-r", help="Show the memory rendered for this role.")
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            "-n",
            help="Memory namespace (default: 'default', or the store's only namespace, "
            "such as the demo's).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recall memory for a task: past tasks, insights and why each was found.

    Example: gmem recall "put a hot apple on the diningtable" --role planner
    """
    with open_memory(settings(ctx)) as memory:
        found = memory.recall(task, namespace=namespace or _only_namespace(memory))
        roles = [found.for_role(role)] if role else []
        if as_json:
            render.emit_json(render.recall_json(found, roles))
        else:
            render.console().print(render.recall_view(found, roles))


def ingest(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSONL file, one finished trajectory per line.")],
    namespace: Annotated[
        str,
        typer.Option(
            "--namespace",
            "-n",
            help="Namespace for the lines that name none (a line's own namespace wins).",
        ),
    ] = DEFAULT_NAMESPACE,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Import the valid lines and report the bad ones.")
    ] = False,
    bulk: Annotated[
        bool,
        typer.Option(
            "--bulk",
            help="Write many trajectories per transaction without the reasoner: tasks, "
            "traces and similarity edges, no insights (see gmem/bulk.py).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import finished trajectories (the schema is in gmem/trajectory.py).

    Every line is checked before anything is written: one bad line imports nothing
    unless --skip-bad is given. Each trajectory goes through full evolution (insights
    derived, credited, merged) unless --bulk is given.

    Example: gmem ingest runs.jsonl --namespace household
    """
    check_namespace(namespace)
    if file.is_dir():
        raise UserInputError(
            f"cannot read {file}: it is a folder; give a JSONL file (one trajectory per line)"
        )
    if not file.is_file():
        raise UserInputError(f"cannot read {file}: no such file")
    with (
        open_memory(settings(ctx), must_exist=False) as memory,
        render.progress(f"ingest {file.name}") as bar,
    ):
        result = memory.ingest_jsonl(
            file, namespace=namespace, skip_bad=skip_bad, progress=bar.update, bulk=bulk
        )
    for number, why in result.skipped:
        render.console(stderr=True).print(
            render.printable(f"skipped {file}:{number}: {why}"), markup=False
        )
    added = sum(len(r.added) for r in result.reports)
    if as_json:
        render.emit_json(
            {
                "ingested": result.ingested,
                "namespaces": dict(sorted(result.namespaces.items())),
                "insights_added": added,
                "already_stored": result.already_stored,
                "skipped": [{"line": n, "error": why} for n, why in result.skipped],
            }
        )
        return
    places = render.printable(
        ", ".join(f"{n} into {ns!r}" for ns, n in sorted(result.namespaces.items()))
    )
    again = f", {result.already_stored} already stored" if result.already_stored else ""
    render.console().print(
        f"Ingested {result.ingested} trajectories ({places or 'none'}; {added} insights "
        f"added, {len(result.skipped)} lines skipped{again}).",
        markup=False,
    )


def insights(
    ctx: typer.Context,
    role: Annotated[
        str | None, typer.Option("--role", "-r", help="Only insights that apply to this role.")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Only this namespace (default: all).")
    ] = None,
    include_retired: Annotated[
        bool, typer.Option("--all", help="Include retired insights.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List what the team has learned, best score first.

    Example: gmem insights --role actor --all
    """
    with open_memory(settings(ctx)) as memory:
        nodes = memory.insights(namespace=namespace, role=role, include_retired=include_retired)
        if as_json:
            render.emit_json([render.insight_json(n) for n in nodes])
            return
        empty = "No insights yet."
        if not nodes and role:
            others = memory.insights(namespace=namespace, include_retired=include_retired)
            if others:
                roles = sorted({r for n in others for r in n.roles})
                empty = (
                    f"No insights for the {role}: the {len(others)} there are apply only to "
                    f"other roles ({', '.join(roles)}); `gmem insights` lists them all."
                )
        title = "Insights" + (
            f" for the {render.markup_safe(role)} (and for every role)" if role else ""
        )
        render.console().print(render.insights_table(nodes, title, empty), markup=False)


def show(
    ctx: typer.Context,
    query_id: Annotated[
        str,
        typer.Argument(
            help="Task (query) id; an unambiguous prefix of 6 or more hex digits works."
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Show one stored task: its interaction graph and the insights it supports.

    Example: gmem show 3f2a9c1e
    """
    with open_memory(settings(ctx)) as memory:
        view = memory.show(_resolve_query(memory, query_id))
        if as_json:
            render.emit_json(render.task_json(view, view.replies))
        else:
            render.console().print(render.task_view(view, view.replies))


def _only_namespace(memory: Memory) -> str:
    """``default`` unless the store holds exactly one other namespace: a store that the
    demo (namespace ``demo``) or one team wrote answers without ``--namespace``."""
    spaces = memory.namespaces()
    return spaces[0] if len(spaces) == 1 else DEFAULT_NAMESPACE


def _resolve_query(memory: Memory, query_id: str) -> str:
    """Full ids pass through; short prefixes (as printed by recall) are looked up."""
    text = query_id.strip().lower()
    if len(text) == 32:
        return text
    if not 6 <= len(text) < 32 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidIdError(
            f"invalid id {query_id!r}: expected 32 hex digits or a prefix of at least 6"
        )
    matches = [q.id for q in memory.queries() if q.id.startswith(text)]
    if not matches:
        raise NotFoundError(f"no task with an id starting {text}")
    if len(matches) > 1:
        raise InvalidIdError(f"id prefix {text} is ambiguous ({len(matches)} tasks); give more")
    return matches[0]


def stats(
    ctx: typer.Context,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Only this namespace (default: all).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Count nodes and edges per tier.

    Example: gmem stats --json
    """
    with open_memory(settings(ctx)) as memory:
        counts = memory.stats(namespace)
        spaces = [namespace] if namespace else memory.namespaces()
        gnn = [memory.embedding_status(space) for space in spaces]
        if as_json:
            render.emit_json(
                {**render.stats_json(counts, spaces), "gnn": [g.to_json() for g in gnn]}
            )
        else:
            title = f"Memory size per tier ({render.markup_safe(', '.join(spaces) or 'empty')})"
            out = render.console()
            out.print(render.stats_table(counts, title))
            for g in gnn:
                out.print(
                    f"GNN embeddings of {render.markup_safe(g.namespace)}: {g.state} ({g.detail})"
                )


def export(
    ctx: typer.Context,
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help="graphml, json or cypher.", show_default="json"),
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Only this namespace (default: all).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of standard output."),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="With --output: print what was written as JSON. Without: export as JSON.",
        ),
    ] = False,
) -> None:
    """Export the memory graph (vectors left out). The Cypher loads into Neo4j and reads
    back through gmem as the same memory.

    Example: gmem export --format cypher -o memory.cypher  (then: cypher-shell -f memory.cypher)
    """
    from gmem.cli.export import render as render_export

    if as_json and output is None and fmt not in (None, "json"):
        raise UserInputError(f"--json without --output exports JSON; drop --format {fmt}")
    fmt = fmt or "json"
    if fmt not in FORMATS:
        raise UserInputError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    with open_memory(settings(ctx)) as memory:
        if namespace is not None:
            check_namespace(namespace)
        total = memory.stats(namespace)  # raises for a namespace that holds nothing
        tiers = sum(n for k, n in total.nodes.items() if k != "Item")
        with render.progress("export", tiers + total.total_edges) as bar:
            snap = memory.graph(namespace, progress=lambda _what, n: bar.advance(n))
            text = render_export(snap, fmt)
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"cannot write {output}: {exc.strerror}") from None
    if as_json:
        render.emit_json(
            {
                "output": str(output),
                "format": fmt,
                "nodes": len(snap.nodes),
                "edges": len(snap.edges),
            }
        )
        return
    render.console(stderr=True).print(
        f"Wrote {len(snap.nodes)} nodes and {len(snap.edges)} edges to {output} ({fmt}).",
        markup=False,
    )


def forget(
    ctx: typer.Context,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Forget everything in this namespace.")
    ] = None,
    task: Annotated[
        str | None, typer.Option("--task", "-t", help="Forget one task (query id) and its traces.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a namespace or one task; insights keep their other evidence.

    Example: gmem forget --task 3f2a9c1e --yes
    """
    if (namespace is None) == (task is None):
        raise UserInputError("give exactly one of --namespace or --task")
    with open_memory(settings(ctx)) as memory:
        if namespace is not None:
            check_namespace(namespace)
            if namespace not in memory.namespaces():
                raise UnknownNamespaceError(f"namespace {namespace!r} holds no memory")
            what = f"namespace {namespace!r} ({memory.stats(namespace).total_nodes} nodes)"
        else:
            assert task is not None
            qid = _resolve_query(memory, task)
            what = f"task {qid} ({memory.show(qid).query.text!r})"
        if not yes:
            if not sys.stdin.isatty():
                raise UserInputError(f"refusing to forget {what} without --yes (no terminal)")
            typer.confirm(f"Forget {what}?", abort=True)
        removed = (
            memory.forget_namespace(namespace) if namespace is not None else memory.forget_task(qid)
        )
    if as_json:
        target = {"namespace": namespace} if namespace is not None else {"task": qid}
        render.emit_json({**target, "nodes": removed.nodes, "edges": removed.edges})
        return
    render.console().print(
        f"Forgot {what}: {removed.nodes} nodes and {removed.edges} edges removed.", markup=False
    )


def migrate(
    source: Annotated[str, typer.Option("--from", help="Store to copy from (path or URL).")],
    target: Annotated[str, typer.Option("--to", help="Store to copy into (path or URL).")],
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Copy only this namespace.")
    ] = None,
    repair_text: Annotated[
        bool,
        typer.Option(
            "--repair-text",
            help="Store U+FFFD in place of lone surrogates (text from before gmem refused "
            "them) instead of refusing the copy; the changed records are listed.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy a memory between stores, then check the counts match.

    Example: gmem migrate --from .gmem/demo.db --to neo4j://127.0.0.1:7687
    """
    from gmem.migrate import copy_memory
    from graph_store import open_store

    src_file, dst_file = store_file(source), store_file(target)
    if src_file is not None and not src_file.is_file():
        raise UserInputError(f"cannot read {source}: no such store file")
    if src_file is not None and dst_file is not None and src_file.resolve() == dst_file.resolve():
        raise UserInputError("--from and --to name the same store")
    if namespace is not None:
        check_namespace(namespace)
    with open_store(source) as src, open_store(target) as dst:
        if namespace is not None and namespace not in src.namespaces():
            raise UnknownNamespaceError(f"namespace {namespace!r} holds no memory in {source}")
        size = src.count(namespace)
        with render.progress("migrate", size.total_nodes + size.total_edges) as bar:
            report = copy_memory(
                src,
                dst,
                namespace,
                progress=lambda _what, n: bar.advance(n),
                repair_text=repair_text,
            )
    if as_json:
        render.emit_json(
            {
                "source": {"nodes": report.source.nodes, "edges": report.source.edges},
                "target": {"nodes": report.target.nodes, "edges": report.target.edges},
                "repaired": report.repaired,
            }
        )
        return
    if report.repaired:
        render.console().print(
            f"repaired lone surrogates (now U+FFFD) in {len(report.repaired)} records: "
            + ", ".join(report.repaired),
            markup=False,
        )
    render.console().print(
        f"copied {report.source.total_nodes} nodes and {report.source.total_edges} edges "
        f"from {redact_url(source)} to {redact_url(target)}; the target now holds "
        f"{report.target.total_nodes} nodes and {report.target.total_edges} edges",
        markup=False,
    )
