"""``with_memory``: give an existing LangGraph team G-Memory without changing its code.

Why wrap nodes instead of listening to callbacks: a callback can watch what a node said,
but it cannot change what the node sees, and injecting memory is half the job. So the
builder is copied with every node's runnable replaced by a thin wrapper that recalls the
node's role memory, hands the node its input with that memory added, and records the
messages the node returns. The user's builder and nodes are not modified, and LangGraph
still runs the graph: checkpoints, interrupts, retries, ``Send`` and ``Command`` routing
all behave as before, because the wrapper returns exactly what the node returned (less
the injected memory message, which must never enter the team's state).

The wrapper is the object that starts and ends runs (``invoke``/``stream`` and their async
twins), because only there is it known when a run is over: a checkpointed run that stops
at an interrupt is resumed later and finished then, once.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, cast

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackManager
from langchain_core.messages import BaseMessage, RemoveMessage
from langchain_core.runnables import Runnable, RunnableConfig

# The runnable LangGraph itself wraps node functions in: it passes ``config`` through and
# adds no tracing layer of its own, so a wrapped node traces exactly like the original.
from langgraph._internal._runnable import RunnableCallable
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.errors import ParentCommand
from langgraph.graph.state import CompiledStateGraph, StateGraph
from langgraph.types import Command
from pydantic import BaseModel

from gmem.evolution import EvolutionReport
from gmem.memory import Memory
from graph_store.model import DEFAULT_NAMESPACE
from integrations.langgraph.messages import (
    as_message_list,
    ensure_id,
    is_memory_message,
    is_recordable,
    memory_message,
)
from integrations.langgraph.run import (
    MemoryUnavailableWarning,
    TeamRun,
    Verdict,
    default_task_text,
    verdict_to_outcome,
)

logger = logging.getLogger("gmem.langgraph")

#: The configurable key that tells a wrapped node which run it belongs to. The leading
#: underscores keep it out of checkpoint metadata.
RUN_KEY = "__gmem_run"

Inject = Literal["system", "state"]
Roles = Mapping[str, str] | Sequence[str] | None
Judge = Callable[[Any], Verdict]


class _Session:
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


def _memory_node(
    session: _Session, path: str, role: str, inject: bool, inner: Runnable[Any, Any]
) -> Runnable[Any, Any]:
    """One node with memory in and records out. The closures call ``inner.invoke`` by name
    so that LangGraph still finds a subgraph inside (it inspects a node function's
    nonlocals), which keeps ``get_state(subgraphs=True)`` and subgraph interrupts working."""

    def node(state: Any, config: RunnableConfig) -> Any:
        run = session.run_for(config)
        if run is None:
            return inner.invoke(state, config)
        given = session.with_memory_text(state, run.recall(role, state), role) if inject else state
        try:
            output = inner.invoke(given, config)
        except ParentCommand as exc:
            command = session.capture(run, path, role, state, exc.args[0])
            raise ParentCommand(command) from exc
        return session.capture(run, path, role, state, output)

    async def anode(state: Any, config: RunnableConfig) -> Any:
        run = session.run_for(config)
        if run is None:
            return await inner.ainvoke(state, config)
        given = (
            session.with_memory_text(state, await run.arecall(role, state), role)
            if inject
            else state
        )
        try:
            output = await inner.ainvoke(given, config)
        except ParentCommand as exc:
            command = session.capture(run, path, role, state, exc.args[0])
            raise ParentCommand(command) from exc
        return session.capture(run, path, role, state, output)

    return RunnableCallable(node, anode, name=path.rsplit("/", 1)[-1], trace=False, recurse=False)


def _compile_like(
    builder: StateGraph[Any], original: CompiledStateGraph[Any] | None
) -> CompiledStateGraph[Any]:
    if original is None:
        return builder.compile()
    before, after = original.interrupt_before_nodes, original.interrupt_after_nodes
    graph = builder.compile(
        checkpointer=original.checkpointer,
        store=original.store,
        cache=original.cache,
        interrupt_before=before if before == "*" else list(before),
        interrupt_after=after if after == "*" else list(after),
        debug=original.debug,
        name=original.name,
    )
    if original.config:
        graph = graph.with_config(original.config)
    return graph


def _rebuild(
    session: _Session,
    graph: StateGraph[Any] | CompiledStateGraph[Any],
    roles: Mapping[str, str],
    inject_all: bool,
    prefix: str = "",
) -> CompiledStateGraph[Any]:
    if isinstance(graph, CompiledStateGraph):
        original: CompiledStateGraph[Any] | None = graph
        builder: StateGraph[Any] = graph.builder
    elif isinstance(graph, StateGraph):
        original, builder = None, graph
    else:
        raise TypeError(
            f"with_memory needs a StateGraph or a compiled StateGraph, got {type(graph).__name__}"
        )
    copied = copy.copy(builder)
    copied.nodes = {}
    copied.compiled = False
    for name, spec in builder.nodes.items():
        path = f"{prefix}{name}"
        runnable = cast(Runnable[Any, Any], spec.runnable)
        inner_roles = {k[len(path) + 1 :]: v for k, v in roles.items() if k.startswith(f"{path}/")}
        if inner_roles:
            if not isinstance(runnable, CompiledStateGraph):
                raise ValueError(
                    f"roles name nodes inside {path!r}, but that node is not a compiled StateGraph"
                )
            runnable = _rebuild(session, runnable, roles, inject_all, f"{path}/")
        role = roles.get(path, path)
        wrapped = _memory_node(session, path, role, inject_all or path in roles, runnable)
        copied.nodes[name] = dataclasses.replace(spec, runnable=wrapped)
    return _compile_like(copied, original)


def _node_paths(graph: StateGraph[Any] | CompiledStateGraph[Any], prefix: str = "") -> set[str]:
    builder = graph.builder if isinstance(graph, CompiledStateGraph) else graph
    paths = set()
    for name, spec in builder.nodes.items():
        paths.add(f"{prefix}{name}")
        if isinstance(spec.runnable, CompiledStateGraph):
            paths |= _node_paths(spec.runnable, f"{prefix}{name}/")
    return paths


class _FinalOutput(AsyncCallbackHandler):
    """Catches the graph's own output when it ends, for the judge of a run without a
    checkpointer (with one, the judge reads the checkpointed state instead)."""

    def __init__(self, run_id: uuid.UUID) -> None:
        self.run_id = run_id
        self.output: Any = None

    async def on_chain_end(self, outputs: Any, *, run_id: uuid.UUID, **_: Any) -> None:
        if run_id == self.run_id:
            self.output = outputs


class MemoryGraph(Runnable[Any, Any]):
    """A compiled team graph whose runs recall, record and finish gmem tasks.

    Everything a compiled graph offers (``get_state``, ``update_state``,
    ``get_state_history``...) is forwarded to :attr:`graph`, the rebuilt graph.
    """

    def __init__(
        self, graph: CompiledStateGraph[Any], session: _Session, judge: Judge | None
    ) -> None:
        self.graph = graph
        self.session = session
        self.judge = judge
        self.name = graph.name
        #: The most recent run (its recalled memory, utterance map and report).
        self.last_run: TeamRun | None = None
        self._awaiting_finish: str | None = None

    def __getattr__(self, name: str) -> Any:
        if name == "graph":  # not set yet: avoid recursion during construction
            raise AttributeError(name)
        return getattr(self.graph, name)

    def get_graph(self, config: RunnableConfig | None = None) -> Any:
        return self.graph.get_graph(config)

    # ---- run lifecycle -----------------------------------------------------------------
    def _saver(self) -> BaseCheckpointSaver[Any] | None:
        saver = self.graph.checkpointer
        return saver if isinstance(saver, BaseCheckpointSaver) else None

    def _begin(
        self, input: Any, config: RunnableConfig | None
    ) -> tuple[RunnableConfig, str, TeamRun, _FinalOutput]:
        config = cast(RunnableConfig, dict(config or {}))
        configurable = dict(config.get("configurable") or {})
        thread = configurable.get("thread_id")
        if self._saver() is not None and thread is not None:
            key = f"thread:{thread}:{configurable.get('checkpoint_ns', '')}"
        else:
            key = f"call:{uuid.uuid4().hex}"
        resuming = input is None or isinstance(input, Command)
        session = self.session
        with session.lock:
            run = session.runs.get(key)
            if run is not None and not resuming:
                logger.info(
                    "gmem: a new input on %s starts a new task; the open one is dropped", key
                )
                run = None
            if run is None:
                metadata: dict[str, Any] = {"source": "langgraph"}
                if thread is not None:
                    metadata["thread_id"] = str(thread)
                run = TeamRun(session.memory, session.namespace, session.task_text, metadata)
                session.runs[key] = run
        self.last_run = run
        configurable[RUN_KEY] = key
        config["configurable"] = configurable
        run_id = config.get("run_id") or uuid.uuid4()
        config["run_id"] = run_id
        catcher = _FinalOutput(run_id)
        callbacks = config.get("callbacks")
        if isinstance(callbacks, BaseCallbackManager):
            manager = callbacks.copy()
            manager.add_handler(catcher, inherit=False)
            config["callbacks"] = manager
        else:
            config["callbacks"] = [*(callbacks or []), catcher]
        return config, key, run, catcher

    def _verdict(self, state: Any) -> tuple[bool | None, float | None]:
        """A judge that fails leaves the outcome unknown; the trace is still worth keeping."""
        assert self.judge is not None
        try:
            threshold = self.session.memory.config.judge_success_threshold
            return verdict_to_outcome(self.judge(state), threshold)
        except Exception as exc:  # noqa: BLE001  a user's judge may raise anything
            message = (
                f"gmem judge failed ({type(exc).__name__}: {exc}); the run is stored "
                "with an unknown outcome"
            )
            logger.warning(message)
            warnings.warn(message, MemoryUnavailableWarning, stacklevel=3)
            return None, None

    def _settle(self, key: str, run: TeamRun) -> bool:
        """Forget a completed run unless it awaits an explicit :meth:`finish`. True when
        the judge should finish it now."""
        with self.session.lock:
            if self.judge is not None or not run.finishable:
                self.session.runs.pop(key, None)
                return self.judge is not None
            previous = self._awaiting_finish
            if previous is not None and previous != key and previous.startswith("call:"):
                self.session.runs.pop(previous, None)
            self._awaiting_finish = key
            return False

    def _end(self, config: RunnableConfig, key: str, run: TeamRun, catcher: _FinalOutput) -> None:
        state = catcher.output
        if self._saver() is not None and key.startswith("thread:"):
            snapshot = self.graph.get_state(config)
            if snapshot.next:
                return  # paused at an interrupt: the resumed run finishes the task
            state = snapshot.values
        if self._settle(key, run):
            run.finish(*self._verdict(state))

    async def _aend(
        self, config: RunnableConfig, key: str, run: TeamRun, catcher: _FinalOutput
    ) -> None:
        state = catcher.output
        if self._saver() is not None and key.startswith("thread:"):
            snapshot = await self.graph.aget_state(config)
            if snapshot.next:
                return
            state = snapshot.values
        if self._settle(key, run):
            await run.afinish(*self._verdict(state))

    def _abandon(self, key: str) -> None:
        """A stream closed early: a checkpointed run may be resumed, any other is dropped."""
        if not key.startswith("thread:"):
            with self.session.lock:
                self.session.runs.pop(key, None)

    def _fail(self, key: str, run: TeamRun, exc: BaseException) -> None:
        """The team broke: memory learns from that as a failure (as ``Task`` does)."""
        with self.session.lock:
            self.session.runs.pop(key, None)
        if isinstance(exc, Exception):
            run.finish(False, error=exc)

    # ---- Runnable ----------------------------------------------------------------------
    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        config, key, run, catcher = self._begin(input, config)
        try:
            output = self.graph.invoke(input, config, **kwargs)
        except BaseException as exc:
            self._fail(key, run, exc)
            raise
        self._end(config, key, run, catcher)
        return output

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        config, key, run, catcher = self._begin(input, config)
        try:
            output = await self.graph.ainvoke(input, config, **kwargs)
        except BaseException as exc:
            self._fail(key, run, exc)
            raise
        await self._aend(config, key, run, catcher)
        return output

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        config, key, run, catcher = self._begin(input, config)
        try:
            yield from self.graph.stream(input, config, **kwargs)
        except GeneratorExit:
            self._abandon(key)  # the caller stopped listening; the outcome is unknown
            raise
        except BaseException as exc:
            self._fail(key, run, exc)
            raise
        self._end(config, key, run, catcher)

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        config, key, run, catcher = self._begin(input, config)
        try:
            async for chunk in self.graph.astream(input, config, **kwargs):
                yield chunk
        except GeneratorExit:
            self._abandon(key)
            raise
        except BaseException as exc:
            self._fail(key, run, exc)
            raise
        await self._aend(config, key, run, catcher)

    # ---- explicit outcome --------------------------------------------------------------
    def _pop_awaiting(self, config: RunnableConfig | None) -> TeamRun | None:
        configurable = (config or {}).get("configurable") or {}
        with self.session.lock:
            if "thread_id" in configurable:
                key: str | None = (
                    f"thread:{configurable['thread_id']}:{configurable.get('checkpoint_ns', '')}"
                )
            else:
                key = self._awaiting_finish
            if key is None:
                return None
            if key == self._awaiting_finish:
                self._awaiting_finish = None
            return self.session.runs.pop(key, None)

    def finish(
        self,
        success: bool | None,
        score: float | None = None,
        *,
        config: RunnableConfig | None = None,
    ) -> EvolutionReport | None:
        """Give the outcome of a completed run when no ``judge`` was set: the run of the
        ``thread_id`` in ``config``, or else the latest run. Returns None when there is
        no such run or memory is unavailable."""
        run = self._pop_awaiting(config)
        return None if run is None else run.finish(success, score)

    async def afinish(
        self,
        success: bool | None,
        score: float | None = None,
        *,
        config: RunnableConfig | None = None,
    ) -> EvolutionReport | None:
        run = self._pop_awaiting(config)
        return None if run is None else await run.afinish(success, score)


def with_memory(
    graph: StateGraph[Any] | CompiledStateGraph[Any],
    memory: Memory,
    *,
    roles: Roles = None,
    task: str | Callable[[Any], str] | None = None,
    judge: Judge | None = None,
    inject: Inject = "system",
    namespace: str = DEFAULT_NAMESPACE,
    messages_key: str = "messages",
    memory_key: str = "memory",
) -> MemoryGraph:
    """Give a LangGraph team G-Memory.

    ``graph``: a ``StateGraph`` builder (compiled with defaults) or a compiled one (its
    checkpointer, store, interrupts and name are kept). Neither is modified.

    ``roles``: node name to role, or a list of node names (each its own role), or None
    (every node is its own role). Listed nodes get their role's memory before they run;
    two nodes may share a role. Nodes of a subgraph are named ``"parent/child"``. Every
    node's new messages are recorded (unlisted ones under their node name as role), so the
    trace keeps tool results and routing nodes in the flow.

    ``task``: the task text, or a function of the state; default: the first human message.
    ``judge``: a function of the final state returning success (bool), a score in [0, 1],
    ``(success, score)`` or None; it runs when a run completes and triggers evolution.
    Without it, call :meth:`MemoryGraph.finish`.

    ``inject``: ``"system"`` prepends a ``SystemMessage`` to the node's ``messages_key``
    list (only the node sees it; it is stripped from what the node returns); ``"state"``
    puts the text under ``memory_key`` in the node's input instead.
    """
    if inject not in ("system", "state"):
        raise ValueError(f"inject must be 'system' or 'state', got {inject!r}")
    if roles is None:
        role_map: dict[str, str] = {}
        inject_all = True
    elif isinstance(roles, Mapping):
        role_map, inject_all = dict(roles), False
    else:
        role_map, inject_all = {str(n): str(n) for n in roles}, False
    unknown = sorted(set(role_map) - _node_paths(graph))
    if unknown:
        raise ValueError(f"roles name nodes the graph does not have: {', '.join(unknown)}")
    task_text: Callable[[Any], str]
    if isinstance(task, str):
        text = task
        task_text = lambda _state: text  # noqa: E731
    else:
        task_text = task or default_task_text(messages_key)
    session = _Session(memory, namespace, task_text, inject, messages_key, memory_key)
    return MemoryGraph(_rebuild(session, graph, role_map, inject_all), session, judge)
