"""The on-disk collection store: collections, faces and embeddings in SQLite, searched in memory.

Other layers turn these records into Rekognition responses; the store raises the
Rekognition errors of streamproc.errors for bad requests, and StoreError subclasses when
the store file itself cannot be used.
"""

from __future__ import annotations

from .errors import ForeignStoreError, ReplicaStoreError, StoreError, StoreVersionError
from .index import FaceIndex
from .records import BoundingBox, Collection, FaceRecord, IndexResult, NewFace
from .schema import APPLICATION_ID, DB_FILENAME, SCHEMA_VERSION
from .sqlite_store import (
    DEFAULT_FACE_MODEL_VERSION,
    MAX_FACES_PER_COLLECTION,
    STORE_ENV,
    CollectionStore,
    default_store_dir,
)

__all__ = [
    "APPLICATION_ID",
    "BoundingBox",
    "Collection",
    "CollectionStore",
    "DB_FILENAME",
    "DEFAULT_FACE_MODEL_VERSION",
    "FaceIndex",
    "FaceRecord",
    "ForeignStoreError",
    "IndexResult",
    "MAX_FACES_PER_COLLECTION",
    "NewFace",
    "ReplicaStoreError",
    "SCHEMA_VERSION",
    "STORE_ENV",
    "StoreError",
    "StoreVersionError",
    "default_store_dir",
]
