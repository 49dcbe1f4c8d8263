"""MemoryConfig: environment overrides, clear errors, and the documented table."""

from __future__ import annotations

from pathlib import Path

import pytest

from gmem.config import MemoryConfig
from gmem.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_env_then_keyword_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GMEM_HOPS", "2")
    monkeypatch.setenv("GMEM_INSIGHT_WEIGHTS", "0.1,0.2,0.7")
    cfg = MemoryConfig.from_env(seed_k=7)
    assert (cfg.hops, cfg.seed_k, cfg.insight_weights) == (2, 7, (0.1, 0.2, 0.7))


def test_invalid_value_is_one_line_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GMEM_HOPS", "many")
    with pytest.raises(ConfigError, match="GMEM_HOPS='many'") as info:
        MemoryConfig.from_env()
    assert "\n" not in str(info.value)
    monkeypatch.delenv("GMEM_HOPS")
    with pytest.raises(ConfigError, match="role_token_budget"):
        MemoryConfig.from_env(role_token_budget=1)


def test_every_field_is_documented() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    for name, info in MemoryConfig.model_fields.items():
        assert f"| `{name}` |" in doc, f"docs/architecture.md lacks {name}"
        assert info.description, f"{name} has no description"
