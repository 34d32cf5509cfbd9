"""The store's SQLite schema and identity stamps; opening and verifying the file is
:mod:`streamproc.sqlite_file`'s, shared with the visit history.
"""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

from streamproc import sqlite_file
from streamproc.sqlite_file import SqliteFileKind

from .errors import ForeignStoreError, StoreError, StoreVersionError

__all__ = [
    "APPLICATION_ID",
    "APP_NAME",
    "SCHEMA_VERSION",
    "DB_FILENAME",
    "BUSY_TIMEOUT_MS",
    "connect",
]

APP_NAME = "streamproc"
APPLICATION_ID = 0x53505243  # "SPRC"
SCHEMA_VERSION = 3
DB_FILENAME = "streamproc.db"
BUSY_TIMEOUT_MS = 30_000

# Rowids are AUTOINCREMENT so that they are never reused: the in-memory index of another
# process follows the faces table by "rowid > last seen" and the deletion log by rowid.
# embeddings is clustered by (collection, face) so loading a collection is one range scan.
_DDL = """
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE collections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    face_model_version TEXT NOT NULL,
    created_at REAL NOT NULL,
    dimension INTEGER,
    face_count INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0,
    log_floor INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection INTEGER NOT NULL REFERENCES collections(id),
    image_id TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    external_image_id TEXT,
    created_at REAL NOT NULL
);
CREATE UNIQUE INDEX images_by_content
    ON images(collection, sha256, ifnull(external_image_id, ''));

CREATE TABLE faces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection INTEGER NOT NULL REFERENCES collections(id),
    image INTEGER NOT NULL REFERENCES images(id),
    face_id TEXT NOT NULL UNIQUE,
    bbox_left REAL NOT NULL,
    bbox_top REAL NOT NULL,
    bbox_width REAL NOT NULL,
    bbox_height REAL NOT NULL,
    confidence REAL NOT NULL,
    created_at REAL NOT NULL,
    detail TEXT
);
CREATE INDEX faces_by_collection ON faces(collection, id);
CREATE INDEX faces_by_image ON faces(image);

CREATE TABLE embeddings (
    collection INTEGER NOT NULL,
    face INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (collection, face)
) WITHOUT ROWID;

CREATE TABLE face_deletions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    collection INTEGER NOT NULL,
    face INTEGER NOT NULL
);
CREATE INDEX face_deletions_by_collection ON face_deletions(collection, seq);

CREATE TABLE log_applied (
    stream TEXT PRIMARY KEY,
    stream_created TEXT NOT NULL,
    seq INTEGER NOT NULL,
    applied_at REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE log_collections (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
) WITHOUT ROWID;
"""

# Schema 2: a store that replicates a collection log (streamproc.cluster) records here, in
# the same transaction as each write it applies, the last stream sequence it applied. A
# store with a row here is a replica: its plain write methods refuse (write through the log).
# Schema 3: per collection id, the sequence of the last record of that collection the
# replica applied (kept after a DeleteCollection): whether it holds the state a snapshot
# names, and whether a record follows the one it applied last (else records were rolled up
# before it saw them, and it waits for the collection's next snapshot).
_MIGRATIONS: dict[int, list[str]] = {
    2: [
        "CREATE TABLE log_applied (stream TEXT PRIMARY KEY, stream_created TEXT NOT NULL, "
        "seq INTEGER NOT NULL, applied_at REAL NOT NULL) WITHOUT ROWID"
    ],
    3: ["CREATE TABLE log_collections (name TEXT PRIMARY KEY, seq INTEGER NOT NULL) "
        "WITHOUT ROWID"],
}


KIND = SqliteFileKind(
    what="streamproc store",
    app_name=APP_NAME,
    application_id=APPLICATION_ID,
    schema_version=SCHEMA_VERSION,
    ddl=_DDL,
    error=StoreError,
    foreign_error=ForeignStoreError,
    version_error=StoreVersionError,
    meta=lambda: [("token_secret", secrets.token_hex(32))],  # signs pagination tokens
    pragmas=("foreign_keys = ON", "cache_size = -65536"),  # 64 MiB: index loads, bulk inserts
    migrations=_MIGRATIONS,
)


def connect(db_path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """Open (creating if needed) the store db, verify its identity, configure the connection
    (:func:`streamproc.sqlite_file.connect`: WAL, synchronous FULL, autocommit)."""
    return sqlite_file.connect(db_path, KIND, busy_timeout_ms=busy_timeout_ms)
