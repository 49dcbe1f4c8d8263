"""Procedures: what a team did in a task, abstracted so that different tasks compare.

Text similarity finds tasks with the same words. Two tasks need the same procedure when
their successful trajectories do the same things to the same kinds of object, whatever
the wording: "heat egg 1 with microwave 1" and "heat apple 2 with microwave 1" are one
step of one procedure. A :class:`Skeleton` is that abstraction of one trajectory: each
action keeps its verb, its prepositions and the tools and places it names, loses object
ids and numbers, and the objects the task itself names become ``<obj>``. Skeletons are
the label-free training signal of the GNN (tasks whose skeletons overlap are linked) and
the scope of procedural insights; nothing here knows about any one environment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

OBJECT = "<obj>"

_TOKEN = re.compile(r"[a-z0-9]+")
# Words that structure an action rather than name a thing; they are kept as they are
# even when the task text happens to use them.
_STRUCTURE = frozenset(
    [
        "to",
        "in",
        "on",
        "into",
        "onto",
        "from",
        "with",
        "at",
        "up",
        "down",
        "off",
        "out",
        "of",
        "under",
        "over",
        "the",
        "a",
        "an",
    ]
)
# Words of a task text that never name its objects.
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "into",
        "onto",
        "from",
        "with",
        "at",
        "by",
        "for",
        "is",
        "are",
        "be",
        "it",
        "its",
        "this",
        "that",
        "then",
        "your",
        "you",
        "some",
        "any",
        "all",
        "one",
        "two",
        "three",
        "there",
        "here",
        "what",
        "which",
        "who",
        "how",
        "put",
        "place",
    ]
)


def _tokens(text: str) -> list[str]:
    """Lower-case words without punctuation and without bare numbers: an object id
    ("egg 1", "microwave 2") differs by episode. A word that holds digits among letters
    ("v2", "co2", "wait1") is a name, and keeps them."""
    return [w for w in _TOKEN.findall(text.lower()) if not w.isdigit()]


def task_objects(task: str) -> frozenset[str]:
    """The words of a task text that may name the objects it is about."""
    return frozenset(w for w in _tokens(task) if w not in _STOP and len(w) > 2)


def abstract_action(action: str, objects: Iterable[str] = ()) -> str:
    """One action as a procedure step: the verb kept, the task's own objects as ``<obj>``.

    The first word is the verb and is never replaced, so "heat" survives in "heat the
    egg" even though the task is "heat an egg".
    """
    words = _tokens(action)
    if not words:
        return ""
    named = frozenset(objects)
    out = [words[0]]
    for word in words[1:]:
        if word in _STRUCTURE and word not in ("the", "a", "an"):
            out.append(word)
        elif word in ("the", "a", "an"):
            continue
        elif word in named:
            if out[-1] != OBJECT:
                out.append(OBJECT)
        else:
            out.append(word)
    return " ".join(out)


@dataclass(frozen=True, slots=True)
class Skeleton:
    """The abstracted actions of one trajectory, in order, repeats collapsed."""

    steps: tuple[str, ...]
    #: Steps and ordered pairs of consecutive steps: what two procedures share.
    shingles: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pairs = (f"{a} > {b}" for a, b in pairwise(self.steps))
        object.__setattr__(self, "shingles", frozenset((*self.steps, *pairs)))

    def __bool__(self) -> bool:
        return bool(self.steps)


def skeleton(task: str, actions: Sequence[str | None]) -> Skeleton:
    """The skeleton of a trajectory of ``task``; steps without an action are skipped."""
    objects = task_objects(task)
    steps: list[str] = []
    for action in actions:
        if not action or not action.strip():
            continue
        step = abstract_action(action, objects)
        if step and (not steps or steps[-1] != step):
            steps.append(step)
    return Skeleton(tuple(steps))


def similarity(a: Skeleton, b: Skeleton) -> float:
    """Jaccard overlap of two skeletons' shingles, in [0, 1]; 0 when either is empty."""
    if not a or not b:
        return 0.0
    sa, sb = a.shingles, b.shingles
    return len(sa & sb) / len(sa | sb)
