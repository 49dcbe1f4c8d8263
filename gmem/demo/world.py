"""A small household text world, written for gmem's demo, in which memory pays off.

G-Memory's largest gains came on ALFWorld-style household tasks. No package ships that
game's data, so the demo brings its own world with the same shape: receptacles to search,
objects to fetch, and task families whose preparatory step (clean, heat, cool, examine
under a lamp) is the part an agent has to know. Two facts are learnable from past episodes
and save steps under the step limit: each kind of object usually sits in one receptacle,
and each family needs one preparatory action. Everything is deterministic given the seeds.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

FAMILIES = ("pick", "clean", "heat", "cool", "examine")
INVALID = "Nothing happens."
INVALID_REWARD = -0.1
SUCCESS_REWARD = 1.0
DEFAULT_MAX_STEPS = 20

# The house: (room, receptacle, closed at start). The order is the order the house is described in.
HOUSE: tuple[tuple[str, str, bool], ...] = (
    ("kitchen", "countertop 1", False),
    ("kitchen", "countertop 2", False),
    ("kitchen", "cabinet 1", True),
    ("kitchen", "cabinet 2", True),
    ("kitchen", "drawer 1", True),
    ("kitchen", "fridge 1", True),
    ("kitchen", "microwave 1", True),
    ("kitchen", "sinkbasin 1", False),
    ("kitchen", "diningtable 1", False),
    ("kitchen", "garbagecan 1", False),
    ("study", "desk 1", False),
    ("study", "shelf 1", False),
    ("study", "shelf 2", False),
    ("study", "drawer 2", True),
    ("living room", "sofa 1", False),
    ("living room", "coffeetable 1", False),
    ("living room", "cabinet 3", True),
    ("living room", "sidetable 1", False),
)
RECEPTACLES = tuple(name for _, name, _ in HOUSE)
OPENABLE = frozenset(name for _, name, closed in HOUSE if closed)
LAMP, LAMP_SPOT = "desklamp 1", "desk 1"
# What each family's preparatory action is done with.
STATIONS = {"clean": "sinkbasin 1", "heat": "microwave 1", "cool": "fridge 1"}

# Object kind -> (the receptacle it usually sits in, other places it turns up).
CATALOG: dict[str, tuple[str, tuple[str, ...]]] = {
    "apple": ("fridge 1", ("countertop 1", "diningtable 1", "microwave 1")),
    "tomato": ("countertop 2", ("fridge 1", "diningtable 1", "sinkbasin 1")),
    "bread": ("cabinet 2", ("countertop 1", "diningtable 1", "microwave 1")),
    "mug": ("cabinet 1", ("countertop 2", "sinkbasin 1", "coffeetable 1", "desk 1")),
    "plate": ("sinkbasin 1", ("cabinet 1", "diningtable 1", "countertop 1")),
    "bowl": ("cabinet 1", ("fridge 1", "diningtable 1", "countertop 2")),
    "book": ("shelf 1", ("desk 1", "sofa 1", "coffeetable 1", "sidetable 1")),
    "pen": ("drawer 2", ("desk 1", "shelf 2", "sidetable 1")),
    "alarmclock": ("sidetable 1", ("desk 1", "shelf 2")),
    "keychain": ("cabinet 3", ("sofa 1", "coffeetable 1", "drawer 2")),
    "cd": ("shelf 2", ("drawer 2", "desk 1", "cabinet 3")),
    "remotecontrol": ("coffeetable 1", ("sofa 1", "sidetable 1")),
}
KITCHEN_FOOD = ("apple", "tomato", "bread", "mug", "plate", "bowl")
FAMILY_OBJECTS: dict[str, tuple[str, ...]] = {
    "pick": tuple(CATALOG),
    "clean": ("apple", "tomato", "mug", "plate", "bowl"),
    "heat": ("apple", "tomato", "bread", "mug", "plate"),
    "cool": ("apple", "tomato", "bread", "mug", "bowl"),
    "examine": ("book", "pen", "alarmclock", "cd", "keychain", "remotecontrol"),
}
FAMILY_DESTINATIONS: dict[str, tuple[str, ...]] = {
    "pick": ("countertop", "diningtable", "cabinet", "shelf", "drawer", "sidetable", "desk"),
    "clean": ("countertop", "diningtable", "cabinet", "shelf"),
    "heat": ("countertop", "diningtable", "cabinet", "shelf"),
    "cool": ("countertop", "diningtable", "cabinet", "shelf"),
    "examine": (),
}
TEMPLATES: dict[str, tuple[str, ...]] = {
    "pick": (
        "put {a_obj} in the {dest}.",
        "move {a_obj} to the {dest}.",
        "place {a_obj} on the {dest}.",
    ),
    "clean": (
        "put a clean {obj} in the {dest}.",
        "wash {a_obj} and leave it on the {dest}.",
        "rinse {a_obj}, then put it in the {dest}.",
    ),
    "heat": (
        "put a hot {obj} on the {dest}.",
        "warm up {a_obj} and place it in the {dest}.",
        "serve a heated {obj} on the {dest}.",
    ),
    "cool": (
        "put a cold {obj} in the {dest}.",
        "chill {a_obj} and set it on the {dest}.",
        "bring a cooled {obj} to the {dest}.",
    ),
    "examine": (
        "examine the {obj} under the desklamp.",
        "look at {a_obj} by the light of the lamp.",
        "study the {obj} in lamplight.",
    ),
}


def kind_of(name: str) -> str:
    """The kind of an object or receptacle instance: ``"mug 1"`` -> ``"mug"``."""
    return name.rsplit(" ", 1)[0]


@dataclass(frozen=True)
class Goal:
    """What must hold for success; kept apart from the text so that checks never parse prose."""

    family: str
    obj: str  # object kind
    destination: str | None  # receptacle kind; None for examine
    state: str | None  # "clean", "hot", "cold", "lit" or None


@dataclass(frozen=True)
class Task:
    """One task: its wording, its goal and where its object starts (the rest comes from reset)."""

    id: str
    text: str
    family: str
    goal: Goal
    start: str  # receptacle holding the target object at reset


_STATE = {"pick": None, "clean": "clean", "heat": "hot", "cool": "cold", "examine": "lit"}


def make_tasks(n: int, seed: int, usual_share: float = 0.7) -> list[Task]:
    """Draw ``n`` tasks; an object starts in its usual receptacle with ``usual_share`` odds."""
    rng = random.Random(seed)
    tasks: list[Task] = []
    for i in range(n):
        family = FAMILIES[rng.randrange(len(FAMILIES))]
        obj = rng.choice(FAMILY_OBJECTS[family])
        usual, others = CATALOG[obj]
        start = usual if rng.random() < usual_share else rng.choice(others)
        dests = [d for d in FAMILY_DESTINATIONS[family] if d != kind_of(start)]
        dest = rng.choice(dests) if dests else None
        text = rng.choice(TEMPLATES[family]).format(obj=obj, a_obj=_article(obj), dest=dest)
        goal = Goal(family, obj, dest, _STATE[family])
        tasks.append(Task(f"{seed}-{i}", text, family, goal, start))
    return tasks


def _article(name: str) -> str:
    return ("an " if name[0] in "aeiou" else "a ") + name


def _listing(items: list[str]) -> str:
    return ", ".join(_article(o) for o in items) if items else "nothing"


def _surface(recep: str) -> str:
    hollow = recep in OPENABLE or kind_of(recep) in ("sinkbasin", "garbagecan")
    return "Inside" if hollow else "On it"


class World:
    """The household; one episode at a time, driven by ``reset`` and ``step``."""

    def __init__(self, max_steps: int = DEFAULT_MAX_STEPS) -> None:
        self.max_steps = max_steps
        self.task: Task | None = None
        self.contents: dict[str, list[str]] = {}
        self.is_open: dict[str, bool] = {}
        self.where: str | None = None
        self.holding: str | None = None
        self.states: dict[str, set[str]] = {}
        self.steps = 0
        self.done = False
        self.success = False

    # -- episode control --------------------------------------------------------------
    def reset(self, task: Task, seed: int = 0) -> str:
        """Lay out the house for ``task``; ``seed`` scatters the distracting objects."""
        rng = random.Random(f"{task.id}/{seed}")
        self.task = task
        self.contents = {r: [] for r in RECEPTACLES}
        self.is_open = {r: False for r in OPENABLE}
        self.where, self.holding = None, None
        self.steps, self.done, self.success = 0, False, False
        target = f"{task.goal.obj} 1"
        self.contents[task.start].append(target)
        self.states = {target: set()}
        others = [k for k in CATALOG if k != task.goal.obj]
        for kind in rng.sample(others, 6):
            home, alts = CATALOG[kind]
            spot = home if rng.random() < 0.6 else rng.choice(alts)
            self.contents[spot].append(f"{kind} 1")
            self.states[f"{kind} 1"] = set()
        for items in self.contents.values():
            rng.shuffle(items)
        return f"{self._describe_house()}\nYour task is to: {task.text}"

    def _describe_house(self) -> str:
        rooms: dict[str, list[str]] = {}
        for room, recep, _ in HOUSE:
            label = f"{recep} (with {_article(LAMP)} on it)" if recep == LAMP_SPOT else recep
            rooms.setdefault(room, []).append(label)
        parts = [f"In the {room} you see {', '.join(r)}." for room, r in rooms.items()]
        return "You are in the hallway of a small house. " + " ".join(parts)

    # -- the action interface ---------------------------------------------------------
    def admissible_actions(self) -> list[str]:
        """Every action that would change something (plus look and inventory)."""
        acts = [f"go to {r}" for r in RECEPTACLES if r != self.where]
        here = self.where
        if here is not None:
            if here in OPENABLE:
                acts.append(f"{'close' if self.is_open[here] else 'open'} {here}")
            if self._visible(here):
                if self.holding is None:
                    acts += [f"take {o} from {here}" for o in self.contents[here]]
                else:
                    acts.append(f"put {self.holding} in {here}")
            if self.holding is not None:
                for verb, station in STATIONS.items():
                    if station == here:
                        acts.append(f"{verb} {self.holding} with {here}")
            if here == LAMP_SPOT:
                acts.append(f"use {LAMP}")
        return [*acts, "look", "inventory"]

    def step(self, action: str) -> tuple[str, float, bool, bool]:
        """Apply one action; returns (observation, reward, done, success)."""
        if self.task is None:
            raise RuntimeError("call World.reset(task) before step()")
        if self.done:
            return INVALID, 0.0, True, self.success
        self.steps += 1
        obs = self._apply(" ".join(action.strip().lower().split()))
        reward = INVALID_REWARD if obs == INVALID else 0.0
        if not self.success and self._goal_met():
            self.success = self.done = True
            reward = SUCCESS_REWARD
        if not self.done and self.steps >= self.max_steps:
            self.done = True
            obs += " (You have run out of steps.)"
        return obs, reward, self.done, self.success

    def _visible(self, recep: str) -> bool:
        return recep not in OPENABLE or self.is_open[recep]

    def _apply(self, act: str) -> str:  # noqa: PLR0911  one return per verb of the game
        if m := re.fullmatch(r"go to (.+)", act):
            return self._go(m[1])
        if m := re.fullmatch(r"(open|close) (.+)", act):
            return self._open(m[2], m[1] == "open")
        if m := re.fullmatch(r"take (.+) from (.+)", act):
            return self._take(m[1], m[2])
        if m := re.fullmatch(r"put (.+) (?:in|on|into) (.+)", act):
            return self._put(m[1], m[2])
        if m := re.fullmatch(r"(clean|heat|cool) (.+) with (.+)", act):
            return self._prepare(m[1], m[2], m[3])
        if act == f"use {LAMP}" and self.where == LAMP_SPOT:
            if self.holding is None:
                return f"You switch on the {LAMP}. Its light falls on the empty desk."
            self.states[self.holding].add("lit")
            return f"You switch on the {LAMP} and look closely at the {self.holding} in its light."
        if act == "look":
            return self._here() if self.where else self._describe_house()
        if act == "inventory":
            return f"You carry the {self.holding}." if self.holding else "Your hands are empty."
        return INVALID

    def _here(self) -> str:
        here = self.where
        assert here is not None
        if not self._visible(here):
            return f"You are at the {here}. It is closed."
        return f"You are at the {here}. {_surface(here)}: {_listing(self.contents[here])}."

    def _go(self, recep: str) -> str:
        if recep not in self.contents:
            return INVALID
        self.where = recep
        return self._here().replace("You are at", "You walk to", 1)

    def _open(self, recep: str, opening: bool) -> str:
        if recep != self.where or recep not in OPENABLE or self.is_open[recep] == opening:
            return INVALID
        self.is_open[recep] = opening
        if not opening:
            return f"You close the {recep}."
        return f"You open the {recep}. Inside: {_listing(self.contents[recep])}."

    def _take(self, obj: str, recep: str) -> str:
        if recep != self.where or self.holding or not self._visible(recep):
            return INVALID
        if obj not in self.contents[recep]:
            return INVALID
        self.contents[recep].remove(obj)
        self.holding = obj
        return f"You pick up the {obj} from the {recep}."

    def _put(self, obj: str, recep: str) -> str:
        if recep != self.where or obj != self.holding or not self._visible(recep):
            return INVALID
        self.contents[recep].append(obj)
        self.holding = None
        return f"You put the {obj} in the {recep}."

    def _prepare(self, verb: str, obj: str, station: str) -> str:
        if obj != self.holding or station != self.where or STATIONS[verb] != station:
            return INVALID
        states = self.states[obj]
        if verb == "clean":
            states.add("clean")
            return f"You rinse the {obj} under the tap of the {station}; it is clean now."
        states.difference_update({"hot", "cold"})
        states.add("hot" if verb == "heat" else "cold")
        word = "hot" if verb == "heat" else "cold"
        return f"You leave the {obj} in the {station} for a while; it is {word} now."

    def _goal_met(self) -> bool:
        assert self.task is not None
        goal = self.task.goal
        if goal.family == "examine":
            held = self.holding
            return held is not None and kind_of(held) == goal.obj and "lit" in self.states[held]
        for recep, items in self.contents.items():
            if kind_of(recep) != goal.destination:
                continue
            for obj in items:
                prepared = goal.state is None or goal.state in self.states[obj]
                if kind_of(obj) == goal.obj and prepared:
                    return True
        return False


def oracle_plan(task: Task) -> list[str]:
    """The shortest solving action sequence, computed from the hidden layout (for tests)."""
    obj = f"{task.goal.obj} 1"
    acts = [f"go to {task.start}"]
    if task.start in OPENABLE:
        acts.append(f"open {task.start}")
    acts.append(f"take {obj} from {task.start}")
    here = task.start

    def go(recep: str) -> None:
        nonlocal here
        if recep != here:
            acts.append(f"go to {recep}")
            here = recep

    if task.family in STATIONS:
        go(STATIONS[task.family])
        acts.append(f"{task.family} {obj} with {here}")
    if task.family == "examine":
        go(LAMP_SPOT)
        return [*acts, f"use {LAMP}"]
    dest = next(r for r in RECEPTACLES if kind_of(r) == task.goal.destination)
    go(dest)
    if dest in OPENABLE:
        acts.append(f"open {dest}")
    return [*acts, f"put {obj} in {dest}"]
