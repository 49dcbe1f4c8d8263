"""Self-supervised training: tasks that share a procedure should embed close together.

Positives are the procedural pairs of the export (and, weighted lower, USED_MEMORY_OF
pairs between successes); negatives are sampled tasks that are not positives of the
anchor. Each epoch a share of tasks is hidden as if new (trace, outcome and every edge but
SIMILAR_TO removed, the outcome features set to "unknown"), so the loss also asks a task
known only by its text and its text neighbours to land beside the tasks that share its
procedure; that is the situation of every recall. Seeded, so two runs agree.

Graphs above ``gnn_minibatch_nodes`` train on the neighbourhood subgraphs of batches of
anchors (``gmem.gnn.sampling``) instead of the whole graph.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gmem.config import MemoryConfig
from gmem.gnn.export import EDGE_TYPES, QUERY, SIMILAR, EdgeType, MemoryGraph, input_dims
from gmem.gnn.features import NEW_QUERY_EXTRA
from gmem.gnn.model import MemoryEncoder, TextProcedureMLP
from gmem.gnn.sampling import neighbourhood
from gmem.gnn.threads import cpu_threads

Progress = Callable[[int, int, float], None]


def pick_device(device: str) -> torch.device:
    """``auto``: CUDA when torch sees a GPU, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass
class TrainReport:
    encoder: str
    device: str
    epochs: int
    positives: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


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


def contrastive_loss(
    z: Tensor,
    pairs: Tensor,
    weights: Tensor,
    candidates: Tensor,
    positive_keys: Tensor,
    negatives: int,
    temperature: float,
    generator: torch.Generator,
) -> Tensor:
    """InfoNCE of each positive against ``negatives`` sampled candidates.

    Sampled candidates that are positives of the anchor (or the anchor itself) are masked
    out: with few procedures many random tasks share the anchor's.
    """
    a, b = pairs
    n = z.shape[0]
    pick = torch.randint(0, candidates.numel(), (a.numel(), negatives), generator=generator)
    neg = candidates[pick.to(candidates.device)]
    pos_logit = (z[a] * z[b]).sum(-1, keepdim=True) / temperature
    neg_logit = torch.einsum("pd,pkd->pk", z[a], z[neg]) / temperature
    clash = torch.isin(a[:, None] * n + neg, positive_keys) | (neg == a[:, None])
    neg_logit = neg_logit.masked_fill(clash, float("-inf"))
    logits = torch.cat([pos_logit, neg_logit], dim=1)
    loss = F.cross_entropy(
        logits, torch.zeros(a.numel(), dtype=torch.long, device=z.device), reduction="none"
    )
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


def train(
    graph: MemoryGraph,
    config: MemoryConfig,
    epochs: int | None = None,
    device: str | None = None,
    progress: Progress | None = None,
) -> tuple[nn.Module, TrainReport]:
    """Train a fresh encoder on ``graph``; returns it (on CPU, in eval mode) and a report."""
    with cpu_threads(config.gnn_cpu_threads):
        return _train(graph, config, epochs, device, progress)


def _train(
    graph: MemoryGraph,
    config: MemoryConfig,
    epochs: int | None,
    device: str | None,
    progress: Progress | None,
) -> tuple[nn.Module, TrainReport]:
    started = time.perf_counter()
    dev = pick_device(device or config.gnn_device)
    epochs = epochs or config.gnn_epochs
    model = build_encoder(graph, config).to(dev)
    gen = torch.Generator().manual_seed(config.gnn_seed)
    pairs, weights = _positives(graph, config)
    report = TrainReport(config.gnn_encoder, str(dev), epochs, int(pairs.shape[1]))
    if pairs.shape[1] == 0:
        report.seconds = time.perf_counter() - started
        return model.cpu().eval(), report
    nq = graph.data[QUERY].num_nodes
    keys = (pairs[0] * nq + pairs[1]).sort().values.to(dev)
    pairs, weights = pairs.to(dev), weights.to(dev)
    candidates = torch.nonzero(graph.successful).flatten().to(dev)
    x = {t: graph.data[t].x.to(dev) for t in graph.data.node_types}
    edges = {et: graph.data[et].edge_index.to(dev) for et in EDGE_TYPES}
    text_dim = graph.text_dim
    opt = torch.optim.Adam(
        model.parameters(), lr=config.gnn_lr, weight_decay=config.gnn_weight_decay
    )
    big = graph.num_nodes > config.gnn_minibatch_nodes
    model.train()
    for epoch in range(epochs):
        hidden = (torch.rand(nq, generator=gen) < config.gnn_mask_share).to(dev)
        if big:
            total = 0.0
            order = torch.randperm(pairs.shape[1], generator=gen).to(dev)
            steps = 0
            for start in range(0, order.numel(), config.gnn_batch_size):
                batch = order[start : start + config.gnn_batch_size]
                loss = _subgraph_step(
                    model,
                    hide_tasks(x, edges, hidden, text_dim),
                    text_dim,
                    (pairs[:, batch], weights[batch]),
                    (candidates, keys),
                    config,
                    gen,
                )
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                total += float(loss.detach())
                steps += 1
            value = total / max(steps, 1)
        else:
            hx, he = hide_tasks(x, edges, hidden, text_dim)
            z = (
                model(hx[QUERY][:, :text_dim])
                if isinstance(model, TextProcedureMLP)
                else model(hx, he)
            )
            loss = contrastive_loss(
                z,
                pairs,
                weights,
                candidates,
                keys,
                config.gnn_negatives,
                config.gnn_temperature,
                gen,
            )
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            value = float(loss.detach())
        report.losses.append(value)
        if progress is not None:
            progress(epoch + 1, epochs, value)
    report.seconds = time.perf_counter() - started
    return model.cpu().eval(), report


def _subgraph_step(
    model: nn.Module,
    graph: tuple[dict[str, Tensor], dict[EdgeType, Tensor]],
    text_dim: int,
    positives: tuple[Tensor, Tensor],
    sampling: tuple[Tensor, Tensor],
    config: MemoryConfig,
    gen: torch.Generator,
) -> Tensor:
    """One optimiser step's loss on the neighbourhood of a batch of positive pairs."""
    hx, he = graph
    pairs, weights = positives
    candidates, keys = sampling
    nq = hx[QUERY].shape[0]
    pick = torch.randint(0, candidates.numel(), (config.gnn_batch_size,), generator=gen)
    seeds = torch.unique(torch.cat([pairs.flatten(), candidates[pick.to(candidates.device)]]))
    layers = 0 if isinstance(model, TextProcedureMLP) else config.gnn_layers
    sub_x, sub_e, rows = neighbourhood(hx, he, seeds, layers)
    z_sub = (
        model(sub_x[QUERY][:, :text_dim])
        if isinstance(model, TextProcedureMLP)
        else model(sub_x, sub_e)
    )
    # Map global query rows to subgraph rows; every row used below is in the subgraph.
    where = torch.full((nq,), -1, dtype=torch.long, device=z_sub.device)
    where[rows] = torch.arange(rows.numel(), device=z_sub.device)
    local_pairs = where[pairs]
    local_candidates = where[seeds]
    local_keys = torch.isin(keys // nq, seeds) & torch.isin(keys % nq, seeds)
    kept = keys[local_keys]
    n_sub = rows.numel()
    sub_keys = (where[kept // nq] * n_sub + where[kept % nq]).sort().values
    return contrastive_loss(
        z_sub,
        local_pairs,
        weights,
        local_candidates,
        sub_keys,
        config.gnn_negatives,
        config.gnn_temperature,
        gen,
    )
