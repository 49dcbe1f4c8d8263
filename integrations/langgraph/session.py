"""What every wrapped node of one ``with_memory`` call shares: the open runs, and how
memory goes into a node's input and its messages come out of the node's output.

Kept apart from the graph rebuild and the run lifecycle because it is the only part that
knows the shape of a team's state (a mapping or a pydantic model, a messages key or a
memory key) and of a node's output (updates, ``Command`` objects, update pairs).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal

from langchain_core.messages import BaseMessage, RemoveMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command
from pydantic import BaseModel

from gmem.memory import Memory
from integrations.langgraph.messages import (
    as_message_list,
    ensure_id,
    is_memory_message,
    is_recordable,
    memory_message,
)
from integrations.langgraph.run import TeamRun

#: The configurable key that tells a wrapped node which run it belongs to. The leading
#: underscores keep it out of checkpoint metadata.
RUN_KEY = "__gmem_run"

Inject = Literal["system", "state"]


class Session:
    """What every wrapped node of one ``with_memory`` call shares: the open runs."""

    def __init__(
        self,
        memory: Memory,
        namespace: str,
        task_text: Callable[[Any], str],
        inject: Inject,
        messages_key: str,
        memory_key: str,
    ) -> None:
        self.memory = memory
        self.namespace = namespace
        self.task_text = task_text
        self.inject = inject
        self.messages_key = messages_key
        self.memory_key = memory_key
        self.runs: dict[str, TeamRun] = {}
        self.lock = threading.Lock()

    def run_for(self, config: RunnableConfig | None) -> TeamRun | None:
        key = ((config or {}).get("configurable") or {}).get(RUN_KEY)
        return self.runs.get(key) if isinstance(key, str) else None

    # ---- what the node sees --------------------------------------------------------------
    def messages_of(self, state: Any) -> list[BaseMessage]:
        value = (
            state.get(self.messages_key)
            if isinstance(state, Mapping)
            else getattr(state, self.messages_key, None)
        )
        if not isinstance(value, list | tuple):
            return []
        return [m for m in value if isinstance(m, BaseMessage)]

    def with_memory_text(self, state: Any, text: str, role: str) -> Any:
        if not text:
            return state
        if self.inject == "state":
            if isinstance(state, Mapping):
                return {**state, self.memory_key: text}
            if isinstance(state, BaseModel):
                return state.model_copy(update={self.memory_key: text})
            return state
        messages = self.messages_of(state)
        update = [memory_message(text, role), *messages]
        if isinstance(state, Mapping):
            return {**state, self.messages_key: update}
        if isinstance(state, BaseModel) and hasattr(state, self.messages_key):
            return state.model_copy(update={self.messages_key: update})
        return state

    # ---- what the node said ------------------------------------------------------------
    def capture(self, run: TeamRun, node: str, role: str, state: Any, output: Any) -> Any:
        """Record the messages ``output`` adds and return it without the injected memory."""
        consumed = self.messages_of(state)
        known = {m.id for m in consumed if m.id}
        produced: list[BaseMessage] = []

        def clean(value: Any) -> Any:
            messages = as_message_list(value)
            if messages is None:
                return value
            kept: list[BaseMessage] = []
            for message in messages:
                if is_memory_message(message):
                    continue
                if not isinstance(message, RemoveMessage) and (
                    message.id is None or message.id not in known
                ):
                    ensure_id(message)
                    if is_recordable(message):
                        produced.append(message)
                kept.append(message)
            return kept

        cleaned = self._map_updates(output, clean)
        if produced:
            run.record(node, role, state, consumed, produced)
        return cleaned

    def _map_updates(self, output: Any, clean: Callable[[Any], Any]) -> Any:
        key = self.messages_key
        if isinstance(output, Command):
            return dataclasses.replace(output, update=self._map_updates(output.update, clean))
        if isinstance(output, Mapping):
            if key not in output:
                return output
            return {**output, key: clean(output[key])}
        if (
            isinstance(output, list | tuple)
            and output
            and all(isinstance(o, Command) for o in output)
        ):
            return type(output)(self._map_updates(o, clean) for o in output)
        if isinstance(output, list | tuple) and all(
            isinstance(o, tuple) and len(o) == 2 for o in output
        ):  # Command update pairs
            return [(k, clean(v) if k == key else v) for k, v in output]
        return output
