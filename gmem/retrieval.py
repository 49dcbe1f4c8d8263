"""Bidirectional traversal of the memory hierarchy for a new task (paper section 3.2).

Seed past queries by similarity, expand over the query graph, rank, then go down to the
kept queries' condensed interaction traces and up to the insights those queries support,
kept to the procedures of the successes about to be shown.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from gmem import boundary
from gmem.config import MemoryConfig
from gmem.embedding import TextEmbedder
from gmem.llm.protocol import LLM, CandidateView, RelevanceRequest
from gmem.recall import PastTrajectory, PathStep, Recall, RecalledInsight, RecalledQuery, Step
from gmem.rules import in_scope, scope_similarity, skeleton_steps
from graph_store.base import GraphStore
from graph_store.model import (
    Edge,
    EdgeKind,
    Insight,
    Node,
    NodeKind,
    Outcome,
    QueryNode,
    Utterance,
)
from graph_store.ops import (
    Expand,
    GetEdges,
    GetNodes,
    Hit,
    Link,
    Neighbors,
    Op,
    ReadVersion,
    VectorSearch,
)

if TYPE_CHECKING:
    from gmem.gnn import StructureIndex, TaskEncoder

_QUERY_LINKS = (EdgeKind.SIMILAR_TO, EdgeKind.USED_MEMORY_OF)


def _norm(v: npt.NDArray[np.float32]) -> np.floating[Any]:
    """``np.linalg.norm`` of a vector, bit for bit (the square root of its dot product
    with itself, in its own precision), without that function's checks: a recall takes
    the norms of a hundred vectors."""
    norm: np.floating[Any] = np.sqrt(v.dot(v))
    return norm


def _cosines(
    vectors: Sequence[npt.NDArray[np.float32] | None], q: npt.NDArray[np.float32]
) -> list[float]:
    out = []
    q_norm = _norm(q)  # the same float32 for every vector: computed once
    for v in vectors:
        if v is None or v.shape != q.shape:
            out.append(0.0)
            continue
        denom = float(_norm(v) * q_norm) or 1.0
        out.append(float(v @ q) / denom)
    return out


def _unit(v: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return v / (_norm(v) or 1.0)


def _floors(
    outcomes: Sequence[Outcome], relevance: Sequence[float], cfg: MemoryConfig
) -> dict[Outcome, float]:
    """The least relevance kept, per outcome.

    The margin is measured from the best candidate of the same outcome: one failed attempt
    of an identical task (relevance 1.0) must not push every success below the floor, nor
    a perfect success hide the failure worth warning about.
    """
    best: dict[Outcome, float] = {}
    for outcome, rel in zip(outcomes, relevance, strict=True):
        best[outcome] = max(best.get(outcome, 0.0), rel)
    return {o: max(cfg.min_relevance, best.get(o, 0.0) - cfg.relevance_margin) for o in Outcome}


def _mixed(
    nodes: Sequence[QueryNode],
    q: npt.NDArray[np.float32],
    g: npt.NDArray[np.float32],
    alpha: float,
) -> list[float]:
    """``alpha * text + (1 - alpha) * structural`` cosine; a node not embedded structurally
    yet (finished since the last refresh) counts its text similarity for both."""
    text = _cosines([n.embedding for n in nodes], q)
    graph = _cosines([n.graph_embedding for n in nodes], g)
    return [
        t if n.graph_embedding is None else alpha * t + (1 - alpha) * s
        for n, t, s in zip(nodes, text, graph, strict=True)
    ]


class _Reused:
    """Query and insight nodes read by earlier recalls, kept while the store's version
    (:class:`ReadVersion`) stays the same.

    Successive recalls meet the same insights and the same supporting tasks again and
    again; reading and decoding them (their JSON, their vectors) was most of a recall
    on a large store. The store's token changes with any change to a query or an
    insight, by this process or another, so a node kept under the token a recall read
    is what the store holds. Nodes are only read from here, never changed in place.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        #: Whether the store's last token was None (it cannot tell what changed): then
        #: nothing is kept, and a recall asks for nodes with the reads that find them.
        self.unversioned = False
        self._version: str | None = None
        self._nodes: dict[str, Node | None] = {}
        self._lock = threading.Lock()

    def take(self, version: str | None, ids: Sequence[str]) -> dict[str, Node | None]:
        """The nodes of ``ids`` kept under ``version`` (absent ones kept as ``None``)."""
        if version is None or self.capacity == 0:
            return {}
        with self._lock:
            if version != self._version:
                self._version, self._nodes = version, {}
                return {}
            nodes = self._nodes
            return {i: nodes[i] for i in ids if i in nodes}

    def keep(self, version: str | None, found: dict[str, Node | None]) -> None:
        """Keep what a recall read after it got ``version``: read later than the token,
        it is at least that new, and a newer state has another token."""
        if version is None or self.capacity == 0:
            return
        kept = {i: n for i, n in found.items() if n is None or isinstance(n, QueryNode | Insight)}
        with self._lock:
            if version != self._version or len(kept) > self.capacity:
                return
            if len(self._nodes) + len(kept) > self.capacity:
                self._nodes = {}
            self._nodes.update(kept)


class _Reader:
    """One recall's reads of query and insight nodes with their vectors: each read once
    per recall, and taken from :class:`_Reused` where the store's version allows."""

    def __init__(self, store: GraphStore, reused: _Reused) -> None:
        self.store = store
        self.reused = reused
        self.version: str | None = None
        self.read: dict[str, Node | None] = {}

    @property
    def eager(self) -> bool:
        """Whether to read nodes with the searches and hops that find them: when none
        can be reused they are read anyway, and in the same statements they cost no
        round trip of their own."""
        return self.reused.unversioned or self.reused.capacity == 0

    def learn(self, version: str | None) -> None:
        self.version = version
        self.reused.unversioned = version is None

    def add(self, nodes: dict[str, Node | None]) -> None:
        """Nodes read with vectors by another read (a search, a hop) of this recall;
        ``None`` where that read did not ask for them."""
        for node_id, node in nodes.items():
            if node is not None:
                self.read.setdefault(node_id, node)

    def nodes(self, ids: Sequence[str]) -> list[Node | None]:
        """The nodes of ``ids``, in order (``None`` for an id naming none), as
        :class:`GetNodes` with vectors gives them."""
        missing = [i for i in dict.fromkeys(ids) if i not in self.read]
        if missing:
            kept = self.reused.take(self.version, missing)
            self.read.update(kept)
            rest = [i for i in missing if i not in kept]
            if rest:
                (found,) = self.store.batch([GetNodes(rest, with_vectors=True)])
                fresh = dict(zip(rest, found, strict=True))
                self.read.update(fresh)
                self.reused.keep(self.version, fresh)
        return [self.read[i] for i in ids]


class Retriever:
    def __init__(
        self,
        store: GraphStore,
        embedder: TextEmbedder,
        llm: LLM,
        config: MemoryConfig,
        structure: StructureIndex | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.llm = llm
        self.config = config
        self.structure = structure
        self._reused = _Reused(config.recall_reuse_nodes)

    def retrieve(
        self, task: str, namespace: str, vector: npt.NDArray[np.float32] | None = None
    ) -> Recall:
        q = vector if vector is not None else self.embedder.embed([task])[0]
        read = _Reader(self.store, self._reused)
        queries, g = self._rank_queries(task, namespace, q, read)
        kept = [rq for rq in queries if rq.kept]
        vouching = self._vouching(queries)
        # Both directions depend on the ranking only: their reads are one batch.
        trace = [] if not kept else [self._trace(kept)]
        asked = [] if vouching is None else self._evidence(vouching, q, namespace, read)
        found = self.store.batch([*trace, *asked]) if trace or asked else []
        trajectories = self._downward(kept, read, found[0] if trace else [])
        trajectories.sort(key=lambda t: (t.outcome != Outcome.SUCCESS, -t.relevance))
        procedures = [
            skeleton_steps(t.task, [s.action for s in t.steps])
            for t in trajectories
            if t.outcome == Outcome.SUCCESS
        ]
        evidence = None if vouching is None else self._evidenced(asked, found[len(trace) :], read)
        insights = self._upward(q, procedures, read, g, vouching, evidence)
        return Recall(
            task=task,
            namespace=namespace,
            queries=queries,
            insights=insights,
            trajectories=trajectories,
        )

    # ---- steps 1-3: seed, expand, rank --------------------------------------------------
    def _rank_queries(
        self, task: str, namespace: str, q: npt.NDArray[np.float32], read: _Reader
    ) -> tuple[list[RecalledQuery], npt.NDArray[np.float32] | None]:
        """The ranked past queries and the task's structural vector (None while the
        namespace has no structural encoder)."""
        cfg = self.config
        encoder = self.structure.encoder(namespace) if self.structure is not None else None
        g: npt.NDArray[np.float32] | None = None
        eager = read.eager
        if encoder is None:
            search = VectorSearch(
                NodeKind.QUERY, q, cfg.seed_k, namespace, with_nodes=eager, with_vectors=eager
            )
            version, seeds = self.store.batch([ReadVersion(), search])
            read.learn(version)
            read.add({h.id: h.node for h in seeds})
        else:
            seeds, g = self._hybrid_seeds(namespace, q, encoder, read)
        seeds = [h for h in seeds if h.score >= cfg.seed_min_similarity]
        if not seeds:
            return [], g
        paths: dict[str, tuple[int, tuple[PathStep, ...]]] = {
            h.id: (0, (PathStep("seed", h.id, h.score),)) for h in seeds
        }
        if cfg.hops > 0:
            expansion = Neighbors(
                [h.id for h in seeds],
                cfg.hops,
                _QUERY_LINKS,
                "both",
                NodeKind.QUERY,
                with_nodes=eager,
                with_vectors=eager,
            )
            (reached,) = self.store.batch([expansion])
            read.add({r.id: r.node for r in reached})
            for r in reached:
                source = r.via.src if r.via.dst == r.id else r.via.dst
                prev = paths.get(source, (0, ()))[1]
                paths.setdefault(
                    r.id, (r.hop, (*prev, PathStep("edge", r.id, None, r.via.kind, source)))
                )
        nodes = read.nodes(list(paths))
        found = [n for n in nodes if isinstance(n, QueryNode) and not boundary.quarantined(n)]
        if g is None:
            sims = _cosines([n.embedding for n in found], q)
        else:
            sims = _mixed(found, q, g, cfg.gnn_alpha)
        order = sorted(range(len(found)), key=lambda i: (paths[found[i].id][0], -sims[i]))
        order = order[: cfg.max_candidates]
        found = [found[i] for i in order]
        sims = [sims[i] for i in order]
        request = RelevanceRequest(
            task=task,
            candidates=[
                CandidateView(id=n.id, task=n.text, outcome=n.outcome.value, similarity=s)
                for n, s in zip(found, sims, strict=True)
            ],
        )
        relevance = self.llm.score_relevance(request).scores
        ranked = sorted(range(len(found)), key=lambda i: (-relevance[i], -sims[i], found[i].id))
        # A task solved once has a successful trajectory to show, whatever came later.
        outcomes = [Outcome.SUCCESS if n.successes else n.outcome for n in found]
        floors = _floors(outcomes, relevance, cfg)
        successes = failures = 0
        out = []
        for i in ranked:
            node = found[i]
            outcome = outcomes[i]
            keep = False
            if relevance[i] >= floors[outcome]:
                if outcome == Outcome.SUCCESS and successes < cfg.success_k:
                    keep, successes = True, successes + 1
                elif outcome == Outcome.FAILURE and failures < cfg.failure_k:
                    keep, failures = True, failures + 1
            hop, path = paths[node.id]
            out.append(
                RecalledQuery(node.id, node.text, outcome, sims[i], relevance[i], hop, path, keep)
            )
        return out, g

    def _hybrid_seeds(
        self, namespace: str, q: npt.NDArray[np.float32], encoder: TaskEncoder, read: _Reader
    ) -> tuple[list[Hit], npt.NDArray[np.float32]]:
        """Seeds by the mixed score, from a pool of the best hits of each vector.

        The task's text neighbours (the SIMILAR_TO edges it would get when finished) are
        what the encoder reads to place a task that has no edges yet.
        """
        cfg = self.config
        pool = cfg.seed_k * cfg.gnn_candidate_pool
        version, text_hits = self.store.batch(
            [
                ReadVersion(),
                VectorSearch(NodeKind.QUERY, q, max(pool, cfg.similar_edge_k), namespace),
            ]
        )
        read.learn(version)
        neighbours = [
            h.id for h in text_hits[: cfg.similar_edge_k] if h.score >= cfg.similar_edge_threshold
        ]
        g = encoder.encode_task(q, neighbours)
        (graph_hits,) = self.store.batch(
            [VectorSearch(NodeKind.QUERY, g, pool, namespace, field="graph_embedding")]
        )
        ids = list(dict.fromkeys([*(h.id for h in text_hits[:pool]), *(h.id for h in graph_hits)]))
        found = [n for n in read.nodes(ids) if isinstance(n, QueryNode)]
        scores = _mixed(found, q, g, cfg.gnn_alpha)
        hits = sorted(
            (Hit(n.id, s) for n, s in zip(found, scores, strict=True)),
            key=lambda h: (-h.score, h.id),
        )
        return hits[: cfg.seed_k], g

    # ---- step 4: upward to insights ----------------------------------------------------
    def _vouching(
        self, queries: list[RecalledQuery]
    ) -> tuple[dict[str, RecalledQuery], dict[str, float]] | None:
        """The relevant queries by id and the task's nearest ranked queries with their
        weights, whose SUPPORTS and CONTRADICTS edges :meth:`_upward` follows; None when
        no insight is to be shown."""
        cfg = self.config
        if cfg.insight_k == 0:
            return None
        floors = _floors([rq.outcome for rq in queries], [rq.relevance for rq in queries], cfg)
        relevant = [rq for rq in queries if rq.relevance >= floors[rq.outcome]]
        near = sorted(queries, key=lambda rq: (-rq.similarity, rq.id))[
            : cfg.insight_neighbourhood_k
        ]
        return {rq.id: rq for rq in relevant}, {rq.id: max(rq.similarity, 0.0) for rq in near}

    def _upward(
        self,
        q: npt.NDArray[np.float32],
        procedures: list[tuple[str, ...]],
        read: _Reader,
        g: npt.NDArray[np.float32] | None,
        vouching: tuple[dict[str, RecalledQuery], dict[str, float]] | None,
        evidence: tuple[list[Edge], list[Hit]] | None,
    ) -> list[RecalledInsight]:
        """Insights reached from the relevant queries or by similarity, kept to their scope.

        The procedures of the successes about to be shown are the best guess at how this
        task will be solved, so an insight with a scope is shown only when one of them
        falls within it (with no success to show, only insights that the relevant
        queries' own trajectories evidence), and when its supporting tasks do not place
        it away from this task (:meth:`_misplaced`), and when the task's nearest ranked
        tasks vouch for it through their SUPPORTS edges (the similarity-weighted share of
        them that support it): an insight of the procedure this task's neighbourhood
        follows is supported by that neighbourhood.
        """
        cfg = self.config
        if vouching is None or evidence is None:
            return []
        by_id, weight = vouching
        relevant = list(by_id.values())
        edges, similar = evidence
        support: dict[str, list[str]] = defaultdict(list)
        contra: dict[str, list[str]] = defaultdict(list)
        share: dict[str, float] = defaultdict(float)
        total = sum(weight.values()) or 1.0
        for e in edges:
            if e.kind == EdgeKind.SUPPORTS and e.src in weight:
                share[e.dst] += weight[e.src] / total
            if e.src in by_id:
                (support if e.kind == EdgeKind.SUPPORTS else contra)[e.dst].append(e.src)
        sim_hits = {h.id: h.score for h in similar if h.score >= cfg.insight_min_similarity}
        ids = list(dict.fromkeys([*support, *contra, *sim_hits]))
        if not ids:
            return []
        insights = [n for n in read.nodes(ids) if isinstance(n, Insight) and not n.retired]
        if not insights:
            return []
        misplaced = self._misplaced(insights, q, g, read)
        sims = _cosines([n.embedding for n in insights], q)
        top_score = max(*(n.score for n in insights), 1e-9)
        w_overlap, w_score, w_sim = cfg.insight_weights
        n_rel = max(len(relevant), 1)
        ranked = []
        for ins, sim in zip(insights, sims, strict=True):
            sup, con = support.get(ins.id, []), contra.get(ins.id, [])
            if ins.rule is not None and ins.rule.scope:
                held = share.get(ins.id, 0.0)
                if (
                    not self._fits(ins.rule.scope, procedures, bool(sup))
                    or ins.id in misplaced
                    or held < cfg.insight_min_support_share
                ):
                    continue
            overlap = max(len(sup) - cfg.contradiction_weight * len(con), 0.0) / n_rel
            rank = w_overlap * overlap + w_score * max(ins.score, 0) / top_score + w_sim * sim
            path: tuple[PathStep, ...]
            via = sup or con
            if via:
                edge = EdgeKind.SUPPORTS if sup else EdgeKind.CONTRADICTS
                path = (*by_id[via[0]].path, PathStep("edge", ins.id, None, edge, via[0]))
            else:
                path = (PathStep("similar", ins.id, sim),)
            ranked.append(
                RecalledInsight(
                    ins.id,
                    ins.text,
                    ins.score,
                    tuple(ins.roles),
                    rank,
                    len(sup),
                    len(con),
                    sim,
                    path,
                )
            )
        provisional = {n.id for n in insights if boundary.is_provisional(n)}
        ranked.sort(key=lambda r: (r.id in provisional, -r.rank, r.id))
        return ranked[: cfg.insight_k]

    def _evidence(
        self,
        vouching: tuple[dict[str, RecalledQuery], dict[str, float]],
        q: npt.NDArray[np.float32],
        namespace: str,
        read: _Reader,
    ) -> list[Op]:
        """The reads of the upward step: the SUPPORTS and CONTRADICTS edges leaving the
        vouching queries and the insights similar to the task; read eagerly
        (:attr:`_Reader.eager`), the insights at their ends come with them."""
        cfg = self.config
        eager = read.eager
        origins = list(dict.fromkeys([*vouching[0], *vouching[1]]))
        kinds = [EdgeKind.SUPPORTS, EdgeKind.CONTRADICTS]
        edges: Op = (
            Expand(origins, kinds, "out", with_nodes=True, with_vectors=True)
            if eager
            else GetEdges(origins, kinds, "out")
        )
        k = cfg.insight_k * cfg.insight_oversample
        return [
            edges,
            VectorSearch(NodeKind.INSIGHT, q, k, namespace, with_nodes=eager, with_vectors=eager),
        ]

    def _evidenced(
        self,
        asked: list[Op],
        found: list[Any],
        read: _Reader,
    ) -> tuple[list[Edge], list[Hit]]:
        """What :meth:`_evidence` asked for, as edges in :class:`GetEdges` order and hits."""
        links, similar = found
        read.add({h.id: h.node for h in similar})
        if not isinstance(asked[0], Expand):
            return links, similar
        place = {node_id: i for i, node_id in enumerate(asked[0].ids)}
        links.sort(key=lambda ln: (place[ln.origin], ln.via.kind.value, ln.via.dst))
        read.add({ln.other: ln.node for ln in links})
        return [ln.via for ln in links], similar

    def _fits(
        self, scope: Sequence[str], procedures: list[tuple[str, ...]], supported: bool
    ) -> bool:
        """Whether a success about to be shown follows the scope's procedure; with none
        to show, whether a relevant query's own trajectory evidences the insight."""
        if not procedures:
            return supported
        return any(in_scope(scope, p, self.config.scope_min_share) for p in procedures)

    def _misplaced(
        self,
        insights: list[Insight],
        q: npt.NDArray[np.float32],
        g: npt.NDArray[np.float32] | None = None,
        read: _Reader | None = None,
    ) -> set[str]:
        """The scoped insights whose supporting tasks place them away from this task.

        An insight's place is the mean of its supporting tasks' text vectors, in which the
        objects of single episodes cancel and what the tasks share (the kind of task)
        remains. It is misplaced when the task is not near that place, or when an insight
        of another procedure (scopes that do not overlap, no supporting task in common)
        is clearly nearer: a lesson of the wrong procedure misleads. Insights with equally
        near places may be one procedure written two ways, so a tie suppresses neither.
        An insight without supporting tasks has no place and is not judged here.
        """
        cfg = self.config
        scoped = {n.id: n.rule.scope for n in insights if n.rule is not None and n.rule.scope}
        if not scoped:
            return set()
        members = {n.id: n.supporting[-cfg.procedure_supporters :] for n in insights}
        ids = list(dict.fromkeys(x for i in scoped for x in members[i]))
        nodes = (read or _Reader(self.store, self._reused)).nodes(ids)
        usable = [
            n
            for n in nodes
            if isinstance(n, QueryNode) and n.embedding is not None and not boundary.quarantined(n)
        ]
        vectors = {n.id: _unit(n.embedding) for n in usable if n.embedding is not None}
        structural = {
            n.id: _unit(n.graph_embedding)
            for n in usable
            if g is not None and n.graph_embedding is not None
        }
        places: dict[str, float] = {}
        support = {iid: {x for x in members[iid] if x in vectors} for iid in scoped}
        for iid in scoped:
            if support[iid]:
                mean = np.mean([vectors[x] for x in sorted(support[iid])], 0).astype(np.float32)
                places[iid] = _cosines([mean], q)[0]
                placed = [structural[x] for x in sorted(support[iid]) if x in structural]
                if placed and g is not None:
                    # Once tasks are embedded structurally, their place mixes text and
                    # procedure as the seeding does.
                    where = np.mean(placed, 0).astype(np.float32)
                    alpha = cfg.gnn_alpha
                    places[iid] = alpha * places[iid] + (1 - alpha) * _cosines([where], g)[0]
        out = set()
        for iid, near in places.items():
            rival = max(
                (
                    other
                    for jid, other in places.items()
                    if scope_similarity(scoped[iid], scoped[jid]) < cfg.merge_scope_overlap
                    and support[iid].isdisjoint(support[jid])
                ),
                default=None,
            )
            if near < cfg.procedure_min_similarity or (
                rival is not None and rival - near > cfg.procedure_margin
            ):
                out.add(iid)
        return out

    # ---- step 5: downward to condensed trajectories ------------------------------------
    @staticmethod
    def _trace(kept: list[RecalledQuery]) -> Expand:
        """The read of the kept queries' traces: their utterances come with their
        HAS_TRACE links."""
        ids = [rq.id for rq in kept]
        return Expand(ids, [EdgeKind.HAS_TRACE], "out", frozenset(ids), with_nodes=True)

    def _downward(
        self, kept: list[RecalledQuery], read: _Reader, reached: list[Link]
    ) -> list[PastTrajectory]:
        by_query: dict[str, list[Utterance]] = defaultdict(list)
        seen: set[str] = set()
        for r in reached:
            if isinstance(r.node, Utterance) and r.node.id not in seen:
                seen.add(r.node.id)
                by_query[r.node.query_id].append(r.node)
        out = []
        for rq in kept:
            utts = by_query.get(rq.id, [])
            if not utts:
                continue
            # Show the latest attempt with the outcome the query was ranked under.
            query = read.read[rq.id]
            assert isinstance(query, QueryNode)
            outcomes = query.attempt_outcomes
            attempts = sorted({u.attempt for u in utts})
            chosen = [a for a in attempts if a <= len(outcomes) and outcomes[a - 1] == rq.outcome]
            attempt = (chosen or attempts)[-1]
            trace = sorted((u for u in utts if u.attempt == attempt), key=lambda u: u.step)
            key = [u for u in trace if u.key_step] or trace
            cap = self.config.key_steps_per_trajectory
            if len(key) > cap:
                # The opening (the plan) and the ending (what finally worked) matter most;
                # the middle of a long trace is mostly search.
                head = min(self.config.trajectory_head_steps, cap // 3)
                key = key[:head] + key[len(key) - (cap - head) :]
            steps = tuple(Step(u.agent, u.role, u.content, u.action, u.observation) for u in key)
            out.append(
                PastTrajectory(rq.id, rq.task, rq.outcome, attempt, rq.relevance, steps, len(trace))
            )
        return out
