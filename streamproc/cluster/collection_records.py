"""The records that rebuild one collection exactly as a store holds it.

Used to write a collection's snapshot (:mod:`.snapshots`; seeding the log from a
single-node store, :mod:`.seed`, writes one per collection): a CreateCollection record (the
creation time kept), then one IndexFaces record per stored image, in indexing order,
carrying the store's own FaceIds, ImageIds, boxes, confidences, FaceDetails and float32
vectors bit for bit. Deleted faces are simply absent. Reading is lazy (a cursor), so a
million-face collection is never in memory at once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

import numpy as np

from streamproc.store.replica import ReplicaFace

from .records import CreateCollection, IndexFaces, Record

__all__ = ["collection_records"]


def collection_records(conn: sqlite3.Connection, collection_id: str) -> Iterator[Record]:
    """The records of ``collection_id`` as read through ``conn`` (one read transaction:
    the caller holds it open while iterating). KeyError if there is no such collection."""
    row = conn.execute(
        "SELECT id, face_model_version, created_at FROM collections WHERE name = ?",
        (collection_id,),
    ).fetchone()
    if row is None:
        raise KeyError(collection_id)
    key, model, created_at = row
    yield CreateCollection(collection_id, model, float(created_at))
    rows = conn.execute(
        "SELECT i.id, i.image_id, i.sha256, i.external_image_id, i.created_at, "
        "f.face_id, f.bbox_left, f.bbox_top, f.bbox_width, f.bbox_height, "
        "f.confidence, f.detail, e.vector "
        "FROM images i JOIN faces f ON f.image = i.id "
        "JOIN embeddings e ON e.collection = f.collection AND e.face = f.id "
        "WHERE i.collection = ? ORDER BY i.id, f.id",
        (key,),
    )
    image: tuple[object, ...] | None = None
    faces: list[ReplicaFace] = []
    for r in rows:
        if image is not None and r[0] != image[0]:
            yield _index_record(collection_id, model, image, faces)
            faces = []
        image = tuple(r[:5])
        faces.append(
            ReplicaFace(
                face_id=r[5],
                box=(float(r[6]), float(r[7]), float(r[8]), float(r[9])),
                confidence=float(r[10]),
                vector=np.frombuffer(r[12], dtype=np.float32).copy(),
                detail=json.loads(r[11]) if r[11] is not None else None,
            )
        )
    if image is not None:
        yield _index_record(collection_id, model, image, faces)


def _index_record(
    collection_id: str, model: str, image: tuple[object, ...], faces: list[ReplicaFace]
) -> IndexFaces:
    _, image_id, sha256, external_image_id, created_at = image
    return IndexFaces(
        collection_id=collection_id,
        face_model_version=model,
        image_id=str(image_id),
        image_sha256=str(sha256),
        external_image_id=str(external_image_id) if external_image_id is not None else None,
        created_at=float(created_at),  # type: ignore[arg-type]
        faces=tuple(faces),
    )
