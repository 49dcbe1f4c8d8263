"""Exception hierarchy shared by every layer.

It lives at the bottom layer so that storage backends can raise the same types the
memory engine and the CLI catch; :mod:`gmem.errors` re-exports all of it as the public
home. Every message is one line that tells the user what to do next.
"""

from __future__ import annotations


class GmemError(Exception):
    """Base of every error gmem raises on purpose."""


class UserInputError(GmemError, ValueError):
    """The caller passed something gmem cannot accept; nothing was written."""


class InvalidIdError(UserInputError):
    """An id is malformed (not a UUID or content hash)."""


class NotFoundError(GmemError, KeyError):
    """An id or namespace does not exist in the store."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class UnknownNamespaceError(NotFoundError):
    """A namespace holds no memory (yet) and the operation needs an existing one."""


class InvalidNamespaceError(UserInputError):
    """A namespace name has characters or a length gmem does not accept."""


class EmbeddingDimensionError(UserInputError):
    """A vector does not have the dimension the store was created with."""


class StoreError(GmemError):
    """The storage backend failed; the transaction in flight was rolled back."""


class ConflictError(StoreError):
    """Another writer changed what this batch was computed from; nothing was written.

    Raised by :class:`graph_store.ops.ExpectNodes`; the caller recomputes and retries."""


class StoreCorruptError(StoreError):
    """The store file is damaged or is not a gmem store."""


class StoreUpgradeNeededError(StoreError):
    """The store was written in an older layout that this version cannot read; the
    message names the command that upgrades it in place."""


class StoreUnavailableError(StoreError):
    """The backend cannot be reached (server down, wrong password, closed store)."""


class ConfigError(UserInputError):
    """A configuration value or store URL is invalid."""
