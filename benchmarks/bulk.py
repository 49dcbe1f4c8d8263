"""Writing finished trajectories straight through the store protocol, for benchmarks.

The scale and latency benchmarks grow large stores faster than evolution could: each task
is written as its query node and its trace (utterances with HAS_TRACE, NEXT and
REPLIES_TO edges), which is what a finish writes minus the reasoner's work. One builder
serves them all, so every benchmark grows the same shape of store.

``Memory.ingest_many(trajectories, bulk=True)`` (:mod:`gmem.bulk`) writes the same and more
(attempts merged into existing queries, key steps, token counts, used-memory edges),
hundreds of trajectories per transaction with one batched similarity search; a benchmark
that only needs a large store should use it (``benchmarks/ingest.py`` measures it).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from gmem.attempts import said, trace_edges
from gmem.trajectory import Trajectory
from graph_store import DEFAULT_NAMESPACE, Edge, EdgeKind, Outcome, QueryNode, Utterance
from graph_store.model import query_id_for


def query_of(
    traj: Trajectory, vec: npt.NDArray[np.float32], namespace: str = DEFAULT_NAMESPACE
) -> QueryNode:
    """The query node of one finished attempt, with its text embedding."""
    outcome = Outcome.SUCCESS if traj.success else Outcome.FAILURE
    return QueryNode(
        id=query_id_for(namespace, traj.task),
        namespace=namespace,
        text=traj.task,
        outcome=outcome,
        score=traj.score,
        attempts=1,
        successes=int(bool(traj.success)),
        failures=int(not traj.success),
        attempt_outcomes=[outcome],
        metadata=traj.metadata,
        embedding=vec,
    )


def trace_of(
    traj: Trajectory, query_id: str, namespace: str = DEFAULT_NAMESPACE
) -> tuple[list[Utterance], list[Edge]]:
    """The attempt's utterances and the edges that tie them to the query and in order."""
    utts = [
        Utterance(
            query_id=query_id,
            namespace=namespace,
            step=j,
            **said(s),
            key_step=s.action is not None,
        )
        for j, s in enumerate(traj.steps)
    ]
    ids = [u.id for u in utts]
    replies = ((ids[j], ids[r]) for j, s in enumerate(traj.steps) for r in s.replies_to)
    return utts, trace_edges(query_id, ids, replies)


def similar_edges(query_id: str, near: list[tuple[str, float]], floor: float) -> list[Edge]:
    """SIMILAR_TO edges from a new query to earlier ones at or above ``floor``."""
    return [
        Edge(kind=EdgeKind.SIMILAR_TO, src=query_id, dst=other, props={"score": round(s, 4)})
        for other, s in near
        if s >= floor and other != query_id
    ]
