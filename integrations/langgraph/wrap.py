"""``with_memory``: give an existing LangGraph team G-Memory without changing its code.

Why wrap nodes instead of listening to callbacks: a callback can watch what a node said,
but it cannot change what the node sees, and injecting memory is half the job. So the
builder is copied with every node's runnable replaced by a thin wrapper that recalls the
node's role memory, hands the node its input with that memory added, and records the
messages the node returns. The user's builder and nodes are not modified, and LangGraph
still runs the graph: checkpoints, interrupts, retries, ``Send`` and ``Command`` routing
all behave as before, because the wrapper returns exactly what the node returned (less
the injected memory message, which must never enter the team's state).

The pieces live apart: :mod:`integrations.langgraph.session` puts memory into a node's
input and takes its messages out of the output, :mod:`integrations.langgraph.rebuild`
copies and recompiles the graph with wrapped nodes, and this module holds the run
lifecycle. The wrapper is the object that starts and ends runs (``invoke``/``stream``
and their async twins), because only there is it known when a run is over: a
checkpointed run that stops at an interrupt is resumed later and finished then, once.
"""

from __future__ import annotations

import logging
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, cast

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackManager
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph, StateGraph
from langgraph.types import Command

from gmem.evolution import EvolutionReport
from gmem.memory import Memory
from graph_store.model import DEFAULT_NAMESPACE
from integrations.langgraph.rebuild import node_paths, rebuild
from integrations.langgraph.run import (
    MemoryUnavailableWarning,
    TeamRun,
    Verdict,
    default_task_text,
    verdict_to_outcome,
)
from integrations.langgraph.session import RUN_KEY, Inject, Session

logger = logging.getLogger("gmem.langgraph")


Roles = Mapping[str, str] | Sequence[str] | None
Judge = Callable[[Any], Verdict]


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
        self, graph: CompiledStateGraph[Any], session: Session, judge: Judge | None
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
    paths = node_paths(graph)
    unknown = sorted(set(role_map) - paths)
    if unknown:
        raise ValueError(
            f"roles name nodes the graph does not have: {', '.join(unknown)}; "
            f"valid nodes: {', '.join(sorted(paths))}"
        )
    task_text: Callable[[Any], str]
    if isinstance(task, str):
        text = task
        task_text = lambda _state: text  # noqa: E731
    else:
        task_text = task or default_task_text(messages_key)
    session = Session(memory, namespace, task_text, inject, messages_key, memory_key)
    return MemoryGraph(rebuild(session, graph, role_map, inject_all), session, judge)
