"""Two real streamproc node processes on a real 3-server nats-server cluster (issue 13).

Node A is ``streamproc run`` of a deployment with a ``cluster:`` section and HTTP on port 0;
node B is ``streamproc serve --cluster-node b --nats URL,URL,URL``. Faces indexed through
A's HTTP API with boto3 are found through B's; B's console lists them; the CLI writing to a
node's store directly is refused; a restarted node catches up and answers identically; a
single-node store seeds a log once, and a fresh node rebuilds from it identically.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import nats
import nats.js.errors
import pytest

from streamproc.transport.service import RemoteClient
from tests.http_server import (
    ROOT,
    STREAMPROC,
    ServerUrl,
    boto3_client,
    photo,
    start_server,
    stop_server,
)
from tests.nats_cluster import NatsCluster, running_cluster

pytestmark = pytest.mark.timeout(240)

START_TIMEOUT_S = 90.0
_HTTP_LINE = re.compile(r"HTTP on (http://127\.0\.0\.1:\d+)")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    with running_cluster(tmp_path_factory.mktemp("nats-cluster")) as c:
        yield c


@pytest.fixture
def stream(cluster: NatsCluster) -> Iterator[str]:
    """A log stream of the test's own, deleted after it (the logs of a cluster share their
    subjects: one collection log per cluster)."""
    name = "T" + uuid.uuid4().hex[:10].upper()
    yield name

    async def delete() -> None:
        nc = await nats.connect(servers=cluster.urls, connect_timeout=2)
        try:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await nc.jetstream().delete_stream(name)
        finally:
            await nc.close()

    asyncio.run(delete())


def start_run_node(
    cluster: NatsCluster, base: Path, name: str, stream: str, *,
    cluster_settings: dict[str, Any] | None = None,
    streams: list[dict[str, Any]] | None = None, server: int = 0,
) -> tuple[subprocess.Popen[bytes], str]:
    """``streamproc run`` of a node deployment (no cameras unless ``streams``), connected
    first to cluster server ``server``: its process and HTTP URL."""
    base.mkdir(parents=True, exist_ok=True)
    deployment = base / "node.yaml"
    deployment.write_text(json.dumps({
        "cluster": {"node": name, "log_stream": stream, "replicas": 3,
                    **(cluster_settings or {})},
        "nats": {"url": cluster.urls[server:] + cluster.urls[:server]},
        "store": str(base / "store"),
        "http": {"enabled": True, "port": 0},
        "encoding": "json",
        "streams": streams or [],
    }))
    err_path = base / "run.stderr"
    with err_path.open("wb") as err:
        proc = subprocess.Popen([*STREAMPROC, "run", str(deployment)], cwd=ROOT,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        found = _HTTP_LINE.search(err_path.read_text(errors="replace"))
        if found:
            return proc, found[1]
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(proc)
            pytest.fail(f"node {name} did not start:\n{err_path.read_text()[-3000:]}",
                        pytrace=False)
        time.sleep(0.1)


def start_serve_node(
    cluster: NatsCluster, base: Path, name: str, stream: str, store: Path | None = None
) -> ServerUrl:
    base.mkdir(parents=True, exist_ok=True)
    return start_server(store or base / "store", base, "--cluster-node", name,
                        "--nats", ",".join(cluster.urls), "--log-stream", stream)


def faces_of(client: Any, collection_id: str) -> list[tuple[str, str, str | None]]:
    faces = client.list_faces(CollectionId=collection_id, MaxResults=4096)["Faces"]
    return sorted((f["FaceId"], f["ImageId"], f.get("ExternalImageId")) for f in faces)


def matches_of(client: Any, collection_id: str, image: bytes) -> list[tuple[str, float]]:
    found = client.search_faces_by_image(
        CollectionId=collection_id, Image={"Bytes": image}, FaceMatchThreshold=70
    )["FaceMatches"]
    return [(m["Face"]["FaceId"], round(m["Similarity"], 4)) for m in found]


def test_index_on_one_node_search_on_another(
    cluster: NatsCluster, stream: str, tmp_path: Path
) -> None:
    proc_a, url_a = start_run_node(cluster, tmp_path / "a", "a", stream)
    url_b: ServerUrl | None = None
    try:
        url_b = start_serve_node(cluster, tmp_path / "b", "b", stream)
        a, b = boto3_client(url_a), boto3_client(url_b)
        collection = "front.door"  # a dot: encoded in the log's subject
        a.create_collection(CollectionId=collection)
        indexed = a.index_faces(CollectionId=collection, Image={"Bytes": photo(
            "faces/joe_biden/1.jpg")}, ExternalImageId="joe_biden", MaxFaces=1)
        face_id = indexed["FaceRecords"][0]["Face"]["FaceId"]

        # B's first read catches up with the log: found at once, same FaceIds.
        assert collection in b.list_collections()["CollectionIds"]
        matches = matches_of(b, collection, photo("faces/joe_biden/2.jpg"))
        assert [m[0] for m in matches] == [face_id]
        assert faces_of(b, collection) == faces_of(a, collection)
        assert b.describe_collection(CollectionId=collection)["FaceCount"] == 1
        # Written through B, read through A.
        b.index_faces(CollectionId=collection, Image={"Bytes": photo(
            "faces/barack_obama/1.jpg")}, ExternalImageId="barack_obama", MaxFaces=1)
        assert faces_of(a, collection) == faces_of(b, collection)
        assert len(faces_of(a, collection)) == 2

        # The NATS service (A's, in the queue group every node joins) is a front door too.
        async def through_nats() -> list[tuple[str, str, str | None]]:
            nc = await nats.connect(servers=cluster.urls[2:], connect_timeout=2)
            try:
                remote = RemoteClient(nc, timeout=20)
                await remote.call("CreateCollection", {"CollectionId": "made.by.nats"})
                listed = await remote.call("ListFaces", {"CollectionId": collection})
            finally:
                await nc.close()
            return sorted((f["FaceId"], f["ImageId"], f.get("ExternalImageId"))
                          for f in listed["Faces"])

        assert asyncio.run(through_nats()) == faces_of(b, collection)
        assert "made.by.nats" in b.list_collections()["CollectionIds"]

        # B's web console lists the face (it calls the API the same way).
        async def console_page() -> str:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
                response = await s.get(f"{url_b}/console/collections/{collection}")
                assert response.status == 200
                return await response.text()

        html = asyncio.run(console_page())
        assert "joe_biden" in html and face_id in html

        # The CLI writing to a node's store directly is refused, saying where to write.
        cli = subprocess.run(
            [*STREAMPROC, "--store", str(tmp_path / "b" / "store"), "index-faces",
             "--collection-id", collection, "--image",
             str(ROOT / "tests/data/faces/clapton/1.jpg")],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
        assert cli.returncode == 254, cli.stderr
        assert "AccessDeniedException" in cli.stderr
        assert "belongs to a cluster node" in cli.stderr and "endpoint-url" in cli.stderr
        assert len(faces_of(a, collection)) == 2

        # B stops; A keeps writing; B restarts on its store, catches up, answers the same.
        assert stop_server(url_b.process) == 0
        url_b = None
        a.index_faces(CollectionId=collection, Image={"Bytes": photo(
            "faces/clapton/1.jpg")}, ExternalImageId="clapton", MaxFaces=1)
        deleted = a.delete_faces(CollectionId=collection, FaceIds=[face_id])["DeletedFaces"]
        assert deleted == [face_id]
        url_b = start_serve_node(cluster, tmp_path / "b", "b", stream)
        b = boto3_client(url_b)
        assert faces_of(b, collection) == faces_of(a, collection)
        assert len(faces_of(b, collection)) == 2
        probe = photo("faces/clapton/2.jpg")
        assert matches_of(b, collection, probe) == matches_of(a, collection, probe)
        assert matches_of(b, collection, photo("faces/joe_biden/2.jpg")) == []
    finally:
        if url_b is not None:
            assert stop_server(url_b.process) == 0
        assert stop_server(proc_a) == 0


def test_seed_a_log_from_a_single_node_store(
    cluster: NatsCluster, stream: str, tmp_path: Path
) -> None:
    from streamproc.client import Client

    single = tmp_path / "single"
    with Client(store=single) as client:
        client.create_collection(CollectionId="family")
        client.create_collection(CollectionId="empty")
        for person, n in [("joe_biden", 1), ("joe_biden", 2), ("barack_obama", 2)]:
            client.index_faces(CollectionId="family", ExternalImageId=person, MaxFaces=1,
                               Image={"Bytes": photo(f"faces/{person}/{n}.jpg")})
        expected = faces_of(client, "family")
        probe = photo("faces/barack_obama/3.jpg")
        expected_matches = matches_of(client, "family", probe)
    assert len(expected) == 3 and expected_matches

    seed = [*STREAMPROC, "cluster", "seed", "--store", str(single),
            "--nats", ",".join(cluster.urls), "--log-stream", stream]
    done = subprocess.run(seed, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["Collections"] == 2 and summary["Images"] == 3 and summary["Faces"] == 3
    # one snapshot (object and record) per collection, not a record per image
    assert summary["Records"] == summary["LastSequence"] == 2 and summary["SnapshotBytes"] > 0
    # Once only.
    again = subprocess.run(seed, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "already holds records" in again.stderr

    # The single-node store itself cannot become a node (its faces are in no log)...
    refused = subprocess.run(
        [*STREAMPROC, "serve", "--port", "0", "--store", str(single), "--cluster-node", "x",
         "--nats", ",".join(cluster.urls), "--log-stream", stream],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode == 2 and "cluster seed" in refused.stderr, refused.stderr
    # ...a node with a fresh store rebuilds from the log and answers identically.
    node = start_serve_node(cluster, tmp_path / "c", "c", stream)
    try:
        c = boto3_client(node)
        assert c.list_collections()["CollectionIds"] == ["family", "empty"]
        assert faces_of(c, "family") == expected
        assert matches_of(c, "family", probe) == expected_matches
    finally:
        assert stop_server(node.process) == 0
