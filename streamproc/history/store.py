"""VisitHistory: every visit a stream saw, in its own SQLite (WAL) file plus snapshot files.

One row per visit (one ``VisitorId``), built from the visit's events: ``VisitorArrived``
creates it, each ``VisitorIdentified`` updates the decision and replaces the snapshot,
``VisitorLeft`` closes it. Snapshots are JPEG files ``snapshots/<visitor_id>.jpg`` next to
the db (kept out of the db so that it stays small and a console can serve them as files);
each is the face with context that IndexFaces accepts, so a named unknown visitor can be
indexed from it.

Writes are serialised by a lock (one writer thread at a time in this process, and BEGIN
IMMEDIATE across processes); any thread may read, each on its own connection.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamproc.errors import InvalidParameterException, ResourceNotFoundException
from streamproc.runtime.events import VisitorArrived, VisitorIdentified, VisitorLeft
from streamproc.shapes import BoundingBox, Shape
from streamproc.sqlite_file import transaction
from streamproc.store.validation import (
    check_collection_id,
    check_external_image_id,
    check_face_id,
)

from .errors import HistoryError
from .schema import BUSY_TIMEOUT_MS, DB_FILENAME, NAME_SQL, SNAPSHOT_DIRNAME, connect

__all__ = [
    "VisitHistory",
    "Visit",
    "VISITOR_EVENTS",
    "DEFAULT_RETENTION_DAYS",
    "DEFAULT_MAX_BYTES",
    "MAX_PAGE",
    "MAX_SNAPSHOT_BYTES",
    "check_event",
    "check_visitor_id",
]

log = logging.getLogger(__name__)

VISITOR_EVENTS = (VisitorArrived, VisitorIdentified, VisitorLeft)
DEFAULT_RETENTION_DAYS = 30.0
DEFAULT_MAX_BYTES = 500 * 1000 * 1000
MAX_PAGE = 1000
#: IndexFaces takes image bytes up to 5 MB; a larger snapshot could not be indexed anyway.
MAX_SNAPSHOT_BYTES = 5 * 1024 * 1024
#: A snapshot file that no row names is deleted by prune() once it is this old (s): younger
#: ones may belong to a write that is about to commit.
ORPHAN_GRACE_S = 600.0
#: What one visit row costs in the db, with its index entries: prune()'s size estimate.
_ROW_BYTES = 400
_MAX_CURSOR = 100

_VISITOR_ID = re.compile(r"[0-9a-f]{32}")
_SNAPSHOT_FILE = re.compile(r"([0-9a-f]{32})\.jpg")
_TEMP_FILE = re.compile(r"\.[0-9a-f]{32}\.[0-9a-f]{8}\.tmp")
_JPEG_MAGIC = b"\xff\xd8\xff"

_COLUMNS = (
    "seq, visitor_id, stream, arrived_at, left_at, matched, matched_name, user_name, "
    "named_at, face_id, similarity, revisions, frames_seen, duration_s, box, snapshot, "
    "snapshot_bytes, last_event_at, updated_at, indexed_collection, indexed_face_id"
)


@dataclass(frozen=True, slots=True)
class Visit:
    """One visit as the console shows it: who, where, when, and its snapshot file."""

    seq: int  # insertion order; the tie-breaker of the timeline's order
    visitor_id: str
    stream: str
    arrived_at: float  # epoch s of the VisitorArrived frame
    left_at: float | None  # None while the visitor is still there
    matched: bool | None  # the service's decision; None: not decided (yet)
    matched_name: str | None  # the decision's ExternalImageId (None unless matched)
    user_name: str | None  # the name a user gave in the console, if any
    named_at: float | None
    face_id: str | None
    similarity: float | None
    revisions: int  # how often the decision was revised (the last Revision seen)
    frames_seen: int | None
    duration_s: float | None
    box: BoundingBox | None  # of the VisitorArrived frame
    snapshot: str | None  # file name under snapshots/; None: no snapshot (yet)
    snapshot_bytes: int
    last_event_at: float
    updated_at: float  # when this row was last written (epoch s)
    #: Where the console indexed the snapshot when a user named the visit (None: nowhere),
    #: so that correcting the name can delete that face.
    indexed_collection: str | None = None
    indexed_face_id: str | None = None

    @property
    def name(self) -> str | None:
        """Who it was: the user's naming wins over the service's decision."""
        return self.user_name if self.user_name is not None else self.matched_name

    @property
    def named_by_user(self) -> bool:
        return self.user_name is not None

    @property
    def unknown(self) -> bool:
        """Nobody known: no match (or no decision) and not named by a user."""
        return self.name is None

    @property
    def cursor(self) -> str:
        """Pass as ``visits(before=...)`` to get the page after this visit."""
        return _encode_cursor(self.arrived_at, self.seq)


def _history_error(exc: sqlite3.Error, began: bool) -> Exception:
    if not began:
        return HistoryError(f"the visit history is unavailable: {exc}")
    return HistoryError(f"visit history failure: {exc}")


def _visit(row: Sequence[Any]) -> Visit:
    return Visit(
        seq=row[0],
        visitor_id=row[1],
        stream=row[2],
        arrived_at=row[3],
        left_at=row[4],
        matched=None if row[5] is None else bool(row[5]),
        matched_name=row[6],
        user_name=row[7],
        named_at=row[8],
        face_id=row[9],
        similarity=row[10],
        revisions=row[11],
        frames_seen=row[12],
        duration_s=row[13],
        box=BoundingBox.model_validate_json(row[14]) if row[14] is not None else None,
        snapshot=row[15],
        snapshot_bytes=row[16],
        last_event_at=row[17],
        updated_at=row[18],
        indexed_collection=row[19],
        indexed_face_id=row[20],
    )


# -- validation ---------------------------------------------------------------------------


def check_visitor_id(visitor_id: object) -> str:
    """A VisitorId is 32 lower-case hex digits (uuid4().hex): safe as a file name."""
    if not isinstance(visitor_id, str) or not _VISITOR_ID.fullmatch(visitor_id):
        raise InvalidParameterException(
            f"VisitorId {visitor_id!r} must be 32 lower-case hexadecimal digits"
        )
    return visitor_id


def _finite(value: float | None, what: str) -> None:
    if value is not None and not math.isfinite(value):
        raise InvalidParameterException(f"{what} must be a finite number, not {value!r}")


def check_event(event: Shape) -> None:
    """Raise InvalidParameterException for a visitor event the history cannot keep."""
    if not isinstance(event, VISITOR_EVENTS):
        raise InvalidParameterException(f"{type(event).__name__} is not a visitor event")
    check_visitor_id(event.VisitorId)
    if not event.StreamName:
        raise InvalidParameterException("StreamName must not be empty")
    _finite(event.Timestamp, "Timestamp")
    if isinstance(event, VisitorIdentified):
        _finite(event.Similarity, "Similarity")
    elif isinstance(event, VisitorLeft):
        _finite(event.DurationSeconds, "DurationSeconds")


def _check_optional_number(value: object, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidParameterException(f"{what} must be a finite number, not {value!r}")
    return float(value)


# -- paging cursor ------------------------------------------------------------------------


def _encode_cursor(arrived_at: float, seq: int) -> str:
    """Opaque, URL-safe. Not signed: it only names a position in a listing the caller may
    read anyway; a forged one selects a different page, nothing more."""
    body = json.dumps([arrived_at, seq], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(body).rstrip(b"=").decode("ascii")


def _decode_cursor(cursor: object) -> tuple[float, int]:
    bad = InvalidParameterException("Invalid paging cursor")
    if not isinstance(cursor, str) or not 0 < len(cursor) <= _MAX_CURSOR:
        raise bad
    try:
        body = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        arrived_at, seq = json.loads(body)
    except (ValueError, TypeError, binascii.Error):
        raise bad from None
    if isinstance(arrived_at, bool) or not isinstance(arrived_at, int | float):
        raise bad
    if not math.isfinite(arrived_at) or isinstance(seq, bool) or not isinstance(seq, int):
        raise bad
    return float(arrived_at), seq


# -- the history --------------------------------------------------------------------------


class VisitHistory:
    """The visits of every stream, persisted under ``directory``.

    ``retention_days`` and ``max_bytes`` (db plus snapshot files) bound what prune() keeps.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        retention_days: float = DEFAULT_RETENTION_DAYS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    ) -> None:
        if not retention_days > 0:
            raise ValueError(f"retention_days must be positive, not {retention_days!r}")
        if not max_bytes > 0:
            raise ValueError(f"max_bytes must be positive, not {max_bytes!r}")
        self.directory = Path(directory).expanduser()
        self.db_path = self.directory / DB_FILENAME
        self.snapshot_dir = self.directory / SNAPSHOT_DIRNAME
        self.retention_days = retention_days
        self.max_bytes = max_bytes
        for folder in (self.directory, self.snapshot_dir):
            if folder.exists() and not folder.is_dir():
                raise HistoryError(f"history path {folder} exists and is not a directory")
            try:
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                raise HistoryError(f"cannot create history directory {folder}: {exc}") from exc
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        self._active = 0  # operations using a connection now; close() waits for them
        self._idle = threading.Condition()
        with self._use():
            pass  # opens, verifies or creates the schema now, not on first use

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _use(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, counted as in use so that close() cannot pull it away
        mid-statement (closing an SQLite connection another thread is using can crash)."""
        with self._idle:
            if self._closed:
                raise HistoryError("the visit history is closed")
            self._active += 1
        try:
            conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
            if conn is None:
                conn = connect(self.db_path, busy_timeout_ms=self._busy_timeout_ms)
                self._local.conn = conn
                with self._connections_lock:
                    self._connections.append(conn)
            yield conn
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def close(self, timeout: float = 30.0) -> None:
        """Refuse new operations, wait for those running, close every connection.

        If some are still running after ``timeout`` s, the connections are left open (and
        an error logged): a leak is better than closing a connection under a statement.
        """
        with self._idle:
            self._closed = True
            if not self._idle.wait_for(lambda: self._active == 0, timeout):
                log.error("visit history: %d operations still running; not closed", self._active)
                return
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    def __enter__(self) -> VisitHistory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        with self._use() as conn, transaction(conn, begin, _history_error) as tx:
            yield tx

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        """A read transaction: one consistent snapshot of the db."""
        return self._transaction("BEGIN")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the db's write lock from its start."""
        with self._write_lock, self._transaction("BEGIN IMMEDIATE") as conn:
            yield conn

    def _snapshot_file(self, visitor_id: str) -> Path:
        """The only way a snapshot path is made: from a validated VisitorId, never a row."""
        return self.snapshot_dir / f"{check_visitor_id(visitor_id)}.jpg"

    # -- recording events -----------------------------------------------------------------

    def record(self, events: Sequence[Shape]) -> int:
        """Apply the visitor events among ``events`` in one transaction; returns how many.

        Other shapes (label events, ...) are skipped. Every visitor event is checked first
        (check_event), so a bad one refuses the whole call before anything is written.
        """
        visitor_events = [event for event in events if isinstance(event, VISITOR_EVENTS)]
        for event in visitor_events:
            check_event(event)
        if not visitor_events:
            return 0
        now = time.time()
        with self._write() as conn:
            snapshots: dict[str, bytes] = {}
            for event in visitor_events:
                if isinstance(event, VisitorArrived):
                    self._arrived(conn, event, now)
                elif isinstance(event, VisitorIdentified):
                    if self._identified(conn, event, now) and self._usable(event):
                        snapshots[event.VisitorId] = event.Snapshot
                elif isinstance(event, VisitorLeft):
                    self._left(conn, event, now)
            # Files before COMMIT: a committed row never names a snapshot that is not on
            # disk. A crash in between leaves only an orphan file, which prune() removes.
            for visitor_id, size in self._write_snapshots(snapshots).items():
                conn.execute(
                    "UPDATE visits SET snapshot = ?, snapshot_bytes = ? WHERE visitor_id = ?",
                    (f"{visitor_id}.jpg", size, visitor_id),
                )
        return len(visitor_events)

    @staticmethod
    def _arrived(conn: sqlite3.Connection, event: VisitorArrived, now: float) -> None:
        conn.execute(
            "INSERT INTO visits(visitor_id, stream, arrived_at, box, last_event_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(visitor_id) DO UPDATE SET "
            "arrived_at = min(arrived_at, excluded.arrived_at), box = excluded.box, "
            "last_event_at = max(last_event_at, excluded.last_event_at), "
            "updated_at = excluded.updated_at",
            (
                event.VisitorId,
                event.StreamName,
                event.Timestamp,
                event.BoundingBox.model_dump_json(),
                event.Timestamp,
                now,
            ),
        )

    @staticmethod
    def _identified(conn: sqlite3.Connection, event: VisitorIdentified, now: float) -> bool:
        """Apply the decision unless the visit already holds a later revision."""
        name = event.ExternalImageId if event.Matched else None
        cursor = conn.execute(
            "INSERT INTO visits(visitor_id, stream, arrived_at, matched, matched_name, face_id, "
            "similarity, revisions, last_event_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(visitor_id) DO UPDATE SET "
            "matched = excluded.matched, matched_name = excluded.matched_name, "
            "face_id = excluded.face_id, similarity = excluded.similarity, "
            "revisions = excluded.revisions, "
            "last_event_at = max(last_event_at, excluded.last_event_at), "
            "updated_at = excluded.updated_at "
            "WHERE visits.matched IS NULL OR visits.revisions <= excluded.revisions",
            (
                event.VisitorId,
                event.StreamName,
                event.Timestamp,
                int(event.Matched),
                name,
                event.FaceId,
                event.Similarity,
                event.Revision,
                event.Timestamp,
                now,
            ),
        )
        return cursor.rowcount > 0

    @staticmethod
    def _left(conn: sqlite3.Connection, event: VisitorLeft, now: float) -> None:
        # Left carries the final identity; it only overrides the decision when it has one.
        name = event.ExternalImageId if event.Matched else None
        matched = None if event.Matched is None else int(event.Matched)
        conn.execute(
            "INSERT INTO visits(visitor_id, stream, arrived_at, left_at, matched, matched_name, "
            "frames_seen, duration_s, last_event_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(visitor_id) DO UPDATE SET "
            "left_at = excluded.left_at, frames_seen = excluded.frames_seen, "
            "duration_s = excluded.duration_s, "
            "matched = coalesce(excluded.matched, matched), "
            "matched_name = CASE WHEN excluded.matched IS NULL THEN matched_name "
            "ELSE excluded.matched_name END, "
            "last_event_at = max(last_event_at, excluded.last_event_at), "
            "updated_at = excluded.updated_at",
            (
                event.VisitorId,
                event.StreamName,
                event.Timestamp - max(event.DurationSeconds, 0.0),  # no Arrived seen
                event.Timestamp,
                matched,
                name,
                event.FramesSeen,
                event.DurationSeconds,
                event.Timestamp,
                now,
            ),
        )

    @staticmethod
    def _usable(event: VisitorIdentified) -> bool:
        """A snapshot worth keeping: a JPEG that IndexFaces would take."""
        data = event.Snapshot
        if not data:
            return False
        if not data.startswith(_JPEG_MAGIC) or len(data) > MAX_SNAPSHOT_BYTES:
            log.warning(
                "visit %s: snapshot of %d bytes is not a JPEG IndexFaces accepts; not kept",
                event.VisitorId,
                len(data),
            )
            return False
        return True

    def _write_snapshots(self, snapshots: dict[str, bytes]) -> dict[str, int]:
        """Write each atomically (temp file, fsync, rename, then one fsync of the folder);
        returns the sizes of those written. A failure costs only that snapshot."""
        written: dict[str, int] = {}
        for visitor_id, data in snapshots.items():
            final = self._snapshot_file(visitor_id)
            temp = self.snapshot_dir / f".{visitor_id}.{secrets.token_hex(4)}.tmp"
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(temp, final)
            except OSError:
                log.exception("visit %s: cannot write its snapshot %s", visitor_id, final)
                with suppress(OSError):
                    temp.unlink()
                continue
            written[visitor_id] = len(data)
        if written:
            self._sync_snapshot_dir()
        return written

    def _sync_snapshot_dir(self) -> None:
        """Make renames and unlinks in the snapshot folder durable."""
        fd = os.open(self.snapshot_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close_open_visits(self, stream: str | None = None) -> int:
        """Close the visits still open (of ``stream``, or all) whose VisitorLeft will never
        come: after a crash, or when a stream stopped. Each ends at its last event; returns
        how many were closed."""
        where = "left_at IS NULL" if stream is None else "left_at IS NULL AND stream = :stream"
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE visits SET left_at = last_event_at, "
                "duration_s = last_event_at - arrived_at, updated_at = :now "
                f"WHERE {where}",
                {"now": time.time(), "stream": stream},
            )
            return cursor.rowcount

    # -- reading --------------------------------------------------------------------------

    def visits(
        self,
        stream: str | None = None,
        name: str | None = None,
        unknown_only: bool = False,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Visit]:
        """Visits newest first (by arrival), filtered; ``before`` is the ``cursor`` of the
        last visit of the previous page.

        ``name`` matches the user's naming or else the service's decision; ``unknown_only``
        keeps visits with neither. ``since <= arrived_at < until``.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidParameterException(f"limit must be an integer in 1..{MAX_PAGE}")
        clauses: list[str] = []
        args: list[Any] = []
        if stream is not None:
            if not isinstance(stream, str):
                raise InvalidParameterException("stream must be a string")
            clauses.append("stream = ?")
            args.append(stream)
        if name is not None:
            if not isinstance(name, str):
                raise InvalidParameterException("name must be a string")
            clauses.append(f"{NAME_SQL} = ?")
            args.append(name)
        if unknown_only:
            clauses.append(f"{NAME_SQL} IS NULL")
        start = _check_optional_number(since, "since")
        if start is not None:
            clauses.append("arrived_at >= ?")
            args.append(start)
        end = _check_optional_number(until, "until")
        if end is not None:
            clauses.append("arrived_at < ?")
            args.append(end)
        if before is not None:
            clauses.append("(arrived_at, seq) < (?, ?)")
            args.extend(_decode_cursor(before))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM visits {where} "
                "ORDER BY arrived_at DESC, seq DESC LIMIT ?",
                [*args, limit],
            ).fetchall()
        return [_visit(row) for row in rows]

    def visit(self, visitor_id: str) -> Visit | None:
        """The visit, or None if there is none (never seen, or pruned)."""
        check_visitor_id(visitor_id)
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM visits WHERE visitor_id = ?", (visitor_id,)
            ).fetchone()
        return _visit(row) if row is not None else None

    def snapshot_path(self, visitor_id: str) -> Path | None:
        """The visit's snapshot file, if it has one. prune() may delete it at any time, so
        a reader must expect FileNotFoundError when opening it."""
        visit = self.visit(visitor_id)
        if visit is None or visit.snapshot is None:
            return None
        path = self._snapshot_file(visitor_id)
        return path if path.is_file() else None

    def snapshot(self, visitor_id: str) -> bytes | None:
        """The visit's snapshot JPEG (for IndexFaces when a user names the visitor)."""
        path = self.snapshot_path(visitor_id)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except FileNotFoundError:  # pruned in between
            return None

    def size_bytes(self) -> int:
        """What the retention by size counts: the db's used pages plus the snapshot files.
        (The WAL, a few MB at most between checkpoints, is not counted.)"""
        with self._read() as conn:
            return self._size(conn)

    @staticmethod
    def _size(conn: sqlite3.Connection) -> int:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        snapshots = conn.execute("SELECT coalesce(sum(snapshot_bytes), 0) FROM visits")
        return int((pages - free) * page_size + snapshots.fetchone()[0])

    # -- the console's edits --------------------------------------------------------------

    def rename(
        self,
        visitor_id: str,
        name: str | None,
        *,
        collection_id: str | None = None,
        face_id: str | None = None,
    ) -> Visit:
        """Record that a user named the visitor (None: take the naming back).

        The service's decision stays as it was, in ``matched`` / ``matched_name``. The name
        follows the ExternalImageId rules, so the snapshot can be indexed under it.
        ``collection_id`` and ``face_id`` say where the snapshot was indexed for this naming
        (both or neither); they replace what an earlier naming recorded.
        """
        check_visitor_id(visitor_id)
        check_external_image_id(name)
        if (collection_id is None) != (face_id is None):
            raise InvalidParameterException("give both collection_id and face_id, or neither")
        if collection_id is not None:
            check_collection_id(collection_id)
            check_face_id(face_id)
        now = time.time()
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE visits SET user_name = ?, named_at = ?, updated_at = ?, "
                "indexed_collection = ?, indexed_face_id = ? WHERE visitor_id = ?",
                (name, now if name is not None else None, now, collection_id, face_id,
                 visitor_id),
            )
            if cursor.rowcount == 0:
                raise ResourceNotFoundException(f"The visit {visitor_id} does not exist")
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM visits WHERE visitor_id = ?", (visitor_id,)
            ).fetchone()
        return _visit(row)

    # -- retention ------------------------------------------------------------------------

    def prune(self, now: float | None = None) -> int:
        """Delete visits older than ``retention_days``, then the oldest ones until the
        history fits ``max_bytes``, with their snapshot files; returns how many visits.

        Also removes snapshot files no visit names (left by a crash mid-write).
        """
        at = time.time() if now is None else _check_optional_number(now, "now")
        assert at is not None
        cutoff = at - self.retention_days * 86400.0
        with self._write() as conn:
            doomed = conn.execute(
                "SELECT visitor_id, snapshot FROM visits WHERE arrived_at < ?", (cutoff,)
            ).fetchall()
            conn.execute("DELETE FROM visits WHERE arrived_at < ?", (cutoff,))
            excess = self._size(conn) - self.max_bytes
            if excess > 0:
                oldest = conn.execute(
                    "SELECT seq, visitor_id, snapshot, snapshot_bytes FROM visits "
                    "ORDER BY arrived_at, seq"
                )
                seqs: list[tuple[int]] = []
                for seq, visitor_id, snapshot, size in oldest:
                    seqs.append((seq,))
                    doomed.append((visitor_id, snapshot))
                    excess -= size + _ROW_BYTES
                    if excess <= 0:
                        break
                oldest.close()  # before deleting from the table it reads
                conn.executemany("DELETE FROM visits WHERE seq = ?", seqs)
            referenced = {
                visitor_id
                for (visitor_id,) in conn.execute(
                    "SELECT visitor_id FROM visits WHERE snapshot IS NOT NULL"
                )
            }
        # The rows are gone (committed) before their files: a crash in between leaves only
        # orphans, which the sweep below removes next time.
        removed = 0
        for visitor_id, snapshot in doomed:
            if snapshot is not None:
                with suppress(FileNotFoundError):
                    self._snapshot_file(visitor_id).unlink()
                    removed += 1
        removed += self._sweep(referenced)
        if removed:
            self._sync_snapshot_dir()
        if doomed:
            with self._write_lock, self._use() as conn, suppress(sqlite3.Error):
                # executescript: it steps the pragma to the end, where execute() would stop
                # after its first step, which frees a single page.
                conn.executescript("PRAGMA incremental_vacuum")
            log.info("visit history: pruned %d visits", len(doomed))
        return len(doomed)

    def _sweep(self, referenced: set[str]) -> int:
        """Delete old snapshot and temp files that no visit names; returns how many."""
        old = time.time() - ORPHAN_GRACE_S
        removed = 0
        try:
            entries = list(os.scandir(self.snapshot_dir))
        except OSError:
            log.exception("visit history: cannot list %s", self.snapshot_dir)
            return 0
        for entry in entries:
            match = _SNAPSHOT_FILE.fullmatch(entry.name)
            orphan = match is not None and match[1] not in referenced
            if not (orphan or _TEMP_FILE.fullmatch(entry.name)):
                continue  # ours and named, or not ours at all: left alone
            try:
                if entry.stat(follow_symlinks=False).st_mtime < old:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
            except OSError:
                log.exception("visit history: cannot remove %s", entry.path)
        return removed
