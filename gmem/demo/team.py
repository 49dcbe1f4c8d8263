"""The demo's three-agent team (planner, actor, verifier) and the loop that runs an episode.

The team speaks through ``on_message`` so that the memory engine can record every message
as an utterance with its replies, without the team knowing the engine exists. Two teams
share one loop: :class:`OfflineTeam`, a seeded rule-based policy that needs no model, and
:class:`~gmem.demo.llm_team.LLMTeam`, which asks a chat model.

The offline policy (what the demo runs with no endpoint) is documented here because the
demo's numbers depend on it. It is not a language model and never claims to be one:

* The planner reads the object and destination names from the task text. Without memory
  it orders the preparations it could need (none, clean, heat, cool, examine under the
  lamp) at random, and only with probability ``recall_prob`` puts the one the wording asks
  for first: it stands in for an agent that does not reliably know what a family needs.
* The actor searches receptacles in a seeded random order, opening closed ones, takes the
  object, performs the current attempt's preparations, and puts it at the destination.
  When the verifier reports the task still incomplete, it takes the object back and moves
  to the next attempt, until the world's step limit ends the episode.
* With memory, the planner (a) reuses the skeleton of the first recalled success, with
  names replaced by the current ones, as the first attempt, (b) searches first where
  recalled successes for the same kind of object took it from (and where insights about
  that object point), and (c) tries last any preparation that recalled failures performed.
* The verifier reads only observations and the world's done/success signal.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Protocol

from gmem.demo.hints import (
    PREPS,
    MemoryHints,
    insight_places,
    prep_action,
    prep_of,
    read_task,
    skeleton_of,
    station_of,
    warned_preps,
)
from gmem.demo.llm_team import LLMTeam
from gmem.demo.world import INVALID, Task, World, kind_of

ROLES = ("planner", "actor", "verifier")

OnMessage = Callable[[str, str, str, str | None, str | None, float | None, list[int]], None]
"""``on_message(agent, role, content, action, observation, reward, replies_to)``."""


@dataclass(frozen=True)
class Message:
    """One agent message of an episode; ``replies_to`` holds indices of earlier messages."""

    index: int
    agent: str
    role: str
    content: str
    action: str | None = None
    observation: str | None = None
    reward: float | None = None
    replies_to: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class EpisodeResult:
    success: bool
    steps: int
    messages: list[Message]
    reward: float = 0.0


@dataclass(frozen=True)
class Verdict:
    text: str
    missing: bool  # the object is where the task wants it, yet the task is not done


class Team(Protocol):
    """What run_episode needs from a team; the verifier is shared and lives in the loop."""

    agents: dict[str, str]  # role -> agent name

    def plan(self, task_text: str, observation: str, hints: MemoryHints, seed: int) -> str:
        """Start an episode; return the planner's message."""
        ...

    def act(self, observation: str, admissible: list[str]) -> tuple[str, str]:
        """Return (action, the actor's message)."""
        ...

    def hear(self, verdict: Verdict) -> str | None:
        """Take in the verifier's verdict; return a revised plan to announce, if any."""
        ...


class Verifier:
    """Checks each step against the task's wording and speaks when something changed."""

    def __init__(self, task_text: str) -> None:
        self.reading = read_task(task_text)

    def check(self, action: str, observation: str, done: bool, success: bool) -> Verdict | None:
        obj, dest = self.reading.obj or "object", self.reading.destination
        if success:
            return Verdict("Verified: the goal holds, the task is complete.", False)
        if done:
            return Verdict(f"Failed: out of steps and the goal for the {obj} does not hold.", False)
        if observation.startswith(INVALID):
            return Verdict(f"'{action}' had no effect; pick an admissible action.", False)
        if m := re.fullmatch(r"take (.+?) from .+", action):
            if kind_of(m[1]) == obj:
                where = f"the {dest}" if dest else "its destination"
                return Verdict(f"The {m[1]} is in hand; prepare it if needed, then {where}.", False)
            return Verdict(f"That is not the {obj} the task asks for.", False)
        if prep_of(action) is not None:
            return Verdict(f"Done: {action}. The goal does not hold yet.", False)
        m = re.fullmatch(r"put (.+?) in (.+)", action)
        if m and kind_of(m[1]) == obj and (dest is None or kind_of(m[2]) == dest):
            return Verdict(
                f"Missing: the {m[1]} is in the {m[2]} but the task is not complete; the "
                f"{obj} needs a preparation first (clean, heat, cool or the desklamp).",
                True,
            )
        return None


Attempt = tuple[tuple[str, ...], bool]  # preparations in order, then put down or not


def _describe(attempt: Attempt, dest: str) -> str:
    preps, puts = attempt
    steps = [prep_action(p, "it") for p in preps]
    if puts:
        steps.append(f"put it in {dest}")
    return ", then ".join(steps) if steps else "nothing"


class OfflineTeam:
    """The seeded rule-based team (see the module docstring for its policy)."""

    def __init__(self, recall_prob: float = 0.3, name: str = "offline") -> None:
        self.recall_prob = recall_prob
        self.agents = {role: f"{name}-{role}" for role in ROLES}
        self._script: Generator[tuple[str, str], str, None] | None = None
        self._attempts: list[Attempt] = []
        self._attempt = 0
        self._dest = ""
        self._started = False

    def plan(self, task_text: str, observation: str, hints: MemoryHints, seed: int) -> str:
        rng = random.Random(f"offline-team/{seed}/{task_text}")
        reading = read_task(task_text)
        obj = reading.obj or ""
        receptacles = _receptacles_in(observation)
        lamp_spot = re.search(r"([a-z]+ \d+) \(with a desklamp", observation)
        dest = next((r for r in receptacles if kind_of(r) == reading.destination), None)
        dest = dest or (lamp_spot[1] if lamp_spot else receptacles[0])
        # Draw the same random numbers with or without memory, so only the hints differ.
        shuffled = rng.sample(receptacles, len(receptacles))
        guesses = rng.sample(["none", *PREPS], len(PREPS) + 1)
        recalls = rng.random() < self.recall_prob
        if recalls and reading.prep in guesses:
            guesses.remove(reading.prep)
            guesses.insert(0, reading.prep)

        skeletons = [s for p in hints.plans if (s := skeleton_of(p)) is not None]
        same = [s for s in skeletons if s.obj == obj] or skeletons
        first = list(dict.fromkeys(s.source for s in same if s.source in receptacles))
        first += [r for r in insight_places(hints.insights, obj) if r not in first]
        search = first + [r for r in shuffled if r not in first]
        lead = skeletons[0] if skeletons else None  # the engine ranks; trust its first
        attempts: list[Attempt] = [(lead.preps, lead.puts)] if lead else []
        avoid = warned_preps(hints.warnings) - set(lead.preps if lead else ())
        guesses.sort(key=lambda g: g in avoid)  # stable: keeps the order among equals
        for g in guesses:
            attempt: Attempt = (() if g == "none" else (g,), True)
            if attempt not in attempts:
                attempts.append(attempt)

        self._attempts, self._attempt, self._dest = attempts, 0, dest
        self._script, self._started = self._run(obj, search, dest), False
        where = f"looking first in {', '.join(first)}" if first else "searching at random"
        source = "as a recalled success did" if lead else "a guess"
        text = (
            f"Plan for '{task_text}': find the {obj or 'object'}, {where}; take it; "
            f"then {_describe(attempts[0], dest)} ({source})."
        )
        if avoid:
            text += f" Recalled failures did {', '.join(sorted(avoid))}: I try that last."
        return text

    def act(self, observation: str, admissible: list[str]) -> tuple[str, str]:  # noqa: ARG002  follows its script
        if self._script is None:
            raise RuntimeError("call plan() before act()")
        try:
            if self._started:
                return self._script.send(observation)
            self._started = True
            return next(self._script)
        except StopIteration:
            return "look", "Nothing left to try; looking around."

    def hear(self, verdict: Verdict) -> str | None:
        if not verdict.missing or self._attempt + 1 >= len(self._attempts):
            return None
        nxt = self._attempts[self._attempt + 1]
        return f"Revised plan: take it back, then {_describe(nxt, self._dest)}."

    def _run(self, obj: str, search: list[str], dest: str) -> Generator[tuple[str, str], str, None]:
        found: str | None = None
        here = ""
        for recep in search:
            obs = yield f"go to {recep}", f"Looking for the {obj}: checking {recep}."
            here = recep
            if "is closed" in obs:
                obs = yield f"open {recep}", f"The {recep} is closed; opening it."
            if obj and (m := re.search(rf"\b{re.escape(obj)} \d+\b", obs)):
                found = m[0]
                break
        if found is None:
            return
        yield f"take {found} from {here}", f"Found the {found}; taking it."
        holding = True
        for i, (preps, puts) in enumerate(self._attempts):
            self._attempt = i
            if not holding:
                yield f"take {found} from {here}", f"Taking the {found} back to try again."
            for prep in preps:
                station = station_of(prep)
                if here != station:
                    yield f"go to {station}", f"Bringing the {found} to the {station}."
                    here = station
                yield prep_action(prep, found), f"Preparing the {found} ({prep})."
            holding = True
            if puts:
                if here != dest:
                    obs = yield f"go to {dest}", f"Carrying the {found} to the {dest}."
                    here = dest
                    if "is closed" in obs:
                        yield f"open {dest}", f"Opening the {dest}."
                yield f"put {found} in {dest}", f"Putting the {found} in the {dest}."
                holding = False


def _receptacles_in(observation: str) -> list[str]:
    """Receptacle names from the house description, in the order it lists them."""
    listing = observation.split("Your task", 1)[0]
    names = re.findall(r"\b([a-z]+ \d+)\b", listing)
    return [n for n in dict.fromkeys(names) if not n.startswith("desklamp")]


def run_episode(
    world: World,
    task: Task,
    team: Team,
    hints: MemoryHints | None = None,
    seed: int = 0,
    on_message: OnMessage | None = None,
) -> EpisodeResult:
    """Play one task to success or the step limit, emitting every agent message."""
    hints = hints or MemoryHints()
    messages: list[Message] = []

    def emit(
        role: str,
        content: str,
        action: str | None = None,
        observation: str | None = None,
        reward: float | None = None,
        replies_to: list[int] | None = None,
    ) -> int:
        msg = Message(
            len(messages),
            team.agents[role],
            role,
            content,
            action,
            observation,
            reward,
            list(replies_to or []),
        )
        messages.append(msg)
        if on_message is not None:
            on_message(msg.agent, role, content, action, observation, reward, list(msg.replies_to))
        return msg.index

    observation = world.reset(task, seed)
    verifier = Verifier(task.text)
    pending = [
        emit("planner", team.plan(task.text, observation, hints, seed), observation=observation)
    ]
    last_actor: int | None = None
    done = success = False
    total = 0.0
    while not done:
        action, content = team.act(observation, world.admissible_actions())
        observation, reward, done, success = world.step(action)
        total += reward
        replies = ([] if last_actor is None else [last_actor]) + pending
        last_actor = emit("actor", content, action, observation, reward, replies)
        pending = []
        verdict = verifier.check(action, observation, done, success)
        if verdict is not None:
            said = emit("verifier", verdict.text, replies_to=[last_actor])
            pending.append(said)
            note = None if done else team.hear(verdict)
            if note:
                pending.append(emit("planner", note, replies_to=[said]))
    return EpisodeResult(success, world.steps, messages, total)


__all__ = [
    "ROLES",
    "EpisodeResult",
    "LLMTeam",
    "Message",
    "OfflineTeam",
    "OnMessage",
    "Team",
    "Verdict",
    "Verifier",
    "run_episode",
]
