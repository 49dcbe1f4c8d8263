"""The public entry point: :class:`Memory` ties a store, an embedder and a reasoner together."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from pydantic import JsonValue

from gmem import boundary
from gmem.bulk import BulkWriter, Planned
from gmem.commit import ReadTracked, retrying
from gmem.config import MemoryConfig
from gmem.embedding import TextEmbedder, cached, make_embedder
from gmem.errors import (
    ConflictError,
    InvalidNamespaceError,
    NotFoundError,
    TrajectoryError,
    UnknownNamespaceError,
    UserInputError,
)
from gmem.evolution import Attempt, EvolutionReport, Evolver
from gmem.gnn import EmbeddingStatus, StructureIndex, torch_available
from gmem.inputs import check_text, checked_embedder
from gmem.llm import LLM, HeuristicLLM, make_llm, with_fallback
from gmem.llm.protocol import UsageLedger
from gmem.recall import Recall
from gmem.retrieval import Retriever
from gmem.roles import RoleProjector
from gmem.task import Task
from gmem.tokens import TokenCounter
from gmem.trajectory import (
    Trajectory,
    hashed_step_id,
    parse_trajectory,
    read_jsonl,
    step_id,
    trajectory_key,
)
from graph_store import GraphStore, open_store
from graph_store.model import (
    DEFAULT_NAMESPACE,
    Edge,
    EdgeKind,
    Insight,
    Node,
    NodeKind,
    Outcome,
    Provenance,
    QueryNode,
    Utterance,
    check_id,
    check_namespace,
    utcnow,
)
from graph_store.ops import (
    Counts,
    DeleteEdges,
    DeleteNamespace,
    DeleteNodes,
    DeleteTask,
    PutNodes,
    Removed,
)

if TYPE_CHECKING:
    from gmem.gnn.embed import EmbedReport


@dataclass
class TaskView:
    """One stored task: the query, its utterances per attempt, and the insights it touches."""

    query: QueryNode
    attempts: dict[int, list[Utterance]]
    supports: list[Insight]
    contradicts: list[Insight]
    replies: dict[str, list[str]] = field(default_factory=dict)  # utterance -> those it answers


@dataclass
class Quarantined:
    """What :meth:`Memory.quarantine` set aside."""

    queries: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    unlinked: int = 0


@dataclass
class IngestResult:
    ingested: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    reports: list[EvolutionReport] = field(default_factory=list)
    #: Trajectories found already stored (an earlier or interrupted run), not written again.
    already_stored: int = 0
    namespaces: dict[str, int] = field(default_factory=dict)  # trajectories per namespace


@dataclass(frozen=True)
class MemoryGraph:
    """The three tiers as plain lists, insights first, then queries, then utterances."""

    nodes: list[Node]
    edges: list[Edge]


_GRAPH_CHUNK = 1000  # ids per edge read while exporting; a read's size, not behaviour


class Memory:
    """G-Memory for one agent team (or many, separated by namespace).

    >>> memory = Memory(":memory:")                     # doctest: +SKIP
    >>> with memory.task("put a clean mug in the cabinet") as t:
    ...     hint = t.recall("planner").text
    ...     t.record(agent="p", role="planner", content="...")
    ...     t.finish(success=True)

    ``store`` is a :class:`graph_store.GraphStore`, a path, or a URL (``:memory:``,
    ``file.db``, ``neo4j://host``). With no ``llm`` and no endpoint in the environment,
    gmem runs its heuristic reasoner; see :mod:`gmem.llm.heuristic`. A chat model that
    fails (down, hung, unusable answers) is answered for by the heuristic, with one
    warning; see :mod:`gmem.llm.fallback`.
    """

    def __init__(
        self,
        store: GraphStore | str | Path = ":memory:",
        *,
        embedder: TextEmbedder | str | None = None,
        llm: LLM | None = None,
        config: MemoryConfig | None = None,
    ) -> None:
        self.config = config or MemoryConfig.from_env()
        self.store = store if isinstance(store, GraphStore) else open_store(store)
        # The cache answers repeated texts; the check still sees every answer it gives.
        self.embedder = checked_embedder(
            cached(
                embedder
                if embedder is not None and not isinstance(embedder, str)
                else make_embedder(embedder)
            )
        )
        # A chat model answers in degraded mode (the heuristic) while its endpoint fails,
        # unless config.llm_fallback is off.
        self.llm = (
            with_fallback(llm, self.config, self.embedder)
            if llm is not None
            else make_llm(self.config, embedder=self.embedder)
        )
        self.tokens = TokenCounter(self.config.tokenizer)
        self.structure = StructureIndex(
            self.store, self.config, self.embedder.name, self.embedder.dim
        )
        self._retriever = Retriever(
            self.store, self.embedder, self.llm, self.config, self.structure
        )
        self._projector = RoleProjector(self.llm, self.tokens, self.config)
        # Evolution reads, decides, then writes: through ReadTracked its writes carry the
        # versions it read, so racing writers conflict instead of losing updates.
        self._tracked = ReadTracked(self.store)
        self._evolver = Evolver(self._tracked, self.embedder, self.llm, self.tokens, self.config)
        # Bulk ingest calls no reasoner: key steps come from the heuristic's offline rule.
        self._bulk = BulkWriter(
            self.store,
            self.embedder,
            self.tokens,
            self.config,
            HeuristicLLM(self.embedder, self.config).extract_key_steps,
        )

    # ---- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def usage(self) -> UsageLedger:
        """Reasoner usage (calls and tokens) per memory operation."""
        return self.llm.usage

    # ---- tasks -----------------------------------------------------------------------
    def task(
        self,
        text: str,
        namespace: str = DEFAULT_NAMESPACE,
        roles: Mapping[str, str] | Sequence[str] | None = None,
        metadata: Mapping[str, JsonValue] | None = None,
    ) -> Task:
        """Start an attempt at a task. ``roles`` (names, or names to descriptions) makes
        recording or recalling for an undeclared role an error."""
        text = self._task_text(text)
        return Task(self, text, self._team_namespace(namespace), roles, metadata)

    def recall(self, text: str, namespace: str = DEFAULT_NAMESPACE) -> Recall:
        """Traverse the hierarchy for a task: past queries, insights, condensed traces."""
        text = self._task_text(text)
        # Reading an adapter's namespace is harmless (it holds no team memory), so only
        # the writing calls refuse reserved prefixes.
        recall = self._retriever.retrieve(text, check_namespace(namespace))
        recall._project = self._projector
        return recall

    def _task_text(self, text: object) -> str:
        check_text(text, "task text", self.config.max_text_chars)
        assert isinstance(text, str)
        if not text.strip():
            raise UserInputError("task text must not be empty")
        return text.strip()

    def _team_namespace(self, namespace: str) -> str:
        """A namespace team memory may use: valid, and outside the adapters' prefixes
        (``langgraph:`` holds LangGraph store items; sharing it would mix the two)."""
        check_namespace(namespace)
        for prefix in self.config.reserved_namespace_prefixes:
            if prefix and namespace.startswith(prefix):
                raise InvalidNamespaceError(
                    f"namespace {namespace!r} starts with {prefix!r}, which is reserved for "
                    "adapter records; choose another name for team memory"
                )
        return namespace

    async def arecall(self, text: str, namespace: str = DEFAULT_NAMESPACE) -> Recall:
        return await asyncio.to_thread(self.recall, text, namespace)

    def _evolve(self, attempt: Attempt) -> EvolutionReport:
        cfg = self.config
        report = retrying(
            lambda: self._evolver.finish(attempt),
            cfg.finish_conflict_retries,
            cfg.finish_conflict_backoff_s,
        )
        self.structure.task_finished(attempt.namespace, report.query_id)
        return report

    # ---- ingest ----------------------------------------------------------------------
    def ingest(
        self,
        trajectory: Trajectory | Mapping[str, object],
        namespace: str = DEFAULT_NAMESPACE,
        *,
        used_queries: Sequence[str] = (),
    ) -> EvolutionReport:
        """Store a finished trajectory (see :mod:`gmem.trajectory` for the schema).

        ``used_queries`` (query ids or task texts, added to the trajectory's own) are the
        past tasks whose memory the trajectory was played with; they become
        USED_MEMORY_OF edges, as a live task's recall would. No insight is credited: a
        replay cannot say which lessons its team read.

        Idempotent: a trajectory is keyed by its ``id`` or its content, and its utterances
        get ids derived from that key, so ingesting it again (a rerun after a crash, the
        same file twice) finds it stored and writes nothing; the report then says
        ``stored=False``. Each trajectory is one write batch: it is stored whole or not.
        """
        cfg = self.config
        traj = (
            trajectory
            if isinstance(trajectory, Trajectory)
            else parse_trajectory(trajectory, cfg.max_metadata_depth, cfg.max_text_chars)
        )
        space = self._team_namespace(traj.namespace or namespace)
        key = trajectory_key(traj, space)
        ids = [step_id(key, i) for i in range(len(traj.steps))]
        found = self._stored_first_step(key, ids)
        if isinstance(found, Utterance):
            return EvolutionReport(
                query_id=found.query_id,
                attempt=found.attempt,
                outcome=Outcome.UNKNOWN
                if traj.success is None
                else Outcome("success" if traj.success else "failure"),
                new_query=False,
                utterances=0,
                key_steps=0,
                stored=False,
            )
        task = self.task(traj.task, space, metadata=traj.metadata)
        task._step_ids = iter(ids)
        task.used_memory_of([*traj.used_queries, *used_queries])
        for step in traj.steps:
            task.record(
                step.agent,
                step.role,
                step.content,
                replies_to=[ids[r] for r in step.replies_to],
                action=step.action,
                observation=step.observation,
                reward=step.reward,
                metadata=step.metadata,
            )
        try:
            return task.finish(traj.success, traj.score)
        except ConflictError:
            # Another writer may have been ingesting this very trajectory.
            found = self._stored_first_step(key, ids)
            if not isinstance(found, Utterance):
                raise
            return EvolutionReport(
                query_id=found.query_id,
                attempt=found.attempt,
                outcome=Outcome.UNKNOWN,
                new_query=False,
                utterances=0,
                key_steps=0,
                stored=False,
            )

    def _stored_first_step(self, key: str, ids: list[str]) -> Node | None:
        """The trajectory's first utterance if it is stored, under its id or the one
        gmem gave it before (see ``hashed_step_id``)."""
        found = self.store.get_nodes([ids[0], hashed_step_id(key, 0)])
        return next((n for n in found if n is not None), None)

    async def aingest(
        self, trajectory: Trajectory | Mapping[str, object], namespace: str = DEFAULT_NAMESPACE
    ) -> EvolutionReport:
        return await asyncio.to_thread(self.ingest, trajectory, namespace)

    def ingest_jsonl(
        self,
        path: str | Path,
        namespace: str = DEFAULT_NAMESPACE,
        skip_bad: bool = False,
        progress: Callable[[int, int], None] | None = None,
        *,
        bulk: bool = False,
    ) -> IngestResult:
        """Ingest a JSONL file. Every line is validated before anything is written, so a bad
        line imports nothing unless ``skip_bad`` is set (then bad lines are reported).
        A line's own ``namespace`` wins over ``namespace``; ``progress(done, total)`` is
        called after each trajectory (after each batch with ``bulk``).

        ``bulk`` writes many trajectories per transaction without the reasoner: queries,
        traces, used-memory and similarity edges, but no insight work (see
        :mod:`gmem.bulk` for what runs and what does not)."""
        self._team_namespace(namespace)
        cfg = self.config
        result = IngestResult()
        good: list[Trajectory] = []
        lines = read_jsonl(path, skip_bad, cfg.max_metadata_depth, cfg.max_text_chars)
        for number, item in lines:
            checked: Trajectory | TrajectoryError = item
            if isinstance(item, Trajectory):
                try:
                    self._team_namespace(item.namespace or namespace)
                except UserInputError as exc:
                    if not skip_bad:
                        raise TrajectoryError(f"{path}:{number}: {exc}") from None
                    checked = TrajectoryError(str(exc))
            if isinstance(checked, TrajectoryError):
                result.skipped.append((number, str(checked)))
            else:
                good.append(checked)
        if bulk:
            step = self.config.bulk_ingest_batch
            planned = [self._plan(traj, namespace) for traj in good]
            for start in range(0, len(planned), step):
                part = planned[start : start + step]
                for p, report in zip(part, self._bulk.write(part), strict=True):
                    self._tally(result, report, p.namespace)
                if progress is not None:
                    progress(result.ingested + result.already_stored, len(good))
            return result
        for traj in good:
            self._tally(result, self.ingest(traj, namespace), traj.namespace or namespace)
            if progress is not None:
                progress(result.ingested + result.already_stored, len(good))
        return result

    @staticmethod
    def _tally(result: IngestResult, report: EvolutionReport, namespace: str) -> None:
        if report.stored:
            result.reports.append(report)
            result.ingested += 1
            result.namespaces[namespace] = result.namespaces.get(namespace, 0) + 1
        else:
            result.already_stored += 1

    def _plan(
        self,
        trajectory: Trajectory | Mapping[str, object],
        namespace: str,
        used_queries: Sequence[str] = (),
    ) -> Planned:
        """A trajectory checked and keyed for bulk writing (nothing written yet)."""
        cfg = self.config
        traj = (
            trajectory
            if isinstance(trajectory, Trajectory)
            else parse_trajectory(trajectory, cfg.max_metadata_depth, cfg.max_text_chars)
        )
        space = self._team_namespace(traj.namespace or namespace)
        return self._bulk.plan(traj, space, used_queries)

    # ---- inspection ------------------------------------------------------------------
    def _require_namespace(self, namespace: str) -> None:
        check_namespace(namespace)
        if namespace not in self.store.namespaces():
            raise UnknownNamespaceError(f"namespace {namespace!r} holds no memory")

    def insights(
        self, namespace: str | None = None, role: str | None = None, include_retired: bool = False
    ) -> list[Insight]:
        """Insights, best score first; ``role`` keeps those that apply to it."""
        if namespace is not None:
            self._require_namespace(namespace)
        nodes = self.store.list_nodes(NodeKind.INSIGHT, namespace)
        out = [
            n
            for n in nodes
            if isinstance(n, Insight)
            and (include_retired or not n.retired)
            and (role is None or not n.roles or role in n.roles)
        ]
        out.sort(key=lambda n: (n.retired, -n.score, n.created_at))
        return out

    def show(self, query_id: str) -> TaskView:
        check_id(query_id)
        node = self.store.get_node(query_id)
        if not isinstance(node, QueryNode):
            raise NotFoundError(f"no task with id {query_id}")
        edges = self.store.get_edges(
            [query_id], [EdgeKind.HAS_TRACE, EdgeKind.SUPPORTS, EdgeKind.CONTRADICTS], "out"
        )
        nodes = {n.id: n for n in self.store.get_nodes([e.dst for e in edges]) if n is not None}
        attempts: dict[int, list[Utterance]] = {}
        for n in nodes.values():
            if isinstance(n, Utterance):
                attempts.setdefault(n.attempt, []).append(n)
        for steps in attempts.values():
            steps.sort(key=lambda u: u.step)
        supports = [nodes[e.dst] for e in edges if e.kind == EdgeKind.SUPPORTS]
        contradicts = [nodes[e.dst] for e in edges if e.kind == EdgeKind.CONTRADICTS]
        utterances = [u.id for steps in attempts.values() for u in steps]
        replies: dict[str, list[str]] = {}
        for edge in self.store.get_edges(utterances, [EdgeKind.REPLIES_TO], "out"):
            replies.setdefault(edge.src, []).append(edge.dst)
        return TaskView(
            node,
            dict(sorted(attempts.items())),
            [n for n in supports if isinstance(n, Insight)],
            [n for n in contradicts if isinstance(n, Insight)],
            replies,
        )

    def stats(self, namespace: str | None = None) -> Counts:
        if namespace is not None:
            self._require_namespace(namespace)
        return self.store.count(namespace)

    def graph(
        self, namespace: str | None = None, progress: Callable[[str, int], None] | None = None
    ) -> MemoryGraph:
        """Every node of the three tiers (of one namespace, or all) and the edges among
        them, without vectors: what an export writes. ``progress(what, count)`` is called
        as nodes of each kind and edges in chunks are read."""
        if namespace is not None:
            self._require_namespace(namespace)
        nodes: list[Node] = []
        for kind in (NodeKind.INSIGHT, NodeKind.QUERY, NodeKind.UTTERANCE):
            found = self.store.list_nodes(kind, namespace)
            nodes.extend(found)
            if progress is not None:
                progress(kind.value, len(found))
        ids = sorted(n.id for n in nodes)
        inside = set(ids)
        edges: list[Edge] = []
        for start in range(0, len(ids), _GRAPH_CHUNK):
            out = self.store.get_edges(ids[start : start + _GRAPH_CHUNK], None, "out")
            edges.extend(e for e in out if e.dst in inside)
            if progress is not None:
                progress("edges", len(out))
        edges.sort(key=lambda e: (e.kind.value, e.src, e.dst))
        return MemoryGraph(nodes, edges)

    def embed_graph(
        self,
        namespace: str = DEFAULT_NAMESPACE,
        epochs: int | None = None,
        device: str | None = None,
        progress: Callable[[int, int, float], None] | None = None,
    ) -> EmbedReport:
        """Retrain the structural encoder (needs the ``gnn`` extra) and embed every task."""
        self._require_namespace(namespace)
        if not torch_available():
            raise UserInputError("gmem embed needs torch: pip install 'gmem-agents[gnn]'")
        return self.structure.train(namespace, epochs, device, progress)

    def embedding_status(self, namespace: str) -> EmbeddingStatus:
        """Whether the namespace's structural embeddings come from the current model."""
        return self.structure.status(namespace)

    def namespaces(self) -> list[str]:
        """The namespaces that hold anything, sorted."""
        return self.store.namespaces()

    def queries(self, namespace: str | None = None) -> list[QueryNode]:
        return [
            n for n in self.store.list_nodes(NodeKind.QUERY, namespace) if isinstance(n, QueryNode)
        ]

    # ---- forgetting ------------------------------------------------------------------
    def forget_task(self, query_id: str) -> Removed:
        """Erase a task: its query, traces and edges, and what memory derived from it.

        Forgetting is erasure, not unlinking: an insight whose text this task wrote (it
        added the insight, edited it, or wrote one of the insights merged into it) holds
        the task's words, so it is deleted, whatever other evidence it gathered since.
        Every other insight loses the task's id from its evidence lists and provenance
        (the provenance step stays, without the id), and ``RELATED_TO`` edges recorded
        for this task go. The embedded store runs with ``secure_delete`` and checkpoints
        its log after a delete, so the words do not linger in the file either.
        """
        cfg = self.config
        return retrying(
            lambda: self._forget_task(query_id),
            cfg.finish_conflict_retries,
            cfg.finish_conflict_backoff_s,
        )

    def _forget_task(self, query_id: str) -> Removed:
        # Through the tracked view: a finish racing this one conflicts instead of writing
        # back an insight that still names the task (or this one undoing its update).
        store = self._tracked
        check_id(query_id)
        node = store.get_node(query_id)
        if not isinstance(node, QueryNode):
            raise NotFoundError(f"no task with id {query_id}")
        insights = {
            n.id: n
            for n in store.list_nodes(NodeKind.INSIGHT, node.namespace, with_vectors=True)
            if isinstance(n, Insight)
        }
        authored = _written_by(query_id, insights)
        # The task's own edges name every insight it evidenced, also those whose bounded
        # supporting/contradicting lists no longer hold its id.
        evidenced = _evidence_of([query_id], store)
        cleaned: list[Insight] = []
        for ins in insights.values():
            if ins.id in authored:
                continue
            gave = _withdrawn_from(ins, {query_id}, evidenced)
            if gave or any(p.query_id == query_id for p in ins.provenance):
                provenance = [
                    p.model_copy(update={"query_id": None}) if p.query_id == query_id else p
                    for p in ins.provenance
                ]
                base = gave.insight if gave else ins
                cleaned.append(
                    base.model_copy(update={"provenance": provenance, "updated_at": utcnow()})
                )
        related = [
            e.key
            for e in store.get_edges(list(insights), [EdgeKind.RELATED_TO], "out")
            if e.props.get("query_id") == query_id
        ]
        results = store.batch(
            [
                PutNodes(cleaned),
                DeleteEdges(related),
                DeleteNodes(sorted(authored)),
                DeleteTask(query_id),
            ]
        )
        derived: Removed = results[2]
        task: Removed = results[3]
        return Removed(
            nodes=derived.nodes + task.nodes, edges=derived.edges + task.edges + results[1]
        )

    def quarantine(self, target: str, reason: str = "quarantined") -> Quarantined:
        """Set a suspect task (by query id) or a whole namespace aside, in one call.

        The queries are kept for inspection but marked quarantined: recall no longer shows
        them and insight derivation no longer compares against them. Every live insight
        whose text they wrote (added, edited, or merged from one they wrote) is retired,
        and their SUPPORTS/CONTRADICTS evidence is withdrawn from the insights they did
        not write, so nothing they taught keeps influencing a prompt. Nothing is deleted:
        :meth:`forget_task` or :meth:`forget_namespace` erase for good.
        """
        reason = check_text(reason, "reason", self.config.max_text_chars)
        cfg = self.config
        return retrying(
            lambda: self._quarantine(target, reason),
            cfg.finish_conflict_retries,
            cfg.finish_conflict_backoff_s,
        )

    def _quarantine(self, target: str, reason: str) -> Quarantined:
        store = self._tracked
        node = store.get_node(target) if _looks_like_id(target) else None
        if isinstance(node, QueryNode):
            namespace, queries = node.namespace, [node]
        else:
            self._require_namespace(target)
            namespace, queries = (
                target,
                [q for q in store.list_nodes(NodeKind.QUERY, target) if isinstance(q, QueryNode)],
            )
        insights = {
            n.id: n
            for n in store.list_nodes(NodeKind.INSIGHT, namespace, with_vectors=True)
            if isinstance(n, Insight)
        }
        ids = {q.id for q in queries}
        authored: set[str] = set()
        for qid in ids:
            authored |= _written_by(qid, insights)
        now = utcnow()
        result = Quarantined(queries=sorted(ids))
        changed: list[QueryNode | Insight] = [
            q.model_copy(
                update={"metadata": {**q.metadata, boundary.QUARANTINED: reason}, "updated_at": now}
            )
            for q in queries
        ]
        withdrawn: list[tuple[EdgeKind, str, str]] = []
        evidenced = _evidence_of(sorted(ids), store)
        for ins in insights.values():
            if ins.id in authored:
                if not ins.retired:
                    changed.append(
                        ins.model_copy(
                            update={
                                "retired": True,
                                "updated_at": now,
                                "provenance": [
                                    *ins.provenance,
                                    Provenance(operation="retire", at=now, detail=reason),
                                ],
                            }
                        )
                    )
                    result.retired.append(ins.id)
                continue
            gave = _withdrawn_from(ins, ids, evidenced)
            if gave:
                withdrawn += gave.edges
                changed.append(gave.insight.model_copy(update={"updated_at": now}))
        results = store.batch([PutNodes(changed), DeleteEdges(withdrawn)])
        result.unlinked = int(results[1])
        return result

    def forget_namespace(self, namespace: str) -> Removed:
        check_namespace(namespace)
        result: Removed = self.store.batch([DeleteNamespace(namespace)])[0]
        return result

    def merge_insights(self, namespace: str = DEFAULT_NAMESPACE) -> list[tuple[str, list[str]]]:
        """Run the periodic near-duplicate merge now."""
        cfg = self.config
        space = check_namespace(namespace)
        return retrying(
            lambda: self._evolver.merge(space),
            cfg.finish_conflict_retries,
            cfg.finish_conflict_backoff_s,
        )

    def ingest_many(
        self,
        trajectories: Iterable[Trajectory | Mapping[str, object]],
        namespace: str = DEFAULT_NAMESPACE,
        *,
        bulk: bool = False,
    ) -> list[EvolutionReport]:
        """Ingest trajectories in order, one report each (``stored=False``: found stored).

        Without ``bulk`` each goes through :meth:`ingest` (full evolution). With ``bulk``
        they are all checked first (a bad one writes nothing), then written
        ``bulk_ingest_batch`` per transaction without the reasoner; see :mod:`gmem.bulk`
        for which steps of evolution that runs."""
        if not bulk:
            return [self.ingest(t, namespace) for t in trajectories]
        planned = [self._plan(t, namespace) for t in trajectories]
        step = self.config.bulk_ingest_batch
        reports: list[EvolutionReport] = []
        for start in range(0, len(planned), step):
            reports += self._bulk.write(planned[start : start + step])
        return reports


def _written_by(query_id: str, insights: Mapping[str, Insight]) -> set[str]:
    """Insights whose text the task wrote, directly (add, edit) or through a merge that
    absorbed one of them: the merged text was composed from theirs."""
    authored = {
        i
        for i, ins in insights.items()
        if any(p.operation in ("add", "edit") and p.query_id == query_id for p in ins.provenance)
    }
    grew = True
    while grew:  # a merge of a merge: follow "absorbed" until nothing new is reached
        grew = False
        for i, ins in insights.items():
            if i in authored:
                continue
            for p in ins.provenance:
                if p.operation == "merge" and p.detail.startswith("absorbed "):
                    sources = p.detail.removeprefix("absorbed ").split(",")
                    if authored.intersection(sources):
                        authored.add(i)
                        grew = True
                        break
    return authored


def _evidence_of(query_ids: Sequence[str], store: GraphStore) -> set[tuple[EdgeKind, str, str]]:
    """The SUPPORTS/CONTRADICTS edges of the tasks, as (kind, task, insight)."""
    if not query_ids:
        return set()
    edges = store.get_edges(list(query_ids), [EdgeKind.SUPPORTS, EdgeKind.CONTRADICTS], "out")
    return {(e.kind, e.src, e.dst) for e in edges}


@dataclass(frozen=True)
class _Withdrawn:
    insight: Insight
    edges: list[tuple[EdgeKind, str, str]]


def _withdrawn_from(
    ins: Insight, tasks: set[str], evidenced: set[tuple[EdgeKind, str, str]]
) -> _Withdrawn | None:
    """``ins`` without the evidence ``tasks`` gave it (ids out of its lists, each task
    counted off its totals once), and the edges that carried it; None when they gave
    none. ``evidenced`` are the tasks' edges: the bounded lists may have dropped a task
    that still counts."""
    sup = {q for k, q, i in evidenced if k == EdgeKind.SUPPORTS and i == ins.id}
    con = {q for k, q, i in evidenced if k == EdgeKind.CONTRADICTS and i == ins.id}
    sup |= tasks.intersection(ins.supporting)
    con |= tasks.intersection(ins.contradicting)
    if not sup and not con:
        return None
    edges = [(EdgeKind.SUPPORTS, q, ins.id) for q in sorted(sup)]
    edges += [(EdgeKind.CONTRADICTS, q, ins.id) for q in sorted(con)]
    cleaned = ins.model_copy(
        update={
            "supporting": [q for q in ins.supporting if q not in tasks],
            "contradicting": [q for q in ins.contradicting if q not in tasks],
            "support_total": max(ins.support_count - len(sup), 0),
            "contradiction_total": max(ins.contradiction_count - len(con), 0),
        }
    )
    return _Withdrawn(cleaned, edges)


def _looks_like_id(value: str) -> bool:
    return (
        isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef" for c in value)
    )
