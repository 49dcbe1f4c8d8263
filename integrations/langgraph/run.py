"""One run of a team: the gmem task behind it and the map from messages to utterances.

A run outlives a single ``invoke`` when a checkpointer pauses it at an interrupt, so its
bookkeeping is keyed by message id: a resumed run sees the same messages again in its
state and must not record them twice. Every call into gmem goes through :meth:`TeamRun._guard`,
which turns a memory failure into one warning and a run without memory, because a broken
memory must never break the team that uses it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage

from gmem.evolution import EvolutionReport
from gmem.memory import Memory
from gmem.task import Task
from integrations.langgraph.messages import action_of, call_ids_of, text_of

logger = logging.getLogger("gmem.langgraph")

T = TypeVar("T")

#: What a judge may return: success, a score in [0, 1] (success at or above
#: ``MemoryConfig.judge_success_threshold``), both as a pair, or None when unknown.
Verdict = bool | float | tuple[bool | None, float | None] | None


class MemoryUnavailableWarning(UserWarning):
    """gmem failed during a run; the team went on without memory for the rest of it."""


def verdict_to_outcome(
    verdict: Verdict, threshold: float = 0.5
) -> tuple[bool | None, float | None]:
    """``(success, score)``; a bare score counts as success at or above ``threshold``
    (``MemoryConfig.judge_success_threshold``)."""
    if verdict is None:
        return None, None
    if isinstance(verdict, bool):
        return verdict, None
    if isinstance(verdict, int | float):
        score = min(1.0, max(0.0, float(verdict)))
        return score >= threshold, score
    success, given = verdict
    return success, given


@dataclass
class _Step:
    """A message about to be recorded; tool results may still fold into its observation."""

    message: BaseMessage
    observations: list[str] = field(default_factory=list)
    folded: list[BaseMessage] = field(default_factory=list)


class TeamRun:
    """The memory side of one team run: recall per role, record per node, finish once."""

    def __init__(
        self,
        memory: Memory,
        namespace: str,
        task_text: Callable[[Any], str],
        metadata: dict[str, Any],
    ) -> None:
        self.memory = memory
        self.namespace = namespace
        self.task_text = task_text
        self.metadata = metadata
        self.task: Task | None = None
        self.disabled = False
        self.report: EvolutionReport | None = None
        self.utterance_of: dict[str, str] = {}  # message id -> utterance id
        self.call_issuer: dict[str, str] = {}  # tool call id -> utterance id
        self.seen: dict[str, set[str]] = {}  # node path -> message ids it has consumed
        self.recalled: dict[str, str] = {}  # role -> memory text shown
        self._lock = threading.RLock()

    # ---- failure handling --------------------------------------------------------------
    def _guard(self, what: str, call: Callable[[], T]) -> T | None:
        if self.disabled:
            return None
        try:
            return call()
        except Exception as exc:  # noqa: BLE001  a memory failure of any kind must not reach the team
            self.disabled = True
            message = (
                f"gmem {what} failed ({type(exc).__name__}: {exc}); the team continues "
                "without memory for the rest of this run"
            )
            logger.warning(message)
            warnings.warn(message, MemoryUnavailableWarning, stacklevel=2)
            return None

    # ---- task --------------------------------------------------------------------------
    def _ensure_task(self, state: Any) -> Task | None:
        with self._lock:
            if self.task is None and not self.disabled:
                self.task = self._guard(
                    "starting the task",
                    lambda: self.memory.task(
                        self.task_text(state), self.namespace, metadata=self.metadata
                    ),
                )
            return self.task

    # ---- recall ------------------------------------------------------------------------
    def recall(self, role: str, state: Any) -> str:
        """The memory text for ``role`` (empty when there is none or memory is down)."""
        task = self._ensure_task(state)
        if task is None:
            return ""
        with self._lock:
            if role not in self.recalled:
                memory = self._guard(f"recall for role {role!r}", lambda: task.recall(role))
                self.recalled[role] = memory.text if memory is not None else ""
            return self.recalled[role]

    async def arecall(self, role: str, state: Any) -> str:
        return await asyncio.to_thread(self.recall, role, state)

    # ---- record ------------------------------------------------------------------------
    def record(
        self,
        node: str,
        role: str,
        state: Any,
        consumed: Sequence[BaseMessage],
        produced: Sequence[BaseMessage],
    ) -> list[str]:
        """Record what ``node`` said; returns the new utterance ids.

        ``replies_to`` is the actual flow: the recorded messages the node consumed that it
        had not consumed before (what happened since it last spoke), a tool result replies
        to the call that asked for it, and a node's later messages reply to its earlier ones.
        """
        with self._lock:
            seen = self.seen.setdefault(node, set())
            fresh = [m for m in consumed if m.id and m.id not in seen]
            seen.update(m.id for m in consumed if m.id)
            new = [m for m in produced if m.id and m.id not in self.utterance_of]
            seen.update(m.id for m in produced if m.id)
            if not new:
                return []
            task = self._ensure_task(state)
            if task is None:
                return []
            steps = self._fold_tool_results(new)
            targets = list(
                dict.fromkeys(self.utterance_of[m.id] for m in fresh if m.id in self.utterance_of)
            )
            recorded: list[str] = []
            for step in steps:
                msg = step.message
                if recorded:
                    replies = [recorded[-1]]
                elif isinstance(msg, ToolMessage) and msg.tool_call_id in self.call_issuer:
                    replies = [self.call_issuer[msg.tool_call_id]]
                else:
                    replies = targets

                def write(m: BaseMessage = msg, s: _Step = step, r: list[str] = replies) -> str:
                    return task.record(
                        agent=node,
                        role=role,
                        content=self._content(m),
                        replies_to=r,
                        action=action_of(m),
                        observation="\n".join(s.observations) or None,
                        metadata={"message_id": m.id, "node": node, "message_type": m.type},
                    )

                uid = self._guard("recording a message", write)
                if uid is None:
                    return recorded
                recorded.append(uid)
                assert msg.id is not None
                self.utterance_of[msg.id] = uid
                for folded in step.folded:
                    assert folded.id is not None
                    self.utterance_of[folded.id] = uid
                for call_id in call_ids_of(msg):
                    self.call_issuer[call_id] = uid
            return recorded

    @staticmethod
    def _content(message: BaseMessage) -> str:
        text = text_of(message)
        if text:
            return text
        action = action_of(message)
        return f"(calls {action})" if action else ""

    @staticmethod
    def _fold_tool_results(messages: Sequence[BaseMessage]) -> list[_Step]:
        """Tool results answering a call made in the same node become that call's observation:
        the agent acted and saw the result in one turn, which is what an utterance models."""
        steps: list[_Step] = []
        by_call: dict[str, _Step] = {}
        for msg in messages:
            if isinstance(msg, ToolMessage) and msg.tool_call_id in by_call:
                step = by_call[msg.tool_call_id]
                step.observations.append(text_of(msg))
                step.folded.append(msg)
                continue
            step = _Step(msg)
            steps.append(step)
            for call_id in call_ids_of(msg):
                by_call[call_id] = step
        return steps

    # ---- finish ------------------------------------------------------------------------
    @property
    def finishable(self) -> bool:
        return self.task is not None and not self.task.finished and bool(self.task.steps)

    def finish(
        self, success: bool | None, score: float | None = None, error: BaseException | None = None
    ) -> EvolutionReport | None:
        with self._lock:
            task = self.task
            if task is None or not self.finishable or self.disabled:
                return None
            if error is not None:
                task.metadata.setdefault("error", f"{type(error).__name__}: {error}"[:500])
            self.report = self._guard("finishing the task", lambda: task.finish(success, score))
            return self.report

    async def afinish(
        self, success: bool | None, score: float | None = None, error: BaseException | None = None
    ) -> EvolutionReport | None:
        return await asyncio.to_thread(self.finish, success, score, error)


def default_task_text(messages_key: str) -> Callable[[Any], str]:
    """The first human message of the state: what the team was asked to do."""

    def task_text(state: Any) -> str:
        messages = (
            state.get(messages_key)
            if isinstance(state, dict)
            else getattr(state, messages_key, None)
        )
        for message in messages or ():
            if isinstance(message, HumanMessage) and text_of(message).strip():
                return text_of(message).strip()
        for message in messages or ():
            if isinstance(message, BaseMessage) and text_of(message).strip():
                return text_of(message).strip()
        raise ValueError("the run has no message to take the task text from; pass task=")

    return task_text
