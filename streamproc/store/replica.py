"""Writes a replica applies: decisions made elsewhere, stored with the log position.

A node of a cluster (:mod:`streamproc.cluster`) does not write to its store the way
``CollectionStore.index_faces`` does: the writer decided FaceIds, ImageId, vectors and
boxes, published them as a record, and every node applies that record here, in one
transaction with the stream sequence it came from (table ``log_applied``). A crash between
the write and the position cannot happen, so a restarted node resumes exactly after the
last record it applied. Once a store holds a position it is a replica, and its plain write
methods refuse (``ReplicaStoreError``).

Applying checks that the decision fits the replica (the collection exists, the ids are
new, the face model matches): a record that does not fit means the replica has diverged
from the log, and :class:`ReplicaDivergedError` says how; the caller must stop applying.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .errors import ReplicaStoreError, StoreError
from .sqlite_store import (
    CollectionStore,
    _detail_json,
    delete_collection_rows,
    delete_face_rows,
    insert_image_faces,
)
from .validation import (
    check_collection_id,
    check_external_image_id,
    check_face_id,
    check_image_sha256,
)

__all__ = [
    "LogPosition",
    "ReplicaDivergedError",
    "claim_replica",
    "ReplicaFace",
    "ReplicaTransaction",
    "log_position",
    "replica_transaction",
]


class ReplicaDivergedError(StoreError):
    """A record does not fit this replica's state: the replica no longer follows the log."""


@dataclass(frozen=True, slots=True)
class LogPosition:
    """Which log a store follows and the last sequence it applied (0: none yet)."""

    stream: str
    stream_created: str  # the stream's creation time: a re-created stream is another log
    seq: int


@dataclass(frozen=True, slots=True)
class ReplicaFace:
    """One face as the writer decided it; ``vector`` is the writer's unit float32 vector,
    stored bit for bit so that every node scores searches identically."""

    face_id: str
    box: tuple[float, float, float, float]
    confidence: float
    vector: np.ndarray
    detail: dict[str, object] | None = None


def _check_face(face: ReplicaFace, dimension: int | None) -> None:
    check_face_id(face.face_id)
    if len(face.box) != 4 or not all(math.isfinite(v) for v in face.box):
        raise ReplicaDivergedError(f"face {face.face_id} has an invalid box {face.box!r}")
    if not (math.isfinite(face.confidence) and 0.0 <= face.confidence <= 100.0):
        raise ReplicaDivergedError(f"face {face.face_id} has confidence {face.confidence!r}")
    v = face.vector
    if v.dtype != np.float32 or v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)):
        raise ReplicaDivergedError(f"face {face.face_id} has an invalid embedding")
    if dimension is not None and v.size != dimension:
        raise ReplicaDivergedError(
            f"face {face.face_id} has dimension {v.size}, the collection {dimension}"
        )


def _read_position(conn: sqlite3.Connection, stream: str, stream_created: str) -> int:
    rows = conn.execute("SELECT stream, stream_created, seq FROM log_applied").fetchall()
    for name, created, seq in rows:
        if name != stream or created != stream_created:
            raise ReplicaStoreError(
                f"this store follows the collection log {name!r} (created {created}); it "
                f"cannot apply {stream!r} (created {stream_created}): a re-created or "
                "different log needs a fresh store"
            )
        return int(seq)
    return 0


class ReplicaTransaction:
    """Apply decided writes in one store transaction; :meth:`advance` records each record's
    sequence. Use through :func:`replica_transaction`."""

    def __init__(
        self, store: CollectionStore, conn: sqlite3.Connection, stream: str, created: str
    ) -> None:
        self._store = store
        self._conn = conn
        self._stream = stream
        self._created = created
        self.start = _read_position(conn, stream, created)
        self.position = self.start
        self.dropped: list[int] = []  # collection keys whose in-memory index must go

    def _row(self, collection_id: str) -> tuple[int, str, int | None, int]:
        row = self._conn.execute(
            "SELECT id, face_model_version, dimension, log_floor FROM collections "
            "WHERE name = ?",
            (collection_id,),
        ).fetchone()
        if row is None:
            raise ReplicaDivergedError(f"collection {collection_id!r} does not exist here")
        return int(row[0]), str(row[1]), row[2], int(row[3])

    def advance(self, seq: int) -> None:
        """Record that everything up to stream sequence ``seq`` is applied."""
        if seq <= self.position:
            raise ReplicaDivergedError(
                f"sequence {seq} is not after the applied position {self.position}"
            )
        self.position = seq

    def create_collection(
        self, collection_id: str, face_model_version: str, created_at: float
    ) -> None:
        check_collection_id(collection_id)
        if self._conn.execute(
            "SELECT 1 FROM collections WHERE name = ?", (collection_id,)
        ).fetchone():
            raise ReplicaDivergedError(f"collection {collection_id!r} already exists here")
        self._conn.execute(
            "INSERT INTO collections(name, face_model_version, created_at) VALUES (?, ?, ?)",
            (collection_id, face_model_version, created_at),
        )

    def delete_collection(self, collection_id: str) -> None:
        key = self._row(collection_id)[0]
        delete_collection_rows(self._conn, key)
        self.dropped.append(key)

    def collection_seq(self, collection_id: str) -> int:
        """The sequence of the last record of ``collection_id`` applied here (0: none)."""
        row = self._conn.execute(
            "SELECT seq FROM log_collections WHERE name = ?", (collection_id,)
        ).fetchone()
        return int(row[0]) if row is not None else 0

    def set_collection_seq(self, collection_id: str, seq: int) -> None:
        self._conn.execute(
            "INSERT INTO log_collections(name, seq) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET seq = excluded.seq",
            (collection_id, seq),
        )

    def has_collection(self, collection_id: str) -> bool:
        return self._conn.execute(
            "SELECT 1 FROM collections WHERE name = ?", (collection_id,)
        ).fetchone() is not None

    def discard_collection(self, collection_id: str) -> None:
        """Delete the collection if this replica has it (a snapshot then rebuilds it)."""
        row = self._conn.execute(
            "SELECT id FROM collections WHERE name = ?", (collection_id,)
        ).fetchone()
        if row is not None:
            delete_collection_rows(self._conn, int(row[0]))
            self.dropped.append(int(row[0]))

    def counts(self, collection_id: str) -> tuple[int, int]:
        """(images, faces) the collection holds in this transaction."""
        key = self._row(collection_id)[0]
        images = self._conn.execute(
            "SELECT count(*) FROM images WHERE collection = ?", (key,)
        ).fetchone()[0]
        faces = self._conn.execute(
            "SELECT count(*) FROM faces WHERE collection = ?", (key,)
        ).fetchone()[0]
        return int(images), int(faces)

    def index_faces(
        self,
        collection_id: str,
        *,
        face_model_version: str,
        image_id: str,
        image_sha256: str,
        external_image_id: str | None,
        created_at: float,
        faces: Sequence[ReplicaFace],
    ) -> None:
        key, model, dimension, _ = self._row(collection_id)
        if model != face_model_version:
            raise ReplicaDivergedError(
                f"faces made by face model {face_model_version!r} cannot go into collection "
                f"{collection_id!r} of face model {model!r}"
            )
        check_face_id(image_id)
        check_image_sha256(image_sha256)
        check_external_image_id(external_image_id)
        if not faces:
            raise ReplicaDivergedError(f"image {image_id} comes without faces")
        for face in faces:
            _check_face(face, dimension if dimension is not None else faces[0].vector.size)
        try:
            insert_image_faces(
                self._conn,
                key,
                image_id=image_id,
                image_sha256=image_sha256,
                external_image_id=external_image_id,
                created_at=created_at,
                faces=[
                    (f.face_id, f.box, f.confidence, f.vector, _detail_json(f.detail, i))
                    for i, f in enumerate(faces)
                ],
            )
        except sqlite3.IntegrityError as exc:  # an ImageId, FaceId or image already here
            raise ReplicaDivergedError(
                f"image {image_id} of collection {collection_id!r} conflicts with what this "
                f"replica holds: {exc}"
            ) from exc

    def delete_faces(self, collection_id: str, face_ids: Sequence[str]) -> None:
        key, _, _, log_floor = self._row(collection_id)
        wanted = list(dict.fromkeys(check_face_id(f) for f in face_ids))
        if not wanted:
            raise ReplicaDivergedError("a DeleteFaces record without FaceIds")
        rows = self._store.face_rows(self._conn, key, wanted)
        if len(rows) != len(wanted):
            found = {r[1] for r in rows}
            missing = [f for f in wanted if f not in found]
            raise ReplicaDivergedError(
                f"faces {missing[:3]} of collection {collection_id!r} are not here to delete"
            )
        delete_face_rows(self._conn, key, log_floor, rows)


@contextmanager
def replica_transaction(
    store: CollectionStore, stream: str, stream_created: str
) -> Iterator[ReplicaTransaction]:
    """One write transaction of applied records: commits the writes together with the last
    sequence passed to ``advance`` (nothing if it was not advanced), or nothing at all."""
    with store._write() as conn:
        tx = ReplicaTransaction(store, conn, stream, stream_created)
        yield tx
        if tx.position != tx.start:
            conn.execute(
                "INSERT INTO log_applied(stream, stream_created, seq, applied_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(stream) DO UPDATE SET seq = excluded.seq, "
                "applied_at = excluded.applied_at",
                (stream, stream_created, tx.position, time.time()),
            )
    for key in tx.dropped:
        store.forget_index(key)


def log_position(store: CollectionStore, stream: str, stream_created: str) -> LogPosition:
    """The position of ``store`` in the log (sequence 0 for a store that applied nothing);
    ReplicaStoreError if it follows another log."""
    with store._read() as conn:
        seq = _read_position(conn, stream, stream_created)
    return LogPosition(stream, stream_created, seq)


def claim_replica(store: CollectionStore, stream: str, stream_created: str) -> LogPosition:
    """Make ``store`` a replica of the log (position 0) before it applies anything, so its
    plain writers refuse from the start; its position if it already is one.

    A store that holds collections but follows no log is refused: its faces are in no log,
    so the other nodes would never see them (seed the log from it once instead:
    ``streamproc cluster seed``), and the log's records would collide with them.
    """
    with store._write() as conn:
        if conn.execute("SELECT 1 FROM log_applied").fetchone() is not None:
            return LogPosition(stream, stream_created, _read_position(conn, stream, stream_created))
        held = conn.execute("SELECT count(*) FROM collections").fetchone()[0]
        if held:
            raise ReplicaStoreError(
                f"{store.directory} holds {held} collection(s) but follows no collection log: "
                "a cluster node needs an empty store (it rebuilds from the log). To bring "
                f"these collections into the cluster, seed the log from this store once "
                f"(`streamproc cluster seed --store {store.directory} --nats URL`) and give "
                "the node a new, empty store directory."
            )
        conn.execute(
            "INSERT INTO log_applied(stream, stream_created, seq, applied_at) VALUES (?, ?, 0, ?)",
            (stream, stream_created, time.time()),
        )
    return LogPosition(stream, stream_created, 0)
