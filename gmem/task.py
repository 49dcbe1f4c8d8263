"""A task in progress: recall memory per role, record messages, finish with an outcome."""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

from pydantic import JsonValue

from gmem.errors import (
    TaskStateError,
    TrajectoryError,
    UnfinishedTaskWarning,
    UnknownRoleError,
    UserInputError,
)
from gmem.evolution import Attempt, EvolutionReport, PendingStep
from gmem.inputs import check_metadata, check_name, check_optional_text, check_reward, check_text
from gmem.recall import Recall, RoleMemory
from graph_store.model import Outcome, Utterance, new_id, query_id_for
from graph_store.redact import describe_exception

if TYPE_CHECKING:
    from gmem.memory import Memory

_ID = re.compile(r"^[0-9a-f]{32}$")


def _is_id(ref: str) -> bool:
    return bool(_ID.match(ref))


_LOG = logging.getLogger("gmem.task")


class Task:
    """One attempt at one task. Use as a context manager or call :meth:`finish` yourself.

    Leaving the ``with`` block because of an exception finishes the task as a failure (the
    team broke, which memory should learn from); leaving it without an exception and
    without :meth:`finish` discards the attempt and warns (:class:`UnfinishedTaskWarning`,
    naming the task). It is not kept as an unknown outcome: a forgotten ``finish`` is a
    bug in the caller, and storing guesses would teach memory from runs nobody judged.
    Call ``finish(success=None)`` to store an attempt whose outcome is unknown.

    Commit semantics: :meth:`finish` either stores the whole attempt and returns its
    report, or raises and stores nothing (it may then be called again). The context
    manager never finishes a second time after a failed :meth:`finish`, so an outage
    during ``finish(success=True)`` cannot turn the team's success into a stored failure;
    and the caller's own exception always leaves the block as itself: if storing the
    failed attempt fails too, that is logged and attached to it as a note. What is stored
    of the caller's exception is its type name (``metadata["error"]``), never its text,
    which may quote a credential, nor the traceback.
    """

    def __init__(
        self,
        memory: Memory,
        text: str,
        namespace: str,
        roles: Mapping[str, str] | Sequence[str] | None = None,
        metadata: Mapping[str, JsonValue] | None = None,
    ) -> None:
        self.memory = memory
        self.text = text
        self.namespace = namespace
        cfg = memory.config
        if roles is None:
            self.roles: dict[str, str] | None = None
        elif isinstance(roles, Mapping):
            self.roles = {
                check_name(r, "role"): check_text(d, "role description", cfg.max_text_chars)
                for r, d in roles.items()
            }
        elif isinstance(roles, str):
            raise UserInputError("roles must be a list of names or a mapping, not one string")
        else:
            self.roles = {check_name(r, "role"): "" for r in roles}
        self.metadata: dict[str, JsonValue] = check_metadata(
            metadata, "task metadata", cfg.max_metadata_depth, cfg.max_text_chars
        )
        self._steps: list[PendingStep] = []
        self._ids: set[str] = set()
        self._recall: Recall | None = None
        self._shown_roles: set[str] = set()
        self._declared_queries: list[str] = []
        self._finish_failed = False
        # Utterance ids to use instead of random ones (ingest derives them from the
        # trajectory's key, which is what makes a rerun recognise a stored trajectory).
        self._step_ids: Iterator[str] | None = None
        self.report: EvolutionReport | None = None

    # ---- state -------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.report is not None

    @property
    def steps(self) -> list[PendingStep]:
        return list(self._steps)

    def _check_open(self, what: str) -> None:
        if self.finished:
            raise TaskStateError(f"cannot {what}: the task was already finished")

    def _check_role(self, role: str) -> None:
        check_name(role, "role")
        if self.roles is not None and role not in self.roles:
            known = ", ".join(sorted(self.roles)) or "none"
            raise UnknownRoleError(f"unknown role {role!r}; this task declared: {known}")

    # ---- recall ------------------------------------------------------------------------
    @property
    def memory_recall(self) -> Recall:
        """The traversal result for this task (computed once, on first use)."""
        if self._recall is None:
            self._recall = self.memory.recall(self.text, namespace=self.namespace)
        return self._recall

    def recall(self, role: str, *, credit: bool = True) -> RoleMemory:
        """Memory for one role. What reaches the role's prompt is remembered: finishing
        the task links it to the queries it used and credits the insights it read.

        ``credit=False`` reads without any of that (evaluation, previews, replays): the
        store is left exactly as if this call had not been made.
        """
        self._check_open("recall")
        self._check_role(role)
        if credit:
            self._shown_roles.add(role)
        return self.memory_recall.for_role(role)

    async def arecall(self, role: str, *, credit: bool = True) -> RoleMemory:
        return await asyncio.to_thread(lambda: self.recall(role, credit=credit))

    def used_memory_of(self, queries: Sequence[str]) -> None:
        """Declare past queries (ids, or task texts of this namespace) whose memory this
        attempt used outside :meth:`recall`, as replayed history does."""
        self._check_open("declare used memory")
        for ref in queries:
            if not isinstance(ref, str) or not ref.strip():
                raise UserInputError("a used query must be a query id or a task text")
            qid = ref if _is_id(ref) else query_id_for(self.namespace, ref)
            if qid not in self._declared_queries:
                self._declared_queries.append(qid)

    # ---- record ------------------------------------------------------------------------
    def record(
        self,
        agent: str,
        role: str,
        content: str,
        *,
        replies_to: Sequence[str | Utterance] = (),
        action: str | None = None,
        observation: str | None = None,
        reward: float | None = None,
        metadata: Mapping[str, JsonValue] | None = None,
    ) -> str:
        """Record one message; returns its utterance id for later ``replies_to``."""
        self._check_open("record")
        cfg = self.memory.config
        self._check_role(role)
        check_name(agent, "agent")
        check_text(content, "content", cfg.max_text_chars)
        action = check_optional_text(action, "action", cfg.max_text_chars)
        observation = check_optional_text(observation, "observation", cfg.max_text_chars)
        reward = check_reward(reward)
        checked = check_metadata(metadata, "metadata", cfg.max_metadata_depth, cfg.max_text_chars)
        if isinstance(replies_to, str | Utterance):
            replies_to = [replies_to]
        targets = [r.id if isinstance(r, Utterance) else r for r in replies_to]
        for target in targets:
            if target not in self._ids:
                raise TrajectoryError(
                    f"utterance {target!r} is not part of this task; replies_to must name "
                    "utterances recorded earlier in the same task"
                )
        step = PendingStep(
            id=new_id() if self._step_ids is None else next(self._step_ids),
            agent=agent,
            role=role,
            content=content,
            action=action,
            observation=observation,
            reward=reward,
            replies_to=list(dict.fromkeys(targets)),
            metadata=checked,
        )
        self._steps.append(step)
        self._ids.add(step.id)
        return step.id

    async def arecord(self, agent: str, role: str, content: str, **kw: object) -> str:
        return await asyncio.to_thread(self.record, agent, role, content, **kw)  # type: ignore[arg-type]

    # ---- finish ------------------------------------------------------------------------
    def finish(self, success: bool | None, score: float | None = None) -> EvolutionReport:
        """Store the attempt and evolve the hierarchy, in one transaction."""
        self._check_open("finish")
        if not self._steps:
            raise TrajectoryError("cannot finish a task with an empty trajectory; record a step")
        if score is not None and not 0.0 <= score <= 1.0:
            raise UserInputError(f"score must be within [0, 1], got {score}")
        outcome = (
            Outcome.UNKNOWN if success is None else Outcome.SUCCESS if success else Outcome.FAILURE
        )
        used_queries: list[str] = list(self._declared_queries)
        used_insights: list[str] = []
        if self._shown_roles and self._recall is not None:
            shown = [self._recall.for_role(role) for role in sorted(self._shown_roles)]
            used_queries += [q for m in shown for q in m.rendered_trajectories]
            used_insights = [i for m in shown for i in m.rendered_insights]
        used_queries = list(dict.fromkeys(used_queries))
        used_insights = list(dict.fromkeys(used_insights))
        attempt = Attempt(
            task=self.text,
            namespace=self.namespace,
            steps=self._steps,
            outcome=outcome,
            score=score,
            used_queries=used_queries,
            used_insights=used_insights,
            metadata=self.metadata,
        )
        try:
            self.report = self.memory._evolve(attempt)
        except BaseException:
            # Nothing was committed (the attempt is one write batch); the caller may retry,
            # but the context manager must not finish it again with another outcome.
            self._finish_failed = True
            raise
        return self.report

    async def afinish(self, success: bool | None, score: float | None = None) -> EvolutionReport:
        return await asyncio.to_thread(self.finish, success, score)

    # ---- context manager ----------------------------------------------------------------
    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.finished or not self._steps:
            return
        if exc is None:
            if not self._finish_failed:
                warnings.warn(
                    f"task {self.text[:80]!r} ended without finish(): its {len(self._steps)} "
                    "recorded step(s) were not stored; call finish(success=...) before "
                    "leaving the with block (success=None for an unknown outcome)",
                    UnfinishedTaskWarning,
                    stacklevel=2,
                )
            return
        if not isinstance(exc, Exception) or self._finish_failed:
            return  # a finish already ran and stored nothing; never store another outcome
        self.metadata.setdefault("error", type(exc).__name__)
        try:
            self.finish(success=False)
        except Exception as failure:  # noqa: BLE001 - the caller's exception must win
            why = describe_exception(failure)
            _LOG.warning("the failed attempt at a task was not stored: %s", why)
            exc.add_note(f"gmem: the failed attempt was not stored ({why})")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.__exit__, exc_type, exc, tb)
