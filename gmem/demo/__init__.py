"""The world and team behind ``gmem demo``; they meet the memory engine only via MemoryHints."""

from gmem.demo.hints import MemoryHints
from gmem.demo.llm_team import LLMTeam
from gmem.demo.team import EpisodeResult, Message, OfflineTeam, Team, run_episode
from gmem.demo.world import FAMILIES, Goal, Task, World, make_tasks, oracle_plan

__all__ = [
    "FAMILIES",
    "EpisodeResult",
    "Goal",
    "LLMTeam",
    "MemoryHints",
    "Message",
    "OfflineTeam",
    "Task",
    "Team",
    "World",
    "make_tasks",
    "oracle_plan",
    "run_episode",
]
