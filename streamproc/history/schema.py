"""The visit history's SQLite schema, its identity stamps, and how a connection is opened.

Like the collection store (:mod:`streamproc.store.schema`) the file says what it is twice:
``PRAGMA application_id`` (readable before we touch any table, so a foreign SQLite file,
including the collection store's own db, is refused) and ``PRAGMA user_version`` (the
schema version), mirrored in the ``meta`` table for humans.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from streamproc import sqlite_file
from streamproc.sqlite_file import SqliteFileKind

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
#: 1: visits. 2: the face the console indexed when a user named the visit
#: (indexed_collection, indexed_face_id), so that a correction can delete it.
SCHEMA_VERSION = 2
DB_FILENAME = "visits.sqlite3"
SNAPSHOT_DIRNAME = "snapshots"
BUSY_TIMEOUT_MS = 30_000

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
    indexed_collection TEXT,
    indexed_face_id TEXT,
    last_event_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX visits_by_time ON visits(arrived_at, seq);
CREATE INDEX visits_by_stream ON visits(stream, arrived_at, seq);
CREATE INDEX visits_by_name ON visits({NAME_SQL}, arrived_at, seq);
"""


#: Each step brings a file of version v - 1 to v (see SqliteFileKind.migrations).
_MIGRATIONS = {
    2: (
        "ALTER TABLE visits ADD COLUMN indexed_collection TEXT",
        "ALTER TABLE visits ADD COLUMN indexed_face_id TEXT",
    ),
}

KIND = SqliteFileKind(
    what="visit history",
    app_name=APP_NAME,
    application_id=APPLICATION_ID,
    schema_version=SCHEMA_VERSION,
    ddl=_DDL,
    error=HistoryError,
    foreign_error=ForeignHistoryError,
    version_error=HistoryVersionError,
    # Only possible before the first table exists: lets prune() hand freed pages back to
    # the file system instead of keeping the file at its high-water mark.
    fresh_pragmas=("auto_vacuum = INCREMENTAL",),
    migrations=_MIGRATIONS,
)


def connect(db_path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """Open (creating if needed) the history db, verify its identity, configure the
    connection (:func:`streamproc.sqlite_file.connect`: WAL, synchronous FULL, autocommit)."""
    return sqlite_file.connect(db_path, KIND, busy_timeout_ms=busy_timeout_ms)
