"""Evolution of the whole hierarchy after a task (paper section 3.3).

One finished attempt becomes one store transaction: the query node (created, or updated
with another attempt), its interaction graph with key steps marked, edges to the queries
whose memory it used and to its nearest queries, and the insight operations derived from
comparing it with successes and failures of the same procedure (text similarity proposes
them, action skeletons decide). Every live rule of the procedure is checked against the
new attempt: it supports a rule only when its own trajectory shows the rule's pattern.
Insights that reached the team's prompts move by the outcome's advantage over similar
past tasks, bounded; at zero, or contradicted more than supported, they retire. Every
``merge_every`` new tasks a maintenance pass merges duplicates, decays unused scores
toward neutral and bounds the number of live insights, in a transaction of its own.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import combinations

import numpy as np
import numpy.typing as npt
from pydantic import JsonValue

from gmem import attempts, boundary, rules
from gmem.config import MemoryConfig
from gmem.embedding import TextEmbedder
from gmem.llm.lessons import evidence as lesson_evidence
from gmem.llm.protocol import (
    LLM,
    InsightOp,
    InsightRequest,
    InsightView,
    KeyStepsRequest,
    MergeRequest,
    RuleView,
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
    InsightRule,
    NodeKind,
    Outcome,
    Provenance,
    QueryNode,
    RuleKind,
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
    Where,
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


@dataclass(frozen=True)
class _Ref:
    """A past query offered as a reference: its latest attempt, as rules and as a view."""

    attempt: rules.Attempt
    view: TrajectoryView


@dataclass(frozen=True)
class _Procedure:
    """The references of one procedure, as :meth:`Evolver._procedure_refs` chose them."""

    same: list[_Ref]
    fails: list[_Ref]
    others: list[_Ref]
    scope: list[str]


@dataclass(frozen=True)
class _Refs:
    """The text-similar past queries, and their attempts' successes for the baseline."""

    items: list[_Ref]
    successes: int
    attempts: int


_CREDIT_OPS = frozenset({"reward", "penalize"})

#: The condition that lists only live insights (``retired`` absent or false).
_LIVE = (Where(("retired",), "ne", True),)


def bounded_credit(history: list[Provenance], keep: int) -> list[Provenance]:
    """``history`` with only its last ``keep`` reward/penalize entries.

    Credit is written each time an insight is shown and the task ends, so an insight
    useful everywhere would carry one entry per task ever run; its score already sums
    them. Authorship (add, edit, merge), agreement and retirement, which forget,
    quarantine and the provisional check read, are all kept.
    """
    credits = [i for i, p in enumerate(history) if p.operation in _CREDIT_OPS]
    if len(credits) <= keep:
        return history
    dropped = set(credits[: len(credits) - keep])
    return [p for i, p in enumerate(history) if i not in dropped]


def noted(
    ins: Insight,
    keep: int,
    supports: Sequence[str] = (),
    contradicts: Sequence[str] = (),
    known: frozenset[str] = frozenset(),
) -> Insight:
    """``ins`` with tasks added to its evidence: each list keeps its ``keep`` most recent
    ids (a task named again moves to the end), the totals count each task once.

    ``known`` are tasks this insight already counted whose ids the lists no longer hold
    (their SUPPORTS/CONTRADICTS edges say so): noted again, they are not counted twice.
    """
    sup, con = list(ins.supporting), list(ins.contradicting)
    n_sup, n_con = ins.support_count, ins.contradiction_count
    for qid in dict.fromkeys(supports):
        n_sup += qid not in sup and qid not in known
        sup = [q for q in sup if q != qid] + [qid]
    for qid in dict.fromkeys(contradicts):
        n_con += qid not in con and qid not in known
        con = [q for q in con if q != qid] + [qid]
    return ins.model_copy(
        update={
            "supporting": sup[-keep:],
            "contradicting": con[-keep:],
            "support_total": n_sup,
            "contradiction_total": n_con,
        }
    )


def _views(utts: list[Utterance]) -> list[StepView]:
    return [StepView(index=u.step, **attempts.said(u)) for u in utts]


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
        self._started = utcnow()
        self._last_pass: dict[str, datetime] = {}

    # ---- the query node and its trace --------------------------------------------------
    def _query_node(self, a: Attempt) -> tuple[QueryNode, bool]:
        qid = query_id_for(a.namespace, a.task)
        (found,) = self.store.batch([GetNodes([qid], with_vectors=True)])
        old = found[0]
        vec = (
            old.embedding
            if isinstance(old, QueryNode) and old.embedding is not None
            else self.embedder.embed([a.task])[0]
        )
        return attempts.next_attempt(
            old if isinstance(old, QueryNode) else None,
            query_id=qid,
            text=a.task,
            namespace=a.namespace,
            outcome=a.outcome,
            score=a.score,
            metadata=a.metadata,
            embedding=vec,
        )

    def _trace(self, a: Attempt, query: QueryNode) -> tuple[list[Utterance], list[Edge]]:
        views = attempts.step_views(a.steps)
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
                **attempts.said(s),
                tokens=self.tokens.count(s.content),
                key_step=i in keep,
                metadata=s.metadata,
                created_at=s.created_at,
            )
            for i, s in enumerate(a.steps)
        ]
        replies = ((s.id, r) for s in a.steps for r in s.replies_to)
        return utts, attempts.trace_edges(query.id, [u.id for u in utts], replies)

    # ---- references for insight derivation ---------------------------------------------
    def _references(self, a: Attempt, query: QueryNode, vec: npt.NDArray[np.float32]) -> _Refs:
        """Text-similar past queries with their latest attempt's key steps and procedure.

        Text similarity only proposes candidates; which of them are the same procedure is
        decided from their skeletons in :meth:`_procedure_refs`.
        """
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
            return _Refs([], 0, 0)
        ids = [h.id for h in hits]
        nodes, reached = self.store.batch(
            [GetNodes(ids), Neighbors(ids, 1, [EdgeKind.HAS_TRACE], "out")]
        )
        (utt_nodes,) = self.store.batch([GetNodes([r.id for r in reached])])
        traces: dict[str, list[Utterance]] = defaultdict(list)
        for u in utt_nodes:
            if isinstance(u, Utterance):
                traces[u.query_id].append(u)
        refs: list[_Ref] = []
        successes = attempts = 0
        for node in nodes:
            if not isinstance(node, QueryNode) or boundary.quarantined(node):
                continue
            successes += node.successes
            attempts += node.successes + node.failures
            if node.outcome == Outcome.UNKNOWN:
                continue
            latest = [u for u in traces[node.id] if u.attempt == node.attempts]
            latest.sort(key=lambda u: u.step)
            key = [u for u in latest if u.key_step] or latest
            steps = rules.skeleton_steps(node.text, [u.action for u in key])
            view = TrajectoryView(
                task=node.text, outcome=node.outcome.value, steps=_views(key), procedure=list(steps)
            )
            refs.append(_Ref(rules.Attempt(node.id, node.outcome, steps), view))
        return _Refs(refs, successes, attempts)

    def _procedure_refs(self, this: rules.Attempt, refs: list[_Ref]) -> _Procedure:
        """The successes of this attempt's procedure, the failures within its scope, the
        successes of other procedures, and the scope itself.

        A success anchors the procedure itself; a failure is placed with the past success
        whose procedure it overlaps most, and teaches nothing when it fits none. The scope
        is the procedure's signature cut to the steps that tell it from the others.
        """
        cfg = self.config
        none = _Procedure([], [], [], [])
        past_s = [r for r in refs if r.attempt.outcome == Outcome.SUCCESS and r.attempt.steps]
        past_f = [r for r in refs if r.attempt.outcome == Outcome.FAILURE and r.attempt.steps]
        if not this.steps or not past_s:
            return none
        weights = rules.step_weights([this.steps, *(r.attempt.steps for r in refs)])
        if this.outcome == Outcome.SUCCESS:
            anchor = this.steps
        else:
            # A failure often wanders or stops early, so it is placed by how much of a
            # success it contains, and kept only if it lies within that procedure's scope.
            present = set(this.steps)
            best = max(
                past_s,
                key=lambda r: sum(s in present for s in r.attempt.steps) / len(r.attempt.steps),
            )
            anchor = best.attempt.steps
        sims = {
            r.attempt.id: rules.weighted_similarity(anchor, r.attempt.steps, weights)
            for r in past_s
        }
        ranked = sorted(past_s, key=lambda r: -sims[r.attempt.id])
        same = [r for r in ranked if sims[r.attempt.id] >= cfg.procedure_similarity]
        others = [r for r in ranked if sims[r.attempt.id] < cfg.procedure_similarity]
        same = same[: cfg.reference_k]
        procs = [r.attempt.steps for r in same]
        if this.outcome == Outcome.SUCCESS:
            procs.append(this.steps)
        scope = rules.distinctive(
            rules.signature(procs, cfg.pattern_min_support),
            procs,
            [r.attempt.steps for r in others],
            cfg.lesson_min_contrast,
        )
        if not scope:
            # No step the procedure's successes share tells it from the other successes:
            # what they share is search (walking, looking), and lessons about it would
            # be shown to every task.
            return none
        if this.outcome == Outcome.FAILURE and not rules.in_scope(
            scope, this.steps, cfg.scope_min_share
        ):
            return none
        fails = [r for r in past_f if rules.in_scope(scope, r.attempt.steps, cfg.scope_min_share)]
        return _Procedure(same, fails[: cfg.reference_k], others[: cfg.reference_k], scope)

    def _existing_insights(
        self, a: Attempt, vec: npt.NDArray[np.float32], ref_ids: list[str], query: QueryNode
    ) -> tuple[dict[str, Insight], set[tuple[EdgeKind, str]]]:
        """The insights this attempt may bear on, and the evidence its task already gave
        (a repeated task: its edges say so even when the bounded lists no longer name it),
        as (edge kind, insight id)."""
        evidence = [EdgeKind.SUPPORTS, EdgeKind.CONTRADICTS]
        edges, similar, own = self.store.batch(
            [
                GetEdges(ref_ids, evidence, "out"),
                VectorSearch(
                    NodeKind.INSIGHT,
                    vec,
                    self.config.insight_k * self.config.existing_insight_oversample,
                    a.namespace,
                ),
                GetEdges([query.id] if query.attempts > 1 else [], evidence, "out"),
            ]
        )
        ids = list(
            dict.fromkeys([*a.used_insights, *(e.dst for e in edges), *(h.id for h in similar)])
        )
        (nodes,) = self.store.batch([GetNodes(ids, with_vectors=True)])
        return {n.id: n for n in nodes if isinstance(n, Insight)}, {(e.kind, e.dst) for e in own}

    # ---- the transaction -----------------------------------------------------------------
    def finish(self, a: Attempt) -> EvolutionReport:
        """Plan everything this attempt changes from reads, then write it in one batch.

        Nothing is written before the final batch, so a caller may rerun the whole
        method when a concurrent writer got there first.
        """
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

        key = [u for u in utts if u.key_step] or utts
        this_steps = rules.skeleton_steps(a.task, [u.action for u in key])
        this = rules.Attempt(query.id, a.outcome, this_steps)
        refs = self._references(a, query, vec)
        proc = self._procedure_refs(this, refs.items)
        same, fails = proc.same, proc.fails
        existing, known = self._existing_insights(a, vec, [r.attempt.id for r in refs.items], query)
        live = {i: n for i, n in existing.items() if not n.retired}
        request = InsightRequest(
            trajectory=TrajectoryView(
                task=a.task,
                outcome=a.outcome.value,
                steps=_views(key),
                procedure=list(this_steps),
            ),
            successes=[r.view for r in same],
            failures=[r.view for r in fails],
            others=[r.view for r in proc.others],
            roles=sorted({s.role for s in a.steps}),
            existing=[_insight_view(n) for n in live.values()],
        )
        ops = self.llm.derive_insights(request).operations
        changed: dict[str, Insight] = {}
        before = {i: (set(n.supporting), set(n.contradicting)) for i, n in existing.items()}
        attempts = [this, *(r.attempt for r in same), *(r.attempt for r in fails)]
        self._apply_ops(ops, a, query, live, changed, report, attempts, request, proc.scope)
        peers = {r.attempt.id for r in same}
        self._weigh_evidence(this, query, live, changed, report, known, peers)
        self._credit(a, query, refs, existing, changed, report)
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

    # ---- insight operations --------------------------------------------------------------
    @staticmethod
    def _rule(
        op: InsightOp, request: InsightRequest, attempts: list[rules.Attempt], scope: list[str]
    ) -> InsightRule | None:
        """The stored rule of an ADD: the reasoner's kind and actions when they are steps
        of the procedures it was shown, else a note; scope and evidence from the engine.
        None when a positive lesson lies wholly outside the procedure's scope."""
        procs = [
            list(t.procedure) for t in (request.trajectory, *request.successes, *request.failures)
        ]
        known = {step for p in procs for step in p}
        view = op.rule
        kind: RuleKind = "note"
        actions: list[str] = []
        if view is not None and view.kind != "note":
            acts = list(dict.fromkeys(view.actions))
            fits = {"order": len(acts) == 2, "avoid": len(acts) == 1}.get(view.kind, bool(acts))
            if fits and all(s in known for s in acts):
                kind, actions = view.kind, acts
        if kind in ("require", "order") and scope:
            # A positive lesson names steps that make the procedure what it is; a step
            # outside its scope is search that happened to recur (where this episode's
            # object lay) or what every procedure does, and would mislead elsewhere.
            inside = [s for s in actions if s in scope]
            if not inside or (kind == "order" and inside != actions):
                return None
            actions = inside
        rule = InsightRule(kind=kind, actions=actions, scope=scope)
        s_steps = [x.steps for x in attempts if x.outcome == Outcome.SUCCESS]
        f_steps = [x.steps for x in attempts if x.outcome == Outcome.FAILURE]
        return rule.model_copy(update={"evidence": lesson_evidence(rule, s_steps, f_steps)})

    def _verdict(self, rule: InsightRule, attempt: rules.Attempt) -> rules.Verdict | None:
        """What an attempt says about a rule. A success speaks for its procedure only when
        it took every step of the rule's scope; a failure deviates by nature, so it counts
        when it took a part (``scope_min_share``) of them."""
        cfg = self.config
        success = attempt.outcome == Outcome.SUCCESS
        share = cfg.evidence_scope_share if success else cfg.scope_min_share
        return rules.verdict(rule, attempt, share)

    def _new_insight(
        self,
        op: InsightOp,
        a: Attempt,
        query: QueryNode,
        attempts: list[rules.Attempt],
        request: InsightRequest,
        scope: list[str],
    ) -> Insight | None:
        """The insight an ADD writes, supported by the attempts that show its rule."""
        rule = self._rule(op, request, attempts, scope)
        if rule is None or not op.text:
            return None
        sup: list[str] = []
        con: list[str] = []
        if rule.kind == "note":
            sup = [query.id]  # the attempt it was derived from is its only evidence
        for x in attempts:
            v = self._verdict(rule, x)
            if v == "supports":
                sup.append(x.id)
            elif v == "contradicts":
                con.append(x.id)
        blank = Insight(
            namespace=a.namespace,
            text=op.text.strip(),
            score=self.config.insight_initial_score,
            roles=sorted(set(op.roles)),
            rule=rule,
        )
        return noted(blank, self.config.insight_evidence_keep, sup, con)

    def _apply_ops(
        self,
        plan: list[InsightOp],
        a: Attempt,
        query: QueryNode,
        live: dict[str, Insight],
        changed: dict[str, Insight],
        report: EvolutionReport,
        attempts: list[rules.Attempt],
        request: InsightRequest,
        scope: list[str],
    ) -> None:
        cfg = self.config
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
                ins = self._new_insight(op, a, query, attempts, request, scope)
                if ins is None:
                    continue
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
                    }
                )
                report.edited.append(cur.id)
            elif op.op == "agree":
                cur = touch(target, "agree")
                score = min(cfg.insight_max_score, cur.score + cfg.insight_agree_bonus)
                changed[cur.id] = cur.model_copy(update={"score": score})
                report.agreed.append(cur.id)
            elif op.op == "remove":
                cur = touch(target, "remove")
                changed[cur.id] = cur.model_copy(update={"retired": True})
                report.removed.append(cur.id)

    def _weigh_evidence(
        self,
        this: rules.Attempt,
        query: QueryNode,
        live: dict[str, Insight],
        changed: dict[str, Insight],
        report: EvolutionReport,
        known: set[tuple[EdgeKind, str]],
        peers: set[str],
    ) -> None:
        """Check this attempt against every live rule of its procedure: it joins the
        supporting set of those its trajectory shows, the contradicting set of those its
        outcome breaks; an insight contradicted more often than supported retires."""
        cfg = self.config
        now = utcnow()
        keep = cfg.insight_evidence_keep
        for iid in live:
            ins = changed.get(iid, live[iid])
            if ins.retired or ins.rule is None:
                continue
            v = self._verdict(ins.rule, this)
            if v is None:
                continue
            if (
                v == "supports"
                and ins.supporting
                and len(peers.intersection(ins.supporting)) < cfg.evidence_min_peers
            ):
                # Steps alone would let another procedure's tasks that happen to take
                # the scope's steps vouch for the rule. A rule nobody supports yet (a
                # person's) takes its first supporter by steps; a contradiction always
                # counts, so a wrong rule still retires.
                continue
            kind = EdgeKind.SUPPORTS if v == "supports" else EdgeKind.CONTRADICTS
            seen = frozenset({query.id}) if (kind, iid) in known else frozenset()
            if v == "supports":
                ins = noted(ins, keep, supports=[query.id], known=seen)
            else:
                ins = noted(ins, keep, contradicts=[query.id], known=seen)
            con = ins.contradiction_count
            if con >= cfg.retire_min_evidence and con > ins.support_count:
                ins = ins.model_copy(
                    update={
                        "retired": True,
                        "updated_at": now,
                        "provenance": [
                            *ins.provenance,
                            Provenance(
                                operation="retire",
                                query_id=query.id,
                                at=now,
                                detail=(
                                    f"contradicted by {con} tasks, supported by {ins.support_count}"
                                ),
                            ),
                        ],
                    }
                )
                report.retired.append(iid)
            changed[iid] = ins

    def _credit(
        self,
        a: Attempt,
        query: QueryNode,
        refs: _Refs,
        existing: dict[str, Insight],
        changed: dict[str, Insight],
        report: EvolutionReport,
    ) -> None:
        """Insights rendered to the team move by the outcome's advantage over similar tasks.

        The baseline is the success rate of the text-similar past tasks' attempts: a
        lesson shown in a domain that succeeds anyway earns nothing for it, and one shown
        in a hard domain earns when the team does better than usual. Without enough
        history to say what was expected, nothing moves.
        """
        cfg = self.config
        if a.outcome == Outcome.UNKNOWN or refs.attempts < cfg.credit_min_baseline:
            return
        baseline = refs.successes / refs.attempts
        advantage = (1.0 if a.outcome == Outcome.SUCCESS else 0.0) - baseline
        delta = cfg.insight_credit * advantage
        now = utcnow()
        for iid in dict.fromkeys(a.used_insights):
            ins = changed.get(iid, existing.get(iid))
            if ins is None or ins.retired:
                continue
            score = min(cfg.insight_max_score, max(0.0, ins.score + delta))
            op: InsightOperation = "reward" if delta >= 0 else "penalize"
            prov = bounded_credit(
                [
                    *ins.provenance,
                    Provenance(
                        operation=op,
                        query_id=query.id,
                        at=now,
                        detail=f"{delta:+.3g} (baseline {baseline:.2f}) -> {score:.3g}",
                    ),
                ],
                cfg.insight_credit_history,
            )
            update: dict[str, object] = {"score": score, "provenance": prov, "updated_at": now}
            if delta > 0:
                report.rewarded.append(iid)
            elif delta < 0:
                report.penalized.append(iid)
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

    # ---- periodic maintenance: merge, decay, bound -----------------------------------------
    def merge(self, namespace: str, query_id: str | None = None) -> list[tuple[str, list[str]]]:
        """Fold near-duplicate live insights into one, keeping every source's evidence;
        decay the scores of insights no task credited since the last pass toward neutral;
        retire rules no task's trajectory supports any more, and the lowest scored beyond
        ``max_live_insights``."""
        # Only the live ones: retired insights are never touched here, and they are most
        # of the tier in a long history (merging and retirement bound the live ones, not
        # the total), so building them at every pass grew with everything ever retired.
        (nodes,) = self.store.batch([ListNodes(NodeKind.INSIGHT, namespace, True, where=_LIVE)])
        live = {n.id: n for n in nodes if isinstance(n, Insight) and not n.retired}
        last_pass = self._last_pass.get(namespace, self._started)
        now = utcnow()
        self._last_pass[namespace] = now
        groups = (
            self.llm.merge_insights(
                MergeRequest(insights=[_insight_view(n) for n in live.values()])
            ).groups
            if len(live) >= 2
            else []
        )
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
            text = g.text.strip() or keep.text
            sup = list(dict.fromkeys(q for n in members for q in n.supporting))
            con = list(dict.fromkeys(q for n in members for q in n.contradicting))
            # Each member counted its own tasks; the ones two members both list count once
            # (overlap beyond the bounded lists cannot be seen, and is counted twice).
            n_sup = sum(n.support_count for n in members) - (
                sum(len(n.supporting) for n in members) - len(sup)
            )
            n_con = sum(n.contradiction_count for n in members) - (
                sum(len(n.contradicting) for n in members) - len(con)
            )
            bound = self.config.insight_evidence_keep
            changed[keep.id] = keep.model_copy(
                update={
                    "text": text,
                    "embedding": None if text != keep.text else keep.embedding,
                    "score": max(n.score for n in members),
                    "supporting": sup[-bound:],
                    "contradicting": con[-bound:],
                    "support_total": n_sup,
                    "contradiction_total": n_con,
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
        self._decay(live, changed, last_pass)
        self._retire_unsupported(live, changed, query_id, now)
        self._bound(live, changed, query_id, now)
        if not changed:
            return merged
        self._embed_texts(changed)
        edges = self._insight_edges({k: changed[k] for k, _ in merged}, before)
        self.store.batch([PutNodes(list(changed.values())), PutEdges(edges)])
        return merged

    def _decay(
        self, live: dict[str, Insight], changed: dict[str, Insight], since: datetime
    ) -> None:
        cfg = self.config
        neutral = cfg.insight_initial_score
        for iid, ins in live.items():
            cur = changed.get(iid, ins)
            if cur.retired or abs(cur.score - neutral) < 1e-9:
                continue
            credited = any(
                p.operation in ("reward", "penalize", "agree") and p.at > since
                for p in cur.provenance
            )
            if not credited:
                score = neutral + (cur.score - neutral) * cfg.insight_decay
                changed[iid] = cur.model_copy(update={"score": score})

    @staticmethod
    def _retire_unsupported(
        live: dict[str, Insight],
        changed: dict[str, Insight],
        query_id: str | None,
        now: datetime,
    ) -> None:
        """A rule whose supporting set is empty (never evidenced, or its tasks forgotten)
        rests on nothing: recall cannot place it in a procedure, and nothing says it holds.
        Notes and insights without a rule are left alone: their support is not checked
        against trajectories."""
        for iid, ins in live.items():
            cur = changed.get(iid, ins)
            if cur.retired or cur.rule is None or cur.rule.kind == "note" or cur.support_count:
                continue
            changed[iid] = _retired(cur, query_id, now, "no task's trajectory supports it")

    def _bound(
        self,
        live: dict[str, Insight],
        changed: dict[str, Insight],
        query_id: str | None,
        now: datetime,
    ) -> None:
        cfg = self.config
        alive = [changed.get(i, n) for i, n in live.items()]
        alive = [n for n in alive if not n.retired]
        if len(alive) <= cfg.max_live_insights:
            return
        alive.sort(key=lambda n: (n.score, n.support_count, n.created_at))
        reason = f"lowest scored beyond {cfg.max_live_insights} live insights"
        for ins in alive[: len(alive) - cfg.max_live_insights]:
            changed[ins.id] = _retired(ins, query_id, now, reason)


def _retired(ins: Insight, query_id: str | None, now: datetime, reason: str) -> Insight:
    """``ins`` retired by the maintenance pass, with the reason in its history."""
    entry = Provenance(operation="retire", query_id=query_id, at=now, detail=reason)
    return ins.model_copy(
        update={"retired": True, "updated_at": now, "provenance": [*ins.provenance, entry]}
    )


def _insight_view(ins: Insight) -> InsightView:
    rule = ins.rule
    return InsightView(
        id=ins.id,
        text=ins.text,
        score=ins.score,
        roles=ins.roles,
        rule=None
        if rule is None
        else RuleView(kind=rule.kind, actions=list(rule.actions), scope=list(rule.scope)),
    )
