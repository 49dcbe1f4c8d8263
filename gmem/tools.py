"""Memory as tools an agent calls itself: recall, insights, stats and record.

Wrapping a team (``integrations.langgraph.with_memory``) decides for the agents when memory
is read and written. Some agents are better served deciding for themselves: a tool-calling
agent asks for memory when it is stuck and reports what it did when it is done. These four
operations are what the LangChain tools (``integrations/langgraph/tools.py``) and the MCP
server (``gmem mcp``) expose; both are thin, so the behaviour lives once, here. Inputs and
outputs are plain JSON, since a model reads and writes them.

An agent cannot write an insight directly. Insights earn their place from evidence in
trajectories and from outcomes (see docs/architecture.md); so a "lesson" an agent reports
is recorded as what it said in a task of its own, with that task's outcome, and evolution
decides what the team has learned from it, as it does for every other task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gmem.errors import UserInputError
from gmem.trajectory import parse_trajectory
from graph_store.model import DEFAULT_NAMESPACE, Insight, NodeKind

if TYPE_CHECKING:
    from gmem.memory import Memory

#: How many insights ``insights()`` returns unless told otherwise.
DEFAULT_INSIGHT_LIMIT = 10


class MemoryTools:
    """The four operations over one memory and one namespace."""

    def __init__(self, memory: Memory, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.memory = memory
        self.namespace = namespace

    def recall(self, task: str, role: str | None = None) -> dict[str, Any]:
        """Past tasks and insights for ``task``; with ``role``, the text rendered for it
        within the role's token budget (what a wrapped agent would be shown)."""
        found = self.memory.recall(task, namespace=self.namespace)
        out: dict[str, Any] = {
            "task": found.task,
            "namespace": found.namespace,
            "past_tasks": [
                {"task": q.task, "outcome": q.outcome.value, "relevance": round(q.relevance, 3)}
                for q in found.queries
                if q.kept
            ],
            "insights": [
                {"text": i.text, "score": i.score, "roles": list(i.roles)} for i in found.insights
            ],
        }
        if role:
            out["memory"] = found.for_role(role).text
        return out

    def insights(
        self, query: str | None = None, role: str | None = None, limit: int = DEFAULT_INSIGHT_LIMIT
    ) -> list[dict[str, Any]]:
        """Active insights for ``role`` (or every role): the closest to ``query`` first
        when one is given, else the best scored."""
        if limit < 1:
            raise UserInputError(f"limit must be at least 1, got {limit}")
        spaces = self.memory.namespaces()
        if self.namespace not in spaces:
            return []
        active = self.memory.insights(namespace=self.namespace, role=role)
        if query and query.strip() and active:
            vector = self.memory.embedder.embed([query.strip()])[0]
            hits = self.memory.store.vector_search(
                NodeKind.INSIGHT, vector, len(active), self.namespace
            )
            rank = {h.id: i for i, h in enumerate(hits)}
            active.sort(key=lambda n: rank.get(n.id, len(rank)))
        return [_insight(n) for n in active[:limit]]

    def stats(self) -> dict[str, Any]:
        """How much this namespace remembers, per tier."""
        if self.namespace not in self.memory.namespaces():
            return {"namespace": self.namespace, "tasks": 0, "utterances": 0, "insights": 0}
        counts = self.memory.stats(self.namespace)
        return {
            "namespace": self.namespace,
            "tasks": counts.nodes.get("Query", 0),
            "utterances": counts.nodes.get("Utterance", 0),
            "insights": counts.nodes.get("Insight", 0),
        }

    def record(
        self, task: str, steps: Sequence[Mapping[str, Any]], success: bool | None
    ) -> dict[str, Any]:
        """Store a finished attempt (steps as in gmem/trajectory.py) and evolve memory."""
        trajectory = parse_trajectory(
            {"task": task, "success": success, "steps": [dict(s) for s in steps]}
        )
        report = self.memory.ingest(trajectory, namespace=self.namespace)
        return {
            "query_id": report.query_id,
            "stored": report.stored,
            "outcome": report.outcome.value,
            "insights_added": len(report.added),
            "insights_edited": len(report.edited),
        }

    def record_lesson(
        self, task: str, lesson: str, success: bool | None, role: str = "agent"
    ) -> dict[str, Any]:
        """A lesson from ``task``, recorded as the agent's own step in it (see the module
        docstring for why it is not written as an insight)."""
        if not lesson.strip():
            raise UserInputError("lesson must not be empty")
        return self.record(task, [{"agent": role, "role": role, "content": lesson}], success)


def _insight(node: Insight) -> dict[str, Any]:
    return {
        "id": node.id,
        "text": node.text,
        "score": node.score,
        "roles": list(node.roles),
        "supporting": node.support_count,
        "contradicting": node.contradiction_count,
    }


__all__ = ["DEFAULT_INSIGHT_LIMIT", "MemoryTools"]
