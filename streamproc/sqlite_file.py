"""How streamproc opens its own SQLite files (the collection store, the visit history).

A file says what it is twice: ``PRAGMA application_id`` (readable without knowing our
tables, so a foreign SQLite file is recognised before we touch it) and ``PRAGMA
user_version`` (the schema version), mirrored in its ``meta`` table for humans. A file
that is not SQLite, belongs to another application or was written by a newer streamproc is
refused with the kind's own error classes; a fresh one is created in one transaction.
Connections run in WAL mode with ``synchronous=FULL`` (a commit survives power loss) and in
autocommit mode: the owner issues BEGIN/COMMIT so that each operation is one transaction.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SqliteFileKind", "connect", "transaction"]

_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class SqliteFileKind:
    """One kind of file: its identity stamps, schema, error classes and pragmas."""

    what: str  # as messages name it: "streamproc store", "visit history"
    app_name: str
    application_id: int
    schema_version: int
    ddl: str
    error: type[Exception]
    foreign_error: type[Exception]
    version_error: type[Exception]
    #: Extra ``meta`` rows written at creation (e.g. a secret made once per file).
    meta: Callable[[], Sequence[tuple[str, str]]] = lambda: ()
    #: Pragmas only possible before the first table exists (e.g. auto_vacuum).
    fresh_pragmas: Sequence[str] = field(default_factory=tuple)
    #: Pragmas for every connection, after WAL and synchronous.
    pragmas: Sequence[str] = field(default_factory=tuple)
    #: The statements that bring a file of version ``v - 1`` to ``v``, keyed by ``v``; an
    #: older file is migrated at open, all steps in one transaction (``ddl`` makes fresh
    #: files at ``schema_version`` directly).
    migrations: Mapping[int, Sequence[str]] = field(default_factory=dict)


@contextmanager
def transaction(
    conn: sqlite3.Connection, begin: str, failed: Callable[[sqlite3.Error, bool], Exception]
) -> Iterator[sqlite3.Connection]:
    """``begin`` ... COMMIT on ``conn`` (an autocommit connection): one operation, one
    transaction. Any exception rolls back; an ``sqlite3.Error`` is raised as
    ``failed(error, began)`` (``began`` False: BEGIN itself failed, e.g. the file is busy),
    so each owner answers with its own error types."""
    try:
        conn.execute(begin)
    except sqlite3.Error as exc:
        raise failed(exc, False) from exc
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise failed(exc, True) from exc
        raise


def _check_header(db_path: Path, kind: SqliteFileKind) -> None:
    """Refuse a non-SQLite file before SQLite gets a chance to call it corrupt."""
    try:
        with db_path.open("rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise kind.error(f"cannot read {kind.what} {db_path}: {exc}") from exc
    if head and head != _SQLITE_MAGIC:
        raise kind.foreign_error(f"{db_path} is not a {kind.what} (not an SQLite database)")


def _identity(conn: sqlite3.Connection) -> tuple[int, int, int]:
    application_id = conn.execute("PRAGMA application_id").fetchone()[0]
    user_version = conn.execute("PRAGMA user_version").fetchone()[0]
    objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    return application_id, user_version, objects


def _verify(db_path: Path, kind: SqliteFileKind, stamps: tuple[int, int, int]) -> bool:
    """True if the db is fresh (needs creating); raises if it is not ours or too new."""
    application_id, user_version, objects = stamps
    if application_id == 0 and user_version == 0 and objects == 0:
        return True
    if application_id != kind.application_id:
        raise kind.foreign_error(
            f"{db_path} is an SQLite database of another application "
            f"(application_id {application_id:#x}, expected {kind.application_id:#x} "
            f"for {kind.app_name})"
        )
    if user_version > kind.schema_version:
        raise kind.version_error(
            f"{db_path} has schema version {user_version}, written by a newer streamproc; "
            f"this version reads schema versions up to {kind.schema_version}. "
            "Upgrade streamproc."
        )
    if user_version < 1:
        raise kind.error(f"{db_path} has an invalid schema version {user_version}")
    return False


def _create(conn: sqlite3.Connection, db_path: Path, kind: SqliteFileKind) -> None:
    """Create the schema in one transaction, re-checking under the write lock (racing opens)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if _verify(db_path, kind, _identity(conn)):
            # Not executescript(): it would COMMIT our open transaction first.
            for statement in kind.ddl.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)",
                [
                    ("app", kind.app_name),
                    ("schema_version", str(kind.schema_version)),
                    ("created_at", repr(time.time())),
                    *kind.meta(),
                ],
            )
            conn.execute(f"PRAGMA application_id = {kind.application_id}")
            conn.execute(f"PRAGMA user_version = {kind.schema_version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _migrate(conn: sqlite3.Connection, db_path: Path, kind: SqliteFileKind) -> None:
    """Bring an older file to ``kind.schema_version`` in one transaction, re-reading its
    version under the write lock (another process may have migrated it meanwhile)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        start = version
        while version < kind.schema_version:
            steps = kind.migrations.get(version + 1)
            if steps is None:
                raise kind.version_error(
                    f"{db_path} has schema version {version} and this streamproc cannot "
                    f"migrate it to version {kind.schema_version}"
                )
            for statement in steps:
                conn.execute(statement)
            version += 1
        if version != start:
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),)
            )
        conn.execute("COMMIT")
    except BaseException as exc:
        conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise kind.error(f"cannot migrate {kind.what} {db_path}: {exc}") from exc
        raise


def connect(db_path: Path, kind: SqliteFileKind, *, busy_timeout_ms: int) -> sqlite3.Connection:
    """Open (creating if needed) a file of ``kind``, verify it, configure the connection."""
    _check_header(db_path, kind)
    try:
        conn = sqlite3.connect(
            db_path,
            timeout=busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise kind.error(f"cannot open {kind.what} {db_path}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        try:
            fresh = _verify(db_path, kind, _identity(conn))
        except sqlite3.DatabaseError as exc:
            raise kind.foreign_error(f"{db_path} is not a {kind.what}: {exc}") from exc
        if fresh:
            for pragma in kind.fresh_pragmas:
                conn.execute(f"PRAGMA {pragma}")
        # Only now, knowing the file is ours (or empty), may we change its journal mode.
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise kind.error(f"cannot put {db_path} in WAL mode (got {mode!r})")
        # FULL: a commit fsyncs the WAL, so what an operation reported as done survives
        # power loss, not only a crash of this process (NORMAL covers that in WAL mode).
        conn.execute("PRAGMA synchronous = FULL")
        for pragma in kind.pragmas:
            conn.execute(f"PRAGMA {pragma}")
        if fresh:
            _create(conn, db_path, kind)
        elif conn.execute("PRAGMA user_version").fetchone()[0] < kind.schema_version:
            _migrate(conn, db_path, kind)
    except BaseException:
        conn.close()
        raise
    return conn
