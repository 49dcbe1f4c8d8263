"""Bulk ingest: many finished trajectories written in a few transactions, no reasoner.

``Memory.ingest`` runs each trajectory through the full evolution: the reasoner picks key
steps and derives insights, evidence and credit move insight scores, and a maintenance
pass merges, decays and retires every ``merge_every`` tasks. That is several store round
trips and reasoner calls per trajectory, right for a team's live history and far too
slow for replaying a history of tens of thousands of runs.

Bulk ingest writes the part of a finish that needs no reasoner, for many trajectories
per transaction (``MemoryConfig.bulk_ingest_batch``):

- the query node, created or updated with one more attempt (attempts, successes,
  failures, outcome per attempt, latest outcome and score, metadata merged), its text
  embedded once per batch for all new queries;
- the trace: every step as an utterance (token count, key steps marked by the offline
  rule the heuristic reasoner applies, so no model is called), with HAS_TRACE, NEXT and
  REPLIES_TO edges;
- USED_MEMORY_OF edges to the declared past queries that exist (stored, or earlier in
  the same input);
- SIMILAR_TO edges to the nearest earlier queries (stored ones and those earlier in the
  same batch), as evolution adds them.

It does not derive, edit, support, contradict or credit insights, add RELATED_TO edges,
run the merge / decay / retire pass, or refresh structural embeddings; a later
``gmem embed`` embeds bulk-written tasks like any others.

The guarantees are ``Memory.ingest``'s: a trajectory is keyed by its ``id`` or content
and its utterances get ids from that key, so a rerun skips what is stored; a batch is
one transaction, so a trajectory is stored whole or not at all; concurrent writers are
detected by version checks on the query nodes the batch read (and the trajectory's
first utterance, which must still be absent), and the batch is planned again from fresh
reads. When the store refuses a batch, its trajectories are written one by one, so the
error belongs to one trajectory and those before it are kept, as sequential ingest
would leave them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from gmem import attempts
from gmem.commit import advance, retrying
from gmem.config import MemoryConfig
from gmem.embedding import TextEmbedder
from gmem.errors import UserInputError
from gmem.evolution import EvolutionReport
from gmem.inputs import check_metadata, check_name, check_optional_text, check_reward, check_text
from gmem.llm.protocol import KeyStepsRequest, KeyStepsResult
from gmem.tokens import TokenCounter
from gmem.trajectory import Trajectory, hashed_step_id, step_id, trajectory_key
from graph_store.base import GraphStore
from graph_store.model import (
    Edge,
    EdgeKind,
    NodeKind,
    Outcome,
    QueryNode,
    Utterance,
    query_id_for,
    trusted,
    utcnow,
)
from graph_store.ops import ExpectNodes, GetNodes, Hit, PutEdges, PutNodes, VectorSearch

_ID_LEN = 32
_HEX = frozenset("0123456789abcdef")


def _is_id(ref: str) -> bool:
    return len(ref) == _ID_LEN and set(ref) <= _HEX


@dataclass
class Planned:
    """One checked trajectory with its namespace, key, utterance ids and query id."""

    traj: Trajectory
    namespace: str
    key: str
    ids: list[str]
    query_id: str
    used: list[str]
    outcome: Outcome


#: The reasoner-free key-step rule: the heuristic reasoner's ``extract_key_steps``.
KeyStepRule = Callable[[KeyStepsRequest], KeyStepsResult]


class BulkWriter:
    """Plans and writes batches of trajectories (see the module docstring)."""

    def __init__(
        self,
        store: GraphStore,
        embedder: TextEmbedder,
        tokens: TokenCounter,
        config: MemoryConfig,
        key_steps: KeyStepRule,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.tokens = tokens
        self.config = config
        self.key_steps = key_steps

    # ---- checks, before anything is written -------------------------------------------
    def plan(self, traj: Trajectory, namespace: str, used_queries: Sequence[str] = ()) -> Planned:
        """Check one trajectory as ``Task.record`` would check its steps, and key it."""
        cfg = self.config
        check_text(traj.task, "task text", cfg.max_text_chars)
        if not traj.task.strip():
            raise UserInputError("task text must not be empty")
        check_metadata(traj.metadata, "task metadata", cfg.max_metadata_depth, cfg.max_text_chars)
        if traj.score is not None and not 0.0 <= traj.score <= 1.0:
            raise UserInputError(f"score must be within [0, 1], got {traj.score}")
        for step in traj.steps:
            check_name(step.agent, "agent")
            check_name(step.role, "role")
            check_text(step.content, "content", cfg.max_text_chars)
            check_optional_text(step.action, "action", cfg.max_text_chars)
            check_optional_text(step.observation, "observation", cfg.max_text_chars)
            check_reward(step.reward)
            if step.metadata:
                check_metadata(
                    step.metadata, "metadata", cfg.max_metadata_depth, cfg.max_text_chars
                )
        used: list[str] = []
        for ref in [*traj.used_queries, *used_queries]:
            if not isinstance(ref, str) or not ref.strip():
                raise UserInputError("a used query must be a query id or a task text")
            qid = ref if _is_id(ref) else query_id_for(namespace, ref)
            if qid not in used:
                used.append(qid)
        key = trajectory_key(traj, namespace)
        outcome = (
            Outcome.UNKNOWN
            if traj.success is None
            else Outcome.SUCCESS
            if traj.success
            else Outcome.FAILURE
        )
        return Planned(
            traj=traj,
            namespace=namespace,
            key=key,
            ids=[step_id(key, i) for i in range(len(traj.steps))],
            query_id=query_id_for(namespace, traj.task.strip()),
            used=used,
            outcome=outcome,
        )

    # ---- writing ----------------------------------------------------------------------
    def write(self, batch: Sequence[Planned]) -> list[EvolutionReport]:
        """Write one batch in one transaction (planned again if a writer raced it); if
        the store refuses it, trajectory by trajectory, so the error names one."""
        cfg = self.config
        try:
            return retrying(
                lambda: self._write_once(batch),
                cfg.finish_conflict_retries,
                cfg.finish_conflict_backoff_s,
            )
        except UserInputError:
            raise
        except Exception:
            if len(batch) == 1:
                raise
        reports: list[EvolutionReport] = []
        for one in batch:
            reports += self.write([one])
        return reports

    def _write_once(self, batch: Sequence[Planned]) -> list[EvolutionReport]:
        qids = list(dict.fromkeys(p.query_id for p in batch))
        in_batch = set(qids)
        declared = list(dict.fromkeys(u for p in batch for u in p.used if u not in in_batch))
        # (A used query that this batch also writes is found by the read of ``qids``.)
        firsts, hashed, queries, used_nodes = self.store.batch(
            [
                GetNodes([p.ids[0] for p in batch]),
                GetNodes([hashed_step_id(p.key, 0) for p in batch]),
                GetNodes(qids, with_vectors=True),
                GetNodes(declared),
            ]
        )
        stored_q = {n.id: n for n in queries if isinstance(n, QueryNode)}
        existing_used = {n.id for n in used_nodes if isinstance(n, QueryNode)} | set(stored_q)
        reports, todo = _unstored(batch, [a or b for a, b in zip(firsts, hashed, strict=True)])
        vectors = self._vectors([batch[i] for i in todo], stored_q)
        near = self._neighbours([batch[i] for i in todo], vectors)

        nodes: dict[str, QueryNode] = {}
        utts: list[Utterance] = []
        edges: dict[tuple[EdgeKind, str, str], Edge] = {}
        for i in todo:
            p = batch[i]
            qid = p.query_id
            node, is_new = self._next_attempt(p, nodes.get(qid) or stored_q.get(qid), vectors[qid])
            if qid in stored_q and qid not in nodes:
                node = advance(node, stored_q[qid].updated_at)  # type: ignore[assignment]
            written = len(nodes)  # queries this batch wrote before this trajectory
            nodes[qid] = node
            trace, trace_edges = self._trace(p, node)
            utts += trace
            report = EvolutionReport(
                qid, node.attempts, p.outcome, is_new, len(trace), sum(u.key_step for u in trace)
            )
            for used in p.used:
                if used != qid and (used in existing_used or near.written_before(used, written)):
                    trace_edges.append(_edge(EdgeKind.USED_MEMORY_OF, qid, used))
                    report.used_memory_edges += 1
            for other, score in near.of(qid, written):
                trace_edges.append(_edge(EdgeKind.SIMILAR_TO, qid, other, round(score, 4)))
                report.similar_edges += 1
            edges.update((e.key, e) for e in trace_edges)
            reports[i] = report
        if todo:
            expected: list[tuple[NodeKind, str, datetime | None]] = [
                (NodeKind.QUERY, q, stored_q[q].updated_at if q in stored_q else None)
                for q in nodes
            ]
            # (Only ids this batch writes: an absent node expected stays absent only until
            # a later op creates it, and Neo4j claims it with a placeholder until then.)
            expected += [(NodeKind.UTTERANCE, batch[i].ids[0], None) for i in todo]
            self.store.batch(
                [
                    ExpectNodes(expected),
                    PutNodes([*nodes.values(), *utts]),
                    PutEdges(list(edges.values())),
                ]
            )
        return [r for r in reports if r is not None]

    def _vectors(
        self, todo: Sequence[Planned], stored: dict[str, QueryNode]
    ) -> dict[str, npt.NDArray[np.float32]]:
        """Each written query's text embedding: stored, or embedded now in one call."""
        vectors = {q.id: q.embedding for q in stored.values() if q.embedding is not None}
        texts: dict[str, str] = {}
        for p in todo:
            if p.query_id not in vectors and p.query_id not in texts:
                texts[p.query_id] = p.traj.task.strip()
        if texts:
            embedded = self.embedder.embed(list(texts.values()))
            vectors.update(zip(texts, embedded, strict=True))
        return vectors

    def _neighbours(
        self, todo: Sequence[Planned], vectors: dict[str, npt.NDArray[np.float32]]
    ) -> _Neighbours:
        """The store's nearest queries to each written one (one read), and the
        similarities among the written ones."""
        cfg = self.config
        searched = list(dict.fromkeys(p.query_id for p in todo))
        space_of = {p.query_id: p.namespace for p in todo}
        hits: dict[str, list[Hit]] = {}
        if cfg.similar_edge_k and searched:
            found = self.store.batch(
                [
                    VectorSearch(
                        NodeKind.QUERY,
                        vectors[q],
                        cfg.similar_edge_k,
                        space_of[q],
                        exclude_ids=frozenset({q}),
                    )
                    for q in searched
                ]
            )
            hits = dict(zip(searched, found, strict=True))
        return _Neighbours(cfg, searched, space_of, vectors, hits)

    def _next_attempt(
        self,
        p: Planned,
        old: QueryNode | None,
        vec: npt.NDArray[np.float32],
    ) -> tuple[QueryNode, bool]:
        return attempts.next_attempt(
            old,
            query_id=p.query_id,
            text=p.traj.task,
            namespace=p.namespace,
            outcome=p.outcome,
            score=p.traj.score,
            metadata=p.traj.metadata,
            embedding=vec,
        )

    def _trace(self, p: Planned, query: QueryNode) -> tuple[list[Utterance], list[Edge]]:
        steps = p.traj.steps
        request = KeyStepsRequest.model_construct(
            task=p.traj.task, outcome=p.outcome.value, steps=attempts.step_views(steps)
        )
        keep = set(self.key_steps(request).keep)
        count = self.tokens.count
        utts = [
            trusted(
                Utterance,
                {
                    "id": p.ids[j],
                    "namespace": p.namespace,
                    "created_at": utcnow(),
                    "metadata": dict(s.metadata),
                    "embedding": None,
                    "graph_embedding": None,
                    "node_kind": "Utterance",
                    "query_id": query.id,
                    "attempt": query.attempts,
                    "step": j,
                    "agent": s.agent,
                    "role": s.role,
                    "content": s.content,
                    "tokens": count(s.content),
                    "action": s.action,
                    "observation": s.observation,
                    "reward": s.reward,
                    "key_step": j in keep,
                },
            )
            for j, s in enumerate(steps)
        ]
        replies = ((p.ids[j], p.ids[r]) for j, s in enumerate(steps) for r in s.replies_to)
        return utts, attempts.trace_edges(query.id, p.ids, replies)


class _Neighbours:
    """Where a written query's SIMILAR_TO edges go: the ``similar_edge_k`` nearest of
    the store's queries and of those this batch wrote before it (in the order they first
    appear), at or above the threshold, as sequential finishes would have found them."""

    def __init__(
        self,
        config: MemoryConfig,
        searched: list[str],
        space_of: dict[str, str],
        vectors: dict[str, npt.NDArray[np.float32]],
        hits: dict[str, list[Hit]],
    ) -> None:
        self.k = config.similar_edge_k
        self.threshold = config.similar_edge_threshold
        self.searched = searched
        self.row = {q: n for n, q in enumerate(searched)}
        self.hits = hits
        codes = {ns: n for n, ns in enumerate(dict.fromkeys(space_of.values()))}
        self.spaces = np.array([codes[space_of[q]] for q in searched], dtype=np.int64)
        self.among: npt.NDArray[np.float32] | None = None
        if searched and self.k:
            units = np.stack([_unit(vectors[q]) for q in searched])
            self.among = units @ units.T

    def written_before(self, qid: str, written: int) -> bool:
        return self.row.get(qid, written) < written

    def of(self, qid: str, written: int) -> list[tuple[str, float]]:
        if not self.k:
            return []
        scores = {h.id: h.score for h in self.hits.get(qid, []) if h.id != qid}
        if self.among is not None and written:
            row = self.row[qid]
            mine = self.among[row, :written].copy()
            mine[self.spaces[:written] != self.spaces[row]] = -np.inf
            if row < written:
                mine[row] = -np.inf
            for n in np.argsort(-mine, kind="stable")[: self.k]:
                if np.isfinite(mine[n]):
                    scores.setdefault(self.searched[n], float(mine[n]))
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[: self.k]
        return [(other, score) for other, score in ranked if score >= self.threshold]


def _unit(vec: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


def _not_stored(query_id: str, attempt: int, outcome: Outcome) -> EvolutionReport:
    return EvolutionReport(
        query_id=query_id,
        attempt=attempt,
        outcome=outcome,
        new_query=False,
        utterances=0,
        key_steps=0,
        stored=False,
    )


def _edge(kind: EdgeKind, src: str, dst: str, score: float | None = None) -> Edge:
    """An edge between ids this module made or read (already valid: no re-validation)."""
    return attempts.edge(kind, src, dst, None if score is None else {"score": score})


def _unstored(
    batch: Sequence[Planned], firsts: Sequence[object]
) -> tuple[list[EvolutionReport | None], list[int]]:
    """Reports for the trajectories found stored (or repeated within the batch), and
    the positions of those to write."""
    reports: list[EvolutionReport | None] = [None] * len(batch)
    todo: list[int] = []
    keys: set[str] = set()
    for i, (p, first) in enumerate(zip(batch, firsts, strict=True)):
        if isinstance(first, Utterance):
            reports[i] = _not_stored(first.query_id, first.attempt, p.outcome)
        elif p.key in keys:
            reports[i] = _not_stored(p.query_id, 0, p.outcome)
        else:
            keys.add(p.key)
            todo.append(i)
    return reports, todo
