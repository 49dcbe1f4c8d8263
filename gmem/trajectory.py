"""The JSONL schema for finished trajectories that ``Memory.ingest`` and ``gmem ingest`` read.

One JSON object per line::

    {"task": "put a clean mug in the cabinet", "success": true, "score": 1.0,
     "namespace": "household", "metadata": {"family": "clean"},
     "steps": [
       {"agent": "p1", "role": "planner", "content": "Find the mug, clean it, ..."},
       {"agent": "a1", "role": "actor", "content": "go to sinkbasin 1",
        "action": "go to sinkbasin 1", "observation": "You see a mug.", "reward": 0,
        "replies_to": [0]}
     ]}

``replies_to`` holds indices of earlier steps of the same trajectory. ``success`` may be
``null`` (outcome unknown); ``namespace`` defaults to the one given to the reader.
``used_queries`` (optional) names the past tasks, by query id or task text, whose memory
the team was given, so that replayed history keeps its USED_MEMORY_OF edges.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator

from gmem.errors import TrajectoryError, UserInputError


class TrajectoryStep(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent: str = Field(min_length=1, max_length=200)
    role: str = Field(min_length=1, max_length=200)
    content: str
    action: str | None = None
    observation: str | None = None
    reward: float | None = None
    replies_to: list[int] = Field(default_factory=list)
    metadata: dict[str, JsonValue] = Field(default_factory=dict)


class Trajectory(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task: str
    success: bool | None
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    namespace: str | None = None
    steps: list[TrajectoryStep]
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    used_queries: list[str] = Field(default_factory=list)

    @field_validator("task")
    @classmethod
    def _task_text(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("task text must not be empty")
        return v

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[TrajectoryStep]) -> list[TrajectoryStep]:
        if not v:
            raise ValueError("a trajectory needs at least one step")
        for i, step in enumerate(v):
            for r in step.replies_to:
                if not 0 <= r < i:
                    raise ValueError(f"step {i} replies to step {r}, which is not an earlier step")
        return v


def _one_line(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "line"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}"


def parse_trajectory(data: object) -> Trajectory:
    try:
        return Trajectory.model_validate(data)
    except ValidationError as exc:
        raise TrajectoryError(f"invalid trajectory: {_one_line(exc)}") from None


def read_jsonl(
    path: str | Path, skip_bad: bool = False
) -> Iterator[tuple[int, Trajectory | TrajectoryError]]:
    """Yield ``(line_number, trajectory)``; with ``skip_bad`` a bad line yields its error.

    Without ``skip_bad`` the first bad line raises, naming the file and line.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UserInputError(f"cannot read {path}: {reason}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrajectoryError(f"invalid JSON ({exc.msg})") from None
            yield number, parse_trajectory(data)
        except TrajectoryError as exc:
            if not skip_bad:
                raise TrajectoryError(f"{path}:{number}: {exc}") from None
            yield number, exc
