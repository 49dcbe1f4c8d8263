"""Memory as LangChain tools that an agent calls itself: ``recall_memory``,
``search_insights`` and ``record_lesson``.

Give them to any tool-calling agent (``create_react_agent``, ``create_agent``, a
``ToolNode``)::

    agent = create_react_agent(model, memory_tools(Memory("team.db"), role="coder"))

They are thin: the operations are :class:`gmem.tools.MemoryTools`, which the MCP server
(``gmem mcp``) exposes as well. Each returns JSON text, which is what a model reads.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool

from gmem.memory import Memory
from gmem.tools import DEFAULT_INSIGHT_LIMIT, MemoryTools
from graph_store.model import DEFAULT_NAMESPACE


def _text(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def memory_tools(
    memory: Memory, namespace: str = DEFAULT_NAMESPACE, role: str | None = None
) -> list[BaseTool]:
    """The three tools over ``memory``'s ``namespace``; ``role`` is the calling agent's
    role, which recall renders for and lessons are recorded under."""
    ops = MemoryTools(memory, namespace)

    def recall_memory(task: str) -> str:
        """Recall what the team's memory holds for a task: similar past tasks with their
        outcomes, the insights that apply, and the memory text prepared for your role.
        Call it before planning a task, or when stuck."""
        return _text(ops.recall(task, role))

    def search_insights(query: str = "", limit: int = DEFAULT_INSIGHT_LIMIT) -> str:
        """Search the lessons the team has learned, closest to the query first (all of
        them, best scored first, when the query is empty)."""
        return _text(ops.insights(query or None, role, limit))

    def record_lesson(task: str, lesson: str, success: bool | None = None) -> str:
        """Record a lesson from a task you worked on, with whether the task succeeded
        (null when unknown). Memory learns insights from it together with the outcome."""
        return _text(ops.record_lesson(task, lesson, success, role or "agent"))

    return [
        StructuredTool.from_function(recall_memory),
        StructuredTool.from_function(search_insights),
        StructuredTool.from_function(record_lesson),
    ]


__all__ = ["memory_tools"]
