"""A trained encoder at recall time: embed a task that has no edges yet, refresh new tasks.

The runtime keeps every stored task's state before and after each layer (cached when the
namespace was embedded). A new task is encoded on the subgraph of itself and its text
neighbours, the neighbours pinned at their cached states, so one recall runs the encoder
on a handful of rows instead of the whole graph. A finished task is refreshed the same way
with its trace and its edges, and joins the cache so later tasks can lean on it.

Artifacts are one ``torch.save`` file per namespace; a file whose format, embedder or
shape settings do not match the running configuration is stale and is not used.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from gmem.config import MemoryConfig
from gmem.gnn.export import (
    EDGE_TYPES,
    INSIGHT,
    QUERY,
    RELATIONS,
    SIMILAR,
    TRACE,
    EdgeType,
    edge_index,
    input_dims,
    insight_row,
    query_row,
    trace_row,
)
from gmem.gnn.features import NEW_QUERY_EXTRA, ShingleWeights
from gmem.gnn.model import MemoryEncoder, TextProcedureMLP
from gmem.gnn.threads import cpu_threads
from graph_store.base import GraphStore
from graph_store.model import Edge, EdgeKind, Insight, QueryNode, Utterance
from graph_store.ops import GetEdges, GetNodes

log = logging.getLogger("gmem.gnn")

FORMAT = 1
#: Settings that change the shape or meaning of an artifact's weights.
SHAPE_FIELDS = ("gnn_encoder", "gnn_dim", "gnn_hidden", "gnn_layers", "gnn_trace_dim")
FloatVector = npt.NDArray[np.float32]


class StaleModelError(Exception):
    """An artifact that cannot serve the running configuration (said why, never raised out)."""


NEW_QUERY_EXTRA_ARRAY = np.asarray(NEW_QUERY_EXTRA, dtype=np.float32)


@dataclass
class _FastPath:
    """The encoder's weights as numpy, folded for a node whose only edges are SIMILAR_TO."""

    w_in: npt.NDArray[np.float32]
    b_in: npt.NDArray[np.float32]
    #: Per layer: summed root weights into ``query``, summed biases, SIMILAR_TO weights.
    layers: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]]
    w_head: npt.NDArray[np.float32]
    b_head: npt.NDArray[np.float32]
    states: list[npt.NDArray[np.float32]]
    rows: int

    @classmethod
    def of(cls, encoder: MemoryEncoder, states: Sequence[Tensor]) -> _FastPath:
        def arr(t: Tensor) -> npt.NDArray[np.float32]:
            return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)

        layers = []
        conv: Any
        for conv in encoder.convs:
            root = bias = neighbour = None
            for et in EDGE_TYPES:
                if et[2] != QUERY:
                    continue
                sage: Any = conv.convs[et]
                r, b = arr(sage.lin_r.weight), arr(sage.lin_l.bias)
                root = r if root is None else root + r
                bias = b if bias is None else bias + b
                if et == SIMILAR:
                    neighbour = arr(sage.lin_l.weight)
            assert root is not None and bias is not None and neighbour is not None
            layers.append((root, bias, neighbour))
        lin_in: Any = encoder.inputs[QUERY]
        head: Any = encoder.head
        return cls(
            w_in=arr(lin_in.weight),
            b_in=arr(lin_in.bias),
            layers=layers,
            w_head=arr(head.weight),
            b_head=arr(head.bias),
            states=[arr(s) for s in states],
            rows=int(states[0].shape[0]) if states else 0,
        )


@dataclass
class StructuralModel:
    """One namespace's trained encoder with the cached state of every embedded node."""

    version: str
    namespace: str
    embedder: str
    text_dim: int
    settings: dict[str, Any]
    encoder: nn.Module
    weights: ShingleWeights
    query_rows: dict[str, int] = field(default_factory=dict)
    insight_rows: dict[str, int] = field(default_factory=dict)
    #: Per layer (input state first): states of query and insight nodes.
    query_states: list[Tensor] = field(default_factory=list)
    insight_states: list[Tensor] = field(default_factory=list)
    #: torch CPU threads for one recall's encoding (``gnn_cpu_threads``).
    threads: int = 1
    _fast_path: _FastPath | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        return str(self.settings["gnn_encoder"])

    # ---- persistence ------------------------------------------------------------------
    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(
            {
                "format": FORMAT,
                "version": self.version,
                "namespace": self.namespace,
                "embedder": self.embedder,
                "text_dim": self.text_dim,
                "settings": self.settings,
                "state_dict": self.encoder.state_dict(),
                "weights": self.weights.to_json(),
                "query_ids": list(self.query_rows),
                "insight_ids": list(self.insight_rows),
                "query_states": self.query_states,
                "insight_states": self.insight_states,
            },
            tmp,
        )
        tmp.replace(path)

    @classmethod
    def load(
        cls, path: Path, config: MemoryConfig, embedder: str, text_dim: int
    ) -> StructuralModel:
        """Read an artifact; :class:`StaleModelError` says why it cannot be used."""
        if not path.exists():
            raise StaleModelError(f"no trained model at {path}; run `gmem embed`")
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError) as exc:
            raise StaleModelError(
                f"cannot read {path} ({type(exc).__name__}); run `gmem embed`"
            ) from None
        if raw.get("format") != FORMAT:
            raise StaleModelError(f"{path} has another format; run `gmem embed`")
        if raw["embedder"] != embedder or raw["text_dim"] != text_dim:
            raise StaleModelError(
                f"{path} was trained on {raw['embedder']} vectors, not {embedder}; run `gmem embed`"
            )
        wanted = {f: getattr(config, f) for f in SHAPE_FIELDS}
        if raw["settings"] != wanted:
            changed = sorted(f for f in SHAPE_FIELDS if raw["settings"].get(f) != wanted[f])
            raise StaleModelError(
                f"{path} was trained with other {', '.join(changed)}; run `gmem embed`"
            )
        encoder = build(raw["settings"], raw["text_dim"])
        encoder.load_state_dict(raw["state_dict"])
        encoder.eval()
        return cls(
            version=raw["version"],
            namespace=raw["namespace"],
            embedder=raw["embedder"],
            text_dim=raw["text_dim"],
            settings=raw["settings"],
            encoder=encoder,
            weights=ShingleWeights.from_json(raw["weights"]),
            query_rows={q: i for i, q in enumerate(raw["query_ids"])},
            insight_rows={q: i for i, q in enumerate(raw["insight_ids"])},
            query_states=list(raw["query_states"]),
            insight_states=list(raw["insight_states"]),
            threads=config.gnn_cpu_threads,
        )

    # ---- recall: a task with no edges -------------------------------------------------
    def encode_task(self, vector: FloatVector, neighbours: Sequence[str]) -> FloatVector:
        """The structural embedding of a new task from its text and its text neighbours.

        A new task has SIMILAR_TO edges only, so each layer reduces to two products: the
        root weights of every relation into ``query`` summed (the relations without edges
        still add their root transform and bias) and the SIMILAR_TO neighbour weights
        applied to the neighbours' mean cached state. Exactly the encoder's arithmetic,
        in numpy, without building a graph: a recall pays microseconds, not a forward pass.
        """
        x = np.concatenate([np.asarray(vector, dtype=np.float32), NEW_QUERY_EXTRA_ARRAY])
        if isinstance(self.encoder, TextProcedureMLP):
            with cpu_threads(self.threads), torch.inference_mode():
                text = torch.as_tensor(x[: self.text_dim])
                return np.asarray(self.encoder(text[None])[0].numpy(), dtype=np.float32)
        fast = self._fast()
        rows = [self.query_rows[n] for n in neighbours if n in self.query_rows]
        h = np.maximum(fast.w_in @ x + fast.b_in, 0.0)
        for layer, (root, bias, neighbour) in enumerate(fast.layers):
            msg = root @ h + bias
            if rows:
                msg += neighbour @ fast.states[layer][rows].mean(axis=0)
            h = h + np.maximum(msg, 0.0)
        z = fast.w_head @ h + fast.b_head
        norm = float(np.linalg.norm(z))
        return np.asarray(z / norm if norm > 0 else z, dtype=np.float32)

    def _fast(self) -> _FastPath:
        if self._fast_path is None or self._fast_path.rows != len(self.query_rows):
            assert isinstance(self.encoder, MemoryEncoder)
            self._fast_path = _FastPath.of(self.encoder, self.query_states)
        return self._fast_path

    def encode_task_subgraph(self, vector: FloatVector, neighbours: Sequence[str]) -> FloatVector:
        """:meth:`encode_task` the long way, through the encoder on a small graph (tests)."""
        with cpu_threads(self.threads), torch.inference_mode():
            return self._encode_task(vector, neighbours)

    def _encode_task(self, vector: FloatVector, neighbours: Sequence[str]) -> FloatVector:
        text = torch.as_tensor(np.asarray(vector, dtype=np.float32))
        assert isinstance(self.encoder, MemoryEncoder)
        rows = [self.query_rows[n] for n in neighbours if n in self.query_rows]
        xq = torch.zeros((1 + len(rows), self.text_dim + len(NEW_QUERY_EXTRA)))
        xq[0, : self.text_dim] = text
        xq[0, self.text_dim :] = torch.tensor(NEW_QUERY_EXTRA)
        k = len(rows)
        others = torch.arange(1, k + 1)
        edges = _empty_edges()
        edges[SIMILAR] = torch.stack(
            [
                torch.cat([others, torch.zeros(k, dtype=torch.long)]),
                torch.cat([torch.zeros(k, dtype=torch.long), others]),
            ]
        )
        x = self._empty_x(xq)
        frozen = {QUERY: (others, [s[rows] for s in self.query_states])} if rows else None
        states = self.encoder.states(x, edges, frozen)
        return np.asarray(self.encoder.project(states[-1][QUERY][0]).numpy(), dtype=np.float32)

    def _empty_x(self, xq: Tensor) -> dict[str, Tensor]:
        dims = input_dims(self.text_dim, int(self.settings["gnn_trace_dim"]))
        return {
            QUERY: xq,
            INSIGHT: torch.zeros((0, dims[INSIGHT])),
            TRACE: torch.zeros((0, dims[TRACE])),
        }

    # ---- incremental refresh: finished tasks ------------------------------------------
    @torch.inference_mode()
    def refresh(self, store: GraphStore, query_ids: Sequence[str]) -> dict[str, FloatVector]:
        """Embed finished tasks with the current weights; they join the cache.

        Their neighbours stay at their cached states: a full retrain moves everyone.
        """
        (found,) = store.batch([GetNodes(list(query_ids), with_vectors=True)])
        queries = [n for n in found if isinstance(n, QueryNode)]
        if not queries:
            return {}
        if isinstance(self.encoder, TextProcedureMLP):
            texts = torch.as_tensor(np.stack([_vec(q.embedding, self.text_dim) for q in queries]))
            z = self.encoder(texts).numpy()
            return {q.id: z[i] for i, q in enumerate(queries)}
        assert isinstance(self.encoder, MemoryEncoder)
        new = {q.id: i for i, q in enumerate(queries)}
        kinds = [k for k in RELATIONS if k != EdgeKind.RELATED_TO]
        out_edges, in_edges = store.batch(
            [
                GetEdges(list(new), kinds, "out"),
                GetEdges(list(new), [EdgeKind.SIMILAR_TO, EdgeKind.USED_MEMORY_OF], "in"),
            ]
        )
        typed = [(e.kind, e.src, e.dst) for e in [*out_edges, *in_edges]]
        # Rows: the new queries first, then the cached queries and insights they touch.
        q_rows = dict(new)
        i_rows: dict[str, int] = {}
        for kind, src, dst in typed:
            if kind in (EdgeKind.SUPPORTS, EdgeKind.CONTRADICTS):
                i_rows.setdefault(dst, len(i_rows))
            elif kind != EdgeKind.HAS_TRACE:
                for end in (src, dst):
                    if end not in q_rows and end in self.query_rows:
                        q_rows[end] = len(q_rows)
        x = self._refresh_features(store, queries, out_edges, q_rows, i_rows)
        frozen: dict[str, tuple[Tensor, list[Tensor]]] = {}
        cached_q = [(r, self.query_rows[q]) for q, r in q_rows.items() if q not in new]
        if cached_q:
            frozen[QUERY] = (
                torch.tensor([r for r, _ in cached_q]),
                [st[[c for _, c in cached_q]] for st in self.query_states],
            )
        cached_i = [(r, self.insight_rows[i]) for i, r in i_rows.items() if i in self.insight_rows]
        if cached_i:
            frozen[INSIGHT] = (
                torch.tensor([r for r, _ in cached_i]),
                [st[[c for _, c in cached_i]] for st in self.insight_states],
            )
        states = self.encoder.states(x, edge_index(typed, q_rows, i_rows), frozen)
        z = self.encoder.project(states[-1][QUERY][: len(queries)]).numpy()
        self._remember([q.id for q in queries], [st[QUERY][: len(queries)] for st in states])
        return {q.id: z[new[q.id]] for q in queries}

    def _refresh_features(
        self,
        store: GraphStore,
        queries: list[QueryNode],
        out_edges: Sequence[Edge],
        q_rows: dict[str, int],
        i_rows: dict[str, int],
    ) -> dict[str, Tensor]:
        dims = input_dims(self.text_dim, int(self.settings["gnn_trace_dim"]))
        utt_ids = [e.dst for e in out_edges if e.kind == EdgeKind.HAS_TRACE]
        (utt_nodes,) = store.batch([GetNodes(utt_ids)]) if utt_ids else ([],)
        utts: dict[str, list[Utterance]] = {}
        for u in utt_nodes:
            if isinstance(u, Utterance):
                utts.setdefault(u.query_id, []).append(u)
        xq = torch.zeros((len(q_rows), dims[QUERY]))
        xt = torch.zeros((len(queries), dims[TRACE]))
        trace_dim = int(self.settings["gnn_trace_dim"])
        for i, q in enumerate(queries):
            xq[i] = torch.tensor(query_row(q, self.text_dim))
            xt[i] = torch.tensor(trace_row(q, utts.get(q.id, []), self.weights, trace_dim))
        xi = torch.zeros((len(i_rows), dims[INSIGHT]))
        unseen = [i for i in i_rows if i not in self.insight_rows]
        if unseen:
            (ins_nodes,) = store.batch([GetNodes(unseen, with_vectors=True)])
            for n in ins_nodes:
                if isinstance(n, Insight):
                    xi[i_rows[n.id]] = torch.tensor(insight_row(n, self.text_dim))
        return {QUERY: xq, INSIGHT: xi, TRACE: xt}

    def _remember(self, ids: list[str], states: list[Tensor]) -> None:
        """Cache refreshed tasks' states so later tasks can be encoded against them."""
        appended: list[int] = []
        for i, qid in enumerate(ids):
            row = self.query_rows.get(qid)
            if row is None:
                self.query_rows[qid] = self.query_states[0].shape[0] + len(appended)
                appended.append(i)
            else:
                for cached, st in zip(self.query_states, states, strict=True):
                    cached[row] = st[i]
        if appended:
            take = torch.tensor(appended)
            self.query_states = [
                torch.cat([c, st[take]]) for c, st in zip(self.query_states, states, strict=True)
            ]


def _empty_edges() -> dict[EdgeType, Tensor]:
    return {et: torch.zeros((2, 0), dtype=torch.long) for et in EDGE_TYPES}


def _vec(v: FloatVector | None, dim: int) -> FloatVector:
    if v is None or v.shape != (dim,):
        return np.zeros(dim, dtype=np.float32)
    return v


def build(settings: dict[str, Any], text_dim: int) -> nn.Module:
    if settings["gnn_encoder"] == "mlp":
        return TextProcedureMLP(
            text_dim, int(settings["gnn_hidden"]), int(settings["gnn_dim"]), 0.0
        )
    dims = input_dims(text_dim, int(settings["gnn_trace_dim"]))
    return MemoryEncoder(
        dims,
        int(settings["gnn_hidden"]),
        int(settings["gnn_dim"]),
        int(settings["gnn_layers"]),
        0.0,
    )
