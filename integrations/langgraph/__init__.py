"""gmem for LangGraph: wrap an agent team with G-Memory, or use gmem as a ``BaseStore``.

>>> team = with_memory(builder, Memory("team.db"), roles=["planner", "coder"],
...                    judge=lambda state: "DONE" in state["messages"][-1].content)
...                                                                 # doctest: +SKIP
>>> team.invoke({"messages": [("user", "write a word counter")]})  # doctest: +SKIP

Needs the ``langgraph`` extra (``pip install 'gmem-agents[langgraph]'``).
"""

from integrations.langgraph.run import MemoryUnavailableWarning, TeamRun
from integrations.langgraph.store import GmemStore
from integrations.langgraph.tools import memory_tools
from integrations.langgraph.wrap import MemoryGraph, with_memory

__all__ = [
    "GmemStore",
    "MemoryGraph",
    "MemoryUnavailableWarning",
    "TeamRun",
    "memory_tools",
    "with_memory",
]
