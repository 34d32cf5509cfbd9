"""Unit tests of the collection store: validation, pagination, idempotency, limits, errors."""

from __future__ import annotations

import re
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from streamproc.errors import (
    InvalidPaginationTokenException,
    InvalidParameterException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
)
from streamproc.store import (
    APPLICATION_ID,
    DB_FILENAME,
    SCHEMA_VERSION,
    STORE_ENV,
    BoundingBox,
    CollectionStore,
    FaceIndex,
    ForeignStoreError,
    NewFace,
    StoreError,
    StoreVersionError,
    default_store_dir,
    sqlite_store,
)
from tests.store_worker import check_consistency, new_face, sha, vector

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


@pytest.fixture
def store(tmp_path: Path) -> CollectionStore:
    with CollectionStore(tmp_path / "store") as s:
        yield s


def index(
    store: CollectionStore,
    seed: int,
    *,
    faces: int = 1,
    ext: str | None = None,
    collection: str = "c",
) -> list[str]:
    result = store.index_faces(
        collection,
        image_sha256=sha(seed),
        external_image_id=ext,
        faces=[new_face(seed * 100 + k) for k in range(faces)],
    )
    return [f.face_id for f in result.faces]


# -- collections --------------------------------------------------------------------------


def test_create_describe_delete_collection(store: CollectionStore) -> None:
    created = store.create_collection("my.Coll-1_x")
    assert created.arn == "aws:rekognition:us-east-1:000000000000:collection/my.Coll-1_x"
    assert created.face_count == 0 and created.dimension is None
    assert created.created_at.tzinfo is not None
    with pytest.raises(ResourceAlreadyExistsException):
        store.create_collection("my.Coll-1_x")
    store.create_collection("my.coll-1_x")  # case-sensitive: a different collection
    assert store.describe_collection("my.Coll-1_x") == created
    store.delete_collection("my.Coll-1_x")
    with pytest.raises(ResourceNotFoundException, match="my.Coll-1_x"):
        store.describe_collection("my.Coll-1_x")
    with pytest.raises(ResourceNotFoundException):
        store.delete_collection("my.Coll-1_x")
    assert [c.collection_id for c in store.list_collections()[0]] == ["my.coll-1_x"]


def test_arn_uses_region_and_account(tmp_path: Path) -> None:
    with CollectionStore(tmp_path, region="eu-west-1", account_id="123456789012") as s:
        arn = s.create_collection("x").arn
    assert arn == "aws:rekognition:eu-west-1:123456789012:collection/x"


@pytest.mark.parametrize("bad", ["", "a" * 256, "a/b", "../etc", "a b", "ü", "x\n", None, 5, "a:b"])
def test_collection_id_validation(store: CollectionStore, bad: object) -> None:
    for call in (
        lambda: store.create_collection(bad),  # type: ignore[arg-type]
        lambda: store.describe_collection(bad),  # type: ignore[arg-type]
        lambda: store.delete_collection(bad),  # type: ignore[arg-type]
        lambda: store.list_faces(bad),  # type: ignore[arg-type]
        lambda: store.search(bad, vector(1), max_faces=1),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidParameterException):
            call()


def test_longest_collection_id(store: CollectionStore) -> None:
    assert store.create_collection("a" * 255).collection_id == "a" * 255


def test_operations_on_missing_collection(store: CollectionStore) -> None:
    face_id = "11111111-2222-3333-4444-555555555555"
    calls = [
        lambda: store.index_faces(
            "nope", image_sha256=sha(1), external_image_id=None, faces=[new_face(1)]
        ),
        lambda: store.list_faces("nope"),
        lambda: store.delete_faces("nope", [face_id]),
        lambda: store.get_face("nope", face_id),
        lambda: store.search("nope", vector(1), max_faces=3),
    ]
    for call in calls:
        with pytest.raises(ResourceNotFoundException, match="nope"):
            call()


def test_list_collections_pagination(store: CollectionStore) -> None:
    names = [f"col{i:02d}" for i in range(25)]
    for name in names:
        store.create_collection(name)
    seen, token, pages = [], None, 0
    while True:
        page, token = store.list_collections(max_results=10, next_token=token)
        seen += [c.collection_id for c in page]
        pages += 1
        if token is None:
            break
        assert len(token) <= 255
    assert seen == names and pages == 3
    assert [c.collection_id for c in store.list_collections()[0]] == names
    assert store.list_collections(max_results=0)[1] is None  # 0 means the default page
    for bad in (-1, 4097, 1.5, True):
        with pytest.raises(InvalidParameterException):
            store.list_collections(max_results=bad)  # type: ignore[arg-type]


def test_bad_pagination_tokens(store: CollectionStore) -> None:
    store.create_collection("c")
    for seed in range(3):
        index(store, seed)
    faces_token = store.list_faces("c", max_results=1)[1]
    store.create_collection("d")
    store.create_collection("e")
    coll_token = store.list_collections(max_results=1)[1]
    assert faces_token and coll_token
    tampered = coll_token[:-2] + ("AA" if not coll_token.endswith("AA") else "BB")
    for bad in ("", "garbage", "x" * 300, "a.b.c", tampered, faces_token, 12):
        with pytest.raises(InvalidPaginationTokenException):
            store.list_collections(next_token=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidPaginationTokenException):
        store.list_faces("c", next_token=coll_token)
    with pytest.raises(InvalidPaginationTokenException):
        store.list_faces("d", next_token=faces_token)  # another collection's token


# -- index / get / list / delete faces -----------------------------------------------------


def test_index_and_get_face(store: CollectionStore) -> None:
    store.create_collection("c")
    raw = vector(7) * 3.0  # not unit length: the store normalises
    result = store.index_faces(
        "c",
        image_sha256=sha(7),
        external_image_id="cam:front-door_1.jpg",
        faces=[
            NewFace(BoundingBox(0.1, 0.2, 0.3, 0.4), 98.5, raw, {"Pose": {"Yaw": 1.5}}),
            new_face(8),
        ],
    )
    assert not result.already_indexed
    assert len(result.faces) == 2
    first = result.faces[0]
    assert first.image_id == result.image_id and result.faces[1].image_id == result.image_id

    assert re.fullmatch(UUID_RE, first.face_id) and re.fullmatch(UUID_RE, first.image_id)
    got = store.get_face("c", first.face_id)
    assert got == first
    assert got.external_image_id == "cam:front-door_1.jpg"
    assert got.bounding_box == BoundingBox(0.1, 0.2, 0.3, 0.4)
    assert got.detail == {"Pose": {"Yaw": 1.5}}
    assert got.embedding is not None and got.embedding.dtype == np.float32
    np.testing.assert_allclose(got.embedding, vector(7), atol=1e-6)
    described = store.describe_collection("c")
    assert described.face_count == 2 and described.dimension == 128
    missing = "11111111-2222-3333-4444-555555555555"
    with pytest.raises(ResourceNotFoundException, match=missing):
        store.get_face("c", missing)
    with pytest.raises(InvalidParameterException):
        store.get_face("c", "not-a-face-id")


def test_index_is_idempotent(store: CollectionStore) -> None:
    store.create_collection("c")
    first = store.index_faces(
        "c", image_sha256=sha(1), external_image_id="e", faces=[new_face(1), new_face(2)]
    )
    again = store.index_faces(
        "c", image_sha256=sha(1), external_image_id="e", faces=[new_face(1), new_face(2)]
    )
    assert again.already_indexed and again.faces == first.faces
    assert again.image_id == first.image_id
    assert store.describe_collection("c").face_count == 2
    # Another ExternalImageId, or none, is another indexing of the same bytes.
    other = store.index_faces("c", image_sha256=sha(1), external_image_id="f", faces=[new_face(1)])
    bare = store.index_faces("c", image_sha256=sha(1), external_image_id=None, faces=[new_face(1)])
    bare2 = store.index_faces("c", image_sha256=sha(1), external_image_id=None, faces=[new_face(1)])
    assert not other.already_indexed and not bare.already_indexed
    assert bare2.already_indexed and bare2.faces == bare.faces
    # Same bytes into another collection: independent.
    store.create_collection("d")
    assert not store.index_faces(
        "d", image_sha256=sha(1), external_image_id="e", faces=[new_face(1)]
    ).already_indexed
    assert store.describe_collection("c").face_count == 4


def test_image_without_faces_stores_nothing(store: CollectionStore) -> None:
    store.create_collection("c")
    result = store.index_faces("c", image_sha256=sha(1), external_image_id=None, faces=[])
    assert result.faces == [] and result.image_id is None and not result.already_indexed
    assert store.describe_collection("c").dimension is None
    assert not store.index_faces(
        "c", image_sha256=sha(1), external_image_id=None, faces=[new_face(1)]
    ).already_indexed


def test_reindex_after_deleting_all_faces_of_image(store: CollectionStore) -> None:
    store.create_collection("c")
    ids = index(store, 1, faces=2, ext="x")
    store.delete_faces("c", ids[:1])
    partial = store.index_faces(
        "c", image_sha256=sha(1), external_image_id="x", faces=[new_face(100), new_face(101)]
    )
    assert partial.already_indexed and [f.face_id for f in partial.faces] == ids[1:]
    store.delete_faces("c", ids[1:])
    fresh = index(store, 1, faces=2, ext="x")
    assert set(fresh).isdisjoint(ids)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image_sha256": "abc"}, "image_sha256"),
        ({"image_sha256": "A" * 64}, "image_sha256"),
        ({"external_image_id": ""}, "ExternalImageId"),
        ({"external_image_id": "a/b"}, "ExternalImageId"),
        ({"external_image_id": "x" * 256}, "ExternalImageId"),
        ({"faces": [NewFace(BoundingBox(0, 0, 1, 1), 99.0, np.zeros(128))]}, "zero"),
        ({"faces": [NewFace(BoundingBox(0, 0, 1, 1), 99.0, np.full(128, np.nan))]}, "NaN"),
        ({"faces": [NewFace(BoundingBox(0, 0, 1, 1), 99.0, np.ones((2, 64)))]}, "1-D"),
        ({"faces": [NewFace(BoundingBox(0, 0, 1, 1), 101.0, vector(1))]}, "confidence"),
        ({"faces": [NewFace(BoundingBox(0, 0, -1, 1), 99.0, vector(1))]}, "negative"),
        ({"faces": [NewFace(BoundingBox(float("inf"), 0, 1, 1), 99.0, vector(1))]}, "finite"),
        ({"faces": [NewFace(BoundingBox(0, 0, 1, 1), 99.0, vector(1), {"x": object()})]}, "JSON"),
        ({"faces": [new_face(1), new_face(2, dim=64)]}, "differ"),
        ({"faces": ["not a face"]}, "NewFace"),
        ({"faces": new_face(1)}, "list"),
    ],
)
def test_index_faces_validation(store: CollectionStore, kwargs: dict, match: str) -> None:
    store.create_collection("c")
    args = {"image_sha256": sha(1), "external_image_id": None, "faces": [new_face(1)]}
    args.update(kwargs)
    with pytest.raises(InvalidParameterException, match=match):
        store.index_faces("c", **args)
    assert store.describe_collection("c").face_count == 0


def test_dimension_is_fixed_by_first_face(store: CollectionStore) -> None:
    store.create_collection("c")
    index(store, 1)
    with pytest.raises(InvalidParameterException, match="dimension"):
        store.index_faces(
            "c", image_sha256=sha(2), external_image_id=None, faces=[new_face(2, dim=512)]
        )
    with pytest.raises(InvalidParameterException, match="dimension"):
        store.search("c", vector(1, dim=512), max_faces=1)
    store.create_collection("other")
    store.index_faces(
        "other", image_sha256=sha(2), external_image_id=None, faces=[new_face(2, dim=512)]
    )
    assert store.describe_collection("other").dimension == 512


def test_face_quota(tmp_path: Path) -> None:
    with CollectionStore(tmp_path, max_faces_per_collection=5) as store:
        store.create_collection("c")
        index(store, 1, faces=3)
        with pytest.raises(ServiceQuotaExceededException, match="limit of 5 faces"):
            index(store, 2, faces=3)
        assert store.describe_collection("c").face_count == 3
        index(store, 3, faces=2)
        with pytest.raises(ServiceQuotaExceededException):
            index(store, 4)
        assert index(store, 3, faces=2)  # idempotent re-index is not a new face
        store.delete_faces("c", index(store, 1, faces=3)[:1])
        index(store, 5)


def test_list_faces_pages_are_stable_under_changes(store: CollectionStore) -> None:
    store.create_collection("c")
    ids: list[str] = []
    for seed in range(300):
        ids += index(store, seed)
    seen: list[str] = []
    page, token = store.list_faces("c", max_results=64)
    deleted: set[str] = set()
    added: list[str] = []
    step = 0
    while True:
        seen += [f.face_id for f in page]
        if token is None:
            break
        step += 1
        # Between pages: delete some not-yet-seen and some seen faces, add new ones.
        victims = [ids[len(seen) + 5], ids[len(seen) + 6], seen[0]] if len(seen) + 6 < 300 else []
        if victims:
            deleted.update(store.delete_faces("c", victims))
        added += index(store, 1000 + step)
        page, token = store.list_faces("c", max_results=64, next_token=token)
    assert len(seen) == len(set(seen))
    assert seen[: len(seen) - len(added)] == [i for i in ids if i in seen]
    # Every original face not deleted before its page was served appears exactly once.
    assert {i for i in ids if i not in deleted} <= set(seen)
    assert set(added) <= set(seen)  # appended faces land on later pages
    assert store.list_faces("c", max_results=4096)[1] is None
    assert len(store.list_faces("c")[0]) == store.describe_collection("c").face_count


def test_list_faces_validation(store: CollectionStore) -> None:
    store.create_collection("c")
    assert store.list_faces("c") == ([], None)
    for bad in (-1, 4097, "10"):
        with pytest.raises(InvalidParameterException):
            store.list_faces("c", max_results=bad)  # type: ignore[arg-type]


def test_delete_faces(store: CollectionStore) -> None:
    store.create_collection("c")
    a, b = index(store, 1, faces=2)
    (c,) = index(store, 2)
    unknown = "11111111-2222-3333-4444-555555555555"
    assert store.delete_faces("c", [b, unknown, a, b]) == [b, a]
    assert store.delete_faces("c", [a]) == []
    assert [f.face_id for f in store.list_faces("c")[0]] == [c]
    assert store.describe_collection("c").face_count == 1
    with pytest.raises(ResourceNotFoundException, match=a):
        store.get_face("c", a)
    store.create_collection("d")
    assert store.delete_faces("d", [c]) == []  # faces of another collection are untouched
    assert store.get_face("c", c).face_id == c
    for bad in ([], ["nope"], [c.upper()], c, [c] * 4097):
        with pytest.raises(InvalidParameterException):
            store.delete_faces("c", bad)  # type: ignore[arg-type]
    many = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(4095)] + [c]
    assert store.delete_faces("c", many) == [c]


# -- search ---------------------------------------------------------------------------------


def test_search(store: CollectionStore) -> None:
    store.create_collection("c")
    assert store.search("c", vector(1), max_faces=5) == []  # never held a face
    ids = {seed: index(store, seed)[0] for seed in range(1, 41)}
    probe = vector(100 * 5) + 0.3 * vector(100 * 6)  # near face 5, less near face 6
    hits = store.search("c", probe, max_faces=3)
    assert [h[0].face_id for h in hits[:2]] == [ids[5], ids[6]]
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True) and len(hits) == 3
    exact = store.search("c", vector(100 * 9), max_faces=1)
    assert exact[0][0].face_id == ids[9] and exact[0][1] == pytest.approx(1.0, abs=1e-5)
    assert exact[0][0].embedding is None
    assert len(store.search("c", probe, max_faces=4096)) == 40
    strict = store.search("c", probe, max_faces=10, min_score=0.5)
    assert [h[0].face_id for h in strict] == [ids[5]]
    excluded = store.search("c", vector(500), max_faces=2, exclude_face_id=ids[5])
    assert ids[5] not in [h[0].face_id for h in excluded]
    store.delete_faces("c", [ids[5]])
    assert store.search("c", probe, max_faces=1)[0][0].face_id == ids[6]
    for kwargs in (
        {"max_faces": 0},
        {"max_faces": 4097},
        {"max_faces": 1, "min_score": "x"},
        {"max_faces": 1, "min_score": float("nan")},
        {"max_faces": 1, "exclude_face_id": "bad"},
    ):
        with pytest.raises(InvalidParameterException):
            store.search("c", probe, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterException):
        store.search("c", np.zeros(128), max_faces=1)


def test_search_sees_recreated_collection(store: CollectionStore) -> None:
    store.create_collection("c")
    index(store, 1)
    assert len(store.search("c", vector(100), max_faces=5)) == 1
    store.delete_collection("c")
    store.create_collection("c")
    assert store.search("c", vector(100), max_faces=5) == []
    (new,) = index(store, 2)
    assert [h[0].face_id for h in store.search("c", vector(100), max_faces=5)] == [new]


def test_two_store_objects_sync_incrementally(tmp_path: Path, monkeypatch) -> None:
    """A second store object stands in for another process: separate connection and index."""
    monkeypatch.setattr(sqlite_store, "DELETION_LOG_KEEP", 5)
    with CollectionStore(tmp_path) as writer, CollectionStore(tmp_path) as reader:
        writer.create_collection("c")
        ids = [index(writer, s, collection="c")[0] for s in range(30)]
        assert reader.search("c", vector(100 * 3), max_faces=1)[0][0].face_id == ids[3]
        built = reader.loaded_index("c")
        writer.delete_faces("c", ids[3:5])
        more = index(writer, 99)
        top = reader.search("c", vector(100 * 3), max_faces=40)
        assert ids[3] not in [h[0].face_id for h in top] and more[0] in [h[0].face_id for h in top]
        assert reader.loaded_index("c") is built and len(built) == 29
        # Many deletions: the log is pruned past the reader, which must reload in full.
        for face_id in ids[5:20]:
            writer.delete_faces("c", [face_id])
        top = reader.search("c", vector(100 * 25), max_faces=40)
        assert {h[0].face_id for h in top} == set(ids[:3] + ids[20:] + more)
    check_consistency(tmp_path)


def test_threads_share_a_store(store: CollectionStore) -> None:
    store.create_collection("c")
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(25):
                seed = worker * 1000 + i
                (face_id,) = index(store, seed)
                hit = store.search("c", vector(seed * 100), max_faces=1)[0]
                assert hit[0].face_id == face_id
                if i % 5 == 0:
                    store.delete_faces("c", [face_id])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    assert not errors, errors
    assert store.describe_collection("c").face_count == 80
    assert len(store.loaded_index("c") or []) == 80
    check_consistency(store.directory)
    assert threading.active_count() >= 1


# -- the in-memory index ---------------------------------------------------------------------


def test_face_index_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    idx = FaceIndex(1, 16)
    vectors = rng.standard_normal((6000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rowids = np.arange(1, 6001, dtype=np.int64) * 2
    idx.append(rowids[:3000], vectors[:3000])
    idx.append(rowids[3000:], vectors[3000:])
    with pytest.raises(ValueError):
        idx.append(rowids[:1], vectors[:1])
    alive = np.ones(6000, dtype=bool)
    for _chunk in range(6):  # enough deletions to trigger compaction
        gone = rng.choice(6000, 900, replace=False)
        alive[gone] = False
        idx.remove(rowids[gone].tolist() + [7])  # odd rowids are unknown: ignored
        q = vectors[rng.integers(6000)]
        want = np.argsort(-(vectors @ q) + np.where(alive, 0, 10), kind="stable")[:25]
        got = idx.search(q, 25)
        assert [r for r, _ in got] == rowids[want].tolist()
        assert len(idx) == alive.sum()
        assert idx.live_rowids().tolist() == rowids[alive].tolist()
    assert idx.search(q, 10_000, min_score=0.5) == [
        (r, s) for r, s in idx.search(q, 10_000) if s >= 0.5
    ]


# -- the store file ---------------------------------------------------------------------------


def test_db_settings(store: CollectionStore) -> None:
    db = sqlite3.connect(store.db_path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    meta = dict(db.execute("SELECT key, value FROM meta"))
    assert meta["app"] == "streamproc" and meta["schema_version"] == str(SCHEMA_VERSION)
    db.close()
    conn = store._conn()
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_store_location(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "from-env"))
    assert default_store_dir() == tmp_path / "from-env"
    with CollectionStore() as s:
        assert s.db_path == tmp_path / "from-env" / DB_FILENAME
    monkeypatch.delenv(STORE_ENV)
    assert default_store_dir().name == "streamproc"
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="not a directory"):
        CollectionStore(tmp_path / "file")


def test_reopen_keeps_data(tmp_path: Path) -> None:
    with CollectionStore(tmp_path) as s:
        s.create_collection("c")
        ids = index(s, 1, faces=2)
    with CollectionStore(tmp_path) as s:
        assert [f.face_id for f in s.list_faces("c")[0]] == ids


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / DB_FILENAME).write_text("hello, not a database at all")
    with pytest.raises(ForeignStoreError, match="not an SQLite"):
        CollectionStore(tmp_path / "text")
    (tmp_path / "other").mkdir()
    other = sqlite3.connect(tmp_path / "other" / DB_FILENAME)
    other.execute("CREATE TABLE notes(x)")
    other.commit()
    other.close()
    with pytest.raises(ForeignStoreError, match="another application"):
        CollectionStore(tmp_path / "other")
    (tmp_path / "stamped").mkdir()
    other = sqlite3.connect(tmp_path / "stamped" / DB_FILENAME)
    other.execute("PRAGMA application_id = 1234")
    other.close()
    with pytest.raises(ForeignStoreError):
        CollectionStore(tmp_path / "stamped")
    # The foreign db was not switched to WAL or otherwise touched.
    other = sqlite3.connect(tmp_path / "other" / DB_FILENAME)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    other.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    CollectionStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / DB_FILENAME)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreVersionError, match="newer streamproc"):
        CollectionStore(tmp_path)


def test_closed_store(tmp_path: Path) -> None:
    s = CollectionStore(tmp_path)
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.list_collections()


@pytest.mark.parametrize("k", [1, 10, 700, 4096])
def test_face_index_sampled_top_k_is_exact(k: int) -> None:
    rng = np.random.default_rng(k)
    vectors = rng.standard_normal((70_000, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    idx = FaceIndex(1, 8)
    idx.append(np.arange(1, 70_001, dtype=np.int64), vectors)
    idx.remove(range(1, 70_001, 3))
    alive = np.ones(70_000, dtype=bool)
    alive[::3] = False
    for q in vectors[:3]:
        scores = np.where(alive, vectors @ q, -10)
        want = np.sort(scores)[::-1][:k]
        got = [s for _, s in idx.search(q, k)]
        np.testing.assert_allclose(got, want, atol=1e-5)
