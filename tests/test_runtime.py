"""The streaming runtime end to end: a real RTSP server, a real nats-server, real models."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest

from streamproc.client import Client
from streamproc.engine import Engine
from streamproc.runtime.deployment import parse_deployment
from streamproc.runtime.runtime import Runtime
from streamproc.transport import EmbeddedNatsServer
from streamproc.transport.codec import detect_codec
from tests.conftest import DATA
from tests.fixtures_streaming import RtspTestServer

ROOT = Path(__file__).resolve().parents[1]
DOOR_CLIP = ROOT / "examples/clips/door.mp4"


@pytest.fixture(scope="module")
def household_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collection with the person the door clip shows first (the deepface "elon" set)."""
    store = tmp_path_factory.mktemp("runtime-store")
    client = Client(store=store)
    client.create_collection(CollectionId="household")
    for photo in sorted((DATA / "faces/deepface_elon").iterdir()):
        client.index_faces(
            CollectionId="household",
            Image={"Bytes": photo.read_bytes()},
            ExternalImageId="elon",
            MaxFaces=1,
        )
    for photo in sorted((DATA / "faces/barack_obama").iterdir())[:2]:
        client.index_faces(
            CollectionId="household",
            Image={"Bytes": photo.read_bytes()},
            ExternalImageId="barack_obama",
            MaxFaces=1,
        )
    client.close()
    return store


class Subscriber:
    """Collects every message on ``streamproc.<stream>.{frames,status,events}``."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.status: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    async def start(self, url: str, stream: str) -> None:
        self.nc = await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
        for kind in ("frames", "status", "events"):
            target = getattr(self, kind)

            async def cb(msg: Any, target: list[dict[str, Any]] = target) -> None:
                target.append(detect_codec(msg.data, msg.headers).decode(msg.data))

            await self.nc.subscribe(f"streamproc.{stream}.{kind}", cb=cb)
        await self.nc.flush()

    async def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                seen = [(e["EventType"], e.get("ExternalImageId")) for e in self.events]
                raise AssertionError(
                    f"timed out waiting for {what}: {len(self.frames)} frames, status "
                    f"{[s.get('Status') for s in self.status]}, events {seen}"
                )
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.nc.close()


def _deployment(nats_url: str, store: Path, url: str, **stream: Any) -> Any:
    return parse_deployment(
        {
            "nats": {"url": nats_url},
            "store": str(store),
            "encoding": stream.pop("encoding", "msgpack"),
            "streams": [
                {
                    "id": "front-door",
                    "url": url,
                    "fps": 5,
                    "operations": [
                        {
                            "operation": "SearchFacesByImage",
                            "CollectionId": "household",
                            "FaceMatchThreshold": 80,
                        }
                    ],
                    **stream,
                }
            ],
        },
        operations=Engine().operations,
    )


async def test_rtsp_camera_identifies_the_visitor(
    rtsp_server: Callable[..., RtspTestServer],
    nats_server: EmbeddedNatsServer,
    household_store: Path,
) -> None:
    camera = rtsp_server(clip=DOOR_CLIP, name="door")
    sub = Subscriber()
    await sub.start(nats_server.url, "front-door")
    runtime = Runtime(_deployment(nats_server.url, household_store, camera.url))
    task = asyncio.create_task(runtime.run())
    try:
        await sub.wait(
            lambda: any(e["EventType"] == "VisitorIdentified" and e["Matched"] for e in sub.events),
            60,
            "VisitorIdentified",
        )
    finally:
        runtime.stop()
        await asyncio.wait_for(task, 30)
        await sub.close()
    identified = [e for e in sub.events if e["EventType"] == "VisitorIdentified" and e["Matched"]]
    assert identified[0]["ExternalImageId"] == "elon"
    assert identified[0]["Similarity"] >= 80
    assert identified[0]["Snapshot"][:3] == b"\xff\xd8\xff"  # a JPEG face snapshot
    assert {e["ExternalImageId"] for e in identified} == {"elon"}  # Obama never appears
    visitor = identified[0]["VisitorId"]
    arrivals = [
        e for e in sub.events if e["EventType"] == "VisitorArrived" and e["VisitorId"] == visitor
    ]
    assert len(arrivals) == 1  # one arrival per visit, no per-frame spam
    assert sum(1 for e in identified if e["VisitorId"] == visitor) == 1
    record = sub.frames[-1]
    info = record["InputInformation"]
    assert record["StreamProcessorInformation"] == {"Name": "front-door", "Status": "RUNNING"}
    assert (info["Width"], info["Height"]) == (640, 360)
    assert info["Source"] == camera.url and info["FrameNumber"] >= 0
    assert info["ServerTimestamp"] >= info["ProducerTimestamp"]
    faces = [r for f in sub.frames for r in f["FaceSearchResponse"]]
    assert faces and {"DetectedFace", "MatchedFaces"} <= set(faces[0])
    assert "ONLINE" in [s["Status"] for s in sub.status]
    assert sub.status[-1]["Status"] == "STOPPED"


async def test_camera_restart_and_nats_restart_are_survived(
    rtsp_server: Callable[..., RtspTestServer],
    tmp_path: Path,
    household_store: Path,
) -> None:
    server = EmbeddedNatsServer(port=None)
    url = server.start()
    camera = rtsp_server(clip=DOOR_CLIP, name="door")
    sub = Subscriber()
    await sub.start(url, "front-door")
    runtime = Runtime(_deployment(url, household_store, camera.url, encoding="json"))
    task = asyncio.create_task(runtime.run())
    try:
        await sub.wait(lambda: len(sub.frames) >= 3, 30, "first frames")
        camera.kill()  # the camera dies mid-stream
        await sub.wait(lambda: any(s["Status"] == "OFFLINE" for s in sub.status), 20, "OFFLINE")
        camera.restart()
        seen = len(sub.frames)
        await sub.wait(lambda: len(sub.frames) > seen + 3, 30, "frames after camera restart")
        online = [i for i, s in enumerate(sub.status) if s["Status"] == "ONLINE"]
        offline = [i for i, s in enumerate(sub.status) if s["Status"] == "OFFLINE"]
        assert online[-1] > offline[0]  # back online after going offline, with a reason
        assert sub.status[offline[0]]["Reason"]
        server.restart()  # NATS restarts under the running pipeline
        seen = len(sub.frames)
        await sub.wait(lambda: len(sub.frames) > seen + 5, 30, "frames after NATS restart")
        assert not task.done()  # nothing crashed
    finally:
        runtime.stop()
        await asyncio.wait_for(task, 30)
        await sub.close()
        server.stop()


async def test_camera_that_never_answers_goes_offline_without_crashing(
    nats_server: EmbeddedNatsServer,
    household_store: Path,
) -> None:
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sub = Subscriber()
    await sub.start(nats_server.url, "front-door")
    runtime = Runtime(
        _deployment(nats_server.url, household_store, f"rtsp://127.0.0.1:{port}/nothing")
    )
    task = asyncio.create_task(runtime.run())
    try:
        await sub.wait(
            lambda: sum(s["Status"] == "OFFLINE" for s in sub.status) >= 2,
            20,
            "repeated OFFLINE with retries",
        )
        assert not task.done()
        retries = [s for s in sub.status if s["Status"] == "OFFLINE"]
        assert all(r["Reason"] for r in retries)
        assert retries[-1]["Attempt"] > retries[0]["Attempt"]  # retried, with backoff
        assert all(r["RetryInSeconds"] and r["RetryInSeconds"] > 0 for r in retries)
    finally:
        runtime.stop()
        await asyncio.wait_for(task, 30)
        await sub.close()
    assert sub.frames == []


def test_malformed_deployment_file_names_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "door.yaml"
    bad.write_text(
        "streams:\n"
        "  - id: front-door\n"
        "    url: rtsp://camera/stream\n"
        "    operations:\n"
        "      - operation: SearchFacesByImage\n"
        "        CollectionId: household\n"
        "        FaceMatchThreshold: 150\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "streamproc.cli.main", "run", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "STREAMPROC_STORE": str(tmp_path / "store")},
    )
    assert done.returncode == 2
    assert str(bad) in done.stderr
    assert "streams[0].operations[0].FaceMatchThreshold" in done.stderr
    assert "less than or equal to 100" in done.stderr
