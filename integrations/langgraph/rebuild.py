"""The team graph rebuilt with every node wrapped: memory in, records out.

The user's builder is copied, never modified; subgraphs named by ``roles`` are rebuilt
the same way, and the copy is compiled with the original's checkpointer, store,
interrupts and configuration so that LangGraph runs it exactly as before.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any, cast

from langchain_core.runnables import Runnable, RunnableConfig

# The runnable LangGraph itself wraps node functions in: it passes ``config`` through and
# adds no tracing layer of its own, so a wrapped node traces exactly like the original.
from langgraph._internal._runnable import RunnableCallable
from langgraph.errors import ParentCommand
from langgraph.graph.state import CompiledStateGraph, StateGraph

from integrations.langgraph.session import InnerMessages, Session


def memory_node(
    session: Session, path: str, role: str, inject: bool, inner: Runnable[Any, Any]
) -> Runnable[Any, Any]:
    """One node with memory in and records out. The closures call ``inner.invoke`` by name
    so that LangGraph still finds a subgraph inside (it inspects a node function's
    nonlocals), which keeps ``get_state(subgraphs=True)`` and subgraph interrupts working."""

    def node(state: Any, config: RunnableConfig) -> Any:
        run = session.run_for(config)
        if run is None:
            return inner.invoke(state, config)
        given = session.with_memory_text(state, run.recall(role, state), role) if inject else state
        said = InnerMessages(config, session.messages_key)
        try:
            output = inner.invoke(given, said.attach(config))
        except ParentCommand as exc:
            command = session.capture(run, path, role, state, exc.args[0], said.messages)
            raise ParentCommand(command) from exc
        return session.capture(run, path, role, state, output, said.messages)

    async def anode(state: Any, config: RunnableConfig) -> Any:
        run = session.run_for(config)
        if run is None:
            return await inner.ainvoke(state, config)
        given = (
            session.with_memory_text(state, await run.arecall(role, state), role)
            if inject
            else state
        )
        said = InnerMessages(config, session.messages_key)
        try:
            output = await inner.ainvoke(given, said.attach(config))
        except ParentCommand as exc:
            command = session.capture(run, path, role, state, exc.args[0], said.messages)
            raise ParentCommand(command) from exc
        return session.capture(run, path, role, state, output, said.messages)

    return RunnableCallable(node, anode, name=path.rsplit("/", 1)[-1], trace=False, recurse=False)


def compile_like(
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


def rebuild(
    session: Session,
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
            runnable = rebuild(session, runnable, roles, inject_all, f"{path}/")
        role = roles.get(path, path)
        wrapped = memory_node(session, path, role, inject_all or path in roles, runnable)
        copied.nodes[name] = dataclasses.replace(spec, runnable=wrapped)
    return compile_like(copied, original)


def node_paths(graph: StateGraph[Any] | CompiledStateGraph[Any], prefix: str = "") -> set[str]:
    builder = graph.builder if isinstance(graph, CompiledStateGraph) else graph
    paths = set()
    for name, spec in builder.nodes.items():
        paths.add(f"{prefix}{name}")
        if isinstance(spec.runnable, CompiledStateGraph):
            paths |= node_paths(spec.runnable, f"{prefix}{name}/")
    return paths
