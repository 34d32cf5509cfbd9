"""Decoding in a worker thread, frames handed to the event loop (as aiortc's MediaPlayer does).

FFmpeg calls block (network reads, decoding); running them on the event loop would stall
every other stream and the NATS connection. Each source owns one daemon thread; the thread
talks to the loop only through ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from abc import abstractmethod
from collections.abc import AsyncIterator

import av
import av.video.frame

from streamproc.sources.base import LatestFrame, Source, SourceState, StatusEvent
from streamproc.sources.frame import Frame

__all__ = ["ThreadedSource"]

log = logging.getLogger(__name__)


class _Stopping(Exception):
    """Raised inside the worker thread when close() was called; never leaves the thread."""


class ThreadedSource(Source):
    """Base for PyAV sources: subclasses implement :meth:`_run` (called in the worker thread).

    ``drop_stale=True`` (live sources) hands frames over through a :class:`LatestFrame`: the
    decoder never waits for the consumer, so a slow consumer sees the newest frame and the
    network keeps draining. ``drop_stale=False`` (files read as fast as possible) gives
    back-pressure instead: the thread waits while ``queue_size`` frames are unread.
    """

    def __init__(self, stream_id: str, url: str, *, drop_stale: bool, queue_size: int = 4) -> None:
        super().__init__(stream_id, url)
        self.drop_stale = drop_stale
        self.frames_decoded = 0
        self._next_number = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._latest = LatestFrame()
        self._queue: asyncio.Queue[Frame | None] = asyncio.Queue()
        self._slots = threading.Semaphore(queue_size)
        self._finished = False
        self._iterating = False
        self._interval: float | None = None  # limit_rate: seconds of pts between frames
        self._last_pts: float | None = None
        self._budget_skipped = 0

    # -- public -------------------------------------------------------------------------------

    @property
    def frames_skipped(self) -> int:
        return self._latest.skipped

    def limit_rate(self, fps: float) -> None:
        """Only where frames are dropped anyway (``drop_stale``, live and real-time sources).
        In back-pressure mode the decoder would run ahead of the analysis by the queue's
        frames, and its end (a status, not queued) would overtake frames not yet analysed."""
        if self.drop_stale:
            self._interval = 1.0 / fps - 1e-3  # tolerate float pts jitter

    @property
    def budget_skipped(self) -> int:
        return self._budget_skipped

    def start(self) -> None:
        """Start the decode thread (iteration starts it too); needs a running event loop."""
        if self._thread is not None or self._finished:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._thread_main, name=f"source-{self.stream_id}", daemon=True
        )
        self._thread.start()

    async def __aiter__(self) -> AsyncIterator[Frame]:
        if self._iterating:
            raise RuntimeError(f"source {self.stream_id!r} already has a reader")
        self._iterating = True
        self.start()
        while True:
            if self.drop_stale:
                frame = await self._latest.get()
            else:
                frame = await self._queue.get()
                if frame is not None:
                    self._slots.release()
            if frame is None:
                return
            yield frame

    async def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            # A blocked FFmpeg read returns at its own timeout; don't hang the caller for it.
            await asyncio.to_thread(thread.join, self._join_timeout())
            if thread.is_alive():
                log.warning("decode thread of %s still busy after close", self.stream_id)
        self._finish("closed")

    # -- for subclasses (all called in the worker thread) ------------------------------------

    @abstractmethod
    def _run(self) -> None:
        """Produce frames with :meth:`_deliver` and transitions with :meth:`_set_status`."""

    def _join_timeout(self) -> float:
        return 5.0

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _sleep(self, seconds: float) -> None:
        """Sleep that close() interrupts."""
        if self._stop.wait(max(0.0, seconds)):
            raise _Stopping

    def _set_status(
        self,
        state: SourceState,
        reason: str | None = None,
        *,
        attempt: int = 0,
        retry_in: float | None = None,
    ) -> None:
        event = StatusEvent(self.stream_id, state, reason, time.time(), attempt, retry_in)
        self._call_in_loop(self._emit_unless_finished, event)

    def _deliver(self, av_frame: av.video.frame.VideoFrame, pts: float) -> None:
        """Hand the decoded frame over (RGB conversion waits for a worker that analyses it);
        blocks only in back-pressure mode."""
        if self._stop.is_set():
            raise _Stopping
        if self._interval is not None:
            # Within the interval of the last frame handed over: dropped here, in the
            # decode thread. A pts that jumps backwards (a reconnect) restarts the budget.
            last = self._last_pts
            if last is not None and last <= pts < last + self._interval:
                self._next_number += 1
                self.frames_decoded += 1
                self._budget_skipped += 1
                return
            self._last_pts = pts
        frame = Frame(
            stream_id=self.stream_id,
            frame_number=self._next_number,
            pts=pts,
            capture_time=time.time(),
            width=av_frame.width,
            height=av_frame.height,
            decoded=av_frame,
        )
        self._next_number += 1
        self.frames_decoded += 1
        if self.drop_stale:
            self._call_in_loop(self._latest.put, frame)
            return
        while not self._slots.acquire(timeout=0.1):
            if self._stop.is_set():
                raise _Stopping
        self._call_in_loop(self._queue.put_nowait, frame)

    # -- internals ----------------------------------------------------------------------------

    def _call_in_loop(self, fn: object, *args: object) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            raise _Stopping
        try:
            loop.call_soon_threadsafe(fn, *args)  # type: ignore[arg-type]
        except RuntimeError as exc:  # loop closed under us
            raise _Stopping from exc

    def _thread_main(self) -> None:
        reason = "end of input"
        try:
            self._run()
        except _Stopping:
            reason = "closed"
        except Exception as exc:  # a bug, not a camera problem: still never kill the process
            log.exception("source %s failed", self.stream_id)
            reason = f"internal error: {exc!r}"
        finally:
            with contextlib.suppress(_Stopping):
                self._call_in_loop(self._finish, reason)

    def _emit_unless_finished(self, event: StatusEvent) -> None:
        # A thread still stuck in a read when close() returned must not undo STOPPED.
        if not self._finished:
            self._emit_status(event)

    def _finish(self, reason: str) -> None:
        """End the iterator and report STOPPED (loop thread; idempotent)."""
        if self._finished:
            return
        self._finished = True
        self._emit_status(StatusEvent(self.stream_id, SourceState.STOPPED, reason, time.time()))
        self._latest.close()
        self._queue.put_nowait(None)
