"""Self-supervised training: tasks that share a procedure should embed close together.

Positives are the procedural pairs of the export (and, weighted lower, USED_MEMORY_OF
pairs between successes); negatives are successful tasks drawn once per step and shared
by every anchor of the step, so the loss is one matrix product instead of a gather of
``pairs x negatives`` rows (whose backward pass dominated the cost). Each step a share of
tasks is hidden as if new (trace, outcome and every edge but SIMILAR_TO removed, the
outcome features set to "unknown"), so the loss also asks a task known only by its text
and its text neighbours to land beside the tasks that share its procedure; that is the
situation of every recall. Seeded, so two runs agree.

The work is bounded whatever the graph's size: at most ``gnn_epochs`` optimiser steps,
each over at most ``gnn_pairs_per_step`` positive pairs (all of them on a small graph, so
a step is an epoch there), at most ``gnn_train_node_budget`` node rows through the
encoder over all steps (a large graph gets fewer steps), and training stops early once
the smoothed loss has not improved for ``gnn_patience`` steps. Graphs above
``gnn_minibatch_nodes`` nodes run each step on the neighbourhood of the step's tasks
(``gmem.gnn.sampling``) instead of the whole graph; the MLP baseline only ever reads the
rows it needs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from gmem.config import MemoryConfig
from gmem.gnn.export import EDGE_TYPES, QUERY, SIMILAR, EdgeType, MemoryGraph, input_dims
from gmem.gnn.features import NEW_QUERY_EXTRA
from gmem.gnn.model import MemoryEncoder, TextProcedureMLP
from gmem.gnn.sampling import neighbourhood
from gmem.gnn.threads import cpu_threads

Progress = Callable[[int, int, float], None]
#: Smoothing of the loss the plateau test reads (sampled steps make it noisy).
_SMOOTHING = 0.9


def pick_device(device: str) -> torch.device:
    """``auto``: CUDA when torch sees a GPU, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass
class TrainReport:
    encoder: str
    device: str
    #: Optimiser steps actually taken (fewer than asked when the loss plateaued).
    epochs: int
    positives: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False
    minibatch: bool = False


def _positives(graph: MemoryGraph, config: MemoryConfig) -> tuple[Tensor, Tensor]:
    """Oriented positive pairs ``(2, P)`` and their loss weights."""
    proc, mem = graph.procedure_pairs, graph.memory_pairs
    pairs = torch.cat([proc, proc.flip(0), mem, mem.flip(0)], dim=1)
    weights = torch.cat(
        [
            torch.ones(2 * proc.shape[1]),
            torch.full((2 * mem.shape[1],), config.gnn_used_memory_weight),
        ]
    )
    return pairs, weights


def _member(sorted_keys: Tensor, queries: Tensor) -> Tensor:
    """Whether each query is in ``sorted_keys`` (a binary search, any shape of queries)."""
    if sorted_keys.numel() == 0:
        return torch.zeros_like(queries, dtype=torch.bool)
    at = torch.searchsorted(sorted_keys, queries).clamp_max(sorted_keys.numel() - 1)
    return sorted_keys[at] == queries


def contrastive_loss(
    anchors: Tensor,
    positives: Tensor,
    negatives: Tensor,
    ids: tuple[Tensor, Tensor, int],
    positive_keys: Tensor,
    weights: Tensor,
    temperature: float,
) -> Tensor:
    """InfoNCE of each (anchor, positive) row against one shared set of negatives.

    ``ids`` are the anchors' and the negatives' global query rows and the row count: a
    negative that is the anchor or one of its positives (``positive_keys``, sorted
    ``anchor * rows + other``) is masked out, since with few procedures many random tasks
    share the anchor's.
    """
    anchor_ids, negative_ids, rows = ids
    pos = (anchors * positives).sum(-1, keepdim=True) / temperature
    neg = anchors @ negatives.T / temperature
    clash = _member(positive_keys, anchor_ids[:, None] * rows + negative_ids[None, :])
    clash |= anchor_ids[:, None] == negative_ids[None, :]
    logits = torch.cat([pos, neg.masked_fill(clash, float("-inf"))], dim=1)
    loss = torch.logsumexp(logits, dim=1) - logits[:, 0]
    return (loss * weights).sum() / weights.sum().clamp_min(1e-9)


def hide_tasks(
    x: dict[str, Tensor], edges: dict[EdgeType, Tensor], hidden: Tensor, text_dim: int
) -> tuple[dict[str, Tensor], dict[EdgeType, Tensor]]:
    """The graph as it would look if the ``hidden`` queries had not been finished yet."""
    xq = x[QUERY].clone()
    xq[hidden, text_dim:] = torch.tensor(NEW_QUERY_EXTRA, device=xq.device)
    out_x = {**x, QUERY: xq}
    out_e: dict[EdgeType, Tensor] = {}
    for et, ei in edges.items():
        if et == SIMILAR or ei.numel() == 0:
            out_e[et] = ei
            continue
        keep = torch.ones(ei.shape[1], dtype=torch.bool, device=ei.device)
        if et[0] == QUERY:
            keep &= ~hidden[ei[0]]
        if et[2] == QUERY:
            keep &= ~hidden[ei[1]]
        out_e[et] = ei[:, keep]
    return out_x, out_e


def build_encoder(graph: MemoryGraph, config: MemoryConfig) -> nn.Module:
    torch.manual_seed(config.gnn_seed)
    if config.gnn_encoder == "mlp":
        return TextProcedureMLP(
            graph.text_dim, config.gnn_hidden, config.gnn_dim, config.gnn_dropout
        )
    dims = input_dims(graph.text_dim, config.gnn_trace_dim)
    return MemoryEncoder(
        dims, config.gnn_hidden, config.gnn_dim, config.gnn_layers, config.gnn_dropout
    )


class Plateau:
    """Stops training once the smoothed loss has not improved by a relative ``delta`` for
    ``patience`` steps (``patience`` 0: never)."""

    def __init__(self, patience: int, delta: float) -> None:
        self.patience, self.delta = patience, delta
        self.smooth = math.inf
        self.best = math.inf
        self.since = 0

    def done(self, loss: float) -> bool:
        if self.patience <= 0:
            return False
        self.smooth = (
            loss if math.isinf(self.smooth) else _SMOOTHING * self.smooth + (1 - _SMOOTHING) * loss
        )
        if math.isinf(self.best) or self.smooth < self.best - self.delta * abs(self.best):
            self.best, self.since = self.smooth, 0
        else:
            self.since += 1
        return self.since >= self.patience


def train(
    graph: MemoryGraph,
    config: MemoryConfig,
    epochs: int | None = None,
    device: str | None = None,
    progress: Progress | None = None,
) -> tuple[nn.Module, TrainReport]:
    """Train a fresh encoder on ``graph``; returns it (on CPU, in eval mode) and a report.

    ``epochs`` caps the optimiser steps (default ``gnn_epochs``).
    """
    with cpu_threads(config.gnn_cpu_threads):
        return _train(graph, config, epochs, device, progress)


@dataclass
class _Batch:
    """One step's positives and shared negatives, as global query rows."""

    pairs: Tensor
    weights: Tensor
    negatives: Tensor


def _train(
    graph: MemoryGraph,
    config: MemoryConfig,
    epochs: int | None,
    device: str | None,
    progress: Progress | None,
) -> tuple[nn.Module, TrainReport]:
    started = time.perf_counter()
    dev = pick_device(device or config.gnn_device)
    steps = epochs or config.gnn_epochs
    model = build_encoder(graph, config).to(dev)
    gen = torch.Generator().manual_seed(config.gnn_seed)
    pairs, weights = _positives(graph, config)
    mlp = isinstance(model, TextProcedureMLP)
    big = not mlp and graph.num_nodes > config.gnn_minibatch_nodes
    report = TrainReport(config.gnn_encoder, str(dev), 0, int(pairs.shape[1]), minibatch=big)
    candidates = torch.nonzero(graph.successful).flatten()
    if pairs.shape[1] == 0 or candidates.numel() == 0:
        report.seconds = time.perf_counter() - started
        return model.cpu().eval(), report
    nq = graph.data[QUERY].num_nodes
    keys = (pairs[0] * nq + pairs[1]).sort().values.to(dev)
    x = {t: graph.data[t].x.to(dev) for t in graph.data.node_types}
    edges = {et: graph.data[et].edge_index.to(dev) for et in EDGE_TYPES}
    opt = torch.optim.Adam(
        model.parameters(), lr=config.gnn_lr, weight_decay=config.gnn_weight_decay
    )
    plateau = Plateau(config.gnn_patience, config.gnn_min_delta)
    work = 0
    model.train()
    for step in range(steps):
        hidden = torch.rand(nq, generator=gen) < config.gnn_mask_share
        batch = _sample(pairs, weights, candidates, config, gen)
        loss, processed = _step_loss(
            model, x, edges, hidden, batch, keys, graph.text_dim, big, config
        )
        work += processed
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        value = float(loss.detach())
        report.losses.append(value)
        report.epochs = step + 1
        if progress is not None:
            progress(step + 1, steps, value)
        if plateau.done(value) or work >= config.gnn_train_node_budget:
            report.stopped_early = step + 1 < steps
            break
    report.seconds = time.perf_counter() - started
    return model.cpu().eval(), report


def _sample(
    pairs: Tensor,
    weights: Tensor,
    candidates: Tensor,
    config: MemoryConfig,
    gen: torch.Generator,
) -> _Batch:
    """All positives when they fit in one step, else a uniform sample of them."""
    if pairs.shape[1] > config.gnn_pairs_per_step:
        pick = torch.randint(0, pairs.shape[1], (config.gnn_pairs_per_step,), generator=gen)
        pairs, weights = pairs[:, pick], weights[pick]
    drawn = torch.randint(0, candidates.numel(), (config.gnn_negatives,), generator=gen)
    return _Batch(pairs, weights, candidates[drawn])


def _step_loss(
    model: nn.Module,
    x: dict[str, Tensor],
    edges: dict[EdgeType, Tensor],
    hidden: Tensor,
    batch: _Batch,
    keys: Tensor,
    text_dim: int,
    big: bool,
    config: MemoryConfig,
) -> tuple[Tensor, int]:
    """The step's loss and how many node rows the encoder processed for it."""
    dev = keys.device
    nq = x[QUERY].shape[0]
    pairs, negs = batch.pairs.to(dev), batch.negatives.to(dev)
    if isinstance(model, TextProcedureMLP):
        # No graph: embed only the rows the loss reads.
        rows = torch.unique(torch.cat([pairs.flatten(), negs]))
        z = model(x[QUERY][rows, :text_dim])
        work = rows.numel()
    elif big:
        seeds = torch.unique(torch.cat([pairs.flatten(), negs]))
        sub_x, sub_e, rows = neighbourhood(x, edges, seeds, config.gnn_layers)
        hx, he = hide_tasks(sub_x, sub_e, hidden.to(dev)[rows], text_dim)
        z = model(hx, he)
        work = sum(v.shape[0] for v in sub_x.values())
    else:
        hx, he = hide_tasks(x, edges, hidden.to(dev), text_dim)
        z = model(hx, he)
        rows = torch.arange(nq, device=dev)
        work = sum(v.shape[0] for v in x.values())
    local_pairs = torch.searchsorted(rows, pairs)
    local_negs = torch.searchsorted(rows, negs)
    loss = contrastive_loss(
        z[local_pairs[0]],
        z[local_pairs[1]],
        z[local_negs],
        (pairs[0], negs, nq),
        keys,
        batch.weights.to(dev),
        config.gnn_temperature,
    )
    return loss, work
