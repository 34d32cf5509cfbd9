"""The store's SQLite schema, its identity stamps, and how a connection is opened.

The db says what it is twice: ``PRAGMA application_id`` (readable without knowing our
tables, so a foreign SQLite file is recognised before we touch it) and ``PRAGMA
user_version`` (the schema version), mirrored in the ``meta`` table for humans.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from pathlib import Path

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
SCHEMA_VERSION = 1
DB_FILENAME = "streamproc.db"
BUSY_TIMEOUT_MS = 30_000
_SQLITE_MAGIC = b"SQLite format 3\x00"

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
"""


def _check_header(db_path: Path) -> None:
    """Refuse a non-SQLite file before SQLite gets a chance to call it corrupt."""
    try:
        with db_path.open("rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot read store file {db_path}: {exc}") from exc
    if head and head != _SQLITE_MAGIC:
        raise ForeignStoreError(f"{db_path} is not a streamproc store (not an SQLite database)")


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
        raise ForeignStoreError(
            f"{db_path} is an SQLite database of another application "
            f"(application_id {application_id:#x}, expected {APPLICATION_ID:#x} for {APP_NAME})"
        )
    if user_version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"{db_path} has schema version {user_version}, written by a newer streamproc; "
            f"this version reads schema versions up to {SCHEMA_VERSION}. Upgrade streamproc."
        )
    if user_version < 1:
        raise StoreError(f"{db_path} has an invalid schema version {user_version}")
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
                    ("token_secret", secrets.token_hex(32)),
                ],
            )
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def connect(db_path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """Open (creating if needed) the store db, verify its identity, configure the connection.

    Connections are in autocommit mode (``isolation_level=None``); the store issues
    BEGIN/COMMIT itself so that each operation is exactly one transaction.
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
        raise StoreError(f"cannot open store {db_path}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        try:
            fresh = _verify(db_path, *_identity(conn))
        except sqlite3.DatabaseError as exc:
            raise ForeignStoreError(f"{db_path} is not a streamproc store: {exc}") from exc
        # Only now, knowing the file is ours (or empty), may we change its journal mode.
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"cannot put {db_path} in WAL mode (got {mode!r})")
        # FULL: a commit fsyncs the WAL, so an IndexFaces that returned survives power loss,
        # not only a crash of this process (which NORMAL would already cover in WAL mode).
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: index loads and bulk inserts
        if fresh:
            _create(conn, db_path)
    except BaseException:
        conn.close()
        raise
    return conn
