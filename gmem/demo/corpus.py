"""Labelled trajectories from the demo world, for the scenario test and the benchmarks.

The offline team plays seeded tasks without memory, so outcomes are mixed (about four in
ten succeed) and every trajectory carries its task family in ``metadata["family"]``. No
outside data set is needed, and the same seed always yields the same corpus.
"""

from __future__ import annotations

from gmem.attempts import said
from gmem.demo.team import OfflineTeam, run_episode
from gmem.demo.world import World, make_tasks
from gmem.trajectory import Trajectory, TrajectoryStep


def play(n: int, seed: int, episode_seed: int = 0) -> list[Trajectory]:
    """Play ``n`` tasks (task seed ``seed``) without memory and return them as trajectories."""
    world = World()
    out = []
    for i, task in enumerate(make_tasks(n, seed)):
        result = run_episode(world, task, OfflineTeam(), seed=episode_seed + i)
        steps = [TrajectoryStep(**said(m), replies_to=m.replies_to) for m in result.messages]
        out.append(
            Trajectory(
                task=task.text,
                success=result.success,
                score=1.0 if result.success else 0.0,
                steps=steps,
                metadata={"family": task.family, "task_id": task.id},
            )
        )
    return out
