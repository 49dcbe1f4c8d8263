"""Per-role memory: project insights onto a role and render a budgeted prompt block.

Different agents need different memory: a planner needs the lessons and the shape of past
solutions, an actor the concrete actions, a critic what went wrong. Insights are projected
by the reasoner (LLM or heuristic); trajectory steps of the role itself are shown in full
and other roles' steps shrink to their actions. Everything is cut to a token budget,
counted with a real tokenizer, highest-value items first, and the result says which items
reached the prompt: only those can be credited with the task's outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from gmem import boundary
from gmem.config import MemoryConfig
from gmem.llm.protocol import LLM, InsightView, ProjectionRequest
from gmem.recall import PastTrajectory, Recall, RecalledInsight, RoleMemory, Step
from gmem.tokens import TokenCounter
from graph_store.model import Outcome


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def step_line(step: Step, role: str, config: MemoryConfig) -> str:
    """One past step as the role reads it; a message that only restates its action is
    shown once, as the action."""
    who = f"{step.agent} ({step.role}): "
    action = f"[action: {_clip(step.action, config.action_chars)}]" if step.action else ""
    if step.action and _same(step.content, step.action):
        line = who + action
    elif step.role == role:
        line = who + _clip(step.content, config.step_chars) + (f" {action}" if action else "")
    else:
        line = who + (action or _clip(step.content, config.other_role_chars))
    if step.observation:
        line += f" -> {_clip(step.observation, config.action_chars)}"
    return line


@dataclass
class _Budget:
    """Lines that fit within a token budget, one line (and its newline) at a time."""

    limit: int
    tokens: TokenCounter
    lines: list[str] = field(default_factory=list)
    used: int = 0

    def cost(self, text: str) -> int:
        return self.tokens.count(text) + 1

    def fits(self, cost: int) -> bool:
        return self.used + cost <= self.limit

    def add(self, text: str, cost: int | None = None) -> bool:
        cost = self.cost(text) if cost is None else cost
        if not self.fits(cost):
            return False
        self.lines.append(text)
        self.used += cost
        return True


class RoleProjector:
    def __init__(self, llm: LLM, tokens: TokenCounter, config: MemoryConfig) -> None:
        self.llm = llm
        self.tokens = tokens
        self.config = config

    def __call__(self, recall: Recall, role: str) -> RoleMemory:
        insights = self._project(recall, role)
        trajectories = tuple(recall.trajectories)
        insights, trajectories = boundary.guard(insights, trajectories)  # stored text is data
        return self._render(recall.task, role, insights, trajectories)

    def _project(self, recall: Recall, role: str) -> tuple[RecalledInsight, ...]:
        if not recall.insights:
            return ()
        request = ProjectionRequest(
            role=role,
            task=recall.task,
            insights=[
                InsightView(id=i.id, text=i.text, score=i.score, roles=list(i.roles))
                for i in recall.insights
            ],
        )
        by_id = {i.id: i for i in recall.insights}
        return tuple(
            replace(by_id[p.id], text=p.text)
            for p in self.llm.project_insights(request).insights
            if p.id in by_id
        )

    def _trajectory_lines(self, t: PastTrajectory, role: str, label: str) -> tuple[str, list[str]]:
        # Re-weighting for the role: its own messages and every action stay; other roles'
        # talk without an action is dropped.
        shown = [s for s in t.steps if s.role == role or s.action] or list(t.steps)
        lines = [f"  {step_line(s, role, self.config)}" for s in shown]
        return label, lines

    def _render(
        self,
        task: str,
        role: str,
        insights: tuple[RecalledInsight, ...],
        trajectories: tuple[PastTrajectory, ...],
    ) -> RoleMemory:
        cfg = self.config
        if not insights and not trajectories:
            return RoleMemory(role, insights, trajectories, "", 0)
        budget = _Budget(
            cfg.role_token_budget - self.tokens.count(boundary.fence(" ")), self.tokens
        )
        budget.add(
            f"Memory for the {role} from past tasks similar to: {_clip(task, cfg.task_chars)}"
        )
        rendered_i: list[str] = []
        if insights and budget.add("Lessons learned:"):
            for ins in insights:
                if not budget.add(f"- {ins.text}"):
                    break
                rendered_i.append(ins.id)
        rendered_t: list[str] = []
        for label, outcome in (
            ("Successful attempt", Outcome.SUCCESS),
            ("Failed attempt (avoid repeating it)", Outcome.FAILURE),
        ):
            for t in (t for t in trajectories if t.outcome == outcome):
                if self._add_trajectory(budget, t, role, label):
                    rendered_t.append(t.query_id)  # noqa: PERF401  the test writes the budget
        text = boundary.fence("\n".join(budget.lines))
        if not rendered_i and not rendered_t:
            text = ""  # a header alone tells the agent nothing
        return RoleMemory(
            role,
            insights,
            trajectories,
            text,
            self.tokens.count(text),
            rendered_insights=tuple(rendered_i),
            cut_insights=tuple(i.id for i in insights if i.id not in rendered_i),
            rendered_trajectories=tuple(rendered_t),
            cut_trajectories=tuple(
                t.query_id for t in trajectories if t.query_id not in rendered_t
            ),
        )

    def _add_trajectory(self, budget: _Budget, t: PastTrajectory, role: str, label: str) -> bool:
        """Add a trajectory's header and as many of its steps as fit; never a header alone.

        The header states how many steps follow, so it is built after the steps are
        counted: the steps that fit beside the longest header are the ones shown.
        """
        _, lines = self._trajectory_lines(t, role, label)
        task = _clip(t.task, self.config.action_chars)

        def header(n: int) -> str:
            return f'{label} at "{task}" ({n} of {t.total_steps} steps):'

        room = budget.limit - budget.used - budget.cost(header(len(lines)))
        taken: list[str] = []
        for line in lines:
            cost = budget.cost(line)
            if cost > room:
                break
            taken.append(line)
            room -= cost
        if not taken:
            return False
        budget.add(header(len(taken)))
        for line in taken:
            budget.add(line)
        return True
