"""gmem: a hierarchical, evolving graph memory for teams of LLM agents (after G-Memory)."""

from gmem.config import MemoryConfig
from gmem.errors import GmemError
from gmem.models import Insight, NodeKind, Outcome, QueryNode, Utterance

__version__ = "0.1.0"

__all__ = [
    "GmemError",
    "Insight",
    "MemoryConfig",
    "NodeKind",
    "Outcome",
    "QueryNode",
    "Utterance",
    "__version__",
]
