"""The visit history's SQLite schema, its identity stamps, and how a connection is opened.

Like the collection store (:mod:`streamproc.store.schema`) the file says what it is twice:
``PRAGMA application_id`` (readable before we touch any table, so a foreign SQLite file,
including the collection store's own db, is refused) and ``PRAGMA user_version`` (the
schema version), mirrored in the ``meta`` table for humans.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from .errors import ForeignHistoryError, HistoryError, HistoryVersionError

__all__ = [
    "APPLICATION_ID",
    "APP_NAME",
    "SCHEMA_VERSION",
    "DB_FILENAME",
    "SNAPSHOT_DIRNAME",
    "BUSY_TIMEOUT_MS",
    "NAME_SQL",
    "connect",
]

APP_NAME = "streamproc-visits"
APPLICATION_ID = 0x53505648  # "SPVH": not the collection store's "SPRC"
SCHEMA_VERSION = 1
DB_FILENAME = "visits.sqlite3"
SNAPSHOT_DIRNAME = "snapshots"
BUSY_TIMEOUT_MS = 30_000
_SQLITE_MAGIC = b"SQLite format 3\x00"

#: Who the visit was, as the console shows and filters it: the user's naming wins over the
#: service's decision. Written identically in the index so that SQLite uses it.
NAME_SQL = "coalesce(user_name, matched_name)"

# seq is AUTOINCREMENT (never reused) so that a paging cursor names one position for good.
# The service's decision (matched, matched_name) and the user's naming (user_name) are kept
# apart: a later VisitorIdentified updates the first and never overwrites the second.
_DDL = f"""
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE visits (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    visitor_id TEXT NOT NULL UNIQUE CHECK (length(visitor_id) = 32),
    stream TEXT NOT NULL,
    arrived_at REAL NOT NULL,
    left_at REAL,
    matched INTEGER CHECK (matched IN (0, 1)),
    matched_name TEXT,
    face_id TEXT,
    similarity REAL,
    revisions INTEGER NOT NULL DEFAULT 0,
    frames_seen INTEGER,
    duration_s REAL,
    box TEXT,
    snapshot TEXT,
    snapshot_bytes INTEGER NOT NULL DEFAULT 0,
    user_name TEXT,
    named_at REAL,
    last_event_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX visits_by_time ON visits(arrived_at, seq);
CREATE INDEX visits_by_stream ON visits(stream, arrived_at, seq);
CREATE INDEX visits_by_name ON visits({NAME_SQL}, arrived_at, seq);
"""


def _check_header(db_path: Path) -> None:
    """Refuse a non-SQLite file before SQLite gets a chance to call it corrupt."""
    try:
        with db_path.open("rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise HistoryError(f"cannot read visit history {db_path}: {exc}") from exc
    if head and head != _SQLITE_MAGIC:
        raise ForeignHistoryError(f"{db_path} is not a visit history (not an SQLite database)")


def _identity(conn: sqlite3.Connection) -> tuple[int, int, int]:
    application_id = conn.execute("PRAGMA application_id").fetchone()[0]
    user_version = conn.execute("PRAGMA user_version").fetchone()[0]
    objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    return application_id, user_version, objects


def _verify(db_path: Path, application_id: int, user_version: int, objects: int) -> bool:
    """True if the db is fresh (needs creating); raises if it is not ours or too new."""
    if application_id == 0 and user_version == 0 and objects == 0:
        return True
    if application_id != APPLICATION_ID:
        raise ForeignHistoryError(
            f"{db_path} is an SQLite database of another application "
            f"(application_id {application_id:#x}, expected {APPLICATION_ID:#x} for {APP_NAME})"
        )
    if user_version > SCHEMA_VERSION:
        raise HistoryVersionError(
            f"{db_path} has schema version {user_version}, written by a newer streamproc; "
            f"this version reads schema versions up to {SCHEMA_VERSION}. Upgrade streamproc."
        )
    if user_version < 1:
        raise HistoryError(f"{db_path} has an invalid schema version {user_version}")
    return False


def _create(conn: sqlite3.Connection, db_path: Path) -> None:
    """Create the schema in one transaction, re-checking under the write lock (racing opens)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if _verify(db_path, *_identity(conn)):
            # Not executescript(): it would COMMIT our open transaction first.
            for statement in _DDL.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)",
                [
                    ("app", APP_NAME),
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("created_at", repr(time.time())),
                ],
            )
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def connect(db_path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """Open (creating if needed) the history db, verify its identity, configure the connection.

    Autocommit mode (``isolation_level=None``): VisitHistory issues BEGIN/COMMIT itself so
    that each of its operations is exactly one transaction.
    """
    _check_header(db_path)
    try:
        conn = sqlite3.connect(
            db_path,
            timeout=busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise HistoryError(f"cannot open visit history {db_path}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        try:
            fresh = _verify(db_path, *_identity(conn))
        except sqlite3.DatabaseError as exc:
            raise ForeignHistoryError(f"{db_path} is not a visit history: {exc}") from exc
        if fresh:
            # Only possible before the first table exists: lets prune() hand freed pages
            # back to the file system instead of keeping the file at its high-water mark.
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        # Only now, knowing the file is ours (or empty), may we change its journal mode.
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise HistoryError(f"cannot put {db_path} in WAL mode (got {mode!r})")
        # FULL: a commit fsyncs the WAL, so a recorded visit survives power loss too.
        conn.execute("PRAGMA synchronous = FULL")
        if fresh:
            _create(conn, db_path)
    except BaseException:
        conn.close()
        raise
    return conn
