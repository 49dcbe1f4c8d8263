"""gmem: a hierarchical, evolving graph memory for teams of LLM agents (after G-Memory)."""

from gmem.config import MemoryConfig
from gmem.errors import GmemError
from gmem.evolution import EvolutionReport
from gmem.memory import Memory
from gmem.models import Insight, NodeKind, Outcome, QueryNode, Utterance
from gmem.recall import Recall, RoleMemory
from gmem.task import Task

__version__ = "0.1.0"

__all__ = [
    "EvolutionReport",
    "GmemError",
    "Insight",
    "Memory",
    "MemoryConfig",
    "NodeKind",
    "Outcome",
    "QueryNode",
    "Recall",
    "RoleMemory",
    "Task",
    "Utterance",
    "__version__",
]
