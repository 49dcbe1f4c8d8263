"""The default backend: networkx in memory for traversal, SQLite (WAL) on disk.

SQLite is the source of truth. Two mirrors sit beside it: a networkx graph of the query
and insight tiers (their nodes and the edges between them), which recall traverses, and
one vector matrix per (node kind, field), read in one pass the first time it is searched.
Utterances, their trace edges and adapter items are never mirrored: they are most of a
store and are read one task at a time, so they are read from SQLite when asked for, and
reopening a store costs what its query and insight tiers cost, not its traces.

A batch writes SQLite inside one ``BEGIN IMMEDIATE`` transaction and updates the mirrors
as it goes, recording an undo step for each change, so a failure anywhere rolls back
both. Triggers in the file append every change that touches a mirror to a change log in
the same transaction; another process's commit is noticed through ``PRAGMA data_version``
and the mirrors replay the log since the last entry they saw, instead of reloading.

The modules: :mod:`.schema` (the file's tables, triggers and settings, opening and
checking it), :mod:`.rows` (how values are laid in rows), :mod:`.mirror` (the mirrors and
following other processes' commits), :mod:`.reads`, :mod:`.writes`, :mod:`.search`
(exact and approximate vector search) and :mod:`.store` (the store and its batches).
"""

from graph_store.embedded.mirror import CHANGE_LOG_KEEP
from graph_store.embedded.schema import (
    APPLICATION_ID,
    PAGE_CACHE_KIB,
    QUICK_CHECK_MAX_BYTES,
    SCHEMA_VERSION,
)
from graph_store.embedded.search import ANN_MAX_CANDIDATES, ANN_MIN_ROWS, ANN_SAVE_EVERY
from graph_store.embedded.store import EmbeddedStore

__all__ = [
    "ANN_MAX_CANDIDATES",
    "ANN_MIN_ROWS",
    "ANN_SAVE_EVERY",
    "APPLICATION_ID",
    "CHANGE_LOG_KEEP",
    "PAGE_CACHE_KIB",
    "QUICK_CHECK_MAX_BYTES",
    "SCHEMA_VERSION",
    "EmbeddedStore",
]
