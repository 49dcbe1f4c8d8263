"""The demo's two conditions: the team alone, and the team with gmem, on the same tasks.

This is where the engine and the demo world meet: each task becomes a ``memory.task``,
the structured recall is turned into :class:`MemoryHints`, every message of the episode
is recorded as an utterance, and the outcome finishes the task. The runner yields one
record per task and prints nothing, so the CLI decides how to show progress and tests
can drive it directly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from gmem.demo.hints import MemoryHints
from gmem.demo.team import ROLES, EpisodeResult, Team, run_episode
from gmem.demo.world import Task, World
from gmem.evolution import EvolutionReport
from gmem.memory import Memory
from gmem.recall import PastTrajectory, Recall, RoleMemory
from gmem.task import Task as MemoryTask
from graph_store.model import Outcome


@dataclass(frozen=True)
class TaskRun:
    """One task played once: its episode, and with memory what was recalled and learned."""

    index: int
    task: Task
    episode: EpisodeResult
    hints: MemoryHints
    recall: Recall | None = None
    roles: tuple[RoleMemory, ...] = ()
    report: EvolutionReport | None = None

    @property
    def success(self) -> bool:
        return self.episode.success


def _actions(trajectory: PastTrajectory) -> list[str]:
    return [s.action for s in trajectory.steps if s.action]


def hints_from(memories: Sequence[RoleMemory]) -> MemoryHints:
    """What the team is told: recalled successes as plans (most relevant first), the
    actions of recalled failures as warnings, and the actor's insights.

    Trajectories are the same for every role (only rendering differs), so the first role's
    are used; the actor's insights are the ones about concrete actions.
    """
    if not memories:
        return MemoryHints()
    trajectories = sorted(memories[0].trajectories, key=lambda t: -t.relevance)
    plans = [acts for t in trajectories if t.outcome == Outcome.SUCCESS and (acts := _actions(t))]
    warnings = [a for t in trajectories if t.outcome == Outcome.FAILURE for a in _actions(t)]
    actor = next((m for m in memories if m.role == "actor"), memories[0])
    return MemoryHints(plans, warnings, [i.text for i in actor.insights])


def play_without_memory(
    world: World, tasks: Sequence[Task], team: Team, seed: int
) -> Iterator[TaskRun]:
    for i, task in enumerate(tasks):
        yield TaskRun(
            i, task, run_episode(world, task, team, MemoryHints(), seed=seed), MemoryHints()
        )


def play_with_memory(
    world: World,
    tasks: Sequence[Task],
    team: Team,
    memory: Memory,
    seed: int,
    namespace: str = "default",
) -> Iterator[TaskRun]:
    """Recall, act, record, finish: the loop a team wrapped by gmem runs for every task."""
    for i, task in enumerate(tasks):
        with memory.task(
            task.text,
            namespace=namespace,
            roles=list(ROLES),
            metadata={"family": task.family, "demo_task": task.id},
        ) as t:
            roles = tuple(t.recall(role) for role in ROLES)
            hints = hints_from(roles)
            episode = run_episode(world, task, team, hints, seed=seed, on_message=_Recorder(t))
            report = t.finish(success=episode.success, score=1.0 if episode.success else 0.0)
            yield TaskRun(i, task, episode, hints, t.memory_recall, roles, report)


class _Recorder:
    """Records each team message as an utterance, turning the team's message indices in
    ``replies_to`` into the utterance ids the engine returned for them."""

    def __init__(self, task: MemoryTask) -> None:
        self.task = task
        self.ids: list[str] = []

    def __call__(
        self,
        agent: str,
        role: str,
        content: str,
        action: str | None,
        observation: str | None,
        reward: float | None,
        replies_to: list[int],
    ) -> None:
        self.ids.append(
            self.task.record(
                agent,
                role,
                content,
                replies_to=[self.ids[r] for r in replies_to],
                action=action,
                observation=observation,
                reward=reward,
            )
        )


def success_blocks(runs: Sequence[bool], block: int = 10) -> list[tuple[int, int, float]]:
    """Success rate per block of consecutive tasks: ``(first, last, rate)``, 1-based."""
    out = []
    for start in range(0, len(runs), block):
        chunk = runs[start : start + block]
        out.append((start + 1, start + len(chunk), sum(chunk) / len(chunk)))
    return out


__all__ = [
    "TaskRun",
    "hints_from",
    "play_with_memory",
    "play_without_memory",
    "success_blocks",
]
