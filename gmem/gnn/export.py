"""A namespace of either backend, read through the store protocol, as a PyG ``HeteroData``.

Node types: ``query`` (text embedding + outcome features), ``insight`` (text embedding +
score) and ``trace``, one per query: the summary of its interaction graph (the hashed,
IDF-weighted skeleton of its latest successful attempt, or of its latest attempt when none
succeeded, plus which roles spoke). Utterances are folded into traces rather than kept as
nodes: the encoder needs what a team did, not each message, and a trace node keeps the
graph at one node per task instead of one per message.

Edge types follow the store's relationships, each with its reverse so that messages flow
both ways; SIMILAR_TO is symmetric. The procedural pairs (successful tasks whose skeletons
agree) and USED_MEMORY_OF pairs are returned beside the graph as training targets: they
are never message-passing edges, so a new task, which has none, is encoded the same way
as the tasks it was trained against.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch

from gmem.config import MemoryConfig
from gmem.gnn.features import (
    INSIGHT_EXTRA,
    QUERY_EXTRA,
    TRACE_EXTRA,
    FloatMatrix,
    ShingleWeights,
    procedure_pairs,
    query_extra,
    trace_extra,
)
from gmem.gnn.pyg import HeteroData
from gmem.procedure import Skeleton, skeleton
from graph_store.base import GraphStore
from graph_store.model import EdgeKind, Insight, NodeKind, Outcome, QueryNode, Utterance
from graph_store.ops import GetEdges, GetNodes, ListNodes

QUERY, INSIGHT, TRACE = "query", "insight", "trace"
NODE_TYPES = (QUERY, INSIGHT, TRACE)
EdgeType = tuple[str, str, str]
#: Store relationship -> (message-passing edge type, its reverse or None when symmetric).
RELATIONS: dict[EdgeKind, tuple[EdgeType, EdgeType | None]] = {
    EdgeKind.SIMILAR_TO: ((QUERY, "similar_to", QUERY), None),
    EdgeKind.USED_MEMORY_OF: ((QUERY, "used_memory_of", QUERY), (QUERY, "memory_used_by", QUERY)),
    EdgeKind.HAS_TRACE: ((QUERY, "has_trace", TRACE), (TRACE, "trace_of", QUERY)),
    EdgeKind.SUPPORTS: ((QUERY, "supports", INSIGHT), (INSIGHT, "supported_by", QUERY)),
    EdgeKind.CONTRADICTS: ((QUERY, "contradicts", INSIGHT), (INSIGHT, "contradicted_by", QUERY)),
    EdgeKind.RELATED_TO: ((INSIGHT, "related_to", INSIGHT), None),
}
EDGE_TYPES: tuple[EdgeType, ...] = tuple(
    et for pair in RELATIONS.values() for et in pair if et is not None
)
SIMILAR: EdgeType = RELATIONS[EdgeKind.SIMILAR_TO][0]
_QUERY_OUT = [
    EdgeKind.SIMILAR_TO,
    EdgeKind.USED_MEMORY_OF,
    EdgeKind.HAS_TRACE,
    EdgeKind.SUPPORTS,
    EdgeKind.CONTRADICTS,
]

T = TypeVar("T")


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def input_dims(text_dim: int, trace_dim: int) -> dict[str, int]:
    return {
        QUERY: text_dim + QUERY_EXTRA,
        INSIGHT: text_dim + INSIGHT_EXTRA,
        TRACE: trace_dim + TRACE_EXTRA,
    }


@dataclass
class MemoryGraph:
    """One namespace as tensors, with the ids that map rows back to store nodes."""

    data: HeteroData
    namespace: str
    text_dim: int
    query_ids: list[str]
    insight_ids: list[str]
    #: Query rows with a successful attempt (their trace is a known-good procedure).
    successful: torch.Tensor
    #: Procedure vector of each query's summarised trace (zeros when it has none).
    procedures: FloatMatrix
    #: Query-row pairs that share a procedure, ``(2, P)``, first < second.
    procedure_pairs: torch.Tensor
    #: USED_MEMORY_OF pairs between successful queries, ``(2, U)``.
    memory_pairs: torch.Tensor
    weights: ShingleWeights
    #: Nodes and store edges read, by store kind: what the round trip is checked against.
    nodes_read: dict[str, int] = field(default_factory=dict)
    edges_read: dict[str, int] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        return int(sum(self.data[t].num_nodes for t in NODE_TYPES))


def _text(vec: FloatMatrix | None, dim: int) -> list[float]:
    if vec is None or vec.shape != (dim,):
        return [0.0] * dim
    return vec.tolist()  # type: ignore[no-any-return]


def _texts(vectors: Sequence[FloatMatrix | None], dim: int) -> FloatMatrix:
    """Text vectors as one matrix; a missing or odd-sized vector is a row of zeros."""
    out = np.zeros((len(vectors), dim), dtype=np.float32)
    for i, vec in enumerate(vectors):
        if vec is not None and vec.shape == (dim,):
            out[i] = vec
    return out


def query_row(q: QueryNode, text_dim: int) -> list[float]:
    return [*_text(q.embedding, text_dim), *query_extra(q.outcome, q.successes, q.attempts)]


def insight_row(n: Insight, text_dim: int) -> list[float]:
    return [*_text(n.embedding, text_dim), float(np.tanh(n.score / 5.0)), float(n.retired)]


def trace_row(
    q: QueryNode, utts: list[Utterance], weights: ShingleWeights, dim: int
) -> list[float]:
    """A query's trace summary: its procedure vector, who spoke, how long, how it ended."""
    steps, good = _summarised_attempt(q, utts) if utts else ([], False)
    vector = weights.vector(trace_skeleton(q.text, steps).shingles, dim)
    return [*vector.tolist(), *trace_extra([u.role for u in steps], len(steps), good)]


def edge_index(
    typed: Iterable[tuple[EdgeKind, str, str]],
    q_index: dict[str, int],
    i_index: dict[str, int],
) -> dict[EdgeType, torch.Tensor]:
    """Store edges as message-passing edge indices over the given rows (others dropped).

    HAS_TRACE fans out to every utterance of a query; the summary graph has one edge per
    query, to the trace row of the same number.
    """
    pairs: dict[EdgeType, set[tuple[int, int]]] = {et: set() for et in EDGE_TYPES}
    for kind, src, dst in typed:
        forward, backward = RELATIONS[kind]
        s = (i_index if forward[0] == INSIGHT else q_index).get(src)
        if s is None:
            continue
        if kind == EdgeKind.HAS_TRACE:
            d: int | None = s
        else:
            d = (i_index if forward[2] == INSIGHT else q_index).get(dst)
        if d is None:
            continue
        pairs[forward].add((s, d))
        pairs[backward or forward].add((d, s))
    return {
        et: torch.tensor(sorted(p), dtype=torch.long).reshape(-1, 2).T.contiguous()
        for et, p in pairs.items()
    }


def _summarised_attempt(query: QueryNode, utts: list[Utterance]) -> tuple[list[Utterance], bool]:
    """The latest successful attempt's utterances, else the latest attempt's."""
    by_attempt: dict[int, list[Utterance]] = defaultdict(list)
    for u in utts:
        by_attempt[u.attempt].append(u)
    outcomes = query.attempt_outcomes
    good = [a for a in by_attempt if a <= len(outcomes) and outcomes[a - 1] == Outcome.SUCCESS]
    chosen = max(good) if good else max(by_attempt)
    steps = sorted(by_attempt[chosen], key=lambda u: u.step)
    return steps, bool(good)


def trace_skeleton(task: str, steps: Iterable[Utterance]) -> Skeleton:
    """The skeleton of one attempt; steps the world rejected (negative reward) are noise."""
    return skeleton(task, [u.action for u in steps if u.reward is None or u.reward >= 0])


def _read_traces(
    store: GraphStore, queries: Sequence[QueryNode], batch: int
) -> tuple[dict[str, list[Utterance]], list[tuple[EdgeKind, str, str]], Counter[str]]:
    """Utterances per query, the query-side edges read, and how many of each kind."""
    kinds: Counter[str] = Counter()
    utt_ids: list[str] = []
    typed: list[tuple[EdgeKind, str, str]] = []
    for chunk in _chunks([q.id for q in queries], batch):
        (found,) = store.batch([GetEdges(list(chunk), _QUERY_OUT, "out")])
        for e in found:
            kinds[e.kind.value] += 1
            typed.append((e.kind, e.src, e.dst))
            if e.kind == EdgeKind.HAS_TRACE:
                utt_ids.append(e.dst)
    utts: dict[str, list[Utterance]] = defaultdict(list)
    for chunk in _chunks(utt_ids, batch):
        (nodes,) = store.batch([GetNodes(list(chunk))])
        for n in nodes:
            if isinstance(n, Utterance):
                utts[n.query_id].append(n)
    return utts, typed, kinds


def export_namespace(
    store: GraphStore,
    namespace: str,
    config: MemoryConfig,
    weights: ShingleWeights | None = None,
) -> MemoryGraph:
    """Read ``namespace`` in batches of ``config.gnn_export_batch`` ids into a graph.

    ``weights`` fixes the shingle weights (an incremental refresh reuses the trained
    model's); by default they are fitted on this namespace's traces.
    """
    batch = config.gnn_export_batch
    (q_nodes, i_nodes) = store.batch(
        [
            ListNodes(NodeKind.QUERY, namespace, with_vectors=True),
            ListNodes(NodeKind.INSIGHT, namespace, with_vectors=True),
        ]
    )
    queries = [n for n in q_nodes if isinstance(n, QueryNode)]
    insights = [n for n in i_nodes if isinstance(n, Insight)]
    text_dim = next(
        (n.embedding.shape[0] for n in [*queries, *insights] if n.embedding is not None), 0
    )
    q_index = {q.id: i for i, q in enumerate(queries)}
    i_index = {n.id: i for i, n in enumerate(insights)}

    utts, typed, edge_counts = _read_traces(store, queries, batch)
    related: list[tuple[str, str]] = []
    for chunk in _chunks([n.id for n in insights], batch):
        (found,) = store.batch([GetEdges(list(chunk), [EdgeKind.RELATED_TO], "out")])
        for e in found:
            edge_counts[e.kind.value] += 1
            related.append((e.src, e.dst))

    summaries = [
        _summarised_attempt(q, utts[q.id]) if utts.get(q.id) else ([], False) for q in queries
    ]
    skeletons = [
        trace_skeleton(q.text, steps) for q, (steps, _) in zip(queries, summaries, strict=True)
    ]
    successful = torch.tensor([good for _, good in summaries], dtype=torch.bool)
    if weights is None:
        weights = ShingleWeights.fit(
            sk.shingles for sk, (_, good) in zip(skeletons, summaries, strict=True) if good
        )
    dim = config.gnn_trace_dim
    procedures = np.zeros((len(queries), dim), dtype=np.float32)
    for i, sk in enumerate(skeletons):
        procedures[i] = weights.vector(sk.shingles, dim)
    trace_extras = np.array(
        [trace_extra([u.role for u in steps], len(steps), good) for steps, good in summaries],
        dtype=np.float32,
    ).reshape(len(queries), TRACE_EXTRA)

    data = HeteroData()
    data[QUERY].x = torch.from_numpy(
        np.hstack(
            [
                _texts([q.embedding for q in queries], text_dim),
                np.array(
                    [query_extra(q.outcome, q.successes, q.attempts) for q in queries],
                    dtype=np.float32,
                ).reshape(len(queries), QUERY_EXTRA),
            ]
        )
    )
    data[INSIGHT].x = torch.from_numpy(
        np.hstack(
            [
                _texts([n.embedding for n in insights], text_dim),
                np.array(
                    [[float(np.tanh(n.score / 5.0)), float(n.retired)] for n in insights],
                    dtype=np.float32,
                ).reshape(len(insights), INSIGHT_EXTRA),
            ]
        )
    )
    # One trace row per query, in query order: row i of trace is query i's summary.
    data[TRACE].x = torch.from_numpy(np.hstack([procedures, trace_extras]))
    typed += [(EdgeKind.RELATED_TO, src, dst) for src, dst in related]
    for et, ei in edge_index(typed, q_index, i_index).items():
        data[et].edge_index = ei
    used = data[RELATIONS[EdgeKind.USED_MEMORY_OF][0]].edge_index
    both = (
        successful[used[0]] & successful[used[1]]
        if used.numel()
        else torch.zeros(0, dtype=torch.bool)
    )
    memory = used[:, both]

    ok = np.flatnonzero(successful.numpy())
    local = procedure_pairs(procedures[ok], config.gnn_procedure_k, config.gnn_procedure_threshold)
    proc = (
        torch.as_tensor(ok[local], dtype=torch.long)
        if local.size
        else torch.zeros((2, 0), dtype=torch.long)
    )
    return MemoryGraph(
        data=data,
        namespace=namespace,
        text_dim=text_dim,
        query_ids=[q.id for q in queries],
        insight_ids=[n.id for n in insights],
        successful=successful,
        procedures=procedures,
        procedure_pairs=proc.reshape(2, -1),
        memory_pairs=memory.reshape(2, -1),
        weights=weights,
        nodes_read={
            NodeKind.QUERY.value: len(queries),
            NodeKind.INSIGHT.value: len(insights),
            NodeKind.UTTERANCE.value: sum(len(v) for v in utts.values()),
        },
        edges_read=dict(edge_counts),
    )
