"""Child process for the store's crash and multi-process tests, plus shared checks.

Run as ``python -m tests.store_worker MODE STORE_DIR [ARGS]``; the parent test reads its
stdout line by line and may kill it with SIGKILL at any moment.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import sqlite3
import sys
from pathlib import Path

import numpy as np

from streamproc.errors import ResourceAlreadyExistsException
from streamproc.store import DB_FILENAME, BoundingBox, CollectionStore, NewFace

COLLECTION = "household"
DIM = 128


def vector(seed: int, dim: int = DIM) -> np.ndarray:
    """A deterministic synthetic unit vector; distinct seeds are near-orthogonal."""
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def new_face(seed: int, dim: int = DIM) -> NewFace:
    return NewFace(
        bounding_box=BoundingBox(0.1, 0.2, 0.3, 0.4),
        confidence=99.0,
        embedding=vector(seed, dim),
        detail={"seed": seed},
    )


def sha(seed: int) -> str:
    return hashlib.sha256(f"image-{seed}".encode()).hexdigest()


def open_store(directory: str | Path) -> CollectionStore:
    store = CollectionStore(Path(directory))
    with contextlib.suppress(ResourceAlreadyExistsException):
        store.create_collection(COLLECTION)
    return store


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def index_one(directory: str, seed: str) -> None:
    """Index one face, report its FaceId, then idle until killed."""
    store = open_store(directory)
    result = store.index_faces(
        COLLECTION, image_sha256=sha(int(seed)), external_image_id=None, faces=[new_face(int(seed))]
    )
    say(result.faces[0].face_id)
    sys.stdin.read()


def churn(directory: str, seed: str) -> None:
    """Index and delete faces forever, as fast as possible."""
    rng = random.Random(int(seed))
    store = open_store(directory)
    base = int(seed) * 1_000_000
    say("ready")
    i = 0
    while True:
        i += 1
        count = rng.randint(1, 3)
        store.index_faces(
            COLLECTION,
            image_sha256=sha(base + i),
            external_image_id=f"img-{i}",
            faces=[new_face(base + i * 10 + k) for k in range(count)],
        )
        if rng.random() < 0.4:
            faces, _ = store.list_faces(COLLECTION, max_results=50)
            if faces:
                doomed = rng.sample(faces, min(len(faces), rng.randint(1, 4)))
                store.delete_faces(COLLECTION, [f.face_id for f in doomed])


def index_many(directory: str, first: str, count: str) -> None:
    """Index faces of seeds first..first+count-1, one per transaction, reporting each."""
    store = open_store(directory)
    for seed in range(int(first), int(first) + int(count)):
        result = store.index_faces(
            COLLECTION, image_sha256=sha(seed), external_image_id=None, faces=[new_face(seed)]
        )
        say(f"{seed} {result.faces[0].face_id}")


def searcher(directory: str) -> None:
    """Answer 'SEED' lines on stdin with the best match's FaceId and score (or 'none')."""
    store = open_store(directory)
    say("ready")
    for line in sys.stdin:
        hits = store.search(COLLECTION, vector(int(line)), max_faces=1)
        say(f"{hits[0][0].face_id} {hits[0][1]:.6f}" if hits else "none")


def check_consistency(directory: str | Path) -> int:
    """Assert the store on disk is whole and the rebuilt index matches it; returns faces."""
    db = sqlite3.connect(Path(directory) / DB_FILENAME)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        orphans = {
            "face without embedding": "SELECT count(*) FROM faces f LEFT JOIN embeddings e "
            "ON e.collection = f.collection AND e.face = f.id WHERE e.face IS NULL",
            "embedding without face": "SELECT count(*) FROM embeddings e LEFT JOIN faces f "
            "ON e.collection = f.collection AND e.face = f.id WHERE f.id IS NULL",
            "face without image": "SELECT count(*) FROM faces f LEFT JOIN images i "
            "ON i.id = f.image WHERE i.id IS NULL OR i.collection != f.collection",
            "image without faces": "SELECT count(*) FROM images i WHERE NOT EXISTS "
            "(SELECT 1 FROM faces f WHERE f.image = i.id)",
            "wrong face_count": "SELECT count(*) FROM collections c WHERE face_count != "
            "(SELECT count(*) FROM faces f WHERE f.collection = c.id)",
            "wrong blob size": "SELECT count(*) FROM embeddings e JOIN collections c "
            "ON c.id = e.collection WHERE length(e.vector) != 4 * c.dimension",
        }
        for what, sql in orphans.items():
            assert db.execute(sql).fetchone()[0] == 0, what
        expected = {
            name: (
                [
                    r[0]
                    for r in db.execute(
                        "SELECT face FROM embeddings WHERE collection = ? ORDER BY face", (key,)
                    )
                ],
                [
                    r[0]
                    for r in db.execute(
                        "SELECT vector FROM embeddings WHERE collection = ? ORDER BY face", (key,)
                    )
                ],
            )
            for key, name in db.execute("SELECT id, name FROM collections")
        }
    finally:
        db.close()
    total = 0
    with CollectionStore(Path(directory)) as store:
        for name, (rowids, blobs) in expected.items():
            assert_index_matches(store, name, rowids, blobs)
            total += len(rowids)
    return total


def assert_index_matches(
    store: CollectionStore, name: str, rowids: list[int], blobs: list[bytes]
) -> None:
    index = store.refresh_index(name)
    if index is None:
        assert rowids == []
        return
    assert index.live_rowids().tolist() == rowids
    if rowids:
        held = index.vectors_of(rowids)
        disk = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(rowids), -1)
        assert np.array_equal(held, disk)


MODES = {"index-one": index_one, "churn": churn, "index-many": index_many, "search": searcher}

if __name__ == "__main__":
    MODES[sys.argv[1]](*sys.argv[2:])
