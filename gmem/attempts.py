"""How one attempt of a task becomes nodes and edges.

Full evolution (``Evolver``) and bulk ingest (``BulkWriter``) both write attempts, and
a store that holds both must not be able to tell which path wrote a task: the same
counters on the query node, the same version rule, the same trace edges. Both build
them here, and so does every other place that turns one form of a step into another (a
recorded step, a trajectory line, a stored utterance, the view a reasoner is shown).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Protocol, TypedDict

import numpy as np
import numpy.typing as npt
from pydantic import JsonValue

from gmem.llm.protocol import StepView
from graph_store.model import Edge, EdgeKind, Outcome, QueryNode, trusted, utcnow


class Said(TypedDict):
    """What one step says: the fields every form of a step carries alike."""

    agent: str
    role: str
    content: str
    action: str | None
    observation: str | None
    reward: float | None


class Saying(Protocol):
    """Any form of a step: ``TrajectoryStep``, a recorded step, an ``Utterance``, a demo
    message."""

    @property
    def agent(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def content(self) -> str: ...
    @property
    def action(self) -> str | None: ...
    @property
    def observation(self) -> str | None: ...
    @property
    def reward(self) -> float | None: ...


def said(step: Saying) -> Said:
    """The step's own words and acts, to build another form of it from (``**said(step)``)."""
    return {
        "agent": step.agent,
        "role": step.role,
        "content": step.content,
        "action": step.action,
        "observation": step.observation,
        "reward": step.reward,
    }


def step_views(steps: Sequence[Saying]) -> list[StepView]:
    """An attempt's steps as the key-step extractor is shown them, numbered in order."""
    return [StepView(index=i, **said(s)) for i, s in enumerate(steps)]


def next_attempt(
    old: QueryNode | None,
    *,
    query_id: str,
    text: str,
    namespace: str,
    outcome: Outcome,
    score: float | None,
    metadata: dict[str, JsonValue],
    embedding: npt.NDArray[np.float32],
) -> tuple[QueryNode, bool]:
    """The query node after one more attempt, and whether the query is new.

    ``updated_at`` never moves backwards: it is the node's version for the writers'
    checks, and a clock that steps back must not make a newer write look older.
    """
    success, failure = outcome == Outcome.SUCCESS, outcome == Outcome.FAILURE
    if old is None:
        node = QueryNode(
            id=query_id,
            text=text,
            namespace=namespace,
            outcome=outcome,
            score=score,
            attempts=1,
            successes=int(success),
            failures=int(failure),
            attempt_outcomes=[outcome],
            metadata=dict(metadata),
            embedding=embedding,
        )
        return node, True
    node = old.model_copy(
        update={
            "outcome": outcome,
            "score": score,
            "attempts": old.attempts + 1,
            "successes": old.successes + success,
            "failures": old.failures + failure,
            "attempt_outcomes": [*old.attempt_outcomes, outcome],
            "updated_at": max(utcnow(), old.updated_at),
            "metadata": {**old.metadata, **metadata},
            "embedding": embedding,
        }
    )
    return node, False


def trace_edges(
    query_id: str, step_ids: Sequence[str], replies: Iterable[tuple[str, str]]
) -> list[Edge]:
    """HAS_TRACE from the query to every step, NEXT in order, REPLIES_TO once per pair.

    The ids are the ones the caller just made or checked (``Task.record`` checks every
    reply target), so the edges are built without validating them again.
    """
    edges = [edge(EdgeKind.HAS_TRACE, query_id, u) for u in step_ids]
    edges += [edge(EdgeKind.NEXT, a, b) for a, b in pairwise(step_ids)]
    edges += [edge(EdgeKind.REPLIES_TO, a, b) for a, b in dict.fromkeys(replies)]
    return edges


def edge(kind: EdgeKind, src: str, dst: str, props: dict[str, JsonValue] | None = None) -> Edge:
    """An edge between ids the caller made or checked, built without validating them."""
    return trusted(Edge, {"kind": kind, "src": src, "dst": dst, "props": props or {}})
