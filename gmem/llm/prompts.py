"""The words gmem sends to a chat model for each memory operation.

Kept apart from the transport so the prompts can be read, reviewed and tuned on their
own. Every prompt states the job, shows the request as compact JSON and the result's
JSON schema, and asks for one JSON object only: small local models (llama.cpp, Ollama)
follow an explicit schema far more reliably than a prose description, and some servers
ignore ``response_format``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from gmem.llm.protocol import (
    InsightRequest,
    InsightResult,
    KeyStepsRequest,
    KeyStepsResult,
    MergeRequest,
    MergeResult,
    ProjectionRequest,
    ProjectionResult,
    RelevanceRequest,
    RelevanceResult,
)

Messages = list[dict[str, str]]

_JSON_ONLY = (
    "Answer with one JSON object that validates against the schema below, and nothing "
    "else: no prose, no markdown."
)

SCORE_RELEVANCE_SYSTEM = (
    "You rank past tasks of a team of AI agents by how useful their experience is for a "
    "new task. A past task is useful when solving it needed the same kind of steps, "
    "tools or knowledge as the new task, not merely when it shares words. Score each "
    "candidate from 0 (no help) to 1 (the same task). Give exactly one score per "
    "candidate, in the candidates' order."
)

EXTRACT_KEY_STEPS_SYSTEM = (
    "You condense the trajectory of a team of AI agents to its key steps: the messages "
    "and actions that carried the task forward. Drop steps that changed nothing (the "
    "environment answered that nothing happened or the command was invalid), repeats of "
    "an action that already failed, loops, and small talk. For a failed trajectory also "
    "keep the steps that show where it went wrong. Keep the final step of a successful "
    "trajectory. Refer to steps by their `index`, in the trajectory's order."
)

DERIVE_INSIGHTS_SYSTEM = (
    "You maintain a list of insights: short, general lessons that help a team of AI "
    "agents solve future tasks of this kind. Compare the new trajectory with the similar "
    "successful and failed ones and with the existing insights, then return operations "
    "on the list: `add` a new lesson (`text`, one actionable sentence that generalises "
    "beyond this exact task), `edit` an existing lesson (`insight_id` and the improved "
    "`text`), `agree` with an existing lesson the new trajectory confirms (`insight_id`), "
    "or `remove` an existing lesson the evidence clearly contradicts (`insight_id`). "
    "Prefer agree or edit over adding a near-duplicate. Put in `roles` the team roles "
    "the lesson is for (from the listed roles; empty means every role). With each `add` "
    "give its `rule`: `kind` require, order, avoid or note, and `actions` copied exactly "
    "from the trajectories' `procedure` steps (1-3 for require, 2 for order, 1 for "
    "avoid). Return at least one operation when the trajectory contains anything to "
    "learn from."
)

PROJECT_INSIGHTS_SYSTEM = (
    "You choose which of a team's insights one agent should see before a task. Keep the "
    "insights that help this role with this task, optionally rephrased so they speak to "
    "the role directly without changing their meaning, each with a relevance from 0 to "
    "1, best first. Leave out insights that do not concern the role or the task. Keep "
    "each insight's `id`."
)

MERGE_INSIGHTS_SYSTEM = (
    "You tidy a team's list of insights. Find groups of two or more insights that state "
    "the same lesson. For each group give the ids of all its members in `source_ids` and "
    "one text that replaces them, keeping every concrete detail the members agree on. "
    "Leave insights that have no duplicate out of the answer; return no groups when "
    "nothing is duplicated."
)


def result_schema_dict(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema without titles, which cost tokens and carry nothing."""
    schema: dict[str, Any] = _drop_titles(model.model_json_schema())
    return schema


def result_schema(model: type[BaseModel]) -> str:
    return json.dumps(result_schema_dict(model), separators=(",", ":"))


def _drop_titles(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _drop_titles(v) for k, v in node.items() if k != "title"}
    if isinstance(node, list):
        return [_drop_titles(v) for v in node]
    return node


def _messages(system: str, intro: str, request: BaseModel, result: type[BaseModel]) -> Messages:
    user = (
        f"{intro}\nRequest:\n{request.model_dump_json(exclude_none=True)}\n\n"
        f"{_JSON_ONLY}\nSchema:\n{result_schema(result)}"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def score_relevance(request: RelevanceRequest) -> Messages:
    n = len(request.candidates)
    intro = f"New task and {n} candidate past tasks. Return `scores` with exactly {n} numbers."
    return _messages(SCORE_RELEVANCE_SYSTEM, intro, request, RelevanceResult)


def extract_key_steps(request: KeyStepsRequest) -> Messages:
    intro = f"A {request.outcome} trajectory of {len(request.steps)} steps."
    return _messages(EXTRACT_KEY_STEPS_SYSTEM, intro, request, KeyStepsResult)


def derive_insights(request: InsightRequest) -> Messages:
    intro = (
        f"New trajectory ({request.trajectory.outcome}), {len(request.successes)} similar "
        f"successes, {len(request.failures)} similar failures and "
        f"{len(request.existing)} existing insights."
    )
    return _messages(DERIVE_INSIGHTS_SYSTEM, intro, request, InsightResult)


def project_insights(request: ProjectionRequest) -> Messages:
    intro = f"Role `{request.role}`; {len(request.insights)} insights to choose from."
    return _messages(PROJECT_INSIGHTS_SYSTEM, intro, request, ProjectionResult)


def merge_insights(request: MergeRequest) -> Messages:
    intro = f"{len(request.insights)} insights."
    return _messages(MERGE_INSIGHTS_SYSTEM, intro, request, MergeResult)


def correction(problem: str) -> str:
    """The re-ask after an unusable answer; naming the problem is what makes it work."""
    return (
        f"Your answer could not be used: {problem}. Reply again with only the corrected "
        "JSON object that follows the schema."
    )
