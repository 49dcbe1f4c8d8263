"""Public exceptions of gmem.

Storage-level errors are defined in :mod:`graph_store.errors` (the bottom layer, so that
backends can raise them) and re-exported here; the engine-level ones are defined here.
Catch :class:`GmemError` to catch everything gmem raises on purpose.
"""

from __future__ import annotations

from graph_store.errors import (
    ConfigError,
    ConflictError,
    EmbeddingDimensionError,
    GmemError,
    InvalidIdError,
    InvalidNamespaceError,
    NotFoundError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
    StoreUpgradeNeededError,
    UnknownNamespaceError,
    UserInputError,
)


class UnfinishedTaskWarning(UserWarning):
    """A task's ``with`` block ended without ``finish()``: the attempt was not stored."""


class TaskStateError(UserInputError):
    """A task was used out of order: recorded after finish, finished twice, and so on."""


class UnknownRoleError(UserInputError):
    """A role was named that the task did not declare."""


class TrajectoryError(UserInputError):
    """A trajectory is empty or inconsistent (replies across tasks, bad step order)."""


class EmbedderUnavailableError(GmemError):
    """The configured text embedder cannot be loaded on this machine."""


class EmbedderOutputError(GmemError):
    """The embedder returned vectors gmem cannot store (NaN, wrong shape or dimension)."""


class TokenizerUnavailableError(GmemError):
    """The tokenizer used for token budgets cannot be loaded without a download."""


class LLMError(GmemError):
    """The LLM endpoint failed or kept answering with output gmem cannot use."""


__all__ = [
    "ConfigError",
    "ConflictError",
    "EmbedderOutputError",
    "EmbedderUnavailableError",
    "EmbeddingDimensionError",
    "GmemError",
    "InvalidIdError",
    "InvalidNamespaceError",
    "LLMError",
    "NotFoundError",
    "StoreCorruptError",
    "StoreError",
    "StoreUnavailableError",
    "StoreUpgradeNeededError",
    "TaskStateError",
    "TokenizerUnavailableError",
    "TrajectoryError",
    "UnknownNamespaceError",
    "UnknownRoleError",
    "UserInputError",
]
