"""The store side of replication: schema 2's log position, migration, replica refusals."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import numpy as np
import pytest

from streamproc.store import DB_FILENAME, SCHEMA_VERSION, CollectionStore, ReplicaStoreError
from streamproc.store.replica import (
    ReplicaDivergedError,
    ReplicaFace,
    log_position,
    replica_transaction,
)


def face() -> ReplicaFace:
    return ReplicaFace(
        str(uuid.uuid4()), (0.1, 0.1, 0.2, 0.2), 95.0, np.full(8, 8**-0.5, dtype=np.float32)
    )


def test_a_version_1_store_is_migrated_and_keeps_its_faces(tmp_path: Path) -> None:
    with CollectionStore(tmp_path) as store:
        store.create_collection("c")
    db = sqlite3.connect(tmp_path / DB_FILENAME)
    db.execute("DROP TABLE log_applied")
    db.execute("DROP TABLE log_collections")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with CollectionStore(tmp_path) as store:
        assert store.describe_collection("c").face_count == 0
        assert log_position(store, "S", "t0").seq == 0
        store.create_collection("still-writable")  # not a replica: plain writes work
    db = sqlite3.connect(tmp_path / DB_FILENAME)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert db.execute("SELECT count(*) FROM log_collections").fetchone()[0] == 0  # schema 3


def test_applied_writes_and_position_commit_together(tmp_path: Path) -> None:
    store = CollectionStore(tmp_path)
    f = face()
    with replica_transaction(store, "S", "t0") as tx:
        tx.create_collection("c.1", "m", 1.0)
        tx.advance(1)
        tx.index_faces(
            "c.1",
            face_model_version="m",
            image_id=str(uuid.uuid4()),
            image_sha256="0" * 64,
            external_image_id=None,
            created_at=2.0,
            faces=[f],
        )
        tx.advance(2)
    assert log_position(store, "S", "t0").seq == 2
    assert store.get_face("c.1", f.face_id).embedding.tobytes() == f.vector.tobytes()
    # a failing record rolls back the whole transaction, position included
    with pytest.raises(ReplicaDivergedError), replica_transaction(store, "S", "t0") as tx:
        tx.delete_faces("c.1", [f.face_id])
        tx.advance(3)
        tx.delete_faces("c.1", [str(uuid.uuid4())])  # not here: diverged
    assert log_position(store, "S", "t0").seq == 2
    assert store.describe_collection("c.1").face_count == 1
    with pytest.raises(ReplicaDivergedError, match="face model"), replica_transaction(
        store, "S", "t0"
    ) as tx:
        tx.index_faces(
            "c.1", face_model_version="other", image_id=str(uuid.uuid4()),
            image_sha256="1" * 64, external_image_id=None, created_at=3.0, faces=[face()],
        )
    with pytest.raises(ReplicaStoreError, match="replica"):
        store.delete_collection("c.1")
    with pytest.raises(ReplicaStoreError, match="re-created"):
        log_position(store, "S", "t1")  # the same stream name, another stream
    store.close()
