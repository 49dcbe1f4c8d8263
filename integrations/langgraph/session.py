"""What every wrapped node of one ``with_memory`` call shares: the open runs, and how
memory goes into a node's input and its messages come out of the node's output.

Kept apart from the graph rebuild and the run lifecycle because it is the only part that
knows the shape of a team's state (a mapping or a pydantic model, a messages key or a
memory key) and of a node's output (updates, ``Command`` objects, update pairs).
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
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


class InnerMessages(BaseCallbackHandler):
    """The messages the nodes of a subgraph inside one node returned, in the order they ran.

    A node may hand back less than happened inside it: a ``langgraph-supervisor`` member
    with the default ``output_mode="last_message"`` returns only its final answer, so its
    tool calls and their results never reach the team state. They are still the member's
    steps, so the wrapper listens to the subgraph's own nodes (runs one checkpoint level
    below the wrapped node, named as their node) and records what they returned.
    """

    run_inline = True  # in order, on the thread that runs the node

    def __init__(self, config: RunnableConfig, messages_key: str) -> None:
        namespace = (config.get("configurable") or {}).get("checkpoint_ns")
        self.prefix = f"{namespace}|" if namespace else None
        self.messages_key = messages_key
        self.messages: list[BaseMessage] = []
        self._nodes: set[uuid.UUID] = set()
        self._lock = threading.Lock()

    def attach(self, config: RunnableConfig) -> RunnableConfig:
        """``config`` with this handler among its callbacks, inherited by child runs."""
        if self.prefix is None:
            return config
        callbacks = config.get("callbacks")
        if isinstance(callbacks, BaseCallbackManager):
            manager = callbacks.copy()
            manager.add_handler(self, inherit=True)
            return {**config, "callbacks": manager}
        return {**config, "callbacks": [*(callbacks or []), self]}

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,  # noqa: ARG002 - LangChain's callback signature
        inputs: Any,  # noqa: ARG002
        *,
        run_id: uuid.UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        meta = metadata or {}
        namespace = meta.get("langgraph_checkpoint_ns")
        if (
            self.prefix is not None
            and isinstance(namespace, str)
            and namespace.startswith(self.prefix)
            and "|" not in namespace[len(self.prefix) :]
            and kwargs.get("name") == meta.get("langgraph_node")
        ):
            with self._lock:
                self._nodes.add(run_id)

    def on_chain_end(self, outputs: Any, *, run_id: uuid.UUID, **_: Any) -> None:
        with self._lock:
            if run_id not in self._nodes:
                return
            self._nodes.discard(run_id)
            for each in outputs if isinstance(outputs, list | tuple) else [outputs]:
                update = each.update if isinstance(each, Command) else each
                if isinstance(update, Mapping):
                    self.messages += as_message_list(update.get(self.messages_key)) or []


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
    def capture(
        self,
        run: TeamRun,
        node: str,
        role: str,
        state: Any,
        output: Any,
        inner: Sequence[BaseMessage] = (),
    ) -> Any:
        """Record the messages ``output`` adds, after those the node's subgraph said that
        ``output`` left out (``inner``), and return ``output`` without the injected memory."""
        consumed = self.messages_of(state)
        known = {m.id for m in consumed if m.id}
        produced: list[BaseMessage] = []
        for message in inner:
            if (
                message.id not in known
                and not isinstance(message, RemoveMessage)
                and not is_memory_message(message)
                and is_recordable(message)
            ):
                known.add(ensure_id(message))
                produced.append(message)

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
