"""The results publisher against a real nats-server, including server restarts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import msgpack
import nats
import numpy as np
import pytest
from nats.aio.client import Client as NatsClient

from streamproc.transport import EmbeddedNatsServer
from streamproc.transport.codec import Codec
from streamproc.transport.publisher import (
    Publisher,
    events_subject,
    frames_subject,
    status_subject,
)


async def _subscriber(url: str) -> NatsClient:
    return await nats.connect(url, reconnect_time_wait=0.05, max_reconnect_attempts=-1)


async def _settle(nc: NatsClient) -> None:
    """Make sure SUBs reached the server: nats-py's flush() PING can overtake pending SUBs."""
    await nc.flush()
    await nc.flush()


async def _until(predicate: object, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.02)


def test_subject_helpers_validate_stream_ids() -> None:
    assert frames_subject("front-door") == "streamproc.front-door.frames"
    assert status_subject("cam_1") == "streamproc.cam_1.status"
    assert events_subject("Garage2") == "streamproc.Garage2.events"
    for bad in ["", "a.b", "a b", "cam*", ">", "ümlaut", "x\n"]:
        with pytest.raises(ValueError, match="stream id"):
            frames_subject(bad)


@pytest.mark.parametrize("codec", ["msgpack", "json"])
async def test_publisher_delivers_to_a_subscriber(
    nats_server: EmbeddedNatsServer, codec: str
) -> None:
    sub_nc = await _subscriber(nats_server.url)
    sub = await sub_nc.subscribe("streamproc.>")
    await _settle(sub_nc)
    try:
        async with Publisher(nats_server.url, codec=codec) as pub:
            record = {"FaceSearchResponse": [], "Confidence": np.float32(97.5), "Frame": 3}
            await pub.publish(frames_subject("cam1"), record)
            await pub.publish(status_subject("cam1"), {"Status": "online"})
            first = await sub.next_msg(timeout=2)
            second = await sub.next_msg(timeout=2)
        assert first.subject == "streamproc.cam1.frames"
        assert first.headers is not None
        assert first.headers["Content-Type"] == Codec(codec).content_type
        assert Codec(codec).decode(first.data) == {
            "FaceSearchResponse": [],
            "Confidence": 97.5,
            "Frame": 3,
        }
        assert Codec(codec).decode(second.data) == {"Status": "online"}
        assert pub.stats.published == 2
    finally:
        await sub_nc.close()


async def test_plain_publishing_survives_a_restart(
    nats_server: EmbeddedNatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="streamproc.transport.publisher")
    pub = Publisher(nats_server.url, reconnect_wait=0.05, max_reconnect_wait=0.5)
    await pub.connect()
    sub_nc = await _subscriber(nats_server.url)
    sub = await sub_nc.subscribe("streamproc.cam1.events")
    await _settle(sub_nc)
    try:
        await pub.publish(events_subject("cam1"), {"n": 0})
        assert msgpack.unpackb((await sub.next_msg(timeout=2)).data) == {"n": 0}

        nats_server.stop()
        await _until(lambda: pub.stats.disconnects == 1)
        for n in range(1, 6):  # buffered by the client, no exception
            await pub.publish(events_subject("cam1"), {"n": n})
        nats_server.restart()  # same port
        await _until(lambda: pub.connected and sub_nc.is_connected)
        await _settle(sub_nc)

        await pub.publish(events_subject("cam1"), {"n": 99})
        seen = []
        async with asyncio.timeout(5):
            while 99 not in seen:
                seen.append(msgpack.unpackb((await sub.next_msg(timeout=5)).data)["n"])
        # Outage messages reach whoever is subscribed when the buffer is flushed: at most once.
        assert set(seen) <= {1, 2, 3, 4, 5, 99}
        assert pub.stats.reconnects == 1 and pub.stats.dropped == 0
        messages = [r.getMessage() for r in caplog.records]
        assert any("disconnected from NATS" in m for m in messages)
        assert any("reconnected to NATS" in m for m in messages)
    finally:
        await pub.close()
        await sub_nc.close()


async def test_plain_publishing_drops_when_the_buffer_is_full(
    nats_server: EmbeddedNatsServer,
) -> None:
    async with Publisher(nats_server.url, pending_size=2000, max_reconnect_wait=0.2) as pub:
        nats_server.stop()
        await _until(lambda: not pub.connected)
        for n in range(50):
            await pub.publish(frames_subject("cam1"), {"n": n, "pad": b"x" * 200})
        assert 0 < pub.stats.published < 50
        assert pub.stats.dropped == 50 - pub.stats.published


@pytest.fixture
async def js_server(tmp_path: Path) -> AsyncIterator[EmbeddedNatsServer]:
    """A server whose JetStream store outlives stop(): restarts find their messages."""
    server = EmbeddedNatsServer(store_dir=tmp_path / "jetstream")
    await server.start_async()
    yield server
    await asyncio.to_thread(server.stop)


async def test_jetstream_publishing_loses_nothing_across_a_restart(
    js_server: EmbeddedNatsServer,
) -> None:
    pub = Publisher(
        js_server.url,
        stream="STREAMPROC_TEST",
        stream_max_age=3600,
        stream_max_bytes=64 * 1024 * 1024,
        publish_timeout=0.5,
        retry_for=20,
        reconnect_wait=0.05,
        max_reconnect_wait=0.5,
    )
    await pub.connect()
    try:
        for n in range(10):
            ack = await pub.publish(frames_subject("cam1"), {"n": n})
            assert ack is not None and ack.stream == "STREAMPROC_TEST"

        js_server.stop()  # the store directory stays
        await _until(lambda: not pub.connected)
        during = [
            asyncio.create_task(pub.publish(events_subject("cam1"), {"n": n}))
            for n in range(10, 20)
        ]
        await asyncio.sleep(0.7)  # long enough for publish timeouts and retries
        assert not any(task.done() for task in during)
        js_server.restart()  # same port, same store
        await asyncio.gather(*during)
        for n in range(20, 30):
            await pub.publish(status_subject("cam1"), {"n": n})

        js = pub.nc.jetstream()
        info = await js.stream_info("STREAMPROC_TEST")
        assert info.config.subjects == ["streamproc.>"]
        assert info.config.max_age == 3600
        assert info.state.messages == 30  # none lost, none duplicated by retries
        got = [
            msgpack.unpackb((await js.get_msg("STREAMPROC_TEST", seq)).data)["n"]
            for seq in range(info.state.first_seq, info.state.last_seq + 1)
        ]
        assert sorted(got) == list(range(30))
        assert pub.stats.published == 30 and pub.stats.retries > 0
        with pytest.raises(ValueError, match="not captured"):
            await pub.publish("elsewhere.cam1", {"n": -1})
    finally:
        await pub.close()


async def test_jetstream_stream_is_reused_and_updated(nats_server: EmbeddedNatsServer) -> None:
    async with Publisher(nats_server.url, stream="RESULTS", stream_max_age=60) as pub:
        await pub.publish(frames_subject("a"), {"n": 1})
    async with Publisher(nats_server.url, stream="RESULTS", stream_max_age=120) as pub:
        await pub.publish(frames_subject("a"), {"n": 2})
        info = await pub.nc.jetstream().stream_info("RESULTS")
    assert info.state.messages == 2 and info.config.max_age == 120
