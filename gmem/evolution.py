"""Evolution of the whole hierarchy after a task (paper section 3.3).

One finished attempt becomes one store transaction: the query node (created, or updated
with another attempt), its interaction graph with key steps marked, edges to the queries
whose memory it used and to its nearest queries, and the insight operations derived from
comparing it with similar successes and failures. Insights that were used gain score on
success and lose it on failure; at or below zero they retire. Near-duplicate insights are
merged every ``merge_every`` new tasks, in a transaction of its own.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from itertools import combinations, pairwise

import numpy as np
import numpy.typing as npt
from pydantic import JsonValue

from gmem import boundary
from gmem.config import MemoryConfig
from gmem.embedding import TextEmbedder
from gmem.llm.protocol import (
    LLM,
    InsightOp,
    InsightRequest,
    InsightView,
    KeyStepsRequest,
    MergeRequest,
    StepView,
    TrajectoryView,
)
from gmem.tokens import TokenCounter
from graph_store.base import GraphStore
from graph_store.model import (
    Edge,
    EdgeKind,
    Insight,
    InsightOperation,
    NodeKind,
    Outcome,
    Provenance,
    QueryNode,
    Utterance,
    query_id_for,
    utcnow,
)
from graph_store.ops import (
    GetEdges,
    GetNodes,
    ListNodes,
    Neighbors,
    PutEdges,
    PutNodes,
    VectorSearch,
)
from graph_store.redact import describe_exception

_LOG = logging.getLogger("gmem.evolution")


@dataclass
class PendingStep:
    """An utterance recorded during a task, before the task is finished."""

    id: str
    agent: str
    role: str
    content: str
    action: str | None = None
    observation: str | None = None
    reward: float | None = None
    replies_to: list[str] = field(default_factory=list)
    metadata: dict[str, JsonValue] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)


@dataclass
class Attempt:
    task: str
    namespace: str
    steps: list[PendingStep]
    outcome: Outcome
    score: float | None = None
    used_queries: list[str] = field(default_factory=list)
    used_insights: list[str] = field(default_factory=list)
    metadata: dict[str, JsonValue] = field(default_factory=dict)


@dataclass
class EvolutionReport:
    """What finishing one task changed, for logs, the CLI and tests."""

    query_id: str
    attempt: int
    outcome: Outcome
    new_query: bool
    utterances: int
    key_steps: int
    similar_edges: int = 0
    used_memory_edges: int = 0
    added: list[str] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)
    agreed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    rewarded: list[str] = field(default_factory=list)
    penalized: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    related_edges: int = 0
    merged: list[tuple[str, list[str]]] = field(default_factory=list)
    #: False when ``Memory.ingest`` found the trajectory already stored and wrote nothing.
    stored: bool = True


def _views(utts: list[Utterance]) -> list[StepView]:
    return [
        StepView(
            index=u.step,
            agent=u.agent,
            role=u.role,
            content=u.content,
            action=u.action,
            observation=u.observation,
            reward=u.reward,
        )
        for u in utts
    ]


class Evolver:
    def __init__(
        self,
        store: GraphStore,
        embedder: TextEmbedder,
        llm: LLM,
        tokens: TokenCounter,
        config: MemoryConfig,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.llm = llm
        self.tokens = tokens
        self.config = config
        self._new_tasks: dict[str, int] = {}

    # ---- the query node and its trace --------------------------------------------------
    def _query_node(self, a: Attempt) -> tuple[QueryNode, bool]:
        qid = query_id_for(a.namespace, a.task)
        (found,) = self.store.batch([GetNodes([qid], with_vectors=True)])
        old = found[0]
        now = utcnow()
        success, failure = a.outcome == Outcome.SUCCESS, a.outcome == Outcome.FAILURE
        if isinstance(old, QueryNode):
            vec = old.embedding if old.embedding is not None else self.embedder.embed([a.task])[0]
            node = old.model_copy(
                update={
                    "outcome": a.outcome,
                    "score": a.score,
                    "attempts": old.attempts + 1,
                    "successes": old.successes + success,
                    "failures": old.failures + failure,
                    "attempt_outcomes": [*old.attempt_outcomes, a.outcome],
                    "updated_at": now,
                    "metadata": {**old.metadata, **a.metadata},
                    "embedding": vec,
                }
            )
            return node, False
        node = QueryNode(
            id=qid,
            text=a.task,
            namespace=a.namespace,
            outcome=a.outcome,
            score=a.score,
            attempts=1,
            successes=int(success),
            failures=int(failure),
            attempt_outcomes=[a.outcome],
            metadata=dict(a.metadata),
            embedding=self.embedder.embed([a.task])[0],
        )
        return node, True

    def _trace(self, a: Attempt, query: QueryNode) -> tuple[list[Utterance], list[Edge]]:
        views = [
            StepView(
                index=i,
                agent=s.agent,
                role=s.role,
                content=s.content,
                action=s.action,
                observation=s.observation,
                reward=s.reward,
            )
            for i, s in enumerate(a.steps)
        ]
        keep = set(
            self.llm.extract_key_steps(
                KeyStepsRequest(task=a.task, outcome=a.outcome.value, steps=views)
            ).keep
        )
        utts = [
            Utterance(
                id=s.id,
                namespace=a.namespace,
                query_id=query.id,
                attempt=query.attempts,
                step=i,
                agent=s.agent,
                role=s.role,
                content=s.content,
                tokens=self.tokens.count(s.content),
                action=s.action,
                observation=s.observation,
                reward=s.reward,
                key_step=i in keep,
                metadata=s.metadata,
                created_at=s.created_at,
            )
            for i, s in enumerate(a.steps)
        ]
        edges = [Edge(kind=EdgeKind.HAS_TRACE, src=query.id, dst=u.id) for u in utts]
        edges += [Edge(kind=EdgeKind.NEXT, src=x.id, dst=y.id) for x, y in pairwise(utts)]
        edges += [
            Edge(kind=EdgeKind.REPLIES_TO, src=s.id, dst=r) for s in a.steps for r in s.replies_to
        ]
        return utts, edges

    # ---- references for insight derivation ---------------------------------------------
    def _references(
        self, a: Attempt, query: QueryNode, vec: npt.NDArray[np.float32]
    ) -> tuple[list[TrajectoryView], list[TrajectoryView], list[str], list[str]]:
        cfg = self.config
        (hits,) = self.store.batch(
            [
                VectorSearch(
                    NodeKind.QUERY,
                    vec,
                    cfg.reference_k * cfg.reference_oversample,
                    a.namespace,
                    exclude_ids=frozenset({query.id}),
                )
            ]
        )
        hits = [h for h in hits if h.score >= cfg.seed_min_similarity]
        if not hits:
            return [], [], [], []
        ids = [h.id for h in hits]
        nodes, reached = self.store.batch(
            [GetNodes(ids), Neighbors(ids, 1, [EdgeKind.HAS_TRACE], "out")]
        )
        (utt_nodes,) = self.store.batch([GetNodes([r.id for r in reached])])
        traces: dict[str, list[Utterance]] = defaultdict(list)
        for u in utt_nodes:
            if isinstance(u, Utterance):
                traces[u.query_id].append(u)
        successes: list[TrajectoryView] = []
        failures: list[TrajectoryView] = []
        s_ids: list[str] = []
        f_ids: list[str] = []
        for node in nodes:
            if (
                not isinstance(node, QueryNode)
                or node.outcome == Outcome.UNKNOWN
                or boundary.quarantined(node)
            ):
                continue
            bucket, id_bucket = (
                (successes, s_ids) if node.outcome == Outcome.SUCCESS else (failures, f_ids)
            )
            if len(bucket) >= cfg.reference_k:
                continue
            latest = [u for u in traces[node.id] if u.attempt == node.attempts]
            latest.sort(key=lambda u: u.step)
            key = [u for u in latest if u.key_step] or latest
            bucket.append(
                TrajectoryView(task=node.text, outcome=node.outcome.value, steps=_views(key))
            )
            id_bucket.append(node.id)
        return successes, failures, s_ids, f_ids

    def _existing_insights(
        self, a: Attempt, vec: npt.NDArray[np.float32], ref_ids: list[str]
    ) -> dict[str, Insight]:
        edges, similar = self.store.batch(
            [
                GetEdges(ref_ids, [EdgeKind.SUPPORTS, EdgeKind.CONTRADICTS], "out"),
                VectorSearch(
                    NodeKind.INSIGHT,
                    vec,
                    self.config.insight_k * self.config.existing_insight_oversample,
                    a.namespace,
                ),
            ]
        )
        ids = list(
            dict.fromkeys([*a.used_insights, *(e.dst for e in edges), *(h.id for h in similar)])
        )
        (nodes,) = self.store.batch([GetNodes(ids, with_vectors=True)])
        return {n.id: n for n in nodes if isinstance(n, Insight)}

    # ---- the transaction -----------------------------------------------------------------
    def finish(self, a: Attempt) -> EvolutionReport:
        cfg = self.config
        query, is_new = self._query_node(a)
        assert query.embedding is not None
        vec = query.embedding
        utts, edges = self._trace(a, query)
        report = EvolutionReport(
            query.id, query.attempts, a.outcome, is_new, len(utts), sum(u.key_step for u in utts)
        )
        declared = [q for q in dict.fromkeys(a.used_queries) if q != query.id]
        (found,) = self.store.batch([GetNodes(declared)]) if declared else ([],)
        for used in (n.id for n in found if isinstance(n, QueryNode)):
            if used != query.id:
                edges.append(Edge(kind=EdgeKind.USED_MEMORY_OF, src=query.id, dst=used))
                report.used_memory_edges += 1
        nearest = VectorSearch(
            NodeKind.QUERY, vec, cfg.similar_edge_k, a.namespace, exclude_ids=frozenset({query.id})
        )
        (similar,) = self.store.batch([nearest])
        for h in similar:
            if h.score >= cfg.similar_edge_threshold:
                edges.append(
                    Edge(
                        kind=EdgeKind.SIMILAR_TO,
                        src=query.id,
                        dst=h.id,
                        props={"score": round(h.score, 4)},
                    )
                )
                report.similar_edges += 1

        successes, failures, s_ids, f_ids = self._references(a, query, vec)
        existing = self._existing_insights(a, vec, s_ids + f_ids)
        live = {i: n for i, n in existing.items() if not n.retired}
        roles = sorted({s.role for s in a.steps})
        request = InsightRequest(
            trajectory=TrajectoryView(
                task=a.task,
                outcome=a.outcome.value,
                steps=_views([u for u in utts if u.key_step] or utts),
            ),
            successes=successes,
            failures=failures,
            roles=roles,
            existing=[
                InsightView(id=n.id, text=n.text, score=n.score, roles=n.roles)
                for n in live.values()
            ],
        )
        plan = self.llm.derive_insights(request).operations
        changed: dict[str, Insight] = {}
        before: dict[str, tuple[set[str], set[str]]] = {
            i: (set(n.supporting), set(n.contradicting)) for i, n in existing.items()
        }
        self._apply_ops(plan, a, query, live, changed, report, s_ids, f_ids)
        self._score_used(a, query, existing, changed, report)
        edges += self._insight_edges(changed, before)
        used_live = [i for i in dict.fromkeys(a.used_insights) if i in existing]
        for x, y in list(combinations(sorted(used_live), 2))[: cfg.related_pairs_max]:
            edges.append(Edge(kind=EdgeKind.RELATED_TO, src=x, dst=y, props={"query_id": query.id}))
            report.related_edges += 1
        self._embed_texts(changed)
        self.store.batch([PutNodes([query, *utts, *changed.values()]), PutEdges(edges)])
        if is_new and self._merge_due(a.namespace):
            # The attempt is committed: a failed merge must not make finish() raise (the
            # caller would believe nothing was stored); the next merge point retries it.
            try:
                report.merged = self.merge(a.namespace, query.id)
            except Exception as exc:  # noqa: BLE001 - any failure: the attempt is stored
                _LOG.warning("insight merge skipped: %s", describe_exception(exc))
        return report

    def _merge_due(self, namespace: str) -> bool:
        """Every ``merge_every`` new tasks this process finished in the namespace.

        A counter in the process costs nothing per task, where counting the store would
        grow with everything stored. Processes sharing a store each keep their own
        cadence; a merge is idempotent, so an extra one only costs its time.
        """
        every = self.config.merge_every
        if not every:
            return False
        seen = self._new_tasks.get(namespace, 0) + 1
        self._new_tasks[namespace] = seen % every
        return seen >= every

    def _apply_ops(
        self,
        plan: list[InsightOp],
        a: Attempt,
        query: QueryNode,
        live: dict[str, Insight],
        changed: dict[str, Insight],
        report: EvolutionReport,
        s_ids: list[str],
        f_ids: list[str],
    ) -> None:
        cfg = self.config
        success = a.outcome == Outcome.SUCCESS
        now = utcnow()

        def touch(ins: Insight, op: InsightOperation, detail: str = "") -> Insight:
            current = changed.get(ins.id, ins)
            current = current.model_copy(
                update={
                    "provenance": [
                        *current.provenance,
                        Provenance(operation=op, query_id=query.id, at=now, detail=detail),
                    ],
                    "updated_at": now,
                }
            )
            changed[ins.id] = current
            return current

        for op in plan:
            if op.op == "add" and op.text:
                if success:
                    sup, con = [query.id, *s_ids], list(f_ids)
                else:
                    sup, con = list(s_ids), [query.id, *f_ids]
                ins = Insight(
                    namespace=a.namespace,
                    text=op.text.strip(),
                    score=cfg.insight_initial_score,
                    supporting=list(dict.fromkeys(sup)),
                    contradicting=list(dict.fromkeys(con)),
                    roles=sorted(set(op.roles)),
                )
                touch(ins, "add", f"derived from a {a.outcome.value}")
                report.added.append(ins.id)
                continue
            target = live.get(op.insight_id or "")
            if target is None:
                continue
            if op.op == "edit" and op.text:
                cur = touch(target, "edit", f"was: {target.text}")
                changed[cur.id] = cur.model_copy(
                    update={
                        "text": op.text.strip(),
                        "embedding": None,
                        "roles": sorted(set(op.roles)) if op.roles else cur.roles,
                        **self._evidence(cur, query.id, success),
                    }
                )
                report.edited.append(cur.id)
            elif op.op == "agree":
                cur = touch(target, "agree")
                changed[cur.id] = cur.model_copy(
                    update={
                        "score": cur.score + cfg.insight_agree_bonus,
                        "supporting": list(dict.fromkeys([*cur.supporting, query.id])),
                    }
                )
                report.agreed.append(cur.id)
            elif op.op == "remove":
                cur = touch(target, "remove")
                changed[cur.id] = cur.model_copy(update={"retired": True})
                report.removed.append(cur.id)

    @staticmethod
    def _evidence(ins: Insight, qid: str, success: bool) -> dict[str, list[str]]:
        if success:
            return {"supporting": list(dict.fromkeys([*ins.supporting, qid]))}
        return {"contradicting": list(dict.fromkeys([*ins.contradicting, qid]))}

    def _score_used(
        self,
        a: Attempt,
        query: QueryNode,
        existing: dict[str, Insight],
        changed: dict[str, Insight],
        report: EvolutionReport,
    ) -> None:
        """Insights shown to the team share its fate: credit on success, blame on failure."""
        cfg = self.config
        if a.outcome == Outcome.UNKNOWN:
            return
        success = a.outcome == Outcome.SUCCESS
        now = utcnow()
        for iid in dict.fromkeys(a.used_insights):
            ins = changed.get(iid, existing.get(iid))
            if ins is None or ins.retired:
                continue
            delta = cfg.insight_reward if success else -cfg.insight_penalty
            op: InsightOperation = "reward" if success else "penalize"
            score = ins.score + delta
            prov = [
                *ins.provenance,
                Provenance(
                    operation=op, query_id=query.id, at=now, detail=f"{delta:+g} -> {score:g}"
                ),
            ]
            update: dict[str, object] = {
                "score": score,
                "provenance": prov,
                "updated_at": now,
                **self._evidence(ins, query.id, success),
            }
            (report.rewarded if success else report.penalized).append(iid)
            if score <= 0:
                update["retired"] = True
                prov.append(
                    Provenance(
                        operation="retire", query_id=query.id, at=now, detail="score reached zero"
                    )
                )
                report.retired.append(iid)
            changed[iid] = ins.model_copy(update=update)

    @staticmethod
    def _insight_edges(
        changed: dict[str, Insight], before: dict[str, tuple[set[str], set[str]]]
    ) -> list[Edge]:
        edges = []
        for iid, ins in changed.items():
            old_sup, old_con = before.get(iid, (set(), set()))
            edges += [
                Edge(kind=EdgeKind.SUPPORTS, src=q, dst=iid)
                for q in ins.supporting
                if q not in old_sup
            ]
            edges += [
                Edge(kind=EdgeKind.CONTRADICTS, src=q, dst=iid)
                for q in ins.contradicting
                if q not in old_con
            ]
        return edges

    def _embed_texts(self, insights: dict[str, Insight]) -> None:
        todo = [i for i, n in insights.items() if n.embedding is None]
        if not todo:
            return
        vectors = self.embedder.embed([insights[i].text for i in todo])
        for i, v in zip(todo, vectors, strict=True):
            insights[i] = insights[i].model_copy(update={"embedding": v})

    # ---- periodic merge ------------------------------------------------------------------
    def merge(self, namespace: str, query_id: str | None = None) -> list[tuple[str, list[str]]]:
        """Fold near-duplicate live insights into one, keeping every source's evidence."""
        (nodes,) = self.store.batch([ListNodes(NodeKind.INSIGHT, namespace, with_vectors=True)])
        live = {n.id: n for n in nodes if isinstance(n, Insight) and not n.retired}
        if len(live) < 2:
            return []
        groups = self.llm.merge_insights(
            MergeRequest(
                insights=[
                    InsightView(id=n.id, text=n.text, score=n.score, roles=n.roles)
                    for n in live.values()
                ]
            )
        ).groups
        now = utcnow()
        changed: dict[str, Insight] = {}
        before = {i: (set(n.supporting), set(n.contradicting)) for i, n in live.items()}
        merged: list[tuple[str, list[str]]] = []
        used: set[str] = set()
        for g in groups:
            members = [live[i] for i in dict.fromkeys(g.source_ids) if i in live and i not in used]
            if len(members) < 2:
                continue
            members.sort(key=lambda n: (-n.score, n.created_at))
            keep, rest = members[0], members[1:]
            used.update(n.id for n in members)
            roles = (
                []
                if any(not n.roles for n in members)
                else sorted({r for n in members for r in n.roles})
            )
            sources = [n.id for n in rest]
            changed[keep.id] = keep.model_copy(
                update={
                    "text": g.text.strip() or keep.text,
                    "embedding": None if g.text.strip() != keep.text else keep.embedding,
                    "score": max(n.score for n in members),
                    "supporting": list(dict.fromkeys(q for n in members for q in n.supporting)),
                    "contradicting": list(
                        dict.fromkeys(q for n in members for q in n.contradicting)
                    ),
                    "roles": roles,
                    "updated_at": now,
                    "provenance": [
                        *keep.provenance,
                        Provenance(
                            operation="merge",
                            query_id=query_id,
                            at=now,
                            detail="absorbed " + ",".join(sources),
                        ),
                    ],
                }
            )
            for n in rest:
                changed[n.id] = n.model_copy(
                    update={
                        "retired": True,
                        "updated_at": now,
                        "provenance": [
                            *n.provenance,
                            Provenance(
                                operation="merge",
                                query_id=query_id,
                                at=now,
                                detail=f"merged into {keep.id}",
                            ),
                        ],
                    }
                )
            merged.append((keep.id, sources))
        if not merged:
            return []
        self._embed_texts(changed)
        edges = self._insight_edges({k: changed[k] for k, _ in merged}, before)
        self.store.batch([PutNodes(list(changed.values())), PutEdges(edges)])
        return merged
