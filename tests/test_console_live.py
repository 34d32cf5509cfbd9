"""The console's live view on a real runtime: the door clip through SearchFacesByImage on an
indexed collection, embedded NATS, the console on the runtime's HTTP server, and an HTTP
client with a cookie jar reading the server-sent events as a browser's EventSource would.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from PIL import Image

from streamproc.client import Client
from streamproc.runtime.deployment import parse_deployment
from streamproc.runtime.live import MAX_WIDTH
from streamproc.runtime.runtime import Runtime
from tests.conftest import DATA
from tests.console_client import browser_session, signed_in

ROOT = Path(__file__).resolve().parents[1]
DOOR_CLIP = ROOT / "examples/clips/door.mp4"
ADMIN = ("AKIDLIVEADMIN", "live-admin-secret")
NO_VIEW = ("AKIDNOVIEW", "no-view-secret")

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _auth_file(path: Path) -> Path:
    everything = {"Version": "2012-10-17",
                  "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    no_streams = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["rekognition:*", "streamproc:ListVisits"],
         "Resource": "*"}]}
    path.write_text(json.dumps({"Users": [
        {"UserName": "admin", "AccessKeyId": ADMIN[0], "SecretAccessKey": ADMIN[1],
         "Policy": everything},
        {"UserName": "guest", "AccessKeyId": NO_VIEW[0], "SecretAccessKey": NO_VIEW[1],
         "Policy": no_streams},
    ]}))
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def runtime(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runtime]:
    """The door camera (looped, in real time, 5 analysed frames a second) searching a
    collection that knows the person who walks up first."""
    tmp = tmp_path_factory.mktemp("console-live")
    client = Client(store=tmp / "store")
    client.create_collection(CollectionId="household")
    client.index_faces(CollectionId="household", ExternalImageId="joe", MaxFaces=1,
                       Image={"Bytes": (DATA / "faces/joe_biden/2.jpg").read_bytes()})
    deployment = parse_deployment({
        "store": str(tmp / "store"),
        "http": {"enabled": True, "port": 0, "auth": str(_auth_file(tmp / "auth.json"))},
        "history": {"enabled": False},
        "streams": [{
            "id": "door", "url": str(DOOR_CLIP), "fps": 5, "loop": True, "realtime": True,
            "operations": [{"operation": "SearchFacesByImage", "CollectionId": "household",
                            "FaceMatchThreshold": 80}],
        }],
    })
    running = Runtime(deployment, engine=client.engine)
    await running.start()
    task = asyncio.create_task(running.run())
    running.task = task  # type: ignore[attr-defined]  # the last test stops it
    yield running
    running.stop()
    await asyncio.wait_for(task, 30)
    client.close()


def _url(runtime: Runtime) -> str:
    return f"http://127.0.0.1:{runtime.http_port}"


async def _events(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """The JSON of each ``data:`` event, as EventSource parses them."""
    while True:
        line = await response.content.readline()
        if not line:
            return
        if line.startswith(b"data: "):
            yield json.loads(line[6:])


async def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_nothing_is_encoded_while_nobody_watches(runtime: Runtime) -> None:
    live = runtime.live
    assert live is not None
    await _wait(lambda: (s := live.stream("door")) is not None and s.frames >= 6, 20,
                "analysed frames")
    assert live.viewers("door") == 0 and live.encoded == 0
    async with browser_session() as http:
        await signed_in(http, _url(runtime), *ADMIN)
        response = await http.get(f"{_url(runtime)}/console/live/door/frame.jpg")
        assert response.status == 404
        assert "No frame yet" in await response.text()
    assert live.encoded == 0


async def test_events_bring_frames_with_faces_and_the_jpeg_of_each(runtime: Runtime) -> None:
    live = runtime.live
    assert live is not None
    url = _url(runtime)
    frames: list[dict[str, Any]] = []
    async with browser_session() as http:
        await signed_in(http, url, *ADMIN)
        page = await http.get(f"{url}/console/live/door")
        html = await page.text()
        assert page.status == 200 and "/static/live.js" in html and 'id="live-img"' in html
        async with http.get(f"{url}/console/live/door/events") as stream:
            assert stream.status == 200
            assert stream.headers["Content-Type"] == "text/event-stream"
            async with asyncio.timeout(20):
                async for event in _events(stream):
                    assert event["status"] in ("CONNECTING", "ONLINE")
                    if event["type"] != "frame":
                        continue
                    frames.append(event)
                    if len(frames) >= 2 and any(f["faces"] for f in frames):
                        break
            assert live.viewers("door") == 1
            last = frames[-1]
            jpeg = await http.get(f"{url}/console/live/door/frame.jpg",
                                  params={"n": str(last["frame"])})
            assert jpeg.status == 200 and jpeg.headers["Cache-Control"] == "no-store"
            assert jpeg.content_type == "image/jpeg"
            assert jpeg.headers["X-Frame-Number"] == str(last["frame"])
            image = Image.open(io.BytesIO(await jpeg.read()))
            assert image.format == "JPEG"
            assert image.size == (last["width"], last["height"]) == (640, 360)  # <= MAX_WIDTH
            assert last["width"] <= MAX_WIDTH
    numbers = [f["frame"] for f in frames]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers) >= 2
    face = next(f for frame in frames for f in frame["faces"])
    box = face["box"]
    assert set(box) == {"Left", "Top", "Width", "Height"}
    assert 0 < box["Width"] < 1 and 0 < box["Height"] < 1
    assert all(frame["searched"] for frame in frames)  # names (or unknown) come from a search
    assert last["fps"] > 0 and last["frames"] >= last["fps"]
    assert live.encoded >= 2
    # The viewer left: encoding stops although the camera goes on.
    await _wait(lambda: live.viewers("door") == 0, 5, "the viewer to be gone")
    encoded = live.encoded
    state = live.stream("door")
    assert state is not None
    analysed = state.frames
    await _wait(lambda: (s := live.stream("door")) is not None and s.frames >= analysed + 4, 10,
                "more analysed frames")
    assert live.encoded == encoded
    assert live.frame("door") is None  # nothing kept for nobody


async def test_a_known_face_is_named_in_the_events(runtime: Runtime) -> None:
    """The person walking up is the indexed 'joe': once close enough, the boxes carry the
    name and the similarity the search gave."""
    async with browser_session() as http:
        await signed_in(http, _url(runtime), *ADMIN)
        async with http.get(f"{_url(runtime)}/console/live/door/events") as stream:
            async with asyncio.timeout(25):  # the clip loops every 17 s
                async for event in _events(stream):
                    named = [f for f in event.get("faces", []) if f["name"]]
                    if named:
                        break
    assert named[0]["name"] == "joe" and named[0]["similarity"] >= 80


async def test_the_streams_page_shows_each_stream_with_its_status(runtime: Runtime) -> None:
    async with browser_session() as http:
        await signed_in(http, _url(runtime), *ADMIN)
        page = await http.get(f"{_url(runtime)}/console/live/")
        html = await page.text()
    assert page.status == 200
    assert 'href="/console/live/door"' in html
    assert 'class="status status-online">online<' in html
    assert re.search(r"\d+\.\d fps", html) and re.search(r"\d+ ms", html)


async def test_a_user_without_view_streams_is_refused_everywhere(runtime: Runtime) -> None:
    url = _url(runtime)
    async with browser_session() as http:
        await signed_in(http, url, *NO_VIEW)
        index = await http.get(f"{url}/console/live/")
        assert index.status == 200 and "/console/live/door" not in await index.text()
        for path in ("", "/events", "/frame.jpg"):
            response = await http.get(f"{url}/console/live/door{path}")
            assert response.status == 403, path
            assert "streamproc:ViewStreams" in await response.text()
    live = runtime.live
    assert live is not None
    # No watch was opened for the refused user (the earlier tests' viewers leave).
    await _wait(lambda: live.viewers("door") == 0, 5, "no viewer")


async def test_an_unknown_stream_is_a_404_page(runtime: Runtime) -> None:
    url = _url(runtime)
    async with browser_session() as http:
        await signed_in(http, url, *ADMIN)
        for path in ("nope", "nope/events", "nope/frame.jpg", "..%2Fdoor"):
            response = await http.get(f"{url}/console/live/{path}")
            assert response.status == 404, path
        page = await http.get(f"{url}/console/live/nope")
        assert "No camera named" in await page.text()


async def test_stopping_the_runtime_ends_an_open_live_view_promptly(runtime: Runtime) -> None:
    url = _url(runtime)
    async with browser_session() as http:
        await signed_in(http, url, *ADMIN)
        async with http.get(f"{url}/console/live/door/events") as stream:
            seen: list[dict[str, Any]] = []
            async with asyncio.timeout(10):
                async for event in _events(stream):
                    seen.append(event)
                    if event["type"] == "frame":
                        break
            started = time.monotonic()
            runtime.stop()
            async with asyncio.timeout(10):
                async for event in _events(stream):  # ends: the server closed the stream
                    seen.append(event)
            await asyncio.wait_for(runtime.task, 10)  # type: ignore[attr-defined]
            took = time.monotonic() - started
    assert took < 5, f"stopping took {took:.1f} s with a viewer connected"
    assert seen[-1]["status"] == "STOPPED"


async def test_a_camera_another_node_runs_shows_that_node() -> None:
    """In a cluster the console shows where a camera runs: the lease holder as the lease
    polls see it, the status as that node publishes it; this node's own status wins."""
    from streamproc.runtime.live import LiveStreams

    live = LiveStreams(["door", "yard"])
    live.on_remote_holder("door", "node-b")
    door = live.stream("door")
    assert door is not None and door.node == "node-b" and door.status == "CONNECTING"
    live.on_remote_status("door", "node-b", "ONLINE", None)
    door = live.stream("door")
    assert door is not None and (door.node, door.status) == ("node-b", "ONLINE")
    live.on_status("door", "CONNECTING", "lease acquired")  # the camera moved here
    door = live.stream("door")
    assert door is not None and door.node is None and door.status == "CONNECTING"
    assert [s.node for s in live.streams()] == [None, None]
