"""Replicated collections on a real 3-server nats-server cluster (JetStream, replicas 3).

Each test uses its own stream (and subject prefix) on one cluster started for the module;
nodes are a CollectionStore in their own directory, a nats-py connection to one of the
servers (with the others to fail over to), a LogApplier and ReplicatedCollections.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgpack
import nats
import nats.errors
import nats.js.errors
import numpy as np
import pytest

from streamproc.cluster import (
    CollectionLog,
    LogApplier,
    ReplicatedCollections,
    collection_subject,
    decode_collection_id,
    encode_collection_id,
)
from streamproc.cluster.compactor import Compactor, CompactorSettings
from streamproc.cluster.log import LogSettings
from streamproc.cluster.records import (
    CreateCollection,
    IndexFaces,
    Snapshot,
    decode_record,
    encode_record,
)
from streamproc.cluster.snapshots import ObjectName, SnapshotObjects
from streamproc.errors import InternalServerError
from streamproc.faces.versions import PIPELINES
from streamproc.store import BoundingBox as Box
from streamproc.store import CollectionStore, NewFace, ReplicaStoreError
from streamproc.store.replica import ReplicaFace
from tests.nats_cluster import NatsCluster, running_cluster

DATA = Path(__file__).parent / "data"
MODEL = "sface-2021dec-2"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    with running_cluster(tmp_path_factory.mktemp("nats-cluster")) as c:
        yield c


@dataclass
class Node:
    name: str
    nc: nats.NATS
    store: CollectionStore
    log: CollectionLog
    applier: LogApplier
    collections: ReplicatedCollections
    objects: SnapshotObjects

    def compactor(self, min_records: int = 10) -> Compactor:
        return Compactor(self.store, self.log, self.applier, self.objects, node=self.name,
                         settings=CompactorSettings(min_records=min_records))

    async def close(self) -> None:
        await self.applier.stop()
        await self.nc.close()
        self.store.close()


async def start_node(
    cluster: NatsCluster, store_dir: Path, stream: str, server: int, name: str
) -> Node:
    urls = cluster.urls[server:] + cluster.urls[:server]
    nc = await nats.connect(
        servers=urls,
        dont_randomize=True,
        reconnect_time_wait=0.1,
        max_reconnect_attempts=-1,
        connect_timeout=2,
        name=name,
    )
    log = CollectionLog(
        nc.jetstream(timeout=3),
        LogSettings(stream=stream, prefix=f"sp.{stream.lower()}", replicas=3),
    )
    await log.ensure()
    store = CollectionStore(store_dir)
    objects = SnapshotObjects(log.js, f"{stream}_SNAPSHOTS", 3)
    applier = LogApplier(store, log, face_models=PIPELINES, snapshots=objects)
    await applier.start()
    collections = ReplicatedCollections(store, log, applier, node=name)
    return Node(name, nc, store, log, applier, collections, objects)


@pytest.fixture
async def nodes(
    cluster: NatsCluster, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Node, Node]]:
    stream = "T" + uuid.uuid4().hex[:10].upper()
    a = await start_node(cluster, tmp_path / "a", stream, 0, "node-a")
    b = await start_node(cluster, tmp_path / "b", stream, 1, "node-b")
    try:
        yield a, b
    finally:
        for node in (a, b):
            with contextlib.suppress(Exception):
                await node.close()


def random_face(rng: np.random.Generator, dim: int = 128) -> NewFace:
    return NewFace(
        bounding_box=Box(0.1, 0.2, 0.3, 0.4),
        confidence=99.5,
        embedding=rng.standard_normal(dim).astype(np.float32),
        detail={"q": float(rng.random())},
    )


def sha(i: int | str) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


async def all_faces(node: Node, collection_id: str) -> list[tuple[str, str]]:
    faces, token = await node.collections.list_faces(collection_id, 4096)
    assert token is None
    return [(f.face_id, f.image_id) for f in faces]


# -- subjects and records ------------------------------------------------------------------


def test_collection_ids_with_dots_encode_reversibly() -> None:
    for cid in ["a", "front.door", "a_b.c-d", "_d", "_u", "x__.._", "A.b.C", "9" * 255]:
        token = encode_collection_id(cid)
        assert "." not in token and "*" not in token and ">" not in token
        assert decode_collection_id(token) == cid
    assert encode_collection_id("_d") != encode_collection_id(".")
    assert collection_subject("front.door", "sp.log") == "sp.log.front_ddoor"
    with pytest.raises(ValueError):
        decode_collection_id("a_x")


def test_record_round_trip_and_strict_decoding() -> None:
    face = ReplicaFace(
        str(uuid.uuid4()), (0.1, 0.2, 0.3, 0.4), 99.0, np.arange(4, dtype=np.float32), {"k": 1}
    )
    record = IndexFaces("c.1", MODEL, str(uuid.uuid4()), sha(1), None, 1.5, (face,))
    envelope = decode_record(encode_record(record, record_id="r1", writer="n"))
    got = envelope.record
    assert isinstance(got, IndexFaces) and envelope.record_id == "r1"
    assert got.faces[0].vector.tobytes() == face.vector.tobytes()
    assert got.faces[0].detail == {"k": 1} and got.collection_id == "c.1"
    raw = msgpack.unpackb(encode_record(record, record_id="r1", writer="n"))
    raw["body"]["surprise"] = 1
    with pytest.raises(Exception, match="extra"):
        decode_record(msgpack.packb(raw))


# -- on the cluster ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_faces() -> tuple[list[NewFace], str, np.ndarray]:
    """Obama's first photo analysed for indexing, and a probe from his second photo."""
    from streamproc.faces.analyzer import FaceAnalyzer
    from streamproc.images import decode_image

    analyzer = FaceAnalyzer()
    data = (DATA / "faces/barack_obama/1.jpg").read_bytes()
    image = decode_image(data)
    result = analyzer.analyze(image, embeddings=True, flip_average=True)
    faces = [
        NewFace(
            bounding_box=Box(*(float(v) for v in f.box[:2] / [image.width, image.height]),
                             float((f.box[2] - f.box[0]) / image.width),
                             float((f.box[3] - f.box[1]) / image.height)),
            confidence=float(f.confidence),
            embedding=np.asarray(f.embedding, dtype=np.float32),
        )
        for f in result.faces
    ]
    probe = analyzer.analyze(
        decode_image((DATA / "faces/barack_obama/2.jpg").read_bytes()), embeddings=True
    ).faces[0].embedding
    assert faces and probe is not None
    return faces, hashlib.sha256(data).hexdigest(), np.asarray(probe, dtype=np.float32)


async def test_index_on_one_node_search_on_another(
    nodes: tuple[Node, Node], real_faces: tuple[list[NewFace], str, np.ndarray]
) -> None:
    a, b = nodes
    faces, image_sha, probe = real_faces
    cid = "home.faces.v1"  # dots in the id
    created = await a.collections.create_collection(cid, face_model_version=MODEL)
    indexed = await a.collections.index_faces(
        cid, image_sha256=image_sha, external_image_id="barack", faces=faces
    )
    assert not indexed.already_indexed and indexed.faces
    # read-your-writes on A without waiting: the store has applied it already
    assert a.store.describe_collection(cid).face_count == len(faces)
    hits = await b.collections.search(cid, probe, max_faces=3, min_score=0.3)
    assert hits and hits[0][0].face_id == indexed.faces[0].face_id
    assert hits[0][0].external_image_id == "barack"
    assert await all_faces(a, cid) == await all_faces(b, cid)
    described = await b.collections.describe_collection(cid)
    assert described.created_at == created.created_at and described.face_model_version == MODEL
    # same bytes again on B: idempotent, the same FaceIds, nothing published
    seq = await b.log.last_seq()
    again = await b.collections.index_faces(
        cid, image_sha256=image_sha, external_image_id="barack", faces=faces
    )
    assert again.already_indexed and [f.face_id for f in again.faces] == [
        f.face_id for f in indexed.faces
    ]
    assert await b.log.last_seq() == seq
    # a delete on B is seen on A; the replica stores refuse plain writes
    assert await b.collections.delete_faces(cid, [indexed.faces[0].face_id]) == [
        indexed.faces[0].face_id
    ]
    assert (await a.collections.describe_collection(cid)).face_count == len(faces) - 1
    with pytest.raises(ReplicaStoreError):
        a.store.create_collection("direct")


async def test_two_writers_one_collection(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    await a.collections.create_collection("shared", face_model_version=MODEL)
    rng = np.random.default_rng(1)
    per_node = 15

    async def writer(node: Node, offset: int) -> list[str]:
        ids = []
        for i in range(per_node):
            result = await node.collections.index_faces(
                "shared",
                image_sha256=sha(offset + i),
                external_image_id=f"img-{offset + i}",
                faces=[random_face(rng)],
            )
            ids += [f.face_id for f in result.faces]
        return ids

    start = time.perf_counter()
    ids_a, ids_b = await asyncio.gather(writer(a, 0), writer(b, 1000))
    elapsed = time.perf_counter() - start
    print(
        f"\n2 writers x {per_node} IndexFaces: {elapsed:.2f}s "
        f"({2 * per_node / elapsed:.0f} writes/s), conflicts a={a.collections.conflicts} "
        f"b={b.collections.conflicts}"
    )
    expected = sorted(ids_a + ids_b)
    assert len(set(expected)) == 2 * per_node
    for node in (a, b):
        faces = await all_faces(node, "shared")
        assert sorted(f for f, _ in faces) == expected
    assert await all_faces(a, "shared") == await all_faces(b, "shared")  # same order too
    assert (await b.collections.describe_collection("shared")).face_count == 2 * per_node


async def test_restarted_and_new_nodes_catch_up(
    cluster: NatsCluster, nodes: tuple[Node, Node], tmp_path: Path
) -> None:
    a, b = nodes
    rng = np.random.default_rng(2)
    await a.collections.create_collection("r.1", face_model_version=MODEL)
    for i in range(5):
        await a.collections.index_faces(
            "r.1", image_sha256=sha(i), external_image_id=None, faces=[random_face(rng)]
        )
    await b.collections.catch_up()
    await b.close()  # B goes down; writes go on without it
    for i in range(5, 40):
        await a.collections.index_faces(
            "r.1", image_sha256=sha(i), external_image_id=None, faces=[random_face(rng)]
        )
    deleted = (await all_faces(a, "r.1"))[3][0]
    await a.collections.delete_faces("r.1", [deleted])
    await a.collections.create_collection("r.2", face_model_version=MODEL)
    await a.collections.delete_collection("r.2")
    last = await a.log.last_seq()

    start = time.perf_counter()
    b2 = await start_node(cluster, tmp_path / "b", a.log.stream, 2, "node-b")
    await b2.collections.catch_up()
    restart = time.perf_counter() - start
    start = time.perf_counter()
    c = await start_node(cluster, tmp_path / "c", a.log.stream, 1, "node-c")  # empty store
    await c.collections.catch_up()
    rebuild = time.perf_counter() - start
    print(f"\nrestart catch-up (35 records behind): {restart:.2f}s; "
          f"new node rebuild ({last} records): {rebuild:.2f}s")
    try:
        probe = rng.standard_normal(128).astype(np.float32)
        want = await all_faces(a, "r.1")
        assert deleted not in {f for f, _ in want} and len(want) == 39
        hits_a = [(h.face_id, round(s, 6)) for h, s in await a.collections.search(
            "r.1", probe, max_faces=5)]
        for node in (b2, c):
            assert node.applier.applied == last
            assert await all_faces(node, "r.1") == want
            got = await node.collections.search("r.1", probe, max_faces=5)
            assert [(h.face_id, round(s, 6)) for h, s in got] == hits_a
            cols, _ = await node.collections.list_collections()
            assert [x.collection_id for x in cols] == ["r.1"]
    finally:
        await b2.close()
        await c.close()


async def test_killing_a_nats_server_loses_no_acknowledged_write(
    cluster: NatsCluster, nodes: tuple[Node, Node]
) -> None:
    a, b = nodes  # a is connected to server 0, b to server 1
    await a.collections.create_collection("k", face_model_version=MODEL)
    rng = np.random.default_rng(3)
    acknowledged: list[str] = []
    start = time.perf_counter()
    try:
        for i in range(30):
            if i == 10:
                cluster.kill(0)
                killed_at = time.perf_counter()
            result = await a.collections.index_faces(
                "k", image_sha256=sha(i), external_image_id=None, faces=[random_face(rng)]
            )
            acknowledged += [f.face_id for f in result.faces]
            if i == 10:
                print(f"\nfirst write after SIGKILL of n0: {time.perf_counter() - killed_at:.2f}s")
    finally:
        cluster.start(0)
    print(f"30 writes across the kill: {time.perf_counter() - start:.2f}s")
    for node in (a, b):
        faces = {f for f, _ in await all_faces(node, "k")}
        assert faces == set(acknowledged) and len(acknowledged) == 30


async def test_duplicate_publish_is_applied_once(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    await a.collections.create_collection("dup", face_model_version=MODEL)
    expected = await a.log.last_subject_seq("dup")
    face = ReplicaFace(
        str(uuid.uuid4()), (0.1, 0.1, 0.2, 0.2), 90.0,
        np.full(128, 1 / np.sqrt(128), dtype=np.float32),
    )
    record = IndexFaces("dup", MODEL, str(uuid.uuid4()), sha("dup"), None, time.time(), (face,))
    first = await a.log.publish(
        record, record_id="rec-1", writer="t", expected_subject_seq=expected
    )
    # a retry of the same publish (lost ack): same Nats-Msg-Id, same expectation
    second = await b.log.publish(
        record, record_id="rec-1", writer="t", expected_subject_seq=expected
    )
    assert first == second
    assert await a.log.last_seq() == first
    for node in (a, b):
        await node.collections.catch_up()
        assert [f for f, _ in await all_faces(node, "dup")] == [face.face_id]


async def test_unknown_record_version_stops_the_applier(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    await a.collections.create_collection("v", face_model_version=MODEL)
    good = encode_record(CreateCollection("v", MODEL, 1.0), record_id="x", writer="future")
    raw = msgpack.unpackb(good)
    raw["v"] = 99
    ack = await a.nc.jetstream().publish(a.log.subject("v"), msgpack.packb(raw))
    for node in (a, b):
        with pytest.raises(InternalServerError, match="record version 99"):
            await node.applier.wait_applied(ack.seq, 5)
        assert node.applier.stopped is not None and node.applier.stopped.seq == ack.seq
        assert node.applier.applied == ack.seq - 1  # everything before it was applied
        with pytest.raises(InternalServerError, match="stopped applying"):
            await node.collections.describe_collection("v")


# -- retention: snapshots and tombstones ----------------------------------------------------


async def index_random(node: Node, cid: str, rng: np.random.Generator, n: int, at: int) -> None:
    for i in range(at, at + n):
        await node.collections.index_faces(
            cid, image_sha256=sha(f"{cid}-{i}"), external_image_id=f"p{i % 3}",
            faces=[random_face(rng)],
        )


async def assert_same_answers(a: Node, other: Node, cid: str, rng: np.random.Generator) -> None:
    assert await all_faces(other, cid) == await all_faces(a, cid)
    probe = rng.standard_normal(128).astype(np.float32)
    want = [(h.face_id, h.external_image_id, round(s, 6))
            for h, s in await a.collections.search(cid, probe, max_faces=5)]
    got = [(h.face_id, h.external_image_id, round(s, 6))
           for h, s in await other.collections.search(cid, probe, max_faces=5)]
    assert got == want
    assert (await other.collections.describe_collection(cid)).face_count == (
        await a.collections.describe_collection(cid)).face_count


async def test_snapshots_let_old_records_go_and_nodes_rebuild_from_them(
    cluster: NatsCluster, nodes: tuple[Node, Node], tmp_path: Path
) -> None:
    a, b = nodes
    rng = np.random.default_rng(7)
    cid = "snap.home"
    await a.collections.create_collection(cid, face_model_version=MODEL)
    await index_random(a, cid, rng, 10, 0)
    await b.collections.catch_up()
    await b.close()  # B stops at 11 records and misses what follows
    await index_random(a, cid, rng, 20, 10)
    gone = [f for f, _ in await all_faces(a, cid)][4:6]
    await a.collections.delete_faces(cid, gone)
    before = await a.log.subject_counts()
    assert before[cid] == 32  # create + 30 IndexFaces + 1 DeleteFaces

    compactor = a.compactor(min_records=10)
    results = await compactor.compact_due()
    assert [r.collection_id for r in results] == [cid]
    snap = results[0]
    assert (snap.images, snap.faces, snap.records_before) == (28, 28, 32)
    print(f"\nsnapshot of {snap.faces} faces: {snap.size} bytes in {snap.seconds:.2f}s")
    after = await a.log.subject_counts()
    assert after[cid] == 1  # the snapshot replaced every earlier record
    info = await a.log.info()
    assert info.state.messages == 1 and info.state.first_seq == snap.seq
    first = await a.log.first_record(cid)
    assert first is not None and isinstance(decode_record(first[1]).record, Snapshot)
    assert a.applier.snapshots_loaded == 0  # A held that state already: it only advanced
    await a.collections.catch_up()
    assert await all_faces(a, cid) and len(await all_faces(a, cid)) == 28

    await index_random(a, cid, rng, 3, 30)  # records after the snapshot
    # B restarts behind the snapshot; C starts empty: both rebuild from it
    b2 = await start_node(cluster, tmp_path / "b", a.log.stream, 2, "node-b")
    c = await start_node(cluster, tmp_path / "c", a.log.stream, 1, "node-c")
    try:
        for node in (b2, c):
            await node.collections.catch_up()
            assert node.applier.snapshots_loaded == 1
            assert node.applier.applied == await a.log.last_seq()
            await assert_same_answers(a, node, cid, rng)
            assert not {f for f, _ in await all_faces(node, cid)} & set(gone)
        # a second snapshot replaces the first; the first object is pruned
        await index_random(b2, cid, rng, 30, 40)  # 33 records >= half of 61 faces
        again = await c.compactor(min_records=10).compact_due()
        assert [r.collection_id for r in again] == [cid] and again[0].faces == 61
        names = [str(n) for n, _ in await a.objects.names()]
        assert names == [str(ObjectName(cid, again[0].through, "node-c"))]
        assert again[0].pruned == [str(ObjectName(cid, snap.through, "node-a"))]
        for node in (a, b2):
            await node.collections.catch_up()
            await assert_same_answers(c, node, cid, rng)
    finally:
        await b2.close()
        await c.close()


async def test_a_deleted_collection_leaves_one_tombstone(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    rng = np.random.default_rng(8)
    await a.collections.create_collection("gone", face_model_version=MODEL)
    await index_random(a, "gone", rng, 5, 0)
    assert (await a.log.subject_counts())["gone"] == 6
    await b.collections.delete_collection("gone")
    assert (await a.log.subject_counts())["gone"] == 1  # the DeleteCollection rollup
    for node in (a, b):
        await node.collections.catch_up()
        assert await node.collections.list_collections() == ([], None)
    # nothing to snapshot for a deleted collection
    assert await a.compactor(min_records=10).snapshot("gone") is None


async def test_snapshots_racing_writes_never_lose_one(
    cluster: NatsCluster, nodes: tuple[Node, Node], tmp_path: Path
) -> None:
    """Snapshots taken while both nodes write: each carries the writes made while its
    object was written; every acknowledged face survives a rebuild, once."""
    a, b = nodes
    rng = np.random.default_rng(9)
    cid = "race"
    await a.collections.create_collection(cid, face_model_version=MODEL)
    compactor = a.compactor(min_records=10)
    published = refused = 0
    writing = True

    async def snapshots() -> None:
        nonlocal published, refused
        while writing:
            if await compactor.snapshot(cid) is None:
                refused += 1
            else:
                published += 1
            await asyncio.sleep(0.05)

    task = asyncio.create_task(snapshots())
    await asyncio.gather(index_random(a, cid, rng, 25, 0), index_random(b, cid, rng, 25, 100))
    writing = False
    await task
    print(f"\nsnapshots during 50 writes: {published} published, {refused} refused")
    assert published >= 1  # writes need not pause: a snapshot carries those made meanwhile
    # whatever raced, a snapshot of the quiet collection goes through, and writes follow it
    assert await compactor.snapshot(cid) is not None
    await index_random(b, cid, rng, 3, 200)
    assert len(await all_faces(a, cid)) == 53
    c = await start_node(cluster, tmp_path / "c", a.log.stream, 2, "node-c")
    try:
        await c.collections.catch_up()
        assert c.applier.snapshots_loaded == 1
        await assert_same_answers(a, c, cid, rng)
        await b.collections.catch_up()
        await assert_same_answers(a, b, cid, rng)
        await compactor.prune()
        assert len(await a.objects.names()) == 1  # refused snapshots left no object
    finally:
        await c.close()


async def test_a_missing_snapshot_object_stops_a_rebuilding_node(
    cluster: NatsCluster, nodes: tuple[Node, Node], tmp_path: Path
) -> None:
    a, _ = nodes
    rng = np.random.default_rng(10)
    await a.collections.create_collection("lost", face_model_version=MODEL)
    await index_random(a, "lost", rng, 11, 0)
    snap = await a.compactor(min_records=10).snapshot("lost")
    assert snap is not None
    await a.objects.delete(ObjectName("lost", snap.through, "node-a"))  # an operator's slip
    c = await start_node(cluster, tmp_path / "c", a.log.stream, 1, "node-c")
    try:
        with pytest.raises(InternalServerError, match="snapshot object is missing"):
            await c.collections.catch_up(15)  # after a few tries (NATS may just be busy)
        assert c.applier.stopped is not None and c.applier.stopped.seq == snap.seq
    finally:
        await c.close()


async def test_a_log_made_before_snapshots_is_allowed_rollups(cluster: NatsCluster) -> None:
    """A stream created by a node without snapshots (no rollup headers) is updated in place
    by the first node that has them: its records stay."""
    from nats.js.api import StreamConfig

    stream = "OLD" + uuid.uuid4().hex[:8].upper()
    nc = await nats.connect(servers=cluster.urls, connect_timeout=2)
    try:
        js = nc.jetstream(timeout=5)
        deadline = time.monotonic() + 30  # a cluster just started elects its meta leader
        while True:
            try:
                await js.add_stream(StreamConfig(name=stream,
                                                 subjects=[f"sp.{stream.lower()}.*"],
                                                 num_replicas=3, allow_direct=True))
                break
            except (nats.errors.TimeoutError, nats.js.errors.APIError):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.5)
        await js.publish(f"sp.{stream.lower()}.a", b"x")
        log = CollectionLog(js, LogSettings(stream=stream, prefix=f"sp.{stream.lower()}",
                                            replicas=3))
        info = await log.ensure()
        assert info.config.allow_rollup_hdrs and info.state.messages == 1
        await js.delete_stream(stream)
    finally:
        await nc.close()


async def test_a_snapshot_behind_another_collections_records_is_loaded(
    cluster: NatsCluster, nodes: tuple[Node, Node], tmp_path: Path
) -> None:
    """A node's log position counts every collection: a new node that applied another
    collection's later record must still load a snapshot it never saw the records of."""
    a, b = nodes
    rng = np.random.default_rng(11)
    await a.collections.create_collection("x", face_model_version=MODEL)
    await index_random(a, "x", rng, 11, 0)
    await b.collections.create_collection("y", face_model_version=MODEL)  # after x's last
    await index_random(b, "y", rng, 2, 0)
    assert await a.compactor(min_records=10).snapshot("x") is not None
    c = await start_node(cluster, tmp_path / "c", a.log.stream, 2, "node-c")
    try:
        await c.collections.catch_up()
        assert c.applier.snapshots_loaded == 1 and c.applier.gaps_skipped == 0
        for cid in ("x", "y"):
            await assert_same_answers(a, c, cid, rng)
        # b held x's state already: it only advanced, and answers the same
        await b.collections.catch_up()
        assert b.applier.snapshots_loaded == 0
        await assert_same_answers(a, b, "x", rng)
    finally:
        await c.close()


async def test_records_after_a_gap_wait_for_the_next_snapshot(
    cluster: NatsCluster, nodes: tuple[Node, Node], tmp_path: Path
) -> None:
    """A node that missed records of a collection (rolled up before it read them) skips
    the records that follow them instead of applying them to the wrong state, and the
    collection's next snapshot brings it back."""
    a, _ = nodes
    rng = np.random.default_rng(12)
    await a.collections.create_collection("g", face_model_version=MODEL)
    await index_random(a, "g", rng, 3, 0)
    c = await start_node(cluster, tmp_path / "c", a.log.stream, 2, "node-c")
    await c.collections.catch_up()
    await c.close()  # c holds g up to its 4th record
    await index_random(a, "g", rng, 2, 3)
    last = await a.log.last_subject_seq("g")
    # records c never saw go (as a rollup by a node c cannot reach would remove them)
    await a.nc.jetstream().purge_stream(a.log.stream, subject=a.log.subject("g"), seq=last)
    c = await start_node(cluster, tmp_path / "c", a.log.stream, 2, "node-c")
    try:
        await c.collections.catch_up()
        assert c.applier.stopped is None and c.applier.gaps_skipped == 1
        assert len(await all_faces(c, "g")) == 3  # as it was: nothing applied on top
        assert await a.compactor(min_records=1).snapshot("g") is not None
        await c.collections.catch_up()
        assert c.applier.snapshots_loaded == 1
        await assert_same_answers(a, c, "g", rng)
    finally:
        await c.close()
