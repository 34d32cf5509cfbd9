"""A WebRTC (WHIP) camera through the runtime, and a third-party streaming plugin."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import aioice
import pytest

from streamproc.engine import Engine
from streamproc.runtime.deployment import parse_deployment
from streamproc.runtime.runtime import Runtime
from streamproc.transport import EmbeddedNatsServer
from tests.test_runtime import Subscriber
from tests.whip_publisher import WhipPublisher

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "phone-token-123"


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice leaves 127.0.0.1 out on purpose; offer it so a loopback-only host works."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


async def test_whip_publisher_frames_are_analysed(
    nats_server: EmbeddedNatsServer,
    tmp_path: Path,
    loopback_ice: None,
) -> None:
    deployment = parse_deployment(
        {
            "nats": {"url": nats_server.url},
            "store": str(tmp_path / "store"),
            "encoding": "json",
            "http": {"host": "127.0.0.1", "port": 0},
            "streams": [
                {
                    "id": "phone",
                    "whip": {"token": TOKEN},
                    "fps": 5,
                    "operations": [{"operation": "DetectFaces"}],
                }
            ],
        },
        operations=Engine().operations,
    )
    sub = Subscriber()
    await sub.start(nats_server.url, "phone")
    runtime = Runtime(deployment)
    task = asyncio.create_task(runtime.run())
    publisher = None
    try:
        while runtime.http_port is None:
            await asyncio.sleep(0.05)
        endpoint = f"http://127.0.0.1:{runtime.http_port}/whip/phone"
        intruder = WhipPublisher(endpoint, "wrong-token")
        assert await intruder.start() == 401
        await intruder.close()
        publisher = WhipPublisher(endpoint, TOKEN)
        assert await publisher.start() == 201
        await sub.wait(lambda: len(sub.frames) >= 5, 30, "frames from the WHIP publisher")
        await publisher.stop()
        await sub.wait(
            lambda: any(s["Status"] == "OFFLINE" for s in sub.status), 15, "OFFLINE after DELETE"
        )
    finally:
        if publisher is not None:
            await publisher.close()
        runtime.stop()
        await asyncio.wait_for(task, 30)
        await sub.close()
    info = sub.frames[0]["InputInformation"]
    assert (info["Width"], info["Height"]) == (640, 272) and info["Source"] == "whip"
    assert all("FaceDetails" in f for f in sub.frames)
    offsets = [f["InputInformation"]["FrameOffsetInSeconds"] for f in sub.frames]
    assert all(b - a >= 0.19 for a, b in zip(offsets, offsets[1:], strict=False))  # 5 fps budget
    assert [s["Status"] for s in sub.status][:1] == ["CONNECTING"]
    assert "ONLINE" in [s["Status"] for s in sub.status]


async def test_third_party_observer_plugin_sees_typed_frames_and_publishes_events(
    nats_server: EmbeddedNatsServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A separately installed package with its own entry point adds its own event logic
    the way the built-in visitor and label events do: no change to streamproc."""
    (tmp_path / "frame_logger.py").write_text(
        textwrap.dedent("""
        from typing import Literal
        from streamproc.plugin import FaceDetailsSection, Shape, hookimpl
        seen = []

        class CrowdAlert(Shape):
            EventType: Literal["CrowdAlert"] = "CrowdAlert"
            StreamName: str
            Faces: int

        class Counter:
            name = "crowd"

            def __init__(self, stream_id):
                self.stream_id = stream_id

            def observe(self, result):
                faces = result.section(FaceDetailsSection).FaceDetails
                seen.append(("frame", result.clock.frame_number, len(faces)))
                return [CrowdAlert(StreamName=self.stream_id, Faces=len(faces))] if faces else []

            def end(self, clock, reason):
                seen.append(("end", reason))
                return []

        @hookimpl
        def streamproc_stream_started(stream_id, config):
            seen.append(("started", stream_id))

        @hookimpl
        def streamproc_frame_observers(stream_id, config, operations):
            return [Counter(stream_id)] if "DetectFaces" in operations else None

        @hookimpl
        def streamproc_stream_stopped(stream_id, reason):
            seen.append(("stopped", reason))
    """)
    )
    dist = tmp_path / "frame_logger-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: frame-logger\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[streamproc]\nframe_logger = frame_logger\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sub = Subscriber()
    await sub.start(nats_server.url, "door")
    try:
        deployment = parse_deployment(
            {
                "nats": {"url": nats_server.url},
                "store": str(tmp_path / "store"),
                "streams": [
                    {
                        "id": "door",
                        "url": str(ROOT / "examples/clips/door.mp4"),
                        "fps": 2,
                        "realtime": False,
                        "operations": [{"operation": "DetectFaces"}],
                    }
                ],
            }
        )
        runtime = Runtime(deployment)
        await asyncio.wait_for(runtime.run(until_done=True), 120)
        import frame_logger  # the instance the plugin manager loaded

        seen = frame_logger.seen
        assert seen[0] == ("started", "door") and seen[-1] == ("stopped", "source ended")
        assert ("end", "source ended") in seen
        frames = [s for s in seen if s[0] == "frame"]
        assert len(frames) == runtime.streams["door"].stats.analysed >= 15  # 10.5 s at 2 fps
        with_faces = sum(1 for s in frames if s[2] > 0)
        assert with_faces > 0  # faces were found on the way
        await sub.wait(
            lambda: sum(e["EventType"] == "CrowdAlert" for e in sub.events) == with_faces,
            10, "the plugin's own events on the events subject",
        )
        # The built-in visitor events ran beside it.
        assert any(e["EventType"] == "VisitorArrived" for e in sub.events)
    finally:
        await sub.close()
        sys.modules.pop("frame_logger", None)
