"""A WHIP camera in a cluster (issue 13): the stream runs on the node its camera POSTs to.

Two in-process ``Runtime`` nodes (a and b) share one deployment with a WHIP stream on a
real 3-server nats-server cluster (lease_s 3); a real aiortc publisher sends the test clip
over real HTTP + WebRTC. A POST with a wrong token takes nothing; the node a publisher
reaches claims the stream's lease and runs it (two at once: one runs, one gets 409); a
second publisher at the other node gets 409 naming the first; once the first publisher
has left for lease_s its node gives the lease back, and the camera then publishes to the
other node. Frame records name the node; no two nodes publish at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aioice.ice
import pytest

from streamproc.engine import Engine
from streamproc.runtime.deployment import parse_deployment
from streamproc.runtime.runtime import Runtime
from tests.nats_cluster import NatsCluster, running_cluster
from tests.test_runtime import Subscriber
from tests.whip_publisher import WhipPublisher

TOKEN = "door-token-123"
LEASE_S = 3.0

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    with running_cluster(tmp_path_factory.mktemp("nats-cluster")) as c:
        yield c


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice leaves 127.0.0.1 out on purpose; offer it so a loopback-only host works."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


def node(cluster: NatsCluster, tmp_path: Path, name: str, server: int) -> Runtime:
    return Runtime(parse_deployment(
        {
            "cluster": {"node": name, "lease_s": LEASE_S, "replicas": 3},
            "nats": {"url": cluster.urls[server:] + cluster.urls[:server]},
            "store": str(tmp_path / f"store-{name}"),
            "encoding": "json",
            "workers": 1,
            "http": {"host": "127.0.0.1", "port": 0, "console": False},
            "history": {"enabled": False},
            "streams": [{"id": "door", "whip": {"token": TOKEN}, "fps": 5,
                         "operations": [{"operation": "DetectFaces"}]}],
        },
        operations=Engine().operations,
    ))


def endpoint(runtime: Runtime) -> str:
    return f"http://127.0.0.1:{runtime.http_port}/whip/door"


async def test_a_whip_camera_runs_on_the_node_it_publishes_to(
    cluster: NatsCluster, tmp_path: Path, loopback_ice: None
) -> None:
    a, b = node(cluster, tmp_path, "a", 0), node(cluster, tmp_path, "b", 1)
    tasks = [asyncio.create_task(r.run()) for r in (a, b)]
    sub = Subscriber()
    await sub.start(cluster.urls[2], "door")
    publishers: list[WhipPublisher] = []
    try:
        while a.http_port is None or b.http_port is None or a.leased is None \
                or b.leased is None:
            assert not any(t.done() for t in tasks), [t.result() for t in tasks if t.done()]
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # several lease rounds: nobody takes a WHIP stream unasked
        assert not a.leased.leases.held and not b.leased.leases.held

        intruder = WhipPublisher(endpoint(b), "wrong-token")
        publishers.append(intruder)
        assert await intruder.start() == 401
        assert not b.leased.leases.held  # refused before any lease was taken

        # two publishers reach b at once: one stream starts there, the second gets 409
        pair = [WhipPublisher(endpoint(b), TOKEN), WhipPublisher(endpoint(b), TOKEN)]
        publishers.extend(pair)
        statuses = await asyncio.gather(*(p.start() for p in pair))
        assert sorted(statuses) == [201, 409], [p.error for p in pair]
        first = pair[statuses.index(201)]
        assert "already has a publisher" in (pair[statuses.index(409)].error or "")
        await sub.wait(lambda: len(sub.frames) >= 5, 30, "frames from b")
        assert {f["StreamProcessorInformation"]["Node"] for f in sub.frames} == {"b"}
        assert "door" in b.leased.leases.held

        second = WhipPublisher(endpoint(a), TOKEN)
        publishers.append(second)
        assert await second.start() == 409
        assert "runs on node b" in (second.error or ""), second.error

        assert await first.delete() == 200
        left = time.monotonic()
        while "door" in b.leased.leases.held:
            assert time.monotonic() - left < LEASE_S + 3, "b kept the stream's lease"
            await asyncio.sleep(0.05)
        given_back = time.monotonic() - left
        await first.close()

        moved = time.monotonic()
        while True:  # the lease's key is deleted just after b let go of it: retry briefly
            third = WhipPublisher(endpoint(a), TOKEN)
            publishers.append(third)
            if await third.start() == 201:
                break
            assert third.status == 409 and time.monotonic() - moved < 3, third.error
            await asyncio.sleep(0.2)
        await sub.wait(lambda: any(f["StreamProcessorInformation"]["Node"] == "a"
                                   for f in sub.frames), 30, "frames from a")
        print(f"\nWHIP in a cluster: b gave the lease back {given_back:.2f}s after its "
              f"publisher left (lease_s {LEASE_S:g}); first frame from a "
              f"{time.monotonic() - moved:.2f}s after the POST")
        nodes = [f["StreamProcessorInformation"]["Node"] for f in sub.frames]
        assert nodes == sorted(nodes, key=lambda n: n == "a")  # all of b's, then all of a's
    finally:
        for p in publishers:
            await p.close()
        for r in (a, b):
            r.stop()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        await sub.close()
