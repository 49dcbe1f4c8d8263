"""Full refresh of a namespace: export, train, write ``graph_embedding`` back, cache states.

Embeddings go back through the store protocol in batches: each node is read with its
vectors and written again with only ``graph_embedding`` and ``metadata["gnn_model"]``
(the model version) changed, so text vectors and everything else stay as they were, and
its version advanced, so the write takes part in the optimistic check (``gmem.commit``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from gmem.commit import advance, expected_versions, retrying
from gmem.config import MemoryConfig
from gmem.gnn import VERSION_KEY
from gmem.gnn.export import (
    EDGE_TYPES,
    INSIGHT,
    QUERY,
    SIMILAR,
    EdgeType,
    MemoryGraph,
    export_namespace,
)
from gmem.gnn.features import NEW_QUERY_EXTRA
from gmem.gnn.model import MemoryEncoder, TextProcedureMLP
from gmem.gnn.runtime import SHAPE_FIELDS, FloatVector, StructuralModel
from gmem.gnn.threads import cpu_threads
from gmem.gnn.train import Progress, TrainReport, pick_device, train
from graph_store.base import GraphStore
from graph_store.model import Insight, QueryNode
from graph_store.ops import GetNodes, PutNodes


@dataclass
class EmbedReport:
    namespace: str
    version: str
    encoder: str
    device: str
    queries: int
    insights: int
    positives: int
    epochs: int
    first_loss: float | None
    last_loss: float | None
    export_seconds: float
    train_seconds: float
    write_seconds: float
    #: Process CPU seconds of the three phases (beside wall seconds on a shared machine).
    cpu_seconds: float = 0.0
    stopped_early: bool = False


def inductive_queries(
    model: MemoryEncoder,
    x: dict[str, torch.Tensor],
    edges: dict[EdgeType, torch.Tensor],
    states: list[dict[str, torch.Tensor]],
    text_dim: int,
) -> torch.Tensor:
    """Every stored task embedded the way a new one is: from its text and its text
    neighbours, the neighbours at their full states. One pass over a copy of each task."""
    n = x[QUERY].shape[0]
    copy = x[QUERY].clone()
    copy[:, text_dim:] = torch.tensor(NEW_QUERY_EXTRA, device=copy.device)
    both = {**x, QUERY: torch.cat([x[QUERY], copy])}
    sim = edges[SIMILAR]
    links = dict(edges)
    links[SIMILAR] = torch.cat([sim, torch.stack([sim[0], sim[1] + n])], dim=1)
    rows = torch.arange(n, device=copy.device)
    frozen = {
        QUERY: (rows, [s[QUERY] for s in states]),
        INSIGHT: (
            torch.arange(x[INSIGHT].shape[0], device=copy.device),
            [s[INSIGHT] for s in states],
        ),
    }
    out = model.states(both, links, frozen)
    return model.project(out[-1][QUERY][n:])


@torch.inference_mode()
def encode_graph(
    model: torch.nn.Module, graph: MemoryGraph, device: str = "cpu", inductive: bool = False
) -> tuple[np.ndarray, np.ndarray, list[torch.Tensor], list[torch.Tensor]]:
    """Embeddings of every query and insight, and their per-layer states (on CPU)."""
    dev = pick_device(device)
    model = model.to(dev)
    x = {t: graph.data[t].x.to(dev) for t in graph.data.node_types}
    if isinstance(model, TextProcedureMLP):
        zq = model(x[QUERY][:, : graph.text_dim])
        zi = model(x[INSIGHT][:, : graph.text_dim])
        model.cpu()
        return zq.cpu().numpy(), zi.cpu().numpy(), [], []
    assert isinstance(model, MemoryEncoder)
    edges = {et: graph.data[et].edge_index.to(dev) for et in EDGE_TYPES}
    zq_t, zi_t, states = model.embed_all(x, edges)
    if inductive:
        zq_t = inductive_queries(model, x, edges, states, graph.text_dim)
    model.cpu()
    return (
        zq_t.cpu().numpy(),
        zi_t.cpu().numpy(),
        [s[QUERY].cpu() for s in states],
        [s[INSIGHT].cpu() for s in states],
    )


def write_embeddings(
    store: GraphStore, vectors: dict[str, FloatVector], version: str, config: MemoryConfig
) -> int:
    """Set ``graph_embedding`` (and the model version) on the given nodes.

    Each chunk is a checked read-modify-write, like a finish: the nodes are expected as
    read and written with their version advanced, so a finish racing this write either
    commits first (the chunk is reread, its new score kept) or conflicts and recomputes
    (the vector kept).
    """
    ids = list(vectors)
    written = 0
    for start in range(0, len(ids), config.gnn_export_batch):
        chunk = ids[start : start + config.gnn_export_batch]
        written += retrying(
            partial(_write_chunk, store, chunk, vectors, version),
            config.finish_conflict_retries,
            config.finish_conflict_backoff_s,
        )
    return written


def _write_chunk(
    store: GraphStore, chunk: list[str], vectors: dict[str, FloatVector], version: str
) -> int:
    (nodes,) = store.batch([GetNodes(chunk, with_vectors=True)])
    read = [n for n in nodes if isinstance(n, QueryNode | Insight)]
    updated = [
        advance(
            n.model_copy(
                update={
                    "graph_embedding": np.asarray(vectors[n.id], dtype=np.float32),
                    "metadata": {**n.metadata, VERSION_KEY: version},
                }
            ),
            n.updated_at,
        )
        for n in read
    ]
    if updated:
        store.batch([expected_versions(read), PutNodes(updated)])
    return len(updated)


def embed_namespace(
    store: GraphStore,
    namespace: str,
    config: MemoryConfig,
    embedder: str,
    epochs: int | None = None,
    device: str | None = None,
    progress: Progress | None = None,
) -> tuple[StructuralModel, EmbedReport]:
    """Retrain the encoder on ``namespace`` and embed every query and insight in it."""
    t0, c0 = time.perf_counter(), time.process_time()
    graph = export_namespace(store, namespace, config)
    t1 = time.perf_counter()
    model, report = train(graph, config, epochs=epochs, device=device, progress=progress)
    t2 = time.perf_counter()
    with cpu_threads(config.gnn_cpu_threads):
        zq, zi, q_states, i_states = encode_graph(
            model, graph, device or config.gnn_device, config.gnn_stored_view == "inductive"
        )
    version = f"{config.gnn_encoder}-{uuid.uuid4().hex[:12]}"
    vectors: dict[str, FloatVector] = {q: zq[i] for i, q in enumerate(graph.query_ids)}
    vectors.update({n: zi[i] for i, n in enumerate(graph.insight_ids)})
    write_embeddings(store, vectors, version, config)
    t3 = time.perf_counter()
    runtime = StructuralModel(
        version=version,
        namespace=namespace,
        embedder=embedder,
        text_dim=graph.text_dim,
        settings={f: getattr(config, f) for f in SHAPE_FIELDS},
        encoder=model,
        weights=graph.weights,
        query_rows={q: i for i, q in enumerate(graph.query_ids)},
        insight_rows={n: i for i, n in enumerate(graph.insight_ids)},
        query_states=q_states,
        insight_states=i_states,
        threads=config.gnn_cpu_threads,
    )
    out = _report(graph, report, version, t1 - t0, t2 - t1, t3 - t2)
    out.cpu_seconds = round(time.process_time() - c0, 3)
    return runtime, out


def refresh_tasks(
    store: GraphStore, runtime: StructuralModel, query_ids: Sequence[str], config: MemoryConfig
) -> int:
    """Embed finished tasks with the current model (no retraining)."""
    with cpu_threads(config.gnn_cpu_threads):
        vectors = runtime.refresh(store, query_ids)
    return write_embeddings(store, vectors, runtime.version, config)


def _report(
    graph: MemoryGraph,
    report: TrainReport,
    version: str,
    export_s: float,
    train_s: float,
    write_s: float,
) -> EmbedReport:
    return EmbedReport(
        namespace=graph.namespace,
        version=version,
        encoder=report.encoder,
        device=report.device,
        queries=len(graph.query_ids),
        insights=len(graph.insight_ids),
        positives=report.positives,
        epochs=report.epochs,
        first_loss=report.losses[0] if report.losses else None,
        last_loss=report.losses[-1] if report.losses else None,
        export_seconds=round(export_s, 3),
        train_seconds=round(train_s, 3),
        write_seconds=round(write_s, 3),
        stopped_early=report.stopped_early,
    )
