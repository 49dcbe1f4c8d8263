"""The public entry point: :class:`Memory` ties a store, an embedder and a reasoner together."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from pydantic import JsonValue

from gmem.config import MemoryConfig
from gmem.embedding import TextEmbedder, make_embedder
from gmem.errors import NotFoundError, TrajectoryError, UnknownNamespaceError, UserInputError
from gmem.evolution import Attempt, EvolutionReport, Evolver
from gmem.llm import LLM, make_llm
from gmem.llm.protocol import UsageLedger
from gmem.recall import Recall
from gmem.retrieval import Retriever
from gmem.roles import RoleProjector
from gmem.task import Task
from gmem.tokens import TokenCounter
from gmem.trajectory import Trajectory, parse_trajectory, read_jsonl
from graph_store import GraphStore, open_store
from graph_store.model import (
    DEFAULT_NAMESPACE,
    EdgeKind,
    Insight,
    NodeKind,
    QueryNode,
    Utterance,
    check_id,
    check_namespace,
)
from graph_store.ops import Counts, DeleteNamespace, DeleteTask, PutNodes, Removed


@dataclass
class TaskView:
    """One stored task: the query, its utterances per attempt, and the insights it touches."""

    query: QueryNode
    attempts: dict[int, list[Utterance]]
    supports: list[Insight]
    contradicts: list[Insight]


@dataclass
class IngestResult:
    ingested: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    reports: list[EvolutionReport] = field(default_factory=list)


class Memory:
    """G-Memory for one agent team (or many, separated by namespace).

    >>> memory = Memory(":memory:")                     # doctest: +SKIP
    >>> with memory.task("put a clean mug in the cabinet") as t:
    ...     hint = t.recall("planner").text
    ...     t.record(agent="p", role="planner", content="...")
    ...     t.finish(success=True)

    ``store`` is a :class:`graph_store.GraphStore`, a path, or a URL (``:memory:``,
    ``file.db``, ``neo4j://host``). With no ``llm`` and no endpoint in the environment,
    gmem runs its heuristic reasoner; see :mod:`gmem.llm.heuristic`.
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
        self.embedder = (
            embedder
            if embedder is not None and not isinstance(embedder, str)
            else make_embedder(embedder)
        )
        self.llm = llm if llm is not None else make_llm(self.config, embedder=self.embedder)
        self.tokens = TokenCounter(self.config.tokenizer)
        self._retriever = Retriever(self.store, self.embedder, self.llm, self.config)
        self._projector = RoleProjector(self.llm, self.tokens, self.config)
        self._evolver = Evolver(self.store, self.embedder, self.llm, self.tokens, self.config)

    @classmethod
    def open(cls, store: GraphStore | str | Path, **kwargs: object) -> Memory:
        return cls(store, **kwargs)  # type: ignore[arg-type]

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
        if not isinstance(text, str) or not text.strip():
            raise UserInputError("task text must not be empty")
        return Task(self, text.strip(), check_namespace(namespace), roles, metadata)

    def recall(self, text: str, namespace: str = DEFAULT_NAMESPACE) -> Recall:
        """Traverse the hierarchy for a task: past queries, insights, condensed traces."""
        if not isinstance(text, str) or not text.strip():
            raise UserInputError("task text must not be empty")
        recall = self._retriever.retrieve(text.strip(), check_namespace(namespace))
        recall._project = self._projector
        return recall

    async def arecall(self, text: str, namespace: str = DEFAULT_NAMESPACE) -> Recall:
        return await asyncio.to_thread(self.recall, text, namespace)

    def _evolve(self, attempt: Attempt) -> EvolutionReport:
        return self._evolver.finish(attempt)

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
        """
        traj = (
            trajectory if isinstance(trajectory, Trajectory) else parse_trajectory(dict(trajectory))
        )
        task = self.task(traj.task, traj.namespace or namespace, metadata=traj.metadata)
        task.used_memory_of([*traj.used_queries, *used_queries])
        ids: list[str] = []
        for step in traj.steps:
            ids.append(
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
            )
        return task.finish(traj.success, traj.score)

    async def aingest(
        self, trajectory: Trajectory | Mapping[str, object], namespace: str = DEFAULT_NAMESPACE
    ) -> EvolutionReport:
        return await asyncio.to_thread(self.ingest, trajectory, namespace)

    def ingest_jsonl(
        self, path: str | Path, namespace: str = DEFAULT_NAMESPACE, skip_bad: bool = False
    ) -> IngestResult:
        """Ingest a JSONL file. Every line is validated before anything is written, so a bad
        line imports nothing unless ``skip_bad`` is set (then bad lines are reported)."""
        check_namespace(namespace)
        result = IngestResult()
        good: list[Trajectory] = []
        for number, item in read_jsonl(path, skip_bad=skip_bad):
            if isinstance(item, TrajectoryError):
                result.skipped.append((number, str(item)))
            else:
                good.append(item)
        for traj in good:
            result.reports.append(self.ingest(traj, namespace))
            result.ingested += 1
        return result

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
        return TaskView(
            node,
            dict(sorted(attempts.items())),
            [n for n in supports if isinstance(n, Insight)],
            [n for n in contradicts if isinstance(n, Insight)],
        )

    def stats(self, namespace: str | None = None) -> Counts:
        if namespace is not None:
            self._require_namespace(namespace)
        return self.store.count(namespace)

    def namespaces(self) -> list[str]:
        """The namespaces that hold anything, sorted."""
        return self.store.namespaces()

    def queries(self, namespace: str | None = None) -> list[QueryNode]:
        return [
            n for n in self.store.list_nodes(NodeKind.QUERY, namespace) if isinstance(n, QueryNode)
        ]

    # ---- forgetting ------------------------------------------------------------------
    def forget_task(self, query_id: str) -> Removed:
        """Delete a task and its traces; insights keep their other evidence."""
        check_id(query_id)
        node = self.store.get_node(query_id)
        if not isinstance(node, QueryNode):
            raise NotFoundError(f"no task with id {query_id}")
        edges = self.store.get_edges([query_id], [EdgeKind.SUPPORTS, EdgeKind.CONTRADICTS])
        touched = [
            n
            for n in self.store.get_nodes([e.dst for e in edges], with_vectors=True)
            if isinstance(n, Insight)
        ]
        cleaned = [
            n.model_copy(
                update={
                    "supporting": [q for q in n.supporting if q != query_id],
                    "contradicting": [q for q in n.contradicting if q != query_id],
                }
            )
            for n in touched
        ]
        result: Removed = self.store.batch([PutNodes(cleaned), DeleteTask(query_id)])[1]
        return result

    def forget_namespace(self, namespace: str) -> Removed:
        check_namespace(namespace)
        result: Removed = self.store.batch([DeleteNamespace(namespace)])[0]
        return result

    def merge_insights(self, namespace: str = DEFAULT_NAMESPACE) -> list[tuple[str, list[str]]]:
        """Run the periodic near-duplicate merge now."""
        return self._evolver.merge(check_namespace(namespace))

    def ingest_many(
        self,
        trajectories: Iterable[Trajectory | Mapping[str, object]],
        namespace: str = DEFAULT_NAMESPACE,
    ) -> list[EvolutionReport]:
        return [self.ingest(t, namespace) for t in trajectories]
