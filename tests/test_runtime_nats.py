"""The runtime against NATS servers it does not own: credentials, and JetStream durability."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import pytest

from streamproc.runtime.deployment import parse_deployment
from streamproc.runtime.runtime import NatsUnavailableError, Runtime
from streamproc.transport import EmbeddedNatsServer

ROOT = Path(__file__).resolve().parents[1]
STREAM = {
    "id": "door",
    "url": str(ROOT / "examples/clips/door.mp4"),
    "fps": 2,
    "realtime": False,
    "operations": [{"operation": "DetectFaces"}],
}


async def test_credentials_from_the_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with EmbeddedNatsServer(extra_args=["--user", "streamproc", "--pass", "s3cret"]) as server:
        monkeypatch.setenv("NATS_PASSWORD", "s3cret")
        deployment = parse_deployment(
            {
                "nats": {
                    "url": server.url,
                    "user": "streamproc",
                    "password": "${NATS_PASSWORD}",
                    "jetstream": {"stream": "RESULTS"},
                },
                "store": str(tmp_path / "store"),
                "service": False,
                "streams": [STREAM],
            }
        )
        runtime = Runtime(deployment)
        await asyncio.wait_for(runtime.run(until_done=True), 120)
        analysed = runtime.streams["door"].stats.analysed
        # Every record and status message is in the JetStream stream: nothing was lost.
        nc = await nats.connect(server.url, user="streamproc", password="s3cret")
        info = await nc.jetstream().stream_info("RESULTS")
        frames = await nc.jetstream().subscribe("streamproc.door.frames", ordered_consumer=True)
        got = 0
        while got < analysed:
            await frames.next_msg(timeout=5)
            got += 1
        await nc.close()
        assert analysed >= 15 and info.state.messages >= analysed

        wrong = parse_deployment(
            {
                "nats": {"url": server.url, "user": "streamproc", "password": "nope"},
                "store": str(tmp_path / "store"),
                "streams": [STREAM],
            }
        )
        with pytest.raises(NatsUnavailableError, match="(?i)authorization violation"):
            await asyncio.wait_for(Runtime(wrong).run(until_done=True), 60)


async def test_metrics_endpoint_counts_frames_and_events(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    import aiohttp

    deployment = parse_deployment({
        "nats": {"url": nats_server.url}, "store": str(tmp_path / "store"),
        "http": {"enabled": True, "port": 0},
        "streams": [{**STREAM, "realtime": True, "fps": 5}],
    })
    runtime = Runtime(deployment)
    task = asyncio.create_task(runtime.run())
    try:
        while runtime.http_port is None or runtime.streams["door"].stats.events < 2:
            await asyncio.sleep(0.1)
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{runtime.http_port}/metrics"
            async with session.get(url) as response:
                assert response.status == 200
                text = await response.text()
    finally:
        runtime.stop()
        await asyncio.wait_for(task, 30)
    analysed = runtime.streams["door"].stats.analysed
    assert 'streamproc_frames_analysed_total{stream="door"}' in text
    assert 'streamproc_visitor_events_total{stream="door",type="VisitorArrived"}' in text
    assert 'streamproc_stream_online{stream="door"} 1.0' in text
    assert 'streamproc_frame_latency_seconds_count{stream="door"}' in text
    assert analysed >= 1
