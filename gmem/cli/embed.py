"""``gmem embed``: train the structural (GNN) encoder and write every task's embedding."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer

from gmem.cli import render
from gmem.cli.settings import open_memory, settings
from gmem.errors import UserInputError

DEVICES = ("auto", "cpu", "cuda")


def embed(
    ctx: typer.Context,
    device: Annotated[
        str, typer.Option("--device", help="auto (CUDA when available), cpu or cuda.")
    ] = "auto",
    epochs: Annotated[
        int | None,
        typer.Option("--epochs", min=1, help="Training epochs (default: gnn_epochs)."),
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Only this namespace (default: all).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Retrain the graph encoder and embed every task (needs the gnn extra).

    Recall mixes text and structural similarity when GMEM_GNN_ALPHA < 1.

    Example: gmem embed --epochs 100 --namespace team-a
    """
    if device not in DEVICES:
        raise UserInputError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserInputError("no CUDA device is visible to torch; use --device cpu or auto")
    with open_memory(settings(ctx)) as memory:
        spaces = [namespace] if namespace else memory.namespaces()
        reports: list[dict[str, Any]] = []
        for space in spaces:
            with render.progress(f"embed {space}", epochs or memory.config.gnn_epochs) as bar:
                report = memory.embed_graph(
                    space, epochs, device, progress=lambda done, _total, _loss: bar.update(done)
                )
            reports.append(asdict(report))
        if as_json:
            render.emit_json({"namespaces": reports})
            return
        out = render.console()
        for r in reports:
            loss = (
                f"loss {r['first_loss']:.3f} -> {r['last_loss']:.3f}"
                if r["first_loss"] is not None
                else "no procedural pairs yet: embeddings from text alone"
            )
            out.print(
                f"{render.markup_safe(r['namespace'])}: {r['queries']} tasks, "
                f"{r['insights']} insights embedded by {r['version']} on {r['device']} "
                f"({r['epochs']} epochs, {loss}, "
                f"{r['export_seconds'] + r['train_seconds'] + r['write_seconds']:.1f} s)"
            )
