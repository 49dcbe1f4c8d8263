"""Gating for the test folders that need a real service (Neo4j, a model server).

Such tests run when the service's variable is set and then fail, never skip, when the
service is missing. Without the variable they are deselected, reported as such by
pytest, so a plain ``pytest`` on a machine without the service still runs the rest.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def require_service(
    config: pytest.Config,
    items: list[pytest.Item],
    folder: Path,
    marker: pytest.MarkDecorator,
    variable: str,
) -> None:
    """Mark the tests under ``folder``; deselect them unless ``variable`` is set."""
    mine = [item for item in items if folder in Path(str(item.path)).parents]
    for item in mine:
        item.add_marker(marker)
    if os.environ.get(variable):
        return
    config.hook.pytest_deselected(items=mine)
    items[:] = [item for item in items if item not in mine]
