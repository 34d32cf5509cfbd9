"""CollectionStore: face collections in one SQLite (WAL) file plus in-memory search indexes.

Every public method is one SQLite transaction (writes take the write lock up front with
BEGIN IMMEDIATE, so two writers never deadlock on a read-to-write upgrade). The search
index of a collection lives in this process and is brought up to date with other
processes' commits before each search: new faces by rowid, deletions from a log table.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from streamproc.errors import (
    InternalServerError,
    InvalidParameterException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
    ThrottlingException,
)
from streamproc.settings import STORE_ENV, Settings
from streamproc.sqlite_file import transaction

from .errors import ReplicaStoreError, StoreError
from .index import FaceIndex
from .records import BoundingBox, Collection, FaceRecord, IndexResult, NewFace
from .schema import BUSY_TIMEOUT_MS, DB_FILENAME, connect
from .tokens import TokenCodec
from .validation import (
    MAX_DELETE_FACE_IDS,
    check_collection_id,
    check_external_image_id,
    check_face_id,
    check_image_sha256,
    check_max_faces,
    check_max_results,
    check_new_face,
    unit_vector,
)

__all__ = [
    "CollectionStore",
    "DEFAULT_FACE_MODEL_VERSION",
    "MAX_FACES_PER_COLLECTION",
    "STORE_ENV",
    "default_store_dir",
]

DEFAULT_FACE_MODEL_VERSION = "1.0"
MAX_FACES_PER_COLLECTION = 1_000_000
# Deletion-log entries kept per collection; a process further behind reloads its index.
DELETION_LOG_KEEP = 100_000
_LOAD_BATCH = 8192  # small enough that the join buffer is reused, not re-mmapped

_FACE_COLUMNS = (
    "f.id, f.face_id, i.image_id, i.external_image_id, "
    "f.bbox_left, f.bbox_top, f.bbox_width, f.bbox_height, f.confidence, f.detail"
)
_FACE_FROM = "faces f JOIN images i ON i.id = f.image"
_COLLECTION_COLUMNS = (
    "id, name, face_model_version, created_at, dimension, face_count, version, log_floor"
)


def default_store_dir() -> Path:
    """$STREAMPROC_STORE if set, else the per-user data directory (Settings.store)."""
    return Path(Settings.default("store"))


def _face_from_row(row: Sequence[Any], embedding: np.ndarray | None = None) -> FaceRecord:
    return FaceRecord(
        face_id=row[1],
        image_id=row[2],
        external_image_id=row[3],
        bounding_box=BoundingBox(left=row[4], top=row[5], width=row[6], height=row[7]),
        confidence=row[8],
        detail=json.loads(row[9]) if row[9] is not None else None,
        embedding=embedding,
    )


def _detail_json(detail: dict[str, Any] | None, index: int) -> str | None:
    if detail is None:
        return None
    if not isinstance(detail, dict):
        raise InvalidParameterException(f"faces[{index}].detail must be a dict")
    try:
        return json.dumps(detail, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterException(f"faces[{index}].detail is not JSON-able: {exc}") from exc


def _store_error(exc: sqlite3.Error, began: bool) -> Exception:
    """Busy or locked: the caller may retry (ThrottlingException); anything else is ours."""
    busy = isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc)
    )
    if busy or (not began and isinstance(exc, sqlite3.OperationalError)):
        return ThrottlingException(f"the collection store is busy: {exc}")
    return InternalServerError(f"collection store failure: {exc}")


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


# A face ready to insert: (face_id, box ratios, confidence, unit float32 vector, detail JSON).
PreparedFace = tuple[str, tuple[float, float, float, float], float, np.ndarray, str | None]


def _prepare_faces(
    faces: Sequence[NewFace],
) -> list[tuple[tuple[float, float, float, float], float, np.ndarray, str | None]]:
    """Validate NewFaces: box ratios, confidence, unit vector, detail JSON; one dimension."""
    if isinstance(faces, NewFace | str | bytes) or not isinstance(faces, Sequence):
        raise InvalidParameterException("faces must be a list of NewFace")
    prepared = []
    for i, face in enumerate(faces):
        box, confidence = check_new_face(face, i)
        vector = unit_vector(face.embedding, what=f"faces[{i}].embedding")
        prepared.append((box, confidence, vector, _detail_json(face.detail, i)))
    if len({len(p[2]) for p in prepared}) > 1:
        raise InvalidParameterException("the faces' embeddings differ in dimension")
    return prepared


def refuse_if_replica(conn: sqlite3.Connection) -> None:
    """A store that applies a collection log (streamproc.cluster) takes writes only from it."""
    row = conn.execute("SELECT stream FROM log_applied LIMIT 1").fetchone()
    if row is not None:
        raise ReplicaStoreError(
            f"this collection store belongs to a cluster node (it replicates the collection "
            f"log {row[0]!r}) and takes writes only from that log, so that every node holds "
            "the same faces. Write through a running node instead: its HTTP API (AWS SDKs, "
            "`aws rekognition --endpoint-url http://NODE:PORT ...`), its NATS service "
            "(rekognition.<Operation>) or its web console (README, Scaling out). Reading "
            "this store directly works, but may lag the cluster."
        )


def delete_collection_rows(conn: sqlite3.Connection, key: int) -> None:
    """Delete a collection's rows (caller holds a write transaction)."""
    for table in ("embeddings", "face_deletions", "faces", "images", "collections"):
        column = "id" if table == "collections" else "collection"
        conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (key,))


def insert_image_faces(
    conn: sqlite3.Connection,
    key: int,
    *,
    image_id: str,
    image_sha256: str,
    external_image_id: str | None,
    created_at: float,
    faces: Sequence[PreparedFace],
) -> list[FaceRecord]:
    """Insert one image and its faces (caller holds a write transaction and has decided)."""
    image_rowid = conn.execute(
        "INSERT INTO images(collection, image_id, sha256, external_image_id, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (key, image_id, image_sha256, external_image_id, created_at),
    ).lastrowid
    records = []
    for face_id, box, confidence, vector, detail in faces:
        face_rowid = conn.execute(
            "INSERT INTO faces(collection, image, face_id, bbox_left, bbox_top, "
            "bbox_width, bbox_height, confidence, created_at, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, image_rowid, face_id, *box, confidence, created_at, detail),
        ).lastrowid
        conn.execute(
            "INSERT INTO embeddings(collection, face, vector) VALUES (?, ?, ?)",
            (key, face_rowid, vector.tobytes()),
        )
        records.append(
            FaceRecord(
                face_id=face_id,
                image_id=image_id,
                external_image_id=external_image_id,
                bounding_box=BoundingBox(*box),
                confidence=confidence,
                detail=json.loads(detail) if detail is not None else None,
            )
        )
    conn.execute(
        "UPDATE collections SET face_count = face_count + ?, version = version + 1, "
        "dimension = coalesce(dimension, ?) WHERE id = ?",
        (len(faces), len(faces[0][3]), key),
    )
    return records


def delete_face_rows(
    conn: sqlite3.Connection, key: int, log_floor: int, rows: Sequence[Sequence[Any]]
) -> None:
    """Delete faces given as (rowid, face_id, image rowid) rows of one collection, log the
    deletions for other processes' indexes, forget images left without faces."""
    rowids = [r[0] for r in rows]
    images = sorted({r[2] for r in rows})
    marks = _placeholders(len(rowids))
    conn.execute(
        f"DELETE FROM embeddings WHERE collection = ? AND face IN ({marks})",
        (key, *rowids),
    )
    conn.execute(f"DELETE FROM faces WHERE id IN ({marks})", rowids)
    conn.executemany(
        "INSERT INTO face_deletions(collection, face) VALUES (?, ?)",
        [(key, rowid) for rowid in rowids],
    )
    # An image whose faces are all gone is forgotten, so re-indexing it works again.
    conn.execute(
        f"DELETE FROM images WHERE id IN ({_placeholders(len(images))}) "
        "AND NOT EXISTS (SELECT 1 FROM faces WHERE faces.image = images.id)",
        images,
    )
    last_seq = conn.execute("SELECT max(seq) FROM face_deletions").fetchone()[0]
    floor = max(log_floor, last_seq - DELETION_LOG_KEEP)
    if floor > log_floor:
        conn.execute(
            "DELETE FROM face_deletions WHERE collection = ? AND seq <= ?", (key, floor)
        )
    conn.execute(
        "UPDATE collections SET face_count = face_count - ?, version = version + 1, "
        "log_floor = ? WHERE id = ?",
        (len(rowids), floor, key),
    )


class CollectionStore:
    """Face collections of one account/region, persisted under ``path`` (a directory).

    Thread-safe: each thread gets its own SQLite connection; in-memory indexes are
    guarded by a lock per collection.
    """

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        region: str = "us-east-1",
        account_id: str = "000000000000",
        max_faces_per_collection: int = MAX_FACES_PER_COLLECTION,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    ) -> None:
        self.directory = Path(path).expanduser() if path is not None else default_store_dir()
        if self.directory.exists() and not self.directory.is_dir():
            raise StoreError(f"store path {self.directory} exists and is not a directory")
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StoreError(f"cannot create store directory {self.directory}: {exc}") from exc
        self.db_path = self.directory / DB_FILENAME
        self.region = region
        self.account_id = account_id
        self.max_faces_per_collection = max_faces_per_collection
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._indexes: dict[int, FaceIndex] = {}
        self._indexes_lock = threading.Lock()
        self._closed = False
        conn = self._conn()  # opens, verifies or creates the schema
        secret = conn.execute("SELECT value FROM meta WHERE key = 'token_secret'").fetchone()
        if secret is None:
            raise StoreError(f"{self.db_path} lacks its token secret; the store is damaged")
        self._tokens = TokenCodec(bytes.fromhex(secret[0]))

    # -- plumbing ------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("the collection store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.db_path, busy_timeout_ms=self._busy_timeout_ms)
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection this store opened (call once no thread uses it)."""
        self._closed = True
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._indexes.clear()

    def __enter__(self) -> CollectionStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _transaction(self, begin: str) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._conn(), begin, _store_error)

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        """A read transaction: one consistent snapshot of the db."""
        return self._transaction("BEGIN")

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction holding the db's write lock from its start."""
        return self._transaction("BEGIN IMMEDIATE")

    def _collection_row(self, conn: sqlite3.Connection, collection_id: str) -> tuple[Any, ...]:
        row = conn.execute(
            f"SELECT {_COLLECTION_COLUMNS} FROM collections WHERE name = ?", (collection_id,)
        ).fetchone()
        if row is None:
            raise ResourceNotFoundException(f"The collection id: {collection_id} does not exist")
        return tuple(row)

    def arn(self, collection_id: str) -> str:
        """The CollectionArn, in the form of the reference's CreateCollection example."""
        return f"aws:rekognition:{self.region}:{self.account_id}:collection/{collection_id}"

    def _collection(self, row: Sequence[Any]) -> Collection:
        return Collection(
            collection_id=row[1],
            arn=self.arn(row[1]),
            face_model_version=row[2],
            created_at=datetime.fromtimestamp(row[3], tz=UTC),
            face_count=row[5],
            dimension=row[4],
        )

    # -- collections ---------------------------------------------------------------------

    def create_collection(
        self, collection_id: str, *, face_model_version: str = DEFAULT_FACE_MODEL_VERSION
    ) -> Collection:
        """Create an empty collection; ResourceAlreadyExistsException if the id is taken."""
        check_collection_id(collection_id)
        if not isinstance(face_model_version, str) or not face_model_version:
            raise InvalidParameterException("face_model_version must be a non-empty string")
        with self._write() as conn:
            refuse_if_replica(conn)
            exists = conn.execute(
                "SELECT 1 FROM collections WHERE name = ?", (collection_id,)
            ).fetchone()
            if exists:
                raise ResourceAlreadyExistsException(
                    f"The collection id: {collection_id} already exists"
                )
            conn.execute(
                "INSERT INTO collections(name, face_model_version, created_at) VALUES (?, ?, ?)",
                (collection_id, face_model_version, time.time()),
            )
            return self._collection(self._collection_row(conn, collection_id))

    def delete_collection(self, collection_id: str) -> None:
        """Delete a collection and all its faces, images and embeddings."""
        check_collection_id(collection_id)
        with self._write() as conn:
            refuse_if_replica(conn)
            key = self._collection_row(conn, collection_id)[0]
            delete_collection_rows(conn, key)
        self.forget_index(key)

    def forget_index(self, key: int) -> None:
        """Drop the in-memory index of a deleted collection (by its row key)."""
        with self._indexes_lock:
            self._indexes.pop(key, None)

    def describe_collection(self, collection_id: str) -> Collection:
        """The collection with its current face count."""
        check_collection_id(collection_id)
        with self._read() as conn:
            return self._collection(self._collection_row(conn, collection_id))

    def list_collections(
        self, max_results: int | None = None, next_token: str | None = None
    ) -> tuple[list[Collection], str | None]:
        """One page of collections in creation order, and the token for the next page."""
        limit = check_max_results(max_results)
        after = 0 if next_token is None else self._tokens.decode("collections", next_token)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_COLLECTION_COLUMNS} FROM collections WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit + 1),
            ).fetchall()
        page = rows[:limit]
        token = self._tokens.encode("collections", page[-1][0]) if len(rows) > limit else None
        return [self._collection(row) for row in page], token

    # -- faces ---------------------------------------------------------------------------

    def index_faces(
        self,
        collection_id: str,
        *,
        image_sha256: str,
        external_image_id: str | None,
        faces: Sequence[NewFace],
    ) -> IndexResult:
        """Store the faces of one image; re-indexing the same image is a no-op (idempotent).

        The same image bytes (``image_sha256``) with the same ExternalImageId in the same
        collection return the faces stored the first time, with ``already_indexed`` set.
        An image without faces stores nothing.
        """
        check_collection_id(collection_id)
        check_image_sha256(image_sha256)
        check_external_image_id(external_image_id)
        prepared = _prepare_faces(faces)
        with self._write() as conn:
            refuse_if_replica(conn)
            decided = self.decide_index(
                conn, collection_id, image_sha256, external_image_id, prepared
            )
            if isinstance(decided, IndexResult):
                return decided
            image_id = str(uuid.uuid4())
            records = insert_image_faces(
                conn,
                decided,
                image_id=image_id,
                image_sha256=image_sha256,
                external_image_id=external_image_id,
                created_at=time.time(),
                faces=[(str(uuid.uuid4()), *p) for p in prepared],
            )
            return IndexResult(faces=records, image_id=image_id, already_indexed=False)

    def prepare_faces(
        self, faces: Sequence[NewFace]
    ) -> list[tuple[tuple[float, float, float, float], float, np.ndarray, str | None]]:
        """Validate faces as index_faces does (for a writer that decides before writing)."""
        return _prepare_faces(faces)

    def decide_index(
        self,
        conn: sqlite3.Connection,
        collection_id: str,
        image_sha256: str,
        external_image_id: str | None,
        prepared: Sequence[tuple[tuple[float, float, float, float], float, np.ndarray, Any]],
    ) -> IndexResult | int:
        """What index_faces would do in the snapshot ``conn`` reads: the IndexResult when
        nothing is to be written (already indexed, no faces), else the collection's key.
        Raises the request errors (unknown collection, dimension, quota)."""
        dims = {len(p[2]) for p in prepared}
        key, _, _, _, dimension, face_count, _, _ = self._collection_row(conn, collection_id)
        existing = conn.execute(
            "SELECT id, image_id FROM images WHERE collection = ? AND sha256 = ? "
            "AND ifnull(external_image_id, '') = ?",
            (key, image_sha256, external_image_id or ""),
        ).fetchone()
        if existing is not None:
            rows = conn.execute(
                f"SELECT {_FACE_COLUMNS} FROM {_FACE_FROM} WHERE f.image = ? ORDER BY f.id",
                (existing[0],),
            ).fetchall()
            return IndexResult(
                faces=[_face_from_row(r) for r in rows],
                image_id=existing[1],
                already_indexed=True,
            )
        if not prepared:
            return IndexResult(faces=[], image_id=None, already_indexed=False)
        (dim,) = dims
        if dimension is not None and dim != dimension:
            raise InvalidParameterException(
                f"embedding dimension {dim} does not match collection {collection_id}'s "
                f"dimension {dimension} (another face model?)"
            )
        if face_count + len(prepared) > self.max_faces_per_collection:
            raise ServiceQuotaExceededException(
                f"Collection {collection_id} holds {face_count} faces; indexing "
                f"{len(prepared)} more would exceed the limit of "
                f"{self.max_faces_per_collection} faces per collection"
            )
        return int(key)

    def list_faces(
        self,
        collection_id: str,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> tuple[list[FaceRecord], str | None]:
        """One page of faces in indexing order; pages stay stable under concurrent writes."""
        check_collection_id(collection_id)
        limit = check_max_results(max_results)
        with self._read() as conn:
            key = self._collection_row(conn, collection_id)[0]
            scope = f"faces:{key}"
            after = 0 if next_token is None else self._tokens.decode(scope, next_token)
            rows = conn.execute(
                f"SELECT {_FACE_COLUMNS} FROM {_FACE_FROM} WHERE f.collection = ? AND f.id > ? "
                "ORDER BY f.id LIMIT ?",
                (key, after, limit + 1),
            ).fetchall()
        page = rows[:limit]
        token = self._tokens.encode(scope, page[-1][0]) if len(rows) > limit else None
        return [_face_from_row(r) for r in page], token

    def get_face(self, collection_id: str, face_id: str) -> FaceRecord:
        """One face with its embedding; ResourceNotFoundException if not in the collection."""
        check_collection_id(collection_id)
        check_face_id(face_id)
        with self._read() as conn:
            key, _, _, _, dimension, _, _, _ = self._collection_row(conn, collection_id)
            row = conn.execute(
                f"SELECT {_FACE_COLUMNS}, e.vector FROM {_FACE_FROM} "
                "JOIN embeddings e ON e.collection = f.collection AND e.face = f.id "
                "WHERE f.collection = ? AND f.face_id = ?",
                (key, face_id),
            ).fetchone()
        if row is None:
            raise ResourceNotFoundException(
                f"Face {face_id} not found in collection {collection_id}"
            )
        return _face_from_row(row, np.frombuffer(row[10], dtype=np.float32).copy())

    def delete_faces(self, collection_id: str, face_ids: Sequence[str]) -> list[str]:
        """Delete faces by FaceId; returns those that existed (unknown ids are not an error)."""
        check_collection_id(collection_id)
        if isinstance(face_ids, str) or not isinstance(face_ids, Sequence):
            raise InvalidParameterException("FaceIds must be a list of face ids")
        if not 1 <= len(face_ids) <= MAX_DELETE_FACE_IDS:
            raise InvalidParameterException(
                f"FaceIds must hold between 1 and {MAX_DELETE_FACE_IDS} face ids"
            )
        wanted = list(dict.fromkeys(check_face_id(f) for f in face_ids))
        with self._write() as conn:
            refuse_if_replica(conn)
            key, _, _, _, _, _, _, log_floor = self._collection_row(conn, collection_id)
            rows = self.face_rows(conn, key, wanted)
            if not rows:
                return []
            delete_face_rows(conn, key, log_floor, rows)
        deleted = {r[1] for r in rows}
        return [f for f in wanted if f in deleted]

    def face_rows(
        self, conn: sqlite3.Connection, key: int, face_ids: Sequence[str]
    ) -> list[tuple[int, str, int]]:
        """(rowid, face_id, image rowid) of those of ``face_ids`` in collection ``key``."""
        rows = conn.execute(
            f"SELECT id, face_id, image FROM faces WHERE collection = ? "
            f"AND face_id IN ({_placeholders(len(face_ids))})",
            (key, *face_ids),
        ).fetchall()
        return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]

    # -- search --------------------------------------------------------------------------

    def _index_for(self, conn: sqlite3.Connection, key: int, dimension: int) -> FaceIndex:
        with self._indexes_lock:
            index = self._indexes.get(key)
            if index is None:
                # Drop indexes of collections deleted (possibly by another process).
                alive = {r[0] for r in conn.execute("SELECT id FROM collections")}
                for stale in [k for k in self._indexes if k not in alive]:
                    del self._indexes[stale]
                index = self._indexes[key] = FaceIndex(key, dimension)
            return index

    def _sync(self, conn: sqlite3.Connection, index: FaceIndex, row: Sequence[Any]) -> None:
        """Bring ``index`` to the snapshot ``conn`` reads (caller holds ``index.lock``)."""
        key, _, _, _, dimension, face_count, version, log_floor = row
        if index.version == version:
            return
        if index.version < 0 or version < index.version or index.last_deletion < log_floor:
            self._load(conn, index, key, face_count, log_floor)
        else:
            deleted = conn.execute(
                "SELECT seq, face FROM face_deletions WHERE collection = ? AND seq > ? "
                "ORDER BY seq",
                (key, index.last_deletion),
            ).fetchall()
            if deleted:
                index.remove(face for _, face in deleted)
                index.last_deletion = deleted[-1][0]
            self._append_from(conn, index, key, index.last_face)
        index.version = version

    def _load(
        self, conn: sqlite3.Connection, index: FaceIndex, key: int, face_count: int, floor: int
    ) -> None:
        index.reset(face_count + max(1024, face_count // 64))
        last = conn.execute(
            "SELECT max(seq) FROM face_deletions WHERE collection = ?", (key,)
        ).fetchone()[0]
        index.last_deletion = max(last or 0, floor)
        self._append_from(conn, index, key, 0)

    def _append_from(
        self, conn: sqlite3.Connection, index: FaceIndex, key: int, after: int
    ) -> None:
        """Read embeddings with rowid > after in one ordered range scan, batch by batch."""
        width = index.dimension * 4
        cursor = conn.execute(
            "SELECT face, vector FROM embeddings WHERE collection = ? AND face > ? ORDER BY face",
            (key, after),
        )
        while batch := cursor.fetchmany(_LOAD_BATCH):
            rowids = np.fromiter((r[0] for r in batch), dtype=np.int64, count=len(batch))
            blob = b"".join([r[1] for r in batch])
            if len(blob) != width * len(batch):
                raise StoreError(f"{self.db_path}: an embedding of collection {key} is damaged")
            index.append(rowids, np.frombuffer(blob, dtype=np.float32).reshape(-1, index.dimension))

    def search(
        self,
        collection_id: str,
        embedding: np.ndarray,
        *,
        max_faces: int,
        min_score: float = -1.0,
        exclude_face_id: str | None = None,
    ) -> list[tuple[FaceRecord, float]]:
        """Faces most similar to ``embedding`` by cosine, best first, at most ``max_faces``.

        Sees every face committed (by any process) before the call.
        """
        check_collection_id(collection_id)
        check_max_faces(max_faces)
        query = unit_vector(embedding, what="search embedding")
        if isinstance(min_score, bool) or not isinstance(min_score, int | float):
            raise InvalidParameterException("min_score must be a number")
        if math.isnan(min_score):
            raise InvalidParameterException("min_score must not be NaN")
        if exclude_face_id is not None:
            check_face_id(exclude_face_id)
        with self._read() as conn:
            row = self._collection_row(conn, collection_id)
        key, dimension = row[0], row[4]
        if dimension is None:
            return []  # never held a face
        if len(query) != dimension:
            raise InvalidParameterException(
                f"search embedding has dimension {len(query)}; collection {collection_id} "
                f"holds embeddings of dimension {dimension}"
            )
        with self._read() as conn:
            index = self._index_for(conn, key, dimension)
        # Snapshot taken under the index lock, so the index only ever moves forward.
        with index.lock, self._read() as conn:
            row = self._collection_row(conn, collection_id)
            if row[0] != key:
                raise ResourceNotFoundException(
                    f"The collection id: {collection_id} does not exist"
                )
            self._sync(conn, index, row)
            exclude = None
            if exclude_face_id is not None:
                found = conn.execute(
                    "SELECT id FROM faces WHERE collection = ? AND face_id = ?",
                    (key, exclude_face_id),
                ).fetchone()
                exclude = found[0] if found else None
            hits = index.search(query, max_faces, min_score=min_score, exclude_rowid=exclude)
            if not hits:
                return []
            rowids = [rowid for rowid, _ in hits]
            records = {
                r[0]: _face_from_row(r)
                for r in conn.execute(
                    f"SELECT {_FACE_COLUMNS} FROM {_FACE_FROM} "
                    f"WHERE f.id IN ({_placeholders(len(rowids))})",
                    rowids,
                )
            }
        missing = [rowid for rowid in rowids if rowid not in records]
        if missing:
            raise InternalServerError(f"search index out of step with the store ({missing[:3]})")
        return [(records[rowid], score) for rowid, score in hits]

    # -- introspection (tests, benchmarks) -----------------------------------------------

    def loaded_index(self, collection_id: str) -> FaceIndex | None:
        """The in-memory index of a collection, if this process has built one."""
        with self._read() as conn:
            key = self._collection_row(conn, collection_id)[0]
        return self._indexes.get(key)

    def refresh_index(self, collection_id: str) -> FaceIndex | None:
        """Build or bring up to date a collection's index now (e.g. to warm it at startup)."""
        check_collection_id(collection_id)
        with self._read() as conn:
            row = self._collection_row(conn, collection_id)
            if row[4] is None:
                return None
            index = self._index_for(conn, row[0], row[4])
        with index.lock, self._read() as conn:
            row = self._collection_row(conn, collection_id)
            if row[0] != index.collection_key:
                raise ResourceNotFoundException(
                    f"The collection id: {collection_id} does not exist"
                )
            self._sync(conn, index, row)
        return index
