"""Issue 13's "Done when" for a NATS server: kill -9 under write load loses no acknowledged face.

Two real node processes (``streamproc run`` A with HTTP, ``streamproc serve`` B) on a real
3-server nats-server cluster. Two client threads send IndexFaces of real photos to A's HTTP
API with boto3 (one attempt, no retries) and record every acknowledged FaceId; meanwhile the
NATS server A is connected to (made the collection log's stream leader first, when a few
leader step-downs manage it) is killed with SIGKILL. Afterwards every acknowledged face is
listed by both A and B (the same faces on both), A answered writes again after the
reconnect, and any request that failed in between failed with a retryable error (counted).

Kill -9 of a node (the other half of "Done when": every camera running again within the
lease bound) is ``test_nodes_fail_over_the_camera_without_two_publishers`` in
tests/test_cluster_leases.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
import nats.js.errors
import pytest
from botocore.exceptions import ClientError

from tests.http_server import ROOT, ServerUrl, boto3_client, stop_server
from tests.nats_cluster import NatsCluster, running_cluster
from tests.test_cluster_nodes import faces_of, start_run_node, start_serve_node

pytestmark = pytest.mark.timeout(180)

#: Error codes an AWS SDK retries (throttling, 5xx): allowed while the log elects a leader.
RETRYABLE = {"ThrottlingException", "ServiceUnavailableException", "InternalServerError",
             "ProvisionedThroughputExceededException", "ServiceUnavailable"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    with running_cluster(tmp_path_factory.mktemp("nats-cluster")) as c:
        yield c


@pytest.fixture
def stream(cluster: NatsCluster) -> Iterator[str]:
    name = "T" + uuid.uuid4().hex[:10].upper()
    yield name

    async def delete() -> None:
        nc = await nats.connect(servers=[u for i, u in enumerate(cluster.urls)
                                         if cluster.procs[i] is not None], connect_timeout=2)
        try:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await nc.jetstream().delete_stream(name)
        finally:
            await nc.close()

    asyncio.run(delete())


def photos(limit: int) -> list[tuple[str, bytes]]:
    """Real photos of distinct content, one ExternalImageId each: every person's first photo,
    then every person's second, ..."""
    people = [sorted(d.glob("*.jpg")) for d in sorted((ROOT / "tests/data/faces").iterdir())]
    found = [p for row in itertools.zip_longest(*people) for p in row if p is not None]
    return [(f"{p.parent.name}_{p.stem}", p.read_bytes()) for p in found[:limit]]


def connected_server(cluster: NatsCluster, pid: int) -> int:
    """The index of the cluster server process ``pid`` has a TCP connection to (its
    sockets' inodes looked up in /proc/net/tcp)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[9] in inodes and cols[3] == "01":  # ESTABLISHED
                    port = int(cols[2].rsplit(":", 1)[1], 16)
                    if port in cluster.ports:
                        return cluster.ports.index(port)
    raise AssertionError(f"process {pid} has no connection to a server of the cluster")


async def lead_stream_from(cluster: NatsCluster, stream: str, server: int) -> str:
    """Ask the stream's leader to step down until server ``server`` leads it (a few tries);
    returns the leader's name."""
    nc = await nats.connect(servers=cluster.urls, connect_timeout=2)
    try:
        js = nc.jetstream(timeout=5)
        leader = ""
        for _ in range(8):
            info = await js.stream_info(stream)
            leader = info.cluster.leader if info.cluster else ""
            if leader == f"n{server}":
                break
            with contextlib.suppress(Exception):
                await nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}", b"", timeout=5)
            await asyncio.sleep(1.0)
        return leader or "?"
    finally:
        await nc.close()


@dataclass
class Load:
    """IndexFaces requests to one node from client threads, with every outcome."""

    url: str
    collection: str
    images: list[tuple[str, bytes]]
    acked: dict[str, float] = field(default_factory=dict)  # FaceId -> ack time
    indexed: dict[str, str] = field(default_factory=dict)  # ExternalImageId -> a FaceId
    ok: list[tuple[float, float]] = field(default_factory=list)  # (sent, acked)
    failed: Counter[str] = field(default_factory=Counter)
    failed_at: list[float] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # non-retryable failures
    stop: threading.Event = field(default_factory=threading.Event)
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _image(self) -> tuple[str, bytes]:
        with self._lock:
            i, self._next = self._next, self._next + 1
        return self.images[i % len(self.images)]

    def run(self) -> None:
        client = boto3_client(self.url, read_timeout=60, connect_timeout=5)
        while not self.stop.is_set():
            name, image = self._image()
            sent = time.monotonic()
            try:
                out = client.index_faces(CollectionId=self.collection, Image={"Bytes": image},
                                         ExternalImageId=name, MaxFaces=1)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "?")
                with self._lock:
                    (self.failed.update if code in RETRYABLE else self.other.append)([code])
                    self.failed_at.append(time.monotonic())
                time.sleep(0.1)
                continue
            except Exception as exc:  # the connection itself: A is a live process
                with self._lock:
                    self.other.append(f"{type(exc).__name__}: {exc}")
                continue
            done = time.monotonic()
            with self._lock:
                self.ok.append((sent, done))
                for record in out["FaceRecords"]:
                    self.acked[record["Face"]["FaceId"]] = done
                    self.indexed[name] = record["Face"]["FaceId"]


def test_kill_a_nats_server_under_index_load_loses_no_acknowledged_face(
    cluster: NatsCluster, stream: str, tmp_path: Path
) -> None:
    began = time.monotonic()
    proc_a, url_a = start_run_node(cluster, tmp_path / "a", "a", stream)
    url_b: ServerUrl | None = None
    victim: int | None = None
    try:
        url_b = start_serve_node(cluster, tmp_path / "b", "b", stream)
        a, b = boto3_client(url_a), boto3_client(url_b)
        collection = "lobby"
        a.create_collection(CollectionId=collection)
        victim = connected_server(cluster, proc_a.pid)
        leader = asyncio.run(lead_stream_from(cluster, stream, victim))

        load = Load(url_a, collection, photos(40))
        threads = [threading.Thread(target=load.run, daemon=True) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            while len(load.ok) < 6:  # writes flowing before the kill
                assert time.monotonic() - began < 120, (load.failed, load.other)
                time.sleep(0.05)
            before = len(load.acked)
            killed = time.monotonic()
            cluster.kill(victim)
            # keep writing: at least 4 s past the kill and 3 writes sent after it acknowledged
            while True:
                after = [(s, d) for s, d in load.ok if s > killed]
                if time.monotonic() - killed > 4 and len(after) >= 3:
                    break
                assert time.monotonic() - killed < 40, \
                    f"A acknowledged no write after the kill: {load.failed} {load.other}"
                time.sleep(0.05)
        finally:
            load.stop.set()
            for t in threads:
                t.join(90)
        assert not load.other, load.other

        # A reconnected to another server of the cluster, and answers there
        moved_to = connected_server(cluster, proc_a.pid)
        assert moved_to != victim
        first_after = min(d for s, d in load.ok if s > killed) - killed
        stall = max(d - s for s, d in load.ok if d > killed)

        # every acknowledged face on both nodes, the same faces on both
        listed_a = faces_of(a, collection)
        listed_b = faces_of(b, collection)
        assert listed_a == listed_b
        missing = set(load.acked) - {f[0] for f in listed_a}
        assert not missing, f"acknowledged faces lost: {sorted(missing)}"
        assert len(load.acked) > before  # faces acknowledged after the kill too
        # and B finds the last face A acknowledged from its photo
        name, face_id = next((n, f) for n, f in reversed(load.indexed.items()))
        probe = dict(load.images)[name]
        found = b.search_faces_by_image(CollectionId=collection, Image={"Bytes": probe},
                                        FaceMatchThreshold=70)["FaceMatches"]
        assert face_id in [m["Face"]["FaceId"] for m in found]
        print(f"\nkilled n{victim} (A's server; stream leader was {leader}); A moved to "
              f"n{moved_to}. {len(load.ok)} IndexFaces acknowledged ({len(load.acked)} "
              f"distinct faces, {before} before the kill), {sum(load.failed.values())} "
              f"retryable failures {dict(load.failed)}, none lost; first ack of a write sent "
              f"after the kill {first_after:.2f}s after it, slowest write across it "
              f"{stall:.2f}s")
    finally:
        if url_b is not None:
            assert stop_server(url_b.process) == 0
        assert stop_server(proc_a) == 0
        if victim is not None and cluster.procs[victim] is None:
            cluster.start(victim)  # the module's cluster whole again
