"""File sources on a real clip (and containers remuxed/encoded from its real frames)."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from streamproc.sources import (
    FileSource,
    Frame,
    LatestFrame,
    RtspSource,
    SourceState,
    UnsupportedSourceError,
    create_source,
    register_source,
    source_scheme,
)
from streamproc.sources.registry import SOURCE_FACTORIES
from tests.fixtures_streaming import TEST_CLIP, SourceRecorder

CLIP_FRAMES, CLIP_W, CLIP_H, CLIP_FPS = 250, 640, 272, 25


@pytest.fixture(scope="module")
def derived_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The test clip in other containers: raw H.264 remuxed (same packets), and MJPEG AVI
    and GIF encoded from its first frames."""
    out = tmp_path_factory.mktemp("clips")
    raw = out / "bikes.h264"
    with av.open(str(TEST_CLIP)) as src, av.open(str(raw), "w", format="h264") as dst:
        in_stream = src.streams.video[0]
        out_stream = dst.add_stream_from_template(in_stream)
        for packet in src.demux(in_stream):
            if packet.dts is not None:
                packet.stream = out_stream
                dst.mux(packet)
    clips = {"h264": raw}
    for fmt, codec, pix_fmt in (("avi", "mjpeg", "yuvj420p"), ("gif", "gif", "rgb8")):
        path = out / f"bikes.{fmt}"
        with av.open(str(TEST_CLIP)) as src, av.open(str(path), "w") as dst:
            stream = dst.add_stream(codec, rate=CLIP_FPS)
            stream.width, stream.height, stream.pix_fmt = 160, 68, pix_fmt
            for i, frame in enumerate(src.decode(video=0)):
                if i == 20:
                    break
                small = frame.reformat(width=160, height=68, format=pix_fmt)
                small.pts, small.time_base = i, Fraction(1, CLIP_FPS)
                dst.mux(stream.encode(small))
            dst.mux(stream.encode())
        clips[fmt] = path
    return clips


def _check_monotonic(frames: list[Frame]) -> None:
    numbers = [f.frame_number for f in frames]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in zip(pts, pts[1:], strict=False)), "pts must increase"


async def test_mp4_yields_every_frame_in_order() -> None:
    source = FileSource("bikes", TEST_CLIP)
    events: list[SourceState] = []
    source.add_status_listener(lambda e: events.append(e.state))
    frames: list[Frame] = []
    t0 = time.perf_counter()
    async for frame in source:
        frames.append(
            Frame(
                frame.stream_id,
                frame.frame_number,
                frame.pts,
                frame.capture_time,
                frame.width,
                frame.height,
                frame.rgb[:1, :1],
            )
        )  # keep metadata, drop pixels
        if len(frames) == 1:
            assert frame.rgb.shape == (CLIP_H, CLIP_W, 3) and frame.rgb.dtype == np.uint8
            assert frame.rgb.flags.c_contiguous and frame.rgb.std() > 10  # a real picture
    elapsed = time.perf_counter() - t0
    print(f"file decode+rgb: {len(frames) / elapsed:.0f} fps ({CLIP_W}x{CLIP_H})")
    assert len(frames) == CLIP_FRAMES
    assert frames[0].frame_number == 0 and frames[0].pts == 0.0
    assert frames[-1].pts == pytest.approx((CLIP_FRAMES - 1) / CLIP_FPS, abs=1e-3)
    assert {(f.width, f.height, f.stream_id) for f in frames} == {(CLIP_W, CLIP_H, "bikes")}
    _check_monotonic(frames)
    assert events == [SourceState.CONNECTING, SourceState.ONLINE, SourceState.STOPPED]
    assert source.frames_skipped == 0  # back-pressure, not dropping, when not realtime


@pytest.mark.parametrize("fmt", ["h264", "avi", "gif"])
async def test_other_containers(derived_clips: dict[str, Path], fmt: str) -> None:
    path = derived_clips[fmt]
    frames = [f async for f in create_source(fmt, f"file://{path}")]
    remuxed = fmt == "h264"
    assert len(frames) == (CLIP_FRAMES if remuxed else 20)
    assert (frames[0].width, frames[0].height) == ((CLIP_W, CLIP_H) if remuxed else (160, 68))
    assert frames[0].rgb.shape[2] == 3
    _check_monotonic(frames)


async def test_loop_keeps_numbers_and_pts_increasing() -> None:
    source = FileSource("loop", TEST_CLIP, loop=True)
    frames: list[Frame] = []
    async for frame in source:
        frames.append(frame)
        if len(frames) == CLIP_FRAMES + 30:
            break
    await source.close()
    _check_monotonic(frames)
    boundary = frames[CLIP_FRAMES - 1 : CLIP_FRAMES + 1]
    assert boundary[1].pts - boundary[0].pts == pytest.approx(1 / CLIP_FPS, abs=1e-3)
    # Second pass shows the same pictures as the first.
    assert np.array_equal(frames[CLIP_FRAMES].rgb, frames[0].rgb)
    assert source.status.state is SourceState.STOPPED


async def test_realtime_paces_to_pts() -> None:
    source = FileSource("rt", TEST_CLIP, realtime=True)
    recorder = SourceRecorder(source)
    await recorder.wait_frames(16, timeout=5)
    await recorder.close()
    captures = [c for _, _, c, _ in recorder.frames[:16]]
    span = captures[-1] - captures[0]
    assert 15 / CLIP_FPS * 0.8 < span < 15 / CLIP_FPS * 1.6, span


async def test_missing_file_goes_offline_without_raising(tmp_path: Path) -> None:
    source = FileSource("missing", tmp_path / "nope.mp4")
    recorder = SourceRecorder(source)
    await asyncio.wait_for(recorder.task, 5)
    assert recorder.error is None and recorder.frames == []
    offline = [e for e in recorder.events if e.state is SourceState.OFFLINE]
    assert offline and "nope.mp4" in (offline[0].reason or "")
    assert recorder.states()[-1] is SourceState.STOPPED


async def test_slow_consumer_gets_fresh_frames_and_skips_are_counted() -> None:
    """A real decoder at 25 fps, a consumer at ~6 fps: no backlog, only the newest frame."""
    source = FileSource("slow", TEST_CLIP, realtime=True, loop=True)
    got: list[tuple[int, float]] = []
    async for frame in source:
        got.append((frame.frame_number, time.time() - frame.capture_time))
        if len(got) == 8:
            break
        await asyncio.sleep(0.15)  # a slow model
    await source.close()
    numbers = [n for n, _ in got]
    gaps = [b - a for a, b in zip(numbers, numbers[1:], strict=False)]
    assert all(g >= 1 for g in gaps) and max(gaps) >= 3, gaps
    # Every frame handed out was decoded within the last frame interval or so, not queued.
    assert max(age for _, age in got[1:]) < 0.15, got
    assert source.frames_skipped >= sum(g - 1 for g in gaps) - 1
    assert source.frames_decoded - source.frames_skipped - len(got) in (0, 1)


def _frame(n: int) -> Frame:
    return Frame("x", n, n / 25, time.time(), 2, 2, np.zeros((2, 2, 3), np.uint8))


async def test_latest_frame_slot() -> None:
    slot = LatestFrame()
    for n in range(3):
        slot.put(_frame(n))
    got = await slot.get()
    assert got is not None and got.frame_number == 2
    assert (slot.received, slot.delivered, slot.skipped) == (3, 1, 2)

    waiter = asyncio.create_task(slot.get())
    await asyncio.sleep(0.01)
    assert not waiter.done()  # waits for a fresh frame, never re-delivers
    slot.put(_frame(3))
    assert (await waiter).frame_number == 3  # type: ignore[union-attr]

    slot.put(_frame(4))
    slot.close()
    assert (await slot.get()).frame_number == 4  # type: ignore[union-attr]
    assert await slot.get() is None
    slot.put(_frame(5))
    assert slot.received == 5  # closed: ignored


def test_registry_picks_by_scheme(tmp_path: Path) -> None:
    assert source_scheme("rtsp://cam/1") == "rtsp" and source_scheme("RTSPS://x") == "rtsps"
    assert source_scheme("/videos/a.mp4") == "file" and source_scheme("a.mp4") == "file"
    assert source_scheme("C:\\videos\\a.mp4") == "file"
    assert isinstance(create_source("a", "rtsp://127.0.0.1:1/x"), RtspSource)
    assert isinstance(create_source("a", "rtsps://127.0.0.1:1/x"), RtspSource)
    file_source = create_source("a", f"file://{tmp_path}/my%20clip.mp4", loop=True)
    assert isinstance(file_source, FileSource)
    assert file_source.path == tmp_path / "my clip.mp4" and file_source.loop
    assert isinstance(create_source("a", str(TEST_CLIP)), FileSource)
    with pytest.raises(UnsupportedSourceError, match="webrtc"):
        create_source("a", "webrtc://x")
    with pytest.raises(ValueError, match="already registered"):
        register_source("rtsp", RtspSource)
    register_source("whip", FileSource)
    try:
        assert isinstance(create_source("a", "whip://x"), FileSource)
    finally:
        del SOURCE_FACTORIES["whip"]


async def test_limit_rate_drops_frames_where_they_are_decoded() -> None:
    """A camera analysed at 5 fps of a 25 fps (real-time) file: the decode thread hands over
    one frame per 0.2 s of stream time and counts the rest, so they never wake the event
    loop. A file decoded as fast as it is read (back-pressure) hands over every frame."""
    source = FileSource("bikes", TEST_CLIP, realtime=True)
    source.limit_rate(5)
    frames = []
    async for frame in source:
        frames.append(frame)
        if len(frames) == 10:  # 2 s of the clip are enough
            await source.close()
    assert all(b.pts - a.pts == pytest.approx(0.2, abs=1e-3)
               for a, b in zip(frames, frames[1:], strict=False))
    # Frame numbers still count every decoded frame, as without the limit.
    assert [f.frame_number for f in frames] == list(range(0, 50, 5))
    assert source.frames_skipped == 0
    assert source.frames_decoded - source.budget_skipped - len(frames) in (0, 1)
    ordered = FileSource("bikes", TEST_CLIP)
    ordered.limit_rate(5)
    assert len([frame async for frame in ordered]) == CLIP_FRAMES
    assert ordered.budget_skipped == 0
