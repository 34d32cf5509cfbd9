"""HistorySink: the event sink that keeps the visit history, off the event loop.

``on_events`` / ``on_status`` run on the event loop and only queue; one background thread
writes the queue to the VisitHistory in batches (one transaction, one fsync per batch) and
prunes it about once a minute. Nothing the history does (a full disk, a locked db, a bad
event) is ever raised into the event loop: it is logged, with its traceback, and the
stream goes on.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from streamproc.errors import InvalidParameterException
from streamproc.shapes import Shape

from .store import VISITOR_EVENTS, VisitHistory, check_event

__all__ = ["HistorySink", "PRUNE_EVERY_S", "MAX_PENDING_EVENTS", "BATCH_EVENTS"]

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 60.0
#: Events queued but not yet written; beyond this (the disk stalls) new ones are dropped,
#: so that a stuck history costs bounded memory (a snapshot is some tens of kB).
MAX_PENDING_EVENTS = 10_000
#: At most this many events per transaction, so that a backlog is written in bounded steps.
BATCH_EVENTS = 500


@dataclass(frozen=True, slots=True)
class _Job:
    """Events to record, or (``events`` None) a stream whose open visits to close."""

    stream: str
    events: list[Shape] | None


class HistorySink:
    """An EventSink (streamproc.runtime.sinks) writing visitor events to a VisitHistory.

    The caller owns ``history`` and closes it after ``close()``. With ``close_dangling``
    the thread first closes the visits a previous run left open (it crashed before their
    VisitorLeft): create the sink before the streams start.
    """

    def __init__(
        self,
        history: VisitHistory,
        *,
        prune_every_s: float = PRUNE_EVERY_S,
        max_pending_events: int = MAX_PENDING_EVENTS,
        close_dangling: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.history = history
        self.prune_every_s = prune_every_s
        self.max_pending_events = max_pending_events
        self._clock = clock
        self._cond = threading.Condition()
        self._jobs: deque[_Job] = deque()
        self._pending_events = 0
        self._queued = 0  # jobs ever queued
        self._done = 0  # jobs ever finished (written or failed)
        self._stopping = False
        self._closed = False
        #: Counters for metrics and tests.
        self.written = 0
        self.dropped = 0
        self.failures = 0
        self._close_dangling = close_dangling
        self._thread = threading.Thread(target=self._run, name="visit-history", daemon=True)
        self._thread.start()

    # -- the event loop's side: queue only ------------------------------------------------

    def on_events(self, stream_id: str, events: Sequence[Shape]) -> None:
        try:
            mine: list[Shape] = [event for event in events if isinstance(event, VISITOR_EVENTS)]
            if mine:
                self._put(_Job(stream_id, mine), len(mine))
        except Exception:  # never into the event loop
            log.exception("visit history: cannot queue the events of %s", stream_id)

    def on_status(self, stream_id: str, status: str, reason: str | None) -> None:
        # A stopped stream sends each visitor's VisitorLeft first; this catches any that
        # were dropped, so that no visit of a stopped stream stays open for ever.
        try:
            if status == "STOPPED":
                self._put(_Job(stream_id, None), 0)
        except Exception:
            log.exception("visit history: cannot queue the status of %s", stream_id)

    def _put(self, job: _Job, count: int) -> None:
        with self._cond:
            if self._stopping:
                self.dropped += count
                return
            if count and self._pending_events + count > self.max_pending_events:
                self.dropped += count
                if self.dropped == count or self.dropped % 1000 < count:  # not every time
                    log.warning(
                        "visit history: writing falls behind; %d events dropped so far",
                        self.dropped,
                    )
                return
            self._jobs.append(job)
            self._pending_events += count
            self._queued += 1
            self._cond.notify_all()

    # -- lifecycle ------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is written (or failed); False on timeout."""
        with self._cond:
            target = self._queued
            return self._cond.wait_for(
                lambda: self._done >= target or not self._thread.is_alive(), timeout
            ) and self._done >= target

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread. Later events are dropped."""
        with self._cond:
            if self._closed:
                return
            self._closed = self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("visit history: the writer did not finish within %.0f s", timeout)

    # -- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        if self._close_dangling:
            self._guard("closing visits left open", self.history.close_open_visits)
        next_prune = time.monotonic()
        while True:
            with self._cond:
                while not self._jobs and not self._stopping:
                    wait = next_prune - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                batch = self._take()
                stop = self._stopping and not self._jobs and not batch
            if batch:
                self._guard("writing a batch", functools.partial(self._write, batch))
                with self._cond:
                    self._done += len(batch)
                    self._pending_events -= sum(len(job.events or ()) for job in batch)
                    self._cond.notify_all()
            if time.monotonic() >= next_prune and not stop:
                self._guard("pruning", lambda: self.history.prune(self._clock()))
                next_prune = time.monotonic() + self.prune_every_s
            if stop:
                return

    def _take(self) -> list[_Job]:
        """Jobs from the queue's head, up to BATCH_EVENTS events (at least one job)."""
        batch: list[_Job] = []
        count = 0
        while self._jobs:
            size = len(self._jobs[0].events or ())
            if batch and count + size > BATCH_EVENTS:
                break
            batch.append(self._jobs.popleft())
            count += size
        return batch

    def _write(self, batch: list[_Job]) -> None:
        """Consecutive event jobs as one transaction; a stream's close after them, in order."""
        events: list[Shape] = []
        for job in batch:
            if job.events is not None:
                events.extend(self._valid(job))
                continue
            self._record(events)
            events = []
            self._guard(
                f"closing the open visits of {job.stream}",
                functools.partial(self.history.close_open_visits, job.stream),
            )
        self._record(events)

    @staticmethod
    def _valid(job: _Job) -> list[Shape]:
        """Drop (and log) the events the history refuses, so they cannot sink a batch."""
        valid = []
        for event in job.events or ():
            try:
                check_event(event)
            except InvalidParameterException as exc:
                log.error("visit history: %s event of %s refused: %s",
                          type(event).__name__, job.stream, exc)
                continue
            valid.append(event)
        return valid

    def _record(self, events: list[Shape]) -> None:
        if events and self._guard(f"recording {len(events)} events",
                                  lambda: self.history.record(events)):
            self.written += len(events)

    def _guard(self, what: str, action: Callable[[], object]) -> bool:
        """Run ``action``; a failure is logged with its traceback and counted, never raised."""
        try:
            action()
        except Exception:
            self.failures += 1
            log.exception("visit history: %s failed", what)
            return False
        return True
