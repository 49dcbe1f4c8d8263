"""``gmem mcp``: the memory as a Model Context Protocol server on standard input/output.

An MCP client (Claude Desktop, an IDE, any agent runtime with MCP support) starts
``gmem mcp`` as a subprocess and calls four tools: ``recall``, ``insights``, ``stats`` and
``record``, the operations of :class:`gmem.tools.MemoryTools`. Standard output carries the
protocol, so nothing else is printed there; errors go back to the client as tool errors
with gmem's one-line messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from gmem.cli.settings import open_memory, settings
from gmem.errors import ConfigError, GmemError
from gmem.tools import DEFAULT_INSIGHT_LIMIT, MemoryTools
from graph_store.model import DEFAULT_NAMESPACE, check_namespace


def mcp(
    ctx: typer.Context,
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="Namespace the tools use by default.")
    ] = DEFAULT_NAMESPACE,
) -> None:
    """Serve the memory to MCP clients over stdio: recall, insights, stats, record.

    Needs the mcp extra (pip install 'gmem-agents[mcp]'). An MCP client's configuration
    names the command, e.g. {"command": "gmem", "args": ["--store", "team.db", "mcp"]}.

    Example: gmem --store team.db mcp --namespace household
    """
    try:
        from mcp.server.mcpserver import MCPServer
        from mcp.server.mcpserver.exceptions import ToolError
    except ImportError:
        raise ConfigError("gmem mcp needs the MCP SDK: pip install 'gmem-agents[mcp]'") from None
    check_namespace(namespace)
    with open_memory(settings(ctx), must_exist=False) as memory:
        server = MCPServer(
            "gmem",
            instructions="Team memory after G-Memory: recall past tasks and insights for a "
            "task before working on it, search insights, and record finished attempts so "
            "the memory learns from their outcomes.",
        )

        def tools(space: str | None) -> MemoryTools:
            return MemoryTools(memory, check_namespace(space) if space else namespace)

        def answer(work: Callable[[], Any]) -> Any:
            # gmem's own errors are the caller's to fix: their one-line message goes back
            # to the client as the tool's error (anything else stays a server-side crash).
            try:
                return work()
            except GmemError as exc:
                raise ToolError(str(exc)) from None

        @server.tool()
        def recall(task: str, role: str | None = None, namespace: str | None = None) -> Any:
            """Past tasks similar to `task` with their outcomes, the insights that apply,
            and (given a role) the memory text prepared for that role."""
            return answer(lambda: tools(namespace).recall(task, role))

        @server.tool()
        def insights(
            query: str | None = None,
            role: str | None = None,
            limit: int = DEFAULT_INSIGHT_LIMIT,
            namespace: str | None = None,
        ) -> Any:
            """The team's lessons for a role (or every role), closest to `query` first."""
            return answer(lambda: {"insights": tools(namespace).insights(query, role, limit)})

        @server.tool()
        def stats(namespace: str | None = None) -> Any:
            """How many tasks, utterances and insights the namespace holds."""
            return answer(lambda: tools(namespace).stats())

        @server.tool()
        def record(
            task: str,
            steps: list[dict[str, Any]],
            success: bool | None = None,
            namespace: str | None = None,
        ) -> Any:
            """Store a finished attempt at `task` and let memory evolve from it. Each step
            is {"agent", "role", "content"} with optional "action", "observation",
            "reward" and "replies_to" (indices of earlier steps); `success` is the outcome
            (null when unknown)."""
            return answer(lambda: tools(namespace).record(task, steps, success))

        server.run("stdio")


__all__ = ["mcp"]
