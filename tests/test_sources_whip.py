"""WHIP sources against a real aiortc publisher sending the test clip over real HTTP + WebRTC."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

import aiohttp
import aioice.ice
import pytest
from aiohttp import web

from streamproc.http.whip import WhipServer
from streamproc.sources import Frame, SourceState
from streamproc.sources.whip import WhipSource
from tests.fixtures_streaming import SourceRecorder
from tests.whip_publisher import WhipPublisher

TOKEN = "t0ken-for-tests"
CLIP_SHAPE = (272, 640, 3)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice leaves 127.0.0.1 out on purpose; offer it so a loopback-only host works."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.fixture
async def server() -> AsyncIterator[WhipServer]:
    whip = WhipServer()
    await whip.start("127.0.0.1", 0)
    yield whip
    await whip.stop()


@pytest.fixture
async def publishers() -> AsyncIterator[list[WhipPublisher]]:
    """Publishers a test creates; all are closed at the end."""
    created: list[WhipPublisher] = []
    yield created
    for publisher in created:
        await publisher.close()


def _publisher(
    server: WhipServer, created: list[WhipPublisher], stream: str = "cam", token: str = TOKEN
) -> WhipPublisher:
    publisher = WhipPublisher(server.url(stream), token)
    created.append(publisher)
    return publisher


def _assert_numbering(recorder: SourceRecorder) -> None:
    """Numbers only grow; a gap is a frame the slot dropped, and every drop is counted."""
    numbers = [n for n, *_ in recorder.frames]
    assert all(b > a for a, b in zip(numbers, numbers[1:], strict=False))
    assert numbers[-1] + 1 - len(numbers) <= recorder.source.frames_skipped


async def _request(method: str, url: str, **kwargs: object) -> tuple[int, dict[str, str], str]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, **kwargs) as response,  # type: ignore[arg-type]
    ):
        return response.status, dict(response.headers), await response.text()


async def test_publisher_frames_arrive(server: WhipServer, publishers: list[WhipPublisher]) -> None:
    source = WhipSource("cam", server, TOKEN)
    recorder = SourceRecorder(source)
    assert source.status.state is SourceState.CONNECTING
    assert source.status.reason == "waiting for publisher"

    publisher = _publisher(server, publishers)
    t0 = time.monotonic()
    assert await publisher.start() == 201, publisher.error
    post_s = time.monotonic() - t0
    assert re.fullmatch(r"/whip/cam/[\w-]{16,}", publisher.headers["Location"])
    assert publisher.headers["Content-Type"] == "application/sdp"
    assert publisher.headers["Access-Control-Allow-Origin"] == "*"
    assert "Location" in publisher.headers["Access-Control-Expose-Headers"]
    assert publisher.answer is not None and "a=candidate:" in publisher.answer  # non-trickle
    assert source.session_id is not None

    await recorder.wait_frames(1, timeout=10)
    first_frame_s = time.monotonic() - t0
    cpu0, wall0, frames0 = time.process_time(), time.monotonic(), len(recorder.frames)
    await recorder.wait_frames(50, timeout=10)
    cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    captures = [c for _, _, c, _ in recorder.frames[frames0:]]
    fps = (len(captures) - 1) / (captures[-1] - captures[0])
    print(
        f"whip: POST answered in {post_s * 1000:.0f} ms, first frame {first_frame_s:.3f}s "
        f"after POST, {fps:.1f} fps, process CPU {cpu:.0%} of one core (publisher included)"
    )

    assert recorder.error is None
    assert recorder.shape == CLIP_SHAPE
    _assert_numbering(recorder)
    pts = [p for _, p, *_ in recorder.frames]
    assert pts[0] < 1.0
    assert all(b > a for a, b in zip(pts, pts[1:], strict=False))
    assert 15 < fps < 40, fps  # the clip's 25 fps, paced by the publisher
    assert recorder.events[0].state is SourceState.CONNECTING
    assert recorder.events[0].reason == "publisher 127.0.0.1 negotiating"
    assert recorder.states()[1] is SourceState.ONLINE
    await recorder.close()
    assert recorder.states()[-1] is SourceState.STOPPED


async def test_frame_fields(server: WhipServer, publishers: list[WhipPublisher]) -> None:
    source = WhipSource("cam", server, TOKEN)
    assert await _publisher(server, publishers).start() == 201
    frames: list[Frame] = []
    async with asyncio.timeout(10):
        async for frame in source:
            frames.append(frame)
            if len(frames) == 3:
                break
    await source.close()
    for frame in frames:
        assert frame.stream_id == "cam"
        assert (frame.height, frame.width) == CLIP_SHAPE[:2]
        assert frame.rgb.shape == CLIP_SHAPE and frame.rgb.dtype.name == "uint8"
        assert abs(frame.capture_time - time.time()) < 15
    assert frames[1].rgb.mean() > 10  # a real picture, not a black frame


async def test_refusals(server: WhipServer, publishers: list[WhipPublisher]) -> None:
    source = WhipSource("cam", server, TOKEN)
    url = server.url("cam")
    offer_headers = {"Content-Type": "application/sdp"}

    status, headers, _ = await _request(
        "POST",
        server.url("nope"),
        data=b"v=0",
        headers={**offer_headers, "Authorization": f"Bearer {TOKEN}"},
    )
    assert status == 404
    assert headers["Access-Control-Allow-Origin"] == "*"

    for auth in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        status, headers, _ = await _request(
            "POST", url, data=b"v=0", headers={**offer_headers, **auth}
        )
        assert status == 401, auth
        assert headers["WWW-Authenticate"].startswith("Bearer")

    status, headers, _ = await _request(
        "POST",
        url,
        data=b"v=0",
        headers={"Content-Type": "text/plain", "Authorization": f"Bearer {TOKEN}"},
    )
    assert status == 415
    assert headers["Accept-Post"] == "application/sdp"

    status, _, body = await _request(
        "POST", url, data=b"not sdp", headers={**offer_headers, "Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 400, body
    assert source.session_id is None  # the failed negotiation left nothing behind
    assert source.status.state is SourceState.OFFLINE

    status, headers, _ = await _request(
        "OPTIONS",
        url,
        headers={"Origin": "https://example.org", "Access-Control-Request-Method": "POST"},
    )
    assert status == 204
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "Authorization" in headers["Access-Control-Allow-Headers"]

    first = _publisher(server, publishers)
    assert await first.start() == 201
    second = _publisher(server, publishers)
    assert await second.start() == 409  # one publisher per stream
    assert first.location is not None
    status, _, _ = await _request(
        "PATCH",
        first.location,
        headers={
            "Content-Type": "application/trickle-ice-sdpfrag",
            "Authorization": f"Bearer {TOKEN}",
        },
    )
    assert status == 405
    status, headers, _ = await _request("DELETE", first.location)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    status, _, _ = await _request(
        "DELETE", first.location + "x", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 404
    status, _, _ = await _request(
        "DELETE", first.location[:-2] + "%C3%A9", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 404  # a non-ASCII session id is just unknown
    assert source.session_id is not None  # the refused requests did not touch the session
    await source.close()
    status, _, _ = await _request(
        "POST", url, data=b"v=0", headers={**offer_headers, "Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 404  # a closed source is unregistered


async def test_delete_then_new_publisher(
    server: WhipServer, publishers: list[WhipPublisher]
) -> None:
    source = WhipSource("cam", server, TOKEN)
    recorder = SourceRecorder(source)
    first = _publisher(server, publishers)
    assert await first.start() == 201
    await recorder.wait_frames(10)

    assert await first.stop() == 200
    offline = await source.wait_for_status(SourceState.OFFLINE, timeout=5)
    assert offline.reason == "publisher ended the session (DELETE)"
    assert source.session_id is None
    assert first.pc is not None and first.pc.connectionState == "closed"
    before = len(recorder.frames)
    last_number = recorder.frames[-1][0]

    second = _publisher(server, publishers)
    assert await second.start() == 201  # the stream is free again
    await source.wait_for_status(SourceState.ONLINE, timeout=10)
    await recorder.wait_frames(10)
    assert not recorder.task.done()  # the iterator survived the publisher leaving
    assert recorder.frames[before][0] > last_number
    _assert_numbering(recorder)
    assert source.sessions == 2
    assert recorder.states()[-4:] == [
        SourceState.ONLINE,
        SourceState.OFFLINE,
        SourceState.CONNECTING,
        SourceState.ONLINE,
    ]
    await recorder.close()
    assert recorder.error is None


async def test_publisher_vanishes_without_delete(
    server: WhipServer, publishers: list[WhipPublisher]
) -> None:
    source = WhipSource("cam", server, TOKEN, frame_timeout=2.0)
    recorder = SourceRecorder(source)
    publisher = _publisher(server, publishers)
    assert await publisher.start() == 201
    await recorder.wait_frames(5)
    await publisher.close()  # no DELETE: the DTLS close or the frame watchdog must notice
    offline = await source.wait_for_status(SourceState.OFFLINE, timeout=5)
    assert offline.reason is not None
    print(f"whip: publisher gone without DELETE -> OFFLINE: {offline.reason}")
    assert source.session_id is None
    assert await _publisher(server, publishers).start() == 201
    await recorder.wait_frames(5)
    await recorder.close()


async def test_slow_consumer_skips(server: WhipServer, publishers: list[WhipPublisher]) -> None:
    source = WhipSource("cam", server, TOKEN)
    assert await _publisher(server, publishers).start() == 201
    numbers: list[int] = []
    async with asyncio.timeout(15):
        async for frame in source:
            numbers.append(frame.frame_number)
            if len(numbers) == 8:
                break
            await asyncio.sleep(0.2)  # a model at 5 fps on a 25 fps stream
    skipped = source.frames_skipped
    await source.close()
    assert skipped >= 10
    assert all(b > a for a, b in zip(numbers, numbers[1:], strict=False))
    assert numbers[-1] + 1 - len(numbers) <= skipped
    gaps = [b - a for a, b in zip(numbers[1:], numbers[2:], strict=False)]
    assert min(gaps) >= 2  # the reader always got the newest frame, not the next one


async def test_close_cleans_up(server: WhipServer, publishers: list[WhipPublisher]) -> None:
    source = WhipSource("cam", server, TOKEN)
    recorder = SourceRecorder(source)
    publisher = _publisher(server, publishers)
    assert await publisher.start() == 201
    await recorder.wait_frames(3)
    await recorder.close()  # ends the iterator
    assert recorder.states()[-1] is SourceState.STOPPED
    assert source.session_id is None
    assert server.stream_ids == []
    assert publisher.pc is not None
    async with asyncio.timeout(5):  # the publisher sees the DTLS close
        while publisher.pc.connectionState != "closed":
            await asyncio.sleep(0.05)
    WhipSource("cam", server, TOKEN)  # the stream id is free again


async def test_mounted_on_existing_app(publishers: list[WhipPublisher]) -> None:
    whip = WhipServer()
    app = web.Application()

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/health", health)
    whip.add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        source = WhipSource("door", whip, None)  # no token: authentication off
        recorder = SourceRecorder(source)
        assert (await _request("GET", f"http://127.0.0.1:{port}/health"))[0] == 200
        publisher = WhipPublisher(f"http://127.0.0.1:{port}/whip/door", None)
        publishers.append(publisher)
        assert await publisher.start() == 201
        await recorder.wait_frames(3)
    finally:
        await runner.cleanup()  # app shutdown ends the sessions
    offline = await source.wait_for_status(SourceState.OFFLINE, timeout=5)
    assert offline.reason == "HTTP server shutting down"
    await recorder.close()


async def test_duplicate_stream_id_rejected(server: WhipServer) -> None:
    source = WhipSource("cam", server, TOKEN)
    with pytest.raises(ValueError, match="already registered"):
        WhipSource("cam", server, TOKEN)
    with pytest.raises(ValueError, match="one path segment"):
        WhipSource("a/b", server, TOKEN)
    await source.close()


async def test_stalled_publishers_release_the_stream(
    server: WhipServer, publishers: list[WhipPublisher]
) -> None:
    """Without the watchdog a dead publisher would hold the stream (409) for ~30 s."""
    source = WhipSource("cam", server, TOKEN, frame_timeout=1.0)
    recorder = SourceRecorder(source)
    stalled = _publisher(server, publishers)
    assert await stalled.start() == 201
    await recorder.wait_frames(3)
    assert stalled.player is not None and stalled.player.video is not None
    stalled.player.video.stop()  # connection stays up (ICE consent), no more frames
    offline = await source.wait_for_status(SourceState.OFFLINE, timeout=5)
    assert offline.reason == "no frame from the publisher for 1s"

    # A publisher that posts an offer and then never connects.
    silent = _publisher(server, publishers)
    assert await silent.start() == 201
    assert silent.pc is not None
    await silent.pc.close()  # before ICE/DTLS could complete
    await source.wait_for_status(SourceState.CONNECTING, timeout=1)
    offline = await source.wait_for_status(SourceState.OFFLINE, timeout=5)
    print(f"whip: publisher that never connected -> OFFLINE: {offline.reason}")
    assert source.session_id is None

    # Two publishers racing for the free stream: exactly one wins.
    racers = [_publisher(server, publishers) for _ in range(2)]
    statuses = sorted(await asyncio.gather(*(r.start() for r in racers)))
    assert statuses == [201, 409]
    await recorder.wait_frames(3)
    await recorder.close()
    assert recorder.error is None
