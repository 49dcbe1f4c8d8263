"""Per-role memory: project insights onto a role and render a budgeted prompt block.

Different agents need different memory: a planner needs the lessons and the shape of past
solutions, an actor the concrete actions, a critic what went wrong. Insights are projected
by the reasoner (LLM or heuristic); trajectory steps of the role itself are shown in full
and other roles' steps shrink to their actions. Everything is cut to a token budget,
counted with a real tokenizer, highest-value items first.
"""

from __future__ import annotations

from dataclasses import replace

from gmem.config import MemoryConfig
from gmem.llm.protocol import LLM, InsightView, ProjectionRequest
from gmem.recall import PastTrajectory, Recall, RecalledInsight, RoleMemory, Step
from gmem.tokens import TokenCounter
from graph_store.model import Outcome

_MAX_STEP_CHARS = 240


def _clip(text: str, limit: int = _MAX_STEP_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _step_line(step: Step, role: str) -> str:
    if step.role == role:
        line = f"{step.agent} ({step.role}): {_clip(step.content)}"
        if step.action:
            line += f" [action: {_clip(step.action, 120)}]"
    else:
        line = f"{step.agent} ({step.role}): " + (
            f"[action: {_clip(step.action, 120)}]" if step.action else _clip(step.content, 100)
        )
    if step.observation:
        line += f" -> {_clip(step.observation, 120)}"
    return line


class RoleProjector:
    def __init__(self, llm: LLM, tokens: TokenCounter, config: MemoryConfig) -> None:
        self.llm = llm
        self.tokens = tokens
        self.config = config

    def __call__(self, recall: Recall, role: str) -> RoleMemory:
        insights = self._project(recall, role)
        trajectories = tuple(recall.trajectories)
        text = self._render(recall.task, role, insights, trajectories)
        return RoleMemory(role, insights, trajectories, text, self.tokens.count(text))

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
        out = []
        for p in self.llm.project_insights(request).insights:
            if p.id in by_id:
                out.append(replace(by_id[p.id], text=p.text))
        return tuple(out)

    def _render(
        self,
        task: str,
        role: str,
        insights: tuple[RecalledInsight, ...],
        trajectories: tuple[PastTrajectory, ...],
    ) -> str:
        budget = self.config.role_token_budget
        blocks: list[str] = []
        used = 0

        def fits(text: str) -> bool:
            nonlocal used
            cost = self.tokens.count(text) + 1
            if used + cost > budget:
                return False
            blocks.append(text)
            used += cost
            return True

        if not insights and not trajectories:
            return ""
        fits(f"Memory for the {role} from past tasks similar to: {_clip(task, 160)}")
        if insights:
            fits("Lessons learned:")
            for ins in insights:
                if not fits(f"- {ins.text}"):
                    break
        for label, outcome in (
            ("Successful attempt", Outcome.SUCCESS),
            ("Failed attempt (avoid repeating it)", Outcome.FAILURE),
        ):
            for t in (t for t in trajectories if t.outcome == outcome):
                head = (
                    f'{label} at "{_clip(t.task, 120)}" ({len(t.steps)} of {t.total_steps} steps):'
                )
                if not fits(head):
                    break
                # Re-weighting for the role: its own messages and every action stay; other
                # roles' talk without an action is dropped.
                shown = [s for s in t.steps if s.role == role or s.action]
                for step in shown or list(t.steps):
                    if not fits(f"  {_step_line(step, role)}"):
                        break
        return "\n".join(blocks)
