"""The Rekognition request/reply service over a real nats-server with the real models."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import nats
import pytest
from nats.aio.client import Client as NatsClient

from streamproc.client import Client
from streamproc.errors import (
    ImageTooLargeException,
    InvalidImageFormatException,
    InvalidParameterException,
    ThrottlingException,
)
from streamproc.operations import Operation
from streamproc.shapes import Request, Shape
from streamproc.transport import EmbeddedNatsServer
from streamproc.transport.codec import Codec
from streamproc.transport.service import RekognitionService, RemoteClient, ServiceUnavailableError
from tests.conftest import DATA, image

OBAMA = "faces/barack_obama/4.jpg"
# A 1x1 GIF: a valid image, in a format Rekognition rejects.
GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


@pytest.fixture
async def nc(nats_server: EmbeddedNatsServer) -> AsyncIterator[NatsClient]:
    conn = await nats.connect(nats_server.url)
    yield conn
    await conn.close()


@pytest.fixture
async def service(client: Client, nc: NatsClient) -> AsyncIterator[RekognitionService]:
    svc = RekognitionService(client.engine)
    await svc.start(nc)
    yield svc
    await svc.stop()


@pytest.mark.parametrize("codec", ["msgpack", "json"])
async def test_detect_faces_over_nats_equals_engine_call(
    client: Client, nc: NatsClient, service: RekognitionService, codec: str
) -> None:
    params = {"Image": image(OBAMA), "Attributes": ["ALL"]}
    expected = client.engine.call("DetectFaces", params)
    remote = RemoteClient(nc, codec=codec, timeout=30)
    got = await remote.call("DetectFaces", params)
    assert got == expected
    assert len(got["FaceDetails"]) == 1


async def test_raw_json_request_without_headers_is_sniffed(
    client: Client, nc: NatsClient, service: RekognitionService
) -> None:
    """A client that knows nothing of streamproc: plain JSON with base64, no Content-Type."""
    import base64

    photo = (DATA / OBAMA).read_bytes()
    body = json.dumps({"Image": {"Bytes": base64.b64encode(photo).decode()}}).encode()
    msg = await nc.request("rekognition.DetectFaces", body, timeout=30)
    assert msg.headers is not None and msg.headers["Content-Type"] == "application/json"
    got = json.loads(msg.data)
    assert got == json.loads(
        Codec("json").encode(client.engine.call("DetectFaces", {"Image": {"Bytes": photo}}))
    )

    packed = msgpack.packb({"Image": {"Bytes": photo}}, use_bin_type=True)
    msg = await nc.request("rekognition.DetectFaces", packed, timeout=30)
    assert msgpack.unpackb(msg.data, raw=False)["FaceDetails"] == got["FaceDetails"]


@pytest.mark.parametrize("codec", ["msgpack", "json"])
async def test_errors_travel_as_rekognition_types(
    nc: NatsClient, service: RekognitionService, codec: str
) -> None:
    remote = RemoteClient(nc, codec=codec, timeout=30)
    with pytest.raises(InvalidImageFormatException):
        await remote.call("DetectFaces", {"Image": {"Bytes": GIF}})
    with pytest.raises(InvalidParameterException, match="Image"):
        await remote.call("DetectFaces", {"Attributes": ["ALL"]})
    with pytest.raises(InvalidParameterException, match="Unknown parameter"):
        await remote.call("DetectFaces", {"Image": image(OBAMA), "Bogus": 1})


async def test_error_reply_carries_micro_headers_and_body(
    nc: NatsClient, service: RekognitionService
) -> None:
    msg = await nc.request("rekognition.DetectFaces", b"\xc1 not msgpack", timeout=10)
    assert msg.headers is not None
    assert msg.headers["Nats-Service-Error-Code"] == "400"
    assert msg.headers["Nats-Service-Error"].startswith("InvalidParameterException: ")
    error = msgpack.unpackb(msg.data, raw=False)["Error"]
    assert error["Code"] == "InvalidParameterException"
    assert error["HTTPStatusCode"] == 400
    assert "malformed" in error["Message"]

    msg = await nc.request("rekognition.DetectFaces", b'{"Image": {"Bytes": ', timeout=10)
    error = json.loads(msg.data)["Error"]
    assert error["Code"] == "InvalidParameterException"
    assert msg.headers is not None and msg.headers["Content-Type"] == "application/json"

    msg = await nc.request("rekognition.DetectFaces", b'{"Image": {"Bytes": "@@@"}}', timeout=10)
    assert "base64" in json.loads(msg.data)["Error"]["Message"]

    # The service survives all of it.
    good = await RemoteClient(nc).call("DetectFaces", {"Image": image(OBAMA)})
    assert len(good["FaceDetails"]) == 1


async def test_micro_ping_info_and_stats_list_the_operations(
    client: Client, nc: NatsClient, service: RekognitionService
) -> None:
    ping = json.loads((await nc.request("$SRV.PING", b"", timeout=5)).data)
    assert ping["name"] == "streamproc-rekognition" and ping["type"].endswith("ping_response")

    info = json.loads((await nc.request("$SRV.INFO.streamproc-rekognition", b"", timeout=5)).data)
    subjects = {e["name"]: e["subject"] for e in info["endpoints"]}
    assert subjects == {op: f"rekognition.{op}" for op in client.engine.operations}
    assert {"DetectFaces", "CompareFaces"} <= set(subjects)

    with pytest.raises(InvalidImageFormatException):
        await RemoteClient(nc).call("DetectFaces", {"Image": {"Bytes": GIF}})
    stats = json.loads((await nc.request("$SRV.STATS.streamproc-rekognition", b"", timeout=5)).data)
    detect = next(e for e in stats["endpoints"] if e["name"] == "DetectFaces")
    assert detect["num_requests"] == 1
    assert detect["data"]["errors"] == 1


async def test_compare_faces_over_nats(
    client: Client, nc: NatsClient, service: RekognitionService
) -> None:
    params = {
        "SourceImage": image(OBAMA),
        "TargetImage": image("faces/barack_obama/4.jpg"),
        "SimilarityThreshold": 80,
    }
    got = await RemoteClient(nc, codec="json").call("CompareFaces", params)
    assert got == client.engine.call("CompareFaces", params)
    assert got["FaceMatches"][0]["Similarity"] > 99


class _SlowRequest(Request):
    Seconds: float = 0.2


class _SlowResponse(Shape):
    Slept: float


async def test_plugin_operations_appear_and_backpressure_throttles(
    client: Client, nc: NatsClient
) -> None:
    """A plugin-registered operation gets its subject; overload answers ThrottlingException."""
    release = threading.Event()

    def slow(request: _SlowRequest, context: Any) -> _SlowResponse:
        release.wait(10)
        return _SlowResponse(Slept=request.Seconds)

    engine = client.engine
    engine.operations["SlowThing"] = Operation("SlowThing", _SlowRequest, _SlowResponse, slow)
    try:
        svc = RekognitionService(engine, name="throttle-test", max_workers=2, max_queued=1)
        await svc.start(nc)
        assert svc.subjects["SlowThing"] == "rekognition.SlowThing"
        remote = RemoteClient(nc, timeout=10)
        calls = [asyncio.create_task(remote.call("SlowThing", {})) for _ in range(5)]
        async with asyncio.timeout(10):  # all five reach the service; three are admitted
            while svc.stats()["SlowThing"]["requests"] < 5:
                await asyncio.sleep(0.01)
        assert svc.in_flight == 3
        release.set()
        results = await asyncio.gather(*calls, return_exceptions=True)
        await svc.stop()
    finally:
        del engine.operations["SlowThing"]
    ok = [r for r in results if isinstance(r, dict)]
    throttled = [r for r in results if isinstance(r, ThrottlingException)]
    assert (len(ok), len(throttled)) == (3, 2), results
    assert ok[0] == {"Slept": 0.2}
    assert svc.stats()["SlowThing"]["throttled"] == 2


async def test_event_loop_stays_responsive_during_inference(
    nc: NatsClient, service: RekognitionService
) -> None:
    """Engine calls run in the pool: the loop keeps ticking while a request is analysed."""
    loop = asyncio.get_running_loop()
    gaps: list[float] = []

    async def ticker() -> None:
        last = loop.time()
        while True:
            await asyncio.sleep(0.002)
            now = loop.time()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    started = loop.time()
    await RemoteClient(nc).call("DetectFaces", {"Image": image(OBAMA), "Attributes": ["ALL"]})
    elapsed = loop.time() - started
    task.cancel()
    # A blocked loop would show one gap as long as the whole inference.
    assert max(gaps) < elapsed / 2, (max(gaps), elapsed)


async def test_oversized_request_is_a_clear_client_error(
    nc: NatsClient, service: RekognitionService
) -> None:
    big = {"Image": {"Bytes": b"\xff" * (nc.max_payload + 1)}}
    with pytest.raises(ImageTooLargeException, match="max_payload"):
        await RemoteClient(nc).call("DetectFaces", big)
    json_big = {"Image": {"Bytes": b"\xff" * (nc.max_payload * 4 // 5)}}  # base64 pushes it over
    with pytest.raises(ImageTooLargeException, match="msgpack instead of JSON"):
        await RemoteClient(nc, codec="json").call("DetectFaces", json_big)


async def test_no_service_is_a_transport_error(nc: NatsClient) -> None:
    with pytest.raises(ServiceUnavailableError, match="rekognition.DetectFaces"):
        await RemoteClient(nc, timeout=2).call("DetectFaces", {"Image": image(OBAMA)})


async def test_service_answers_again_after_a_server_restart(
    client: Client, nats_server: EmbeddedNatsServer
) -> None:
    """nats-py replays the endpoint subscriptions on reconnect: no re-registration needed."""
    conn = await nats.connect(nats_server.url, reconnect_time_wait=0.05, max_reconnect_attempts=-1)
    svc = RekognitionService(client.engine)
    await svc.start(conn)
    try:
        remote = RemoteClient(conn, timeout=30)
        params = {"Image": image(OBAMA)}
        assert len((await remote.call("DetectFaces", params))["FaceDetails"]) == 1
        nats_server.stop()
        nats_server.restart()
        async with asyncio.timeout(10):
            while not (conn.stats["reconnects"] == 1 and conn.is_connected):
                await asyncio.sleep(0.02)
        assert len((await remote.call("DetectFaces", params))["FaceDetails"]) == 1
    finally:
        await svc.stop()
        await conn.close()
