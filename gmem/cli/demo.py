"""``gmem demo``: the same team on the same tasks, without memory and then with gmem.

The comparison is the point, so both runs use one seed and one task list, and the team
draws the same random numbers in both (see :mod:`gmem.demo.team`): the only difference is
what memory tells it. With no endpoint the team is the documented offline policy and the
memory reasoner is the heuristic; ``--llm-base-url``/``--llm-model`` switch both to a chat
model. Output is a few lines per task, then summary tables and the files written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gmem.cli import render
from gmem.cli.picture import lesson
from gmem.cli.settings import DEFAULT_DEMO_STORE, Settings, settings, store_file
from gmem.demo.ownership import DEMO_NAMESPACE, Claim, DemoStoreError, claim
from graph_store.errors import StoreCorruptError
from graph_store.model import Insight

if TYPE_CHECKING:
    from gmem.demo.runner import TaskRun
    from gmem.demo.team import Team
    from gmem.memory import Memory
    from graph_store.base import GraphStore


def _demo_store(option: str | None, shared: Settings) -> str:
    """``demo --store``, else the global ``--store``/``GMEM_STORE``, else the demo's file."""
    if option:
        return option
    return shared.store if shared.store_given else DEFAULT_DEMO_STORE


def _open_store(url: str, overwrite: bool) -> tuple[GraphStore, Claim]:
    """The demo's store, with the data of earlier demo runs cleared and nothing else
    touched; a file that is not a gmem store is replaced only with ``overwrite``."""
    from graph_store import open_store

    path = store_file(url)
    where = str(path) if path is not None else url
    if path is not None and path.parent != Path():
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        store = open_store(url)
    except StoreCorruptError:
        if path is None or not overwrite:
            raise DemoStoreError(
                f"{where} is not a gmem store; pass another --store, or --overwrite to "
                "replace the file"
            ) from None
        for p in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
            p.unlink(missing_ok=True)
        store = open_store(url)
    try:
        return store, claim(store, where, overwrite)
    except BaseException:
        store.close()
        raise


def _open(
    store: GraphStore, embedder_spec: str | None, base_url: str | None, model: str | None
) -> Memory:
    from gmem.config import MemoryConfig
    from gmem.embedding import make_embedder
    from gmem.llm import make_llm
    from gmem.memory import Memory

    config = MemoryConfig.from_env()
    embedder = make_embedder(embedder_spec)
    llm = make_llm(config, base_url=base_url, model=model, embedder=embedder)
    return Memory(store, embedder=embedder, llm=llm, config=config)


def _team(base_url: str | None, model: str | None) -> Team:
    from gmem.demo import LLMTeam, OfflineTeam

    if base_url is None and model is None:
        return OfflineTeam()
    from gmem.llm import OpenAIChat

    return LLMTeam(OpenAIChat(base_url=base_url, model=model).chat)


def _mark(ok: bool) -> str:
    return "[green]✓[/]" if ok else "[red]✗[/]"


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _describe(run: TaskRun, without: bool, memory: Memory, verbose: bool) -> list[str]:
    """A few lines per task: outcomes, what each role was given and why, what changed."""
    hints, rec, rep = run.hints, run.recall, run.report
    head = (
        f"{run.index + 1:>3} [cyan]{run.task.family:<7}[/] "
        f"{escape(render.clip(run.task.text, 52)):<52} "
        f"off {_mark(without)}  on {_mark(run.success)}  [dim]{run.episode.steps} steps[/]"
    )
    lines = [head]
    if rec is None or rec.is_empty:
        lines.append("      [dim]recalled nothing yet[/]")
    else:
        ok = sum(1 for t in rec.trajectories if t.outcome.value == "success")
        tokens = ", ".join(f"{m.role} {m.tokens}" for m in run.roles)
        lines.append(
            f"      recalled {ok} success(es), {len(rec.trajectories) - ok} failure(s),"
            f" {len(rec.insights)} insight(s) · tokens per role: {tokens}"
        )
        why = rec.explain()
        lines.extend(
            f"      [dim]why: {escape(render.clip(line, 100))}[/]"
            for line in (why if verbose else why[:1])
        )
        if verbose:
            for m in run.roles:
                lines.append(f"      [bold]{m.role}[/] sees:")
                lines.extend(f"        {escape(t)}" for t in m.text.splitlines())
            lines.append(
                f"      team hints: {len(hints.plans)} plan(s), "
                f"{len(hints.warnings)} warning action(s)"
            )
    if rep is not None:
        changes = [
            f"{label} {len(ids)}"
            for label, ids in (
                ("added", rep.added),
                ("edited", rep.edited),
                ("agreed", rep.agreed),
                ("retired", rep.retired),
                ("removed", rep.removed),
            )
            if ids
        ]
        if rep.merged:
            changes.append(f"merged {sum(len(g) for _, g in rep.merged)}")
        if changes:
            text = "      insights: " + ", ".join(changes)
            new = [n for n in memory.store.get_nodes(rep.added[:1]) if n is not None]
            if new and isinstance(new[0], Insight):
                text += escape(f' · new: "{render.clip(lesson(new[0]), 70)}"')
            lines.append(text)
    return lines


def _rates_table(
    without: list[bool], with_memory: list[bool], steps: tuple[list[int], list[int]]
) -> Table:
    from gmem.demo.runner import success_blocks

    table = Table(title="Success rate, same tasks and seed")
    for col in ("tasks", "without memory", "with gmem", "difference"):
        table.add_column(col, justify="left" if col == "tasks" else "right")
    rows = list(zip(success_blocks(without), success_blocks(with_memory), strict=True))
    for (first, last, off), (_, _, on) in rows:
        table.add_row(f"{first}-{last}", f"{off:.0%}", f"{on:.0%}", f"{on - off:+.0%}")
    off_all, on_all = sum(without) / len(without), sum(with_memory) / len(with_memory)
    table.add_row(
        "[bold]all[/]",
        f"[bold]{off_all:.0%}[/]",
        f"[bold]{on_all:.0%}[/]",
        f"[bold]{on_all - off_all:+.0%}[/]",
    )
    off_steps, on_steps = (sum(s) / len(s) for s in steps)
    table.add_row(
        "[dim]mean steps[/]",
        f"[dim]{off_steps:.1f}[/]",
        f"[dim]{on_steps:.1f}[/]",
        f"[dim]{on_steps - off_steps:+.1f}[/]",
    )
    return table


def demo(
    ctx: typer.Context,
    tasks: Annotated[
        int, typer.Option("--tasks", min=1, max=1000, help="How many tasks of the demo world.")
    ] = 30,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the task list and the team.")] = 0,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            "-s",
            help="Where the demo's memory goes (default: the global --store or GMEM_STORE, "
            f"else {DEFAULT_DEMO_STORE}); neo4j://host works. The demo writes only its own "
            f"namespace {DEMO_NAMESPACE!r} and replaces only what an earlier demo wrote.",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Run in a store that holds other memory (it is kept; a 'demo' namespace "
            "the demo did not write is replaced), or replace a file that is not a gmem store.",
        ),
    ] = False,
    out: Annotated[Path, typer.Option("--out", help="Folder for the pictures and summary.")] = Path(
        "./.gmem"
    ),
    llm_base_url: Annotated[
        str | None,
        typer.Option(
            "--llm-base-url", help="Run real LLM agents at this OpenAI-compatible endpoint."
        ),
    ] = None,
    llm_model: Annotated[
        str | None, typer.Option("--llm-model", help="Model for the agents.")
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Print every explanation and each role's memory text."
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print only the summary, as JSON, for scripts.")
    ] = False,
) -> None:
    """Watch memory help a team: the same tasks without memory, then with gmem.

    Runs a planner/actor/verifier team (an offline rule-based policy unless an LLM endpoint
    is given) over household tasks, prints what memory recalled and learned, a summary,
    and writes the store plus a picture of the three tiers (PNG and HTML).

    Example: gmem demo --tasks 30 --seed 0
    """
    from gmem.cli.picture import sample, write_html, write_png
    from gmem.demo import World, make_tasks
    from gmem.demo.runner import play_with_memory, play_without_memory

    started = time.perf_counter()
    shared = settings(ctx)
    url = _demo_store(store, shared)
    base_url = llm_base_url or shared.llm_base_url
    model = llm_model or shared.llm_model
    console = render.console(quiet=as_json)
    task_list = make_tasks(tasks, seed)
    where = store_file(url)
    shown = str(where.resolve()) if where else url
    team = f"LLM {model or base_url}" if base_url or model else "offline policy"
    # Open the store first: a wrong --store should fail before anything is printed or run.
    graph, claimed = _open_store(url, overwrite)
    console.print(f"[bold]gmem demo[/]: {tasks} household tasks, seed {seed}, team: {escape(team)}")
    kept = f"; kept namespace(s) {', '.join(claimed.kept)}" if claimed.kept else ""
    console.print(
        f"Memory store: {shown}, namespace {DEMO_NAMESPACE!r} "
        f"({'replaced' if claimed.cleared else 'new'}{kept})",
        markup=False,
    )
    memory = _open(graph, shared.embedder, base_url, model)
    with memory:
        world = World()
        with _progress(console) as progress:
            bar = progress.add_task("without memory", total=tasks)
            baseline = []
            for run in play_without_memory(world, task_list, _team(base_url, model), seed):
                baseline.append(run)
                progress.advance(bar)

        runs: list[TaskRun] = []
        console.print(
            "[bold]With gmem memory[/] (off/on = the task's outcome without/with memory):"
        )
        with _progress(console) as progress:
            bar = progress.add_task("with gmem memory", total=tasks)
            team_with = _team(base_url, model)
            for run in play_with_memory(
                world, task_list, team_with, memory, seed, namespace=DEMO_NAMESPACE
            ):
                runs.append(run)
                for line in _describe(run, baseline[run.index].success, memory, verbose):
                    progress.console.print(line)
                progress.advance(bar)

        off = [r.success for r in baseline]
        on = [r.success for r in runs]
        console.print()
        console.print(
            _rates_table(
                off, on, ([r.episode.steps for r in baseline], [r.episode.steps for r in runs])
            )
        )
        counts = memory.stats(DEMO_NAMESPACE)
        console.print(render.stats_table(counts, f"Memory size per tier ({DEMO_NAMESPACE})"))
        console.print(render.usage_table(memory.usage, memory.llm.name))

        out.mkdir(parents=True, exist_ok=True)
        pic = sample(memory.store, DEMO_NAMESPACE)
        png_path, page = out / "demo-tiers.png", out / "demo-tiers.html"
        png: Path | None = png_path
        try:
            write_png(pic, png_path)
        except ImportError:  # matplotlib is the `viz` extra; the HTML needs nothing
            png = None
        write_html(pic, page)
        summary_path = out / "demo-summary.json"
        summary = {
            "tasks": tasks,
            "seed": seed,
            "store": shown,
            "namespace": DEMO_NAMESPACE,
            "success_without_memory": sum(off) / tasks,
            "success_with_memory": sum(on) / tasks,
            "outcomes": [
                {"task": r.task.text, "family": r.task.family, "without": a, "with": b}
                for r, a, b in zip(runs, off, on, strict=True)
            ],
            "stats": render.stats_json(counts, [DEMO_NAMESPACE]),
            "usage": render.usage_json(memory.usage),
            "files": {
                "picture": str(png.resolve()) if png else None,
                "interactive": str(page.resolve()),
                "summary": str(summary_path.resolve()),
            },
            "seconds": round(time.perf_counter() - started, 1),
        }
        summary_path.write_text(json.dumps(summary, indent=2), encoding="utf-8")

    if as_json:
        render.emit_json(summary)
        return
    console.print(
        f"Success without memory: {sum(off) / tasks:.0%} · with gmem memory: "
        f"{sum(on) / tasks:.0%} ({sum(on) - sum(off):+d} tasks)"
    )
    console.print("Wrote:", markup=False)
    for label, path in (
        ("store", f"{shown} (namespace {DEMO_NAMESPACE!r})"),
        (
            "picture",
            png.resolve() if png else "(skipped: pip install 'gmem-agents[viz]' for the PNG)",
        ),
        ("interactive", page.resolve()),
        ("summary", summary_path.resolve()),
    ):
        console.print(f"  {label:<12} {path}", markup=False)
    console.print(
        f"Took {time.perf_counter() - started:.1f} s. Next: gmem insights --store {url} · "
        f'gmem recall "{task_list[0].text}" --store {url}',
        markup=False,
    )
