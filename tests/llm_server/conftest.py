"""Fixtures for the tests that talk to a real model on a local server.

They run when ``GMEM_TEST_LLM_BASE_URL`` is set (``eval "$(gmem/llm/local_server.sh
test-env)"`` sets it for the local llama.cpp server; ``make test`` starts that server) and
then fail, never skip, when the server is missing. Without the variable they are
deselected, so a plain ``pytest`` on a machine without the server runs everything else.
A separate variable from ``GMEM_LLM_BASE_URL`` keeps the rest of the suite on the
offline heuristic while these tests run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services import require_service

HERE = Path(__file__).parent


@dataclass(frozen=True)
class ServerSettings:
    base_url: str
    model: str | None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    require_service(config, items, HERE, pytest.mark.llm_server, "GMEM_TEST_LLM_BASE_URL")


@pytest.fixture(scope="session")
def llm_server() -> ServerSettings:
    return ServerSettings(
        base_url=os.environ["GMEM_TEST_LLM_BASE_URL"],
        model=os.environ.get("GMEM_TEST_LLM_MODEL") or None,
    )
