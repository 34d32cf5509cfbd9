"""The source interface: an async iterator of frames plus status events, and LatestFrame."""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import ClassVar, Self

from streamproc.sources.frame import Frame

__all__ = [
    "LatestFrame",
    "Source",
    "SourceState",
    "StatusEvent",
    "StatusListener",
]

log = logging.getLogger(__name__)


class SourceState(StrEnum):
    """Where a source is; the runtime publishes each transition as a status message."""

    CONNECTING = "connecting"
    ONLINE = "online"
    OFFLINE = "offline"
    STOPPED = "stopped"  # closed, or a finite source reached its end: no more frames


@dataclass(frozen=True, slots=True)
class StatusEvent:
    stream_id: str
    state: SourceState
    reason: str | None = None
    time: float = 0.0  # wall clock (time.time())
    attempt: int = 0  # connection attempt since the source was last online, from 0
    retry_in: float | None = None  # OFFLINE only: seconds until the next attempt


StatusListener = Callable[[StatusEvent], None]


class LatestFrame:
    """A one-frame slot: a writer never waits, a slow reader always gets the newest frame.

    Frames overwritten before anyone read them are counted in ``skipped``; nothing is ever
    buffered beyond the one slot, so a slow model cannot make a live stream lag behind or
    grow memory. Meant for one reader; all methods run on the event loop thread.
    """

    def __init__(self) -> None:
        self._frame: Frame | None = None
        self._fresh = asyncio.Event()
        self._closed = False
        self.received = 0
        self.delivered = 0
        self.skipped = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, frame: Frame) -> None:
        if self._closed:
            return
        if self._frame is not None:
            self.skipped += 1
        self._frame = frame
        self.received += 1
        self._fresh.set()

    def get_nowait(self) -> Frame | None:
        """The unread frame, if any."""
        frame, self._frame = self._frame, None
        self._fresh.clear()
        if frame is not None:
            self.delivered += 1
        return frame

    async def get(self) -> Frame | None:
        """Wait for a frame newer than the last one read; None once closed and drained."""
        while self._frame is None:
            if self._closed:
                return None
            await self._fresh.wait()
            if self._frame is None:
                self._fresh.clear()
        return self.get_nowait()

    def close(self) -> None:
        """Wake the reader; an unread frame can still be read, then get() returns None."""
        self._closed = True
        self._fresh.set()


class Source(ABC):
    """A stream of frames from one camera or file.

    Iterate with ``async for frame in source``; the iterator ends only when the source is
    closed or a finite source is exhausted, and never raises because of the camera: failures
    become OFFLINE status events. Status listeners are called on the event loop thread.
    One iterator per source.
    """

    scheme: ClassVar[tuple[str, ...]] = ()
    live: ClassVar[bool] = False

    def __init__(self, stream_id: str, url: str) -> None:
        self.stream_id = stream_id
        self.url = url
        self._listeners: list[StatusListener] = []
        self._status = StatusEvent(stream_id, SourceState.OFFLINE, "not started", time.time())
        self._waiters: list[tuple[frozenset[SourceState], asyncio.Future[StatusEvent]]] = []

    # -- frames -------------------------------------------------------------------------------

    @abstractmethod
    def __aiter__(self) -> AsyncIterator[Frame]: ...

    @abstractmethod
    async def close(self) -> None:
        """Stop producing frames, release the input, end the iterator; idempotent."""

    @property
    def frames_skipped(self) -> int:
        """Frames decoded but dropped because the consumer was slower than the stream."""
        return 0

    def limit_rate(self, fps: float) -> None:
        """Hand over at most ``fps`` frames a second of stream time, dropping the others
        where they are decoded (counted in :attr:`budget_skipped`), so skipped frames never
        wake the event loop. A source that cannot leaves it to its consumer, which skips
        them all the same."""
        return None  # optional: the consumer skips those frames otherwise

    @property
    def budget_skipped(self) -> int:
        """Frames dropped by :meth:`limit_rate` before reaching the consumer."""
        return 0

    # -- status -------------------------------------------------------------------------------

    @property
    def status(self) -> StatusEvent:
        return self._status

    def add_status_listener(self, listener: StatusListener) -> Callable[[], None]:
        """Call ``listener`` on every transition; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def wait_for_status(
        self, *states: SourceState, timeout: float | None = None
    ) -> StatusEvent:
        """The current status if it is one of ``states``, else the next such transition.

        Transitions are caught as they happen, so a brief OFFLINE between two reconnect
        attempts is not missed. Raises TimeoutError after ``timeout`` seconds.
        """
        if self._status.state in states:
            return self._status
        future: asyncio.Future[StatusEvent] = asyncio.get_running_loop().create_future()
        waiter = (frozenset(states), future)
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _emit_status(self, event: StatusEvent) -> None:
        """Record a transition and notify; only ever called on the event loop thread."""
        self._status = event
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("status listener %r failed for %s", listener, self.stream_id)
        for waiter in list(self._waiters):
            states, future = waiter
            if event.state in states and not future.done():
                future.set_result(event)
                self._waiters.remove(waiter)

    # -- context manager ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.stream_id!r}, {self.url!r}, {self._status.state})"
