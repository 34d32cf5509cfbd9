"""The streams' live state for the console: status, rates, and the latest frame of a watched
stream.

:class:`LiveStreams` is an event sink (it learns each stream's status and reason) and the
runners' frame tap (it sees every analysed frame in the worker that analysed it). Only while
someone watches a stream does the tap encode frames, at most :data:`FRAME_INTERVAL` apart and
at most :data:`MAX_WIDTH` wide, with the faces the frame's own operations found: a camera
nobody watches costs a counter and a timestamp per frame, never a JPEG.

Viewers wait for changes without polling: :meth:`LiveStreams.watch` is an async iterator
woken (with ``call_soon_threadsafe`` from the worker) on each new frame and each status
change; :meth:`LiveStreams.close` ends every watch, so the HTTP server's shutdown never
waits on an open live view.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from PIL import Image

from streamproc.runtime.frame_result import FrameResult
from streamproc.runtime.stream import StreamStats
from streamproc.shapes import BoundingBox, FaceDetailsSection, FaceSearchSection, Shape

__all__ = [
    "FRAME_INTERVAL",
    "MAX_WIDTH",
    "LiveFace",
    "LiveFrame",
    "LiveStreams",
    "LiveUpdate",
    "StreamState",
    "faces_of",
]

#: Seconds between two encoded frames of one stream (at most 5 a second).
FRAME_INTERVAL = 0.2
#: Encoded frames are downscaled to this width at most (a phone or a laptop window).
MAX_WIDTH = 960
JPEG_QUALITY = 80
#: The recent frame rate is measured over this many seconds.
FPS_WINDOW = 10.0
#: Encoded frames kept per stream: a viewer fetching frame n a little late still gets n.
KEPT_FRAMES = 4


@dataclass(frozen=True)
class StreamState:
    """One stream as a viewer sees it now."""

    id: str
    status: str  # CONNECTING, ONLINE, OFFLINE or STOPPED
    reason: str | None
    since: float  # epoch of the last status change
    fps: float  # analysed frames a second, recently
    latency_ms: float | None  # the last frame's capture → publish
    frames: int  # analysed frames
    node: str | None = None  # in a cluster: the other node running it (its status is that node's)


@dataclass(frozen=True)
class LiveFace:
    box: BoundingBox  # ratios of the frame
    name: str | None  # the best match's ExternalImageId; None: nobody matched (or no search)
    similarity: float | None


@dataclass(frozen=True)
class LiveFrame:
    """The latest encoded frame of a watched stream, with what its analysis found."""

    jpeg: bytes
    width: int  # of the JPEG (downscaled)
    height: int
    frame_number: int
    capture_time: float
    faces: tuple[LiveFace, ...]
    searched: bool  # a collection was searched: a face without a name is unknown


@dataclass(frozen=True)
class LiveUpdate:
    """What a watch yields: the state, and the new frame if a frame is what changed."""

    state: StreamState
    frame: LiveFrame | None


def faces_of(result: FrameResult) -> tuple[tuple[LiveFace, ...], bool]:
    """The frame's faces with the names its search gave, and whether it searched at all
    (with DetectFaces only, boxes without names)."""
    search = result.section(FaceSearchSection)
    if search is not None:
        faces = []
        for record in search.FaceSearchResponse:
            best = max(record.MatchedFaces, key=lambda m: m.Similarity, default=None)
            name = None
            if best is not None:
                name = best.Face.ExternalImageId or f"face {best.Face.FaceId[:8]}"
            faces.append(LiveFace(record.DetectedFace.BoundingBox, name,
                                  best.Similarity if best is not None else None))
        return tuple(faces), True
    details = result.section(FaceDetailsSection)
    if details is not None:
        return tuple(LiveFace(d.BoundingBox, None, None) for d in details.FaceDetails), False
    return (), False


def encode(result: FrameResult) -> LiveFrame:
    """The frame as a JPEG at most :data:`MAX_WIDTH` wide (in the worker: Pillow releases
    the GIL while it resizes and encodes)."""
    frame = result.frame
    image = Image.fromarray(frame.rgb)
    if image.width > MAX_WIDTH:
        height = max(1, round(image.height * MAX_WIDTH / image.width))
        image = image.resize((MAX_WIDTH, height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    faces, searched = faces_of(result)
    return LiveFrame(buffer.getvalue(), image.width, image.height, frame.frame_number,
                     frame.capture_time, faces, searched)


class _Viewer:
    """One watch: woken from any thread, waited on in its own loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.changed = asyncio.Event()

    def wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            self.loop.call_soon_threadsafe(self.changed.set)


@dataclass
class _Stream:
    id: str
    status: str = "CONNECTING"
    reason: str | None = None
    since: float = field(default_factory=time.time)
    version: int = 0  # status changes
    frames: int = 0
    times: deque[float] = field(default_factory=deque)  # monotonic, within FPS_WINDOW
    first_tap: float | None = None
    last_encoded: float = float("-inf")
    recent: deque[LiveFrame] = field(default_factory=lambda: deque(maxlen=KEPT_FRAMES))
    viewers: set[_Viewer] = field(default_factory=set)
    stats: StreamStats | None = None
    node: str | None = None


class LiveStreams:
    """The configured streams' live state; an :class:`~streamproc.runtime.sinks.EventSink`
    and the runners' frame tap."""

    def __init__(self, stream_ids: Sequence[str]) -> None:
        self._streams = {sid: _Stream(sid) for sid in stream_ids}
        self._lock = threading.Lock()
        self._closed = False
        self.encoded = 0  # JPEGs made, all streams together (none while nobody watches)

    def attach(self, stream_id: str, stats: StreamStats) -> None:
        """The runner's stats: the capture → publish latency is measured there."""
        with self._lock:
            self._streams[stream_id].stats = stats

    # -- reading ----------------------------------------------------------------------------

    def streams(self) -> list[StreamState]:
        """Every configured stream, in the deployment's order."""
        now = time.monotonic()
        with self._lock:
            return [self._state(s, now) for s in self._streams.values()]

    def stream(self, stream_id: str) -> StreamState | None:
        with self._lock:
            found = self._streams.get(stream_id)
            return self._state(found, time.monotonic()) if found is not None else None

    def frame(self, stream_id: str, number: int | None = None) -> LiveFrame | None:
        """Frame ``number`` if it is still kept, else the latest; None before the first."""
        with self._lock:
            found = self._streams.get(stream_id)
            if found is None or not found.recent:
                return None
            if number is not None:
                for kept in found.recent:
                    if kept.frame_number == number:
                        return kept
            return found.recent[-1]

    def viewers(self, stream_id: str) -> int:
        with self._lock:
            found = self._streams.get(stream_id)
            return len(found.viewers) if found is not None else 0

    @staticmethod
    def _state(s: _Stream, now: float) -> StreamState:
        while s.times and s.times[0] < now - FPS_WINDOW:
            s.times.popleft()
        fps = 0.0
        if s.first_tap is not None and s.times:
            if now - s.first_tap >= FPS_WINDOW:
                fps = len(s.times) / FPS_WINDOW
            elif len(s.times) >= 2 and s.times[-1] > s.times[0]:
                fps = (len(s.times) - 1) / (s.times[-1] - s.times[0])
        latency = None
        if s.stats is not None and s.stats.analysed:
            latency = s.stats.last_latency_ms
        return StreamState(s.id, s.status, s.reason, s.since, fps, latency, s.frames, s.node)

    # -- the event sink (on the event loop) ------------------------------------------------

    def on_events(self, stream_id: str, events: Sequence[Shape]) -> None:
        """Visitor events are the visit history's business, not the live view's."""

    def on_status(self, stream_id: str, status: str, reason: str | None) -> None:
        self._set_status(stream_id, status, reason, None)

    def on_remote_status(self, stream_id: str, node: str, status: str, reason: str | None) -> None:
        """A cluster's other node runs the stream: its status, as that node published it."""
        self._set_status(stream_id, status, reason, node)

    def on_remote_holder(self, stream_id: str, node: str | None) -> None:
        """In a cluster: ``node`` (None: no node) holds the lease of a stream this node does
        not run (its status comes with that node's status messages)."""
        with self._lock:
            found = self._streams.get(stream_id)
            if found is None or found.node == node:
                return
            found.node = node
            found.version += 1
            viewers = list(found.viewers)
        for viewer in viewers:
            viewer.wake()

    def _set_status(self, stream_id: str, status: str, reason: str | None,
                    node: str | None) -> None:
        with self._lock:
            found = self._streams.get(stream_id)
            if found is None:
                return
            found.status, found.reason, found.since = status, reason, time.time()
            found.node = node
            found.version += 1
            if status != "ONLINE":
                found.first_tap = None  # the rate restarts with the next frames
            viewers = list(found.viewers)
        for viewer in viewers:
            viewer.wake()

    # -- the frame tap (in the worker that analysed the frame) -----------------------------

    def tap(self, result: FrameResult) -> None:
        now = time.monotonic()
        with self._lock:
            found = self._streams.get(result.stream_id)
            if found is None:
                return
            found.frames += 1
            found.times.append(now)
            if found.first_tap is None:
                found.first_tap = now
            if not found.viewers or now - found.last_encoded < FRAME_INTERVAL - 1e-3:
                return
            found.last_encoded = now
        live = encode(result)
        with self._lock:
            self.encoded += 1
            if not found.viewers:  # the last viewer left while we encoded
                return
            found.recent.append(live)
            viewers = list(found.viewers)
        for viewer in viewers:
            viewer.wake()

    # -- viewers -----------------------------------------------------------------------------

    async def watch(
        self, stream_id: str, *, idle: float = 15.0
    ) -> AsyncIterator[LiveUpdate | None]:
        """The stream's state now (with its latest frame), then on each new frame or status
        change; None after ``idle`` seconds without one (a keep-alive); ends on
        :meth:`close`. A watch counts as a viewer from its first step until it is closed
        (use ``contextlib.aclosing``)."""
        viewer = _Viewer(asyncio.get_running_loop())
        with self._lock:
            found = self._streams[stream_id]
            found.viewers.add(viewer)
        sent_frame: int | None = None
        sent_version = -1
        try:
            while True:
                viewer.changed.clear()
                with self._lock:
                    state = self._state(found, time.monotonic())
                    latest = found.recent[-1] if found.recent else None
                    version = found.version
                new = latest if latest is not None and latest.frame_number != sent_frame else None
                if new is not None or version != sent_version:
                    sent_version = version
                    if new is not None:
                        sent_frame = new.frame_number
                    yield LiveUpdate(state, new)
                    continue
                if self._closed:  # after the last change (a STOPPED) was sent
                    return
                try:
                    async with asyncio.timeout(idle):
                        await viewer.changed.wait()
                except TimeoutError:
                    if not self._closed:
                        yield None
        finally:
            with self._lock:
                found.viewers.discard(viewer)
                if not found.viewers:
                    found.recent.clear()  # nobody watches: no stale picture, no memory
                    found.last_encoded = float("-inf")

    def close(self) -> None:
        """End every watch (the server is stopping)."""
        with self._lock:
            self._closed = True
            viewers = [v for s in self._streams.values() for v in s.viewers]
        for viewer in viewers:
            viewer.wake()
