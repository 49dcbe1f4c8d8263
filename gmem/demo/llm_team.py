"""The demo team on a real chat model: the same roles and loop as the offline team.

Only the planner and the actor ask the model; the verifier stays rule-based (it reads the
world's success signal), so a weak model cannot talk itself into a false success. Small
models answer loosely, so the actor's reply is matched against the admissible actions and
anything unusable falls back to the first admissible action rather than wasting the step
on an unparseable command.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from gmem.demo.hints import MemoryHints

if TYPE_CHECKING:
    from gmem.demo.team import Verdict

Chat = Callable[[list[dict[str, str]]], str]
"""A chat model: OpenAI-style messages in, the reply text out."""

PLANNER_PROMPT = (
    "You are the planner of a household robot team. Given the task, the house and what the "
    "team remembers from earlier tasks, write a short numbered plan of concrete steps "
    "(where to look for the object, what to do with it, where to put it)."
)
ACTOR_PROMPT = (
    "You are the actor of a household robot team. Choose the next action. Reply with exactly "
    "one action copied from the list of admissible actions, and nothing else."
)
_PREFIX = re.compile(r"^(?:action|next action|answer)\s*[:\-]\s*|^[>\-*\d.)\s]+")


def _normalize(text: str) -> str:
    text = text.strip().lower().strip("`*\"' ")
    text = _PREFIX.sub("", text).strip().rstrip(".!").strip("`*\"' ")
    return " ".join(text.split())


def choose_action(reply: str, admissible: list[str]) -> str | None:
    """The admissible action a free-text reply names, or None when it names none.

    An exact line wins; otherwise the longest admissible action quoted anywhere in the reply
    (longest, so that "put mug 1 in cabinet 1" beats a shorter action it contains).
    """
    options = {_normalize(a): a for a in admissible}
    for line in reply.splitlines():
        if (cand := _normalize(line)) in options:
            return options[cand]
    flat = " " + " ".join(reply.lower().split()) + " "
    hits = [
        a for n, a in options.items() if re.search(rf"(?<![a-z0-9]){re.escape(n)}(?![0-9])", flat)
    ]
    return max(hits, key=len) if hits else None


class LLMTeam:
    """Planner and actor backed by ``chat``; see the module docstring for why not the verifier."""

    def __init__(self, chat: Chat, history: int = 8, name: str = "llm") -> None:
        self.chat = chat
        self.history = history
        self.agents = {role: f"{name}-{role}" for role in ("planner", "actor", "verifier")}
        self.calls = 0
        self.fallbacks = 0
        self._task = ""
        self._plan = ""
        self._memory = ""
        self._trail: list[str] = []
        self._heard: list[str] = []
        self._last: str | None = None

    def _ask(self, system: str, user: str) -> str:
        self.calls += 1
        return self.chat([{"role": "system", "content": system}, {"role": "user", "content": user}])

    def plan(self, task_text: str, observation: str, hints: MemoryHints, seed: int) -> str:  # noqa: ARG002  the scripted team uses it
        self._task, self._memory = task_text, hints.render()
        self._trail, self._heard, self._last = [], [], None
        reply = self._ask(PLANNER_PROMPT, f"{observation}\n\nMemory:\n{self._memory}")
        self._plan = reply.strip() or "(the planner gave no plan)"
        return self._plan

    def act(self, observation: str, admissible: list[str]) -> tuple[str, str]:
        if self._last is not None:
            self._trail.append(f"> {self._last}\n{observation}")
        self._trail += self._heard
        self._heard = []
        recent = "\n".join(self._trail[-self.history :]) or "(none yet)"
        user = (
            f"Task: {self._task}\n\nPlan:\n{self._plan}\n\nMemory:\n{self._memory}\n\n"
            f"Recent steps:\n{recent}\n\nCurrent observation:\n{observation}\n\n"
            "Admissible actions:\n" + "\n".join(admissible)
        )
        reply = self._ask(ACTOR_PROMPT, user)
        action = choose_action(reply, admissible)
        if action is None:
            self.fallbacks += 1
            action = admissible[0]
            content = f"{reply.strip()[:200]} [unusable reply; fell back to '{action}']"
        else:
            content = reply.strip()[:200] or action
        self._last = action
        return action, content

    def hear(self, verdict: Verdict) -> str | None:
        self._heard.append(f"[verifier] {verdict.text}")
        return None
