"""What the demo team is told from memory, and how the offline policy turns it into a plan.

The memory engine and the demo meet only here: the engine builds a :class:`MemoryHints`
from its structured recall, and the team never sees the engine. Keeping the hints plain
(action lists and strings) lets the engine change its retrieval without touching the team,
and lets tests hand-build hints without an engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gmem.demo.world import CATALOG, LAMP, LAMP_SPOT, RECEPTACLES, STATIONS, kind_of

# Preparations the team knows how to do; "lamp" is `use desklamp` at the desk.
PREPS = ("clean", "heat", "cool", "lamp")
_TAKE = re.compile(r"take (.+?) from (.+)")
_PUT = re.compile(r"put .+? (?:in|on|into) .+")
_PREP_ACTION = re.compile(r"\b(clean|heat|cool) [a-z]+ \d+ with [a-z]+ \d+")
_LAMP_ACTION = re.compile(r"\buse desklamp\b")
# Words in a task's text that name its preparation; the offline policy reads them only
# sometimes, to stand in for an agent that does not reliably know what a family needs.
_PREP_WORDS = {
    "clean": ("clean", "wash", "rinse"),
    "heat": ("hot", "heated", "warm"),
    "cool": ("cold", "cooled", "chill"),
    "lamp": ("desklamp", "lamp", "lamplight"),
}
_RECEPTACLE_KINDS = tuple(dict.fromkeys(kind_of(r) for r in RECEPTACLES))


@dataclass(frozen=True)
class MemoryHints:
    """Recalled memory for one task, as the team consumes it.

    ``plans`` are action sequences of recalled successful trajectories (most relevant
    first), ``warnings`` are actions or sentences from recalled failures, and ``insights``
    are general lessons. All three may be empty: that is the memory-off condition.
    """

    plans: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    insights: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.plans or self.warnings or self.insights)

    def render(self) -> str:
        """Memory as prompt text, for LLM agents (the offline policy reads the fields)."""
        parts: list[str] = []
        for i, plan in enumerate(self.plans, 1):
            parts.append(f"Successful past trajectory {i}: " + "; ".join(plan))
        if self.warnings:
            parts.append("From past failures, avoid: " + "; ".join(self.warnings))
        if self.insights:
            parts.append("Lessons learned: " + " ".join(f"- {s}" for s in self.insights))
        return "\n".join(parts) if parts else "(no memory recalled)"


@dataclass(frozen=True)
class TaskReading:
    """What an agent takes from a task's wording: object kind, destination kind, prep word."""

    obj: str | None
    destination: str | None
    prep: str | None


def read_task(text: str) -> TaskReading:
    words = re.findall(r"[a-z]+", text.lower())
    obj = next((w for w in words if w in CATALOG), None)
    dest = next((w for w in words if w in _RECEPTACLE_KINDS), None)
    prep = next((p for p, cues in _PREP_WORDS.items() if any(w in cues for w in words)), None)
    return TaskReading(obj, dest, prep)


def prep_of(action: str) -> str | None:
    """The preparation an action performs, or None for any other action."""
    action = action.strip().lower()
    if m := _PREP_ACTION.search(action):
        return m[1]
    return "lamp" if _LAMP_ACTION.search(action) else None


def station_of(prep: str) -> str:
    return LAMP_SPOT if prep == "lamp" else STATIONS[prep]


def prep_action(prep: str, obj: str) -> str:
    return f"use {LAMP}" if prep == "lamp" else f"{prep} {obj} with {STATIONS[prep]}"


@dataclass(frozen=True)
class Skeleton:
    """The reusable shape of one successful trajectory, with its names abstracted away."""

    obj: str  # object kind it fetched
    source: str  # receptacle it first took the object from
    preps: tuple[str, ...]  # preparations after the last pick-up (the attempt that worked)
    puts: bool  # whether it ended by putting the object down


def skeleton_of(plan: list[str]) -> Skeleton | None:
    """Abstract a recalled trajectory; None when it never picked anything up.

    Only the last attempt counts: a success that first guessed a wrong preparation, put the
    object down, took it back and tried again, teaches the second attempt, not the first.
    """
    acts = [" ".join(a.lower().split()) for a in plan]
    takes = [(i, m) for i, a in enumerate(acts) if (m := _TAKE.fullmatch(a))]
    if not takes:
        return None
    first, last = takes[0][1], takes[-1][0]
    tail = acts[last + 1 :]
    preps = tuple(p for a in tail if (p := prep_of(a)) is not None)
    return Skeleton(kind_of(first[1]), first[2], preps, any(_PUT.fullmatch(a) for a in tail))


def warned_preps(warnings: list[str]) -> set[str]:
    """Preparations that recalled failures performed (only action-shaped mentions count)."""
    return {p for w in warnings if (p := prep_of(w)) is not None}


def insight_places(insights: list[str], obj: str) -> list[str]:
    """Receptacles that insights mentioning this object kind name, in order of mention."""
    places: list[str] = []
    for text in insights:
        low = text.lower()
        if re.search(rf"\b{re.escape(obj)}s?\b", low):
            hits = sorted((low.find(r), r) for r in RECEPTACLES if re.search(rf"\b{r}\b", low))
            places += [r for _, r in hits if r not in places]
    return places
