"""``gmem mcp`` with a real MCP client session: the SDK's stdio client spawns the server."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from typer.testing import CliRunner

from gmem.cli import app

FIXTURES = Path(__file__).parent / "fixtures"
HEAT = "put a hot apple on the diningtable."


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "memory.db"
    env = {"GMEM_EMBEDDER": "hashing", "GMEM_LLM_BASE_URL": "", "GMEM_STORE": None}
    result = CliRunner().invoke(
        app, ["--store", str(path), "ingest", str(FIXTURES / "trajectories.jsonl")], env=env
    )
    assert result.exit_code == 0, result.output
    return path


def structured(result: Any) -> Any:
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)


async def session_run(store: Path) -> dict[str, Any]:
    env = {**os.environ, "GMEM_EMBEDDER": "hashing", "GMEM_LLM_BASE_URL": ""}
    env.pop("GMEM_STORE", None)
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "gmem", "--store", str(store), "mcp"], env=env
    )
    out: dict[str, Any] = {}
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        out["tools"] = sorted(t.name for t in (await session.list_tools()).tools)
        out["stats"] = structured(await session.call_tool("stats", {}))
        out["recall"] = structured(
            await session.call_tool(
                "recall", {"task": "put a hot apple on the dining table", "role": "actor"}
            )
        )
        out["record"] = structured(
            await session.call_tool(
                "record",
                {
                    "task": "warm a mug in the microwave",
                    "success": True,
                    "steps": [
                        {"agent": "a1", "role": "actor", "content": "go to microwave 1"},
                        {
                            "agent": "a1",
                            "role": "actor",
                            "content": "heat mug 1 with microwave 1",
                            "action": "heat mug 1 with microwave 1",
                            "replies_to": [0],
                        },
                    ],
                },
            )
        )
        out["after"] = structured(await session.call_tool("stats", {}))
        out["insights"] = structured(await session.call_tool("insights", {"query": "mug"}))
        out["lab"] = structured(await session.call_tool("stats", {"namespace": "lab"}))
        out["bad"] = await session.call_tool(
            "record", {"task": "x", "success": True, "steps": [{"agent": "a"}]}
        )
    return out


def test_an_mcp_client_recalls_records_and_reads_stats(store: Path) -> None:
    out = anyio.run(session_run, store)
    assert out["tools"] == ["insights", "recall", "record", "stats"]
    assert out["stats"] == {"namespace": "default", "tasks": 5, "utterances": 31, "insights": 0}
    assert out["recall"]["past_tasks"][0]["task"] == HEAT
    assert "heat apple 1 with microwave 1" in out["recall"]["memory"]
    assert out["record"]["stored"] and out["record"]["outcome"] == "success"
    assert out["after"]["tasks"] == 6 and out["after"]["utterances"] == 33
    assert isinstance(out["insights"]["insights"], list)
    assert out["lab"]["tasks"] == 1
    assert out["bad"].is_error  # a malformed step is refused with gmem's message
    text = out["bad"].content[0].text
    assert "invalid trajectory" in text and "role" in text
