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
the team was given, so that replayed history keeps its USED_MEMORY_OF edges. An
optional ``"id"`` names the trajectory; without one, its content is its identity (see
:func:`trajectory_key`), so ingesting the same file twice, or again after an interrupted
run, stores each trajectory once.

The file is read as JSON Lines: UTF-8 (a leading byte-order mark is accepted), records
separated by ``\n`` only (``\r\n`` works too), so U+2028, U+0085 and other characters
that ``str.splitlines`` would break on may appear inside a record, as
``json.dumps(ensure_ascii=False)`` writes them. Nesting is bounded: a record nested deeper
than the limit is reported as a bad line, never a ``RecursionError``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator

from gmem.errors import TrajectoryError, UserInputError
from gmem.inputs import check_json, check_name

#: Levels a record adds above a step's metadata: the record, ``steps``, the step itself.
_RECORD_LEVELS = 3
_DEFAULT_METADATA_DEPTH = 16


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

    @field_validator("agent", "role")
    @classmethod
    def _name(cls, v: str) -> str:
        # The same rule Task.record applies, so a file is refused before anything is written.
        return check_name(v, "name")


class Trajectory(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(default=None, min_length=1, max_length=200)
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


def parse_trajectory(
    data: object,
    max_depth: int = _DEFAULT_METADATA_DEPTH,
    max_chars: int = 1_000_000,
) -> Trajectory:
    """Validate one trajectory; ``max_depth`` bounds the nesting of its metadata."""
    try:
        plain = check_json(data, "trajectory", max_depth + _RECORD_LEVELS, max_chars)
    except UserInputError as exc:
        raise TrajectoryError(f"invalid trajectory: {exc}") from None
    try:
        return Trajectory.model_validate(plain)
    except ValidationError as exc:
        raise TrajectoryError(f"invalid trajectory: {_one_line(exc)}") from None


def trajectory_key(trajectory: Trajectory, namespace: str) -> str:
    """The stable identity of a trajectory in a namespace: its ``id`` if it has one, else
    a hash of its content (canonical JSON), so a rerun recognises what it stored before."""
    if trajectory.id is not None:
        basis = f"id\x00{trajectory.id}"
    else:
        content = trajectory.model_dump(mode="json", exclude={"id", "namespace"})
        basis = "content\x00" + json.dumps(content, sort_keys=True, ensure_ascii=False)
    material = f"{namespace}\x00{basis}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(material).hexdigest()[:32]


def step_id(key: str, index: int) -> str:
    """The utterance id of step ``index`` of the trajectory with ``key``: the key's first
    24 digits, then the step number in 8. A trajectory's utterances sort together, so
    writing them and their trace edges touches a few pages of each index instead of one
    page per row at a random place, which was most of the cost of a bulk write into a
    large store."""
    return f"{key[:24]}{index:08x}"


def hashed_step_id(key: str, index: int) -> str:
    """The id gmem gave step ``index`` before :func:`step_id` (a hash of key and number).
    A store may hold trajectories ingested then: their first step's id recognises them,
    so ingesting the same file again still stores nothing twice."""
    return hashlib.sha256(f"{key}\x00step\x00{index}".encode()).hexdigest()[:32]


def read_jsonl(
    path: str | Path,
    skip_bad: bool = False,
    max_depth: int = _DEFAULT_METADATA_DEPTH,
    max_chars: int = 1_000_000,
) -> Iterator[tuple[int, Trajectory | TrajectoryError]]:
    """Yield ``(line_number, trajectory)``; with ``skip_bad`` a bad line yields its error.

    Without ``skip_bad`` the first bad line raises, naming the file and line.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UserInputError(f"cannot read {path}: {reason}") from None
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrajectoryError(f"invalid JSON ({exc.msg})") from None
            except ValueError as exc:  # e.g. an integer longer than Python converts
                raise TrajectoryError(f"invalid JSON ({exc})") from None
            except RecursionError:
                raise TrajectoryError("JSON nested too deeply") from None
            yield number, parse_trajectory(data, max_depth, max_chars)
        except TrajectoryError as exc:
            if not skip_bad:
                raise TrajectoryError(f"{path}:{number}: {exc}") from None
            yield number, exc
