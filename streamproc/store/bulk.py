"""Bulk loading of synthetic faces, for benchmarks and tests only.

Indexing 1M faces through ``index_faces`` would be 1M fsynced transactions; this writes
them in one transaction with executemany, one image per face, bypassing idempotency.
"""

from __future__ import annotations

import os
import time

import numpy as np

from streamproc.errors import InvalidParameterException, ServiceQuotaExceededException

from .sqlite_store import CollectionStore

__all__ = ["bulk_load", "uuid4_strings"]


def uuid4_strings(count: int) -> list[str]:
    """``count`` random UUID4 strings, faster than calling uuid.uuid4() per id."""
    raw = np.frombuffer(os.urandom(16 * count), dtype=np.uint8).reshape(count, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    out = []
    for row in raw:
        h = row.tobytes().hex()
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out


def bulk_load(store: CollectionStore, collection_id: str, embeddings: np.ndarray) -> list[str]:
    """Add one face per row of ``embeddings`` (normalised here) in one transaction.

    Returns the new FaceIds in row order.
    """
    vectors = np.asarray(embeddings, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] == 0:
        raise InvalidParameterException("embeddings must be a non-empty 2-D array")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if not np.all(norms > 0):
        raise InvalidParameterException("embeddings must be non-zero")
    vectors = np.ascontiguousarray(vectors / norms, dtype=np.float32)
    count, dim = vectors.shape
    face_ids = uuid4_strings(count)
    image_ids = uuid4_strings(count)
    now = time.time()
    conn = store._conn()
    # Random UUID keys scatter b-tree inserts: a large page cache keeps them in memory.
    (cache_size,) = conn.execute("PRAGMA cache_size").fetchone()
    conn.execute("PRAGMA cache_size = -1048576")
    try:
        return _insert(store, collection_id, vectors, face_ids, image_ids, now)
    finally:
        conn.execute(f"PRAGMA cache_size = {int(cache_size)}")


def _insert(
    store: CollectionStore,
    collection_id: str,
    vectors: np.ndarray,
    face_ids: list[str],
    image_ids: list[str],
    now: float,
) -> list[str]:
    count, dim = vectors.shape
    with store._write() as conn:
        key, _, _, _, dimension, face_count, _, _ = store._collection_row(conn, collection_id)
        if dimension is not None and dimension != dim:
            raise InvalidParameterException(f"dimension {dim} != collection's {dimension}")
        if face_count + count > store.max_faces_per_collection:
            raise ServiceQuotaExceededException(
                f"Collection {collection_id} would exceed {store.max_faces_per_collection} faces"
            )

        def next_rowid(table: str) -> int:
            seq = conn.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)
            ).fetchone()
            top = conn.execute(f"SELECT max(id) FROM {table}").fetchone()[0]
            return max(seq[0] if seq else 0, top or 0) + 1

        image0, face0 = next_rowid("images"), next_rowid("faces")
        conn.executemany(
            "INSERT INTO images(id, collection, image_id, sha256, external_image_id, "
            "created_at) VALUES (?, ?, ?, ?, NULL, ?)",
            (
                (image0 + i, key, image_ids[i], image_ids[i].replace("-", "") * 2, now)
                for i in range(count)
            ),
        )
        conn.executemany(
            "INSERT INTO faces(id, collection, image, face_id, bbox_left, bbox_top, "
            "bbox_width, bbox_height, confidence, created_at, detail) "
            "VALUES (?, ?, ?, ?, 0.25, 0.25, 0.5, 0.5, 99.0, ?, NULL)",
            ((face0 + i, key, image0 + i, face_ids[i], now) for i in range(count)),
        )
        conn.executemany(
            "INSERT INTO embeddings(collection, face, vector) VALUES (?, ?, ?)",
            ((key, face0 + i, vectors[i].tobytes()) for i in range(count)),
        )
        conn.execute(
            "UPDATE collections SET face_count = face_count + ?, version = version + 1, "
            "dimension = coalesce(dimension, ?) WHERE id = ?",
            (count, dim, key),
        )
    return face_ids
