"""The memory operations gmem asks a reasoner for, and their typed inputs and outputs.

The engine never sends free text to a model and parses it ad hoc: each operation has a
request and a result model. :class:`gmem.llm.OpenAIChat` answers them by prompting an
OpenAI-compatible endpoint for JSON that validates against the result model;
:class:`gmem.llm.HeuristicLLM` answers them with deterministic algorithms when no
endpoint is configured. Both count usage per operation.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

OperationName = Literal[
    "score_relevance",
    "extract_key_steps",
    "derive_insights",
    "project_insights",
    "merge_insights",
    "chat",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- views: what an operation is shown -------------------------------------------------
class StepView(_Strict):
    """One utterance as a reasoner sees it."""

    index: int
    agent: str
    role: str
    content: str
    action: str | None = None
    observation: str | None = None
    reward: float | None = None


class TrajectoryView(_Strict):
    """One attempt. ``procedure`` is its action skeleton (:mod:`gmem.procedure`): the
    steps with object names and numbers abstracted, which rules are stated in."""

    task: str
    outcome: Literal["success", "failure", "unknown"]
    steps: list[StepView]
    procedure: list[str] = Field(default_factory=list)


class RuleView(_Strict):
    """A lesson as data. ``kind``: ``require`` (take every step in ``actions``),
    ``order`` (``actions[0]`` before ``actions[1]``), ``avoid`` (do not ``actions[0]``)
    or ``note`` (no checkable pattern). ``actions`` must be steps of the shown trajectories'
    ``procedure`` lists, copied exactly. ``scope``, on existing insights, is the
    procedure the rule was learned from; the engine sets it for new ones."""

    kind: Literal["require", "order", "avoid", "note"]
    actions: list[str] = Field(default_factory=list, max_length=3)
    scope: list[str] = Field(default_factory=list)


class InsightView(_Strict):
    id: str
    text: str
    score: float = 0.0
    roles: list[str] = Field(default_factory=list)
    rule: RuleView | None = None


class CandidateView(_Strict):
    """A past task to rank. ``similarity`` is the embedding cosine to the new task, which
    the engine already has from the store; a reasoner may use it or judge afresh."""

    id: str
    task: str
    outcome: Literal["success", "failure", "unknown"]
    similarity: float | None = None


# ---- requests and results --------------------------------------------------------------
class RelevanceRequest(_Strict):
    task: str
    candidates: list[CandidateView]


class RelevanceResult(_Strict):
    """One relevance in [0, 1] per candidate, in the candidates' order."""

    scores: list[float]


class KeyStepsRequest(_Strict):
    task: str
    outcome: Literal["success", "failure", "unknown"]
    steps: list[StepView]


class KeyStepsResult(_Strict):
    """Indices (``StepView.index``) of the steps that carried the task forward."""

    keep: list[int]


class InsightRequest(_Strict):
    """This trajectory, past attempts of the same procedure, and the existing insights.

    ``successes`` and ``failures`` followed this trajectory's procedure; ``others`` are
    successes of similarly worded tasks that followed another procedure, which tell the
    steps every task takes from the ones this procedure needs.
    """

    trajectory: TrajectoryView
    successes: list[TrajectoryView] = Field(default_factory=list)
    failures: list[TrajectoryView] = Field(default_factory=list)
    others: list[TrajectoryView] = Field(default_factory=list)
    existing: list[InsightView] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)


class InsightOp(_Strict):
    """ADD a new lesson, EDIT an existing one's text, AGREE with one, or REMOVE one.

    ``rule`` (for ``add``) is the lesson as data; the engine validates it against the
    trajectories' procedures and keeps it beside ``text``, or stores a ``note``.
    """

    op: Literal["add", "edit", "agree", "remove"]
    insight_id: str | None = None
    text: str | None = None
    roles: list[str] = Field(default_factory=list)
    rule: RuleView | None = None


class InsightResult(_Strict):
    operations: list[InsightOp]


class ProjectionRequest(_Strict):
    role: str
    task: str
    insights: list[InsightView]


class ProjectedInsight(_Strict):
    id: str
    text: str
    relevance: float = Field(ge=0.0, le=1.0)


class ProjectionResult(_Strict):
    """The insights worth showing to the role, rephrased for it where useful, best first."""

    insights: list[ProjectedInsight]


class MergeRequest(_Strict):
    insights: list[InsightView]


class MergedInsight(_Strict):
    source_ids: list[str]
    text: str


class MergeResult(_Strict):
    """Groups of near-duplicate insights, each with the one text that replaces them."""

    groups: list[MergedInsight]


# ---- usage -----------------------------------------------------------------------------
@dataclass
class OperationUsage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failures: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class UsageLedger:
    """Token usage per memory operation, as reported by the endpoint."""

    by_operation: dict[str, OperationUsage] = field(default_factory=dict)
    # Async twins call the reasoner from worker threads; += on shared counters is not atomic.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, op: str, prompt: int = 0, completion: int = 0, failed: bool = False) -> None:
        with self._lock:
            entry = self.by_operation.setdefault(op, OperationUsage())
            entry.calls += 1
            entry.prompt_tokens += prompt
            entry.completion_tokens += completion
            entry.failures += int(failed)

    @property
    def total_tokens(self) -> int:
        return sum(u.total_tokens for u in self.by_operation.values())


@runtime_checkable
class LLM(Protocol):
    """What the memory engine needs from a reasoner (a real LLM or the heuristic)."""

    name: str
    usage: UsageLedger

    def score_relevance(self, request: RelevanceRequest) -> RelevanceResult: ...
    def extract_key_steps(self, request: KeyStepsRequest) -> KeyStepsResult: ...
    def derive_insights(self, request: InsightRequest) -> InsightResult: ...
    def project_insights(self, request: ProjectionRequest) -> ProjectionResult: ...
    def merge_insights(self, request: MergeRequest) -> MergeResult: ...
