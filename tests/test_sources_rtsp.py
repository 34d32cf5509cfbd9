"""RTSP sources against a real RTSP server (gst-rtsp-server) and real broken endpoints."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from streamproc.sources import Backoff, RtspSource, SourceState, create_source
from tests.fixtures_streaming import RtspTestServer, SourceRecorder

OPEN_S = READ_S = 1.0
FAST_BACKOFF = Backoff(initial=0.1, maximum=0.4)

pytestmark = pytest.mark.timeout(60)


def _source(url: str, **kwargs: object) -> RtspSource:
    options: dict[str, object] = {
        "open_timeout": OPEN_S,
        "read_timeout": READ_S,
        "backoff": FAST_BACKOFF,
    }
    options.update(kwargs)
    return RtspSource("cam", url, **options)  # type: ignore[arg-type]


def _assert_numbering(recorder: SourceRecorder) -> None:
    """Numbers only grow; a gap is a frame the slot dropped, and every drop is counted."""
    numbers = [n for n, *_ in recorder.frames]
    assert all(b > a for a, b in zip(numbers, numbers[1:], strict=False))
    assert numbers[-1] + 1 - len(numbers) <= recorder.source.frames_skipped


async def test_receives_frames_from_real_server(
    rtsp_server: Callable[..., RtspTestServer],
) -> None:
    server = rtsp_server()
    source = create_source("cam", server.url, open_timeout=OPEN_S, read_timeout=READ_S)
    assert isinstance(source, RtspSource)
    recorder = SourceRecorder(source)
    t0 = time.monotonic()
    online = await source.wait_for_status(SourceState.ONLINE, timeout=5)
    await recorder.wait_frames(1)
    first_frame = time.monotonic() - t0
    await recorder.wait_frames(24)
    await recorder.close()

    connecting = recorder.events[0]
    assert connecting.state is SourceState.CONNECTING
    print(
        f"rtsp: online {online.time - connecting.time:.3f}s after connecting, "
        f"first frame {first_frame:.3f}s after start"
    )
    assert recorder.error is None
    assert recorder.shape == (272, 640, 3)
    _assert_numbering(recorder)
    pts = [p for _, p, *_ in recorder.frames]
    assert all(b > a for a, b in zip(pts, pts[1:], strict=False))
    # Paced by the server at the clip's 25 fps, delivered without a backlog.
    captures = [c for *_, c, _ in recorder.frames]
    fps = (len(captures) - 1) / (captures[-1] - captures[0])
    assert 15 < fps < 40, fps
    assert recorder.states()[:2] == [SourceState.CONNECTING, SourceState.ONLINE]
    assert recorder.states()[-1] is SourceState.STOPPED


async def test_server_killed_and_restarted_on_same_port(
    rtsp_server: Callable[..., RtspTestServer],
) -> None:
    server = rtsp_server()
    port = server.port
    source = _source(server.url)
    recorder = SourceRecorder(source)
    await recorder.wait_frames(10, timeout=5)

    server.kill()  # power cut: the kernel closes the TCP connection
    offline = await source.wait_for_status(SourceState.OFFLINE, timeout=2 * READ_S + 2)
    assert "end of stream" in (offline.reason or "") or "read" in (offline.reason or "")
    frames_before = len(recorder.frames)

    await asyncio.sleep(0.5)  # a few refused reconnects while the camera is down
    restarted = time.monotonic()
    server.start()
    assert server.port == port
    await source.wait_for_status(SourceState.ONLINE, timeout=5)
    online_after = time.monotonic() - restarted
    await recorder.wait_frames(10, timeout=5)
    print(f"rtsp: back online {online_after:.3f}s after the server was restarted")
    await recorder.close()

    assert recorder.error is None, "the iterator must never raise"
    assert len(recorder.frames) >= frames_before + 10
    _assert_numbering(recorder)  # continues across the reconnect
    states = recorder.states()
    first_offline = states.index(SourceState.OFFLINE)
    assert SourceState.ONLINE in states[first_offline:]
    refused = [
        e
        for e in recorder.events
        if e.state is SourceState.OFFLINE and "refused" in (e.reason or "")
    ]
    assert refused, [e.reason for e in recorder.events]
    assert source.connections == 2


async def test_stalled_server_trips_read_timeout(
    rtsp_server: Callable[..., RtspTestServer],
) -> None:
    server = rtsp_server()
    source = _source(server.url)
    recorder = SourceRecorder(source)
    await recorder.wait_frames(5, timeout=5)

    server.pause()  # SIGSTOP: connection open, no bytes
    stalled = time.monotonic()
    try:
        offline = await source.wait_for_status(SourceState.OFFLINE, timeout=4 * READ_S + 2)
        detected = time.monotonic() - stalled
        print(f"rtsp: stall detected after {detected:.3f}s (read timeout {READ_S}s)")
        assert "read timeout" in (offline.reason or ""), offline.reason
        assert detected < 2 * READ_S + 1.0
    finally:
        server.resume()
    await source.wait_for_status(SourceState.ONLINE, timeout=5 * OPEN_S)
    await recorder.wait_frames(5, timeout=5)
    await recorder.close()
    assert recorder.error is None


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """Accepts TCP connections and never says a word (a wedged camera)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


async def _collect_attempts(source: RtspSource, count: int, timeout: float) -> SourceRecorder:
    recorder = SourceRecorder(source)
    async with asyncio.timeout(timeout):
        while recorder.states().count(SourceState.OFFLINE) < count:
            await asyncio.sleep(0.02)
    assert not recorder.task.done(), "the iterator must keep running"
    await recorder.close()
    assert recorder.error is None and recorder.frames == []
    return recorder


async def test_refused_port_retries_with_backoff(closed_port: int) -> None:
    source = _source(f"rtsp://127.0.0.1:{closed_port}/cam", backoff=Backoff(0.1, 0.4, jitter=0.0))
    recorder = await _collect_attempts(source, count=5, timeout=5)
    offline = [e for e in recorder.events if e.state is SourceState.OFFLINE]
    assert all("refused" in (e.reason or "").lower() for e in offline)
    assert [e.retry_in for e in offline[:5]] == pytest.approx([0.1, 0.2, 0.4, 0.4, 0.4])
    connects = [e.time for e in recorder.events if e.state is SourceState.CONNECTING]
    gaps = [b - a for a, b in zip(connects, connects[1:], strict=False)]
    assert gaps[0] >= 0.1 and gaps[2] >= 0.4 and gaps[2] > gaps[0], gaps
    assert [e.attempt for e in offline[:3]] == [0, 1, 2]


async def test_listener_that_never_speaks_times_out(silent_listener: int) -> None:
    source = _source(f"rtsp://127.0.0.1:{silent_listener}/cam", open_timeout=0.5)
    t0 = time.time()
    recorder = await _collect_attempts(source, count=2, timeout=6)
    offline = [e for e in recorder.events if e.state is SourceState.OFFLINE]
    assert "open timeout" in (offline[0].reason or ""), offline[0].reason
    assert offline[0].time - t0 < 2 * 0.5 + 0.5
