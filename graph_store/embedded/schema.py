"""The embedded store's file: its tables, change-log triggers and connection settings,
and opening (creating, checking, upgrading) one."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

from graph_store.errors import StoreCorruptError

APPLICATION_ID = 0x474D454D  # "GMEM": marks the file as a gmem store
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    props TEXT NOT NULL,
    embedding BLOB,
    graph_embedding BLOB
);
CREATE INDEX IF NOT EXISTS nodes_ns_kind ON nodes (namespace, kind);
CREATE INDEX IF NOT EXISTS nodes_kind ON nodes (kind);
CREATE TABLE IF NOT EXISTS edges (
    kind TEXT NOT NULL,
    src TEXT NOT NULL,
    dst TEXT NOT NULL,
    props TEXT NOT NULL,
    PRIMARY KEY (kind, src, dst)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edges_src ON edges (src);
CREATE INDEX IF NOT EXISTS edges_dst ON edges (dst);
"""

# The change log the mirrors follow other processes by. Triggers write it, so every
# writer of the file logs, whatever it is; rows that no mirror holds (an utterance
# without vectors, a trace edge) are not logged, which keeps bulk writes cheap.
MIRRORED_SQL = "('Query','Insight')"
_MIRRORED_KINDS = ("Query", "Insight")
_TRACE_KINDS = ("HAS_TRACE", "NEXT", "REPLIES_TO")
CHANGE_LOG = """
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    node TEXT,
    kind TEXT,
    src TEXT,
    dst TEXT
);
"""


def _any_of(column: str, values: tuple[str, ...]) -> str:
    return "(" + " OR ".join(f"{column} = '{v}'" for v in values) + ")"


def _none_of(column: str, values: tuple[str, ...]) -> str:
    return " AND ".join(f"{column} <> '{v}'" for v in values)


def _vectors(row: str) -> str:
    return f"{row}.embedding IS NOT NULL OR {row}.graph_embedding IS NOT NULL"


# The kinds are tested with = and <>, not IN: SQLite evaluates an IN list in a trigger by
# building a small table each time the trigger runs, once per row written, which was
# about a third of the cost of writing an edge row.
_LOG_NODE = "BEGIN INSERT INTO changes (node) VALUES ({row}.id); END"
_LOG_EDGE = (
    "BEGIN INSERT INTO changes (kind, src, dst) VALUES ({row}.kind, {row}.src, {row}.dst); END"
)
CHANGE_LOG_TRIGGERS = {
    "log_node_insert": "CREATE TRIGGER log_node_insert AFTER INSERT ON nodes "
    f"WHEN {_any_of('NEW.kind', _MIRRORED_KINDS)} OR {_vectors('NEW')} "
    + _LOG_NODE.format(row="NEW"),
    "log_node_update": "CREATE TRIGGER log_node_update AFTER UPDATE ON nodes "
    f"WHEN {_any_of('NEW.kind', _MIRRORED_KINDS)} OR {_vectors('NEW')} OR {_vectors('OLD')} "
    + _LOG_NODE.format(row="NEW"),
    "log_node_delete": "CREATE TRIGGER log_node_delete AFTER DELETE ON nodes "
    f"WHEN {_any_of('OLD.kind', _MIRRORED_KINDS)} OR {_vectors('OLD')} "
    + _LOG_NODE.format(row="OLD"),
    "log_edge_insert": "CREATE TRIGGER log_edge_insert AFTER INSERT ON edges "
    f"WHEN {_none_of('NEW.kind', _TRACE_KINDS)} " + _LOG_EDGE.format(row="NEW"),
    "log_edge_update": "CREATE TRIGGER log_edge_update AFTER UPDATE ON edges "
    f"WHEN {_none_of('NEW.kind', _TRACE_KINDS)} " + _LOG_EDGE.format(row="NEW"),
    "log_edge_delete": "CREATE TRIGGER log_edge_delete AFTER DELETE ON edges "
    f"WHEN {_none_of('OLD.kind', _TRACE_KINDS)} " + _LOG_EDGE.format(row="OLD"),
}
_CREATE_TRIGGERS = "".join(f"{sql};" for sql in CHANGE_LOG_TRIGGERS.values())
#: The form of the change-log triggers, kept in ``meta``: 1 (no entry) tested kinds with IN
#: lists, 2 with = and <>. A store of an earlier form gets these triggers when opened; one
#: of a later form (a newer gmem's, which may log more) is left as it is.
CHANGE_LOG_FORM = 2
_SET_FORM = f"INSERT OR REPLACE INTO meta VALUES ('change_log_form', '{CHANGE_LOG_FORM}');"

# The mirrored nodes' ids, kinds and namespaces, which reopening reads: without it each
# comes from its node row, one page read per query (the rows sit among their traces'
# utterance rows). Partial, so writing an utterance does not touch it.
MIRRORED_INDEX = f"""
CREATE INDEX IF NOT EXISTS nodes_mirrored ON nodes (kind, id, namespace)
WHERE kind IN {MIRRORED_SQL};
"""


#: Files up to this size are checked page by page on open; larger ones by length only.
QUICK_CHECK_MAX_BYTES = 64 * 2**20
#: SQLite page cache per connection (KiB); the default 2 MiB thrashes past a few GiB.
PAGE_CACHE_KIB = 65_536


def open_file(db: sqlite3.Connection, path: str, durability: str) -> str:
    """Set the connection up and create or check the file; returns the store's id."""
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables):
        raise StoreCorruptError(
            f"{path} is an SQLite file of another application, not a gmem store"
        )
    if path != ":memory:":
        db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
    db.execute("PRAGMA busy_timeout=10000")
    # Ids are random, so writes land all over the indexes: a page cache that holds
    # their upper levels and hot leaves saves a read per insert once the file is large.
    db.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
    # Forgetting is erasure: deleted rows are overwritten, not left in free pages.
    db.execute("PRAGMA secure_delete=ON")
    # The change-log triggers make every insert keep a statement journal (the pages
    # it changes, so the statement alone can be undone); in memory rather than in a
    # temporary file that roughly halves the cost of writing an edge row.
    db.execute("PRAGMA temp_store=MEMORY")
    if app_id == 0:
        # One script, one transaction: a crash leaves either no schema or all of it.
        db.executescript(
            f"BEGIN IMMEDIATE;{SCHEMA}{MIRRORED_INDEX}{CHANGE_LOG}{_CREATE_TRIGGERS}{_SET_FORM}"
            f"PRAGMA application_id={APPLICATION_ID};"
            f"INSERT OR REPLACE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');"
            f"INSERT OR IGNORE INTO meta VALUES ('store_id', '{uuid.uuid4().hex}');"
            "COMMIT;"
        )
    else:
        check_pages(db, path)
        version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if version is None or int(version[0]) > SCHEMA_VERSION:
            raise StoreCorruptError(
                f"{path} has an unknown schema version; upgrade gmem to open it"
            )
        form = db.execute("SELECT value FROM meta WHERE key='change_log_form'").fetchone()
        if "changes" not in tables or int(form[0] if form else 1) < CHANGE_LOG_FORM:
            # A store written before the change log, or with its triggers in an earlier
            # form: (re)write them, which changes no row. Writers of any version log from
            # then on, in the same entries.
            drops = "".join(f"DROP TRIGGER IF EXISTS {name};" for name in CHANGE_LOG_TRIGGERS)
            db.executescript(
                f"BEGIN IMMEDIATE;{CHANGE_LOG}{drops}{_CREATE_TRIGGERS}{_SET_FORM}COMMIT;"
            )
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        if "nodes_mirrored" not in indexes:
            # A store written before that index: build it once (a pass over the
            # nodes, seconds at a hundred thousand tasks), which changes no row.
            db.executescript(f"BEGIN IMMEDIATE;{MIRRORED_INDEX}COMMIT;")
        if db.execute("SELECT 1 FROM meta WHERE key='store_id'").fetchone() is None:
            # What an approximate index file names as its store: a file restored over
            # this path, or another store's, is then never taken for its own.
            db.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)", (uuid.uuid4().hex,))
    return str(db.execute("SELECT value FROM meta WHERE key='store_id'").fetchone()[0])


def check_pages(db: sqlite3.Connection, path: str) -> None:
    """Refuse a damaged file before anything is read from it.

    ``quick_check`` reads every page, which at a few GiB would make reopening take
    longer than anything else; above :data:`QUICK_CHECK_MAX_BYTES` the file is only
    checked to be as long as its header says (a cut-off copy), and a page damaged in
    the middle is reported when it is read.
    """
    size = 0 if path == ":memory:" else Path(path).stat().st_size
    if size <= QUICK_CHECK_MAX_BYTES:
        check = db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {check}")
        return
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    wal = Path(f"{path}-wal")
    logged = wal.stat().st_size if wal.exists() else 0
    if pages * page_size > size + logged:
        raise sqlite3.DatabaseError(f"the file is shorter than its {pages} pages: it was cut off")
