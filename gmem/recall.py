"""What a recall returns: the memory found for a task, and why each piece was found."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from graph_store.model import EdgeKind, Outcome


@dataclass(frozen=True, slots=True)
class PathStep:
    """One step of the route through the graph that led to an item.

    ``seed`` steps come from embedding similarity to the task; ``edge`` steps follow a
    stored relationship from ``source`` to the item's node.
    """

    how: Literal["seed", "edge", "similar"]
    node_id: str
    score: float | None = None
    edge: EdgeKind | None = None
    source: str | None = None

    def describe(self) -> str:
        if self.how == "seed":
            return f"seed {self.node_id[:8]} (similarity {self.score:.2f})"
        if self.how == "similar":
            return f"similar to the task ({self.score:.2f})"
        assert self.source is not None and self.edge is not None
        return f"{self.source[:8]} -{self.edge.value}-> {self.node_id[:8]}"


@dataclass(frozen=True, slots=True)
class RecalledQuery:
    """A past task judged relevant, with its outcome and how it was reached."""

    id: str
    task: str
    outcome: Outcome
    similarity: float
    relevance: float
    hop: int
    path: tuple[PathStep, ...]
    kept: bool = False


@dataclass(frozen=True, slots=True)
class RecalledInsight:
    id: str
    text: str
    score: float
    roles: tuple[str, ...]
    rank: float
    support_overlap: int
    contradict_overlap: int
    similarity: float
    path: tuple[PathStep, ...]


@dataclass(frozen=True, slots=True)
class Step:
    """One condensed step of a past trajectory."""

    agent: str
    role: str
    content: str
    action: str | None = None
    observation: str | None = None


@dataclass(frozen=True, slots=True)
class PastTrajectory:
    """The key steps of one past attempt, from the downward traversal of a kept query."""

    query_id: str
    task: str
    outcome: Outcome
    attempt: int
    relevance: float
    steps: tuple[Step, ...]
    total_steps: int


@dataclass(frozen=True, slots=True)
class RoleMemory:
    """Memory tailored to one role: projected insights, re-weighted steps, rendered text.

    ``insights`` and ``trajectories`` are what the projection offered; the budget decides
    what reached ``text``. ``rendered_*`` hold the ids that did (a trajectory counts when
    its header and at least one step fit) and ``cut_*`` those that did not. Only rendered
    items are credited when the task finishes: the agent never read the others.
    """

    role: str
    insights: tuple[RecalledInsight, ...]
    trajectories: tuple[PastTrajectory, ...]
    text: str
    tokens: int
    rendered_insights: tuple[str, ...] = ()
    cut_insights: tuple[str, ...] = ()
    rendered_trajectories: tuple[str, ...] = ()
    cut_trajectories: tuple[str, ...] = ()


@dataclass
class Recall:
    """The result of a bidirectional traversal for one task.

    ``queries`` holds every ranked candidate (``kept`` marks those whose trajectories are
    shown); ``insights`` the lessons reached upward; ``trajectories`` the condensed traces
    reached downward. :meth:`prompt` renders the block to inject into one role's prompt.
    """

    task: str
    namespace: str
    queries: list[RecalledQuery]
    insights: list[RecalledInsight]
    trajectories: list[PastTrajectory]
    _project: Callable[[Recall, str], RoleMemory] | None = field(default=None, repr=False)
    _by_role: dict[str, RoleMemory] = field(default_factory=dict, repr=False)

    @property
    def kept_query_ids(self) -> list[str]:
        return [q.id for q in self.queries if q.kept]

    @property
    def is_empty(self) -> bool:
        return not self.insights and not self.trajectories

    def for_role(self, role: str) -> RoleMemory:
        """The memory for ``role`` (projected once, then cached)."""
        if role not in self._by_role:
            if self._project is None:
                raise RuntimeError("this Recall was built without a role projector")
            self._by_role[role] = self._project(self, role)
        return self._by_role[role]

    def prompt(self, role: str) -> str:
        """Compact text for ``role``, within the configured token budget."""
        return self.for_role(role).text

    def explain(self) -> list[str]:
        """One line per item saying how the traversal found it."""
        lines = []
        for q in self.queries:
            route = " | ".join(p.describe() for p in q.path)
            mark = "kept" if q.kept else "ranked"
            lines.append(
                f"query {q.id[:8]} [{q.outcome.value}, {mark}, "
                f"relevance {q.relevance:.2f}]: {route}"
            )
        for ins in self.insights:
            route = " | ".join(p.describe() for p in ins.path)
            lines.append(f"insight {ins.id[:8]} [rank {ins.rank:.2f}]: {route}")
        return lines
