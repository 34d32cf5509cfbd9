"""One stream: source → frame budget → operations (worker pool) → typed results → observers
(events) → NATS.

Data flows one way. The source keeps only the newest decoded frame while the operations
run, so analysis never works on stale frames and nothing queues without bound; frames
beyond the stream's analysed-fps budget are skipped, and both kinds of skip are counted
in every record. Operations return typed sections, observers (visitor events, label
events, plugins' own) turn typed results into events, and the wire format is made only
when the publisher sends. One bad frame never stops a camera: an operation or observer
that raises is logged, counted and reported, and the next frame is analysed as usual.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from streamproc.engine import Engine
from streamproc.errors import InternalServerError, RekognitionError
from streamproc.operations import Operation
from streamproc.runtime.deployment import StreamConfig, frame_request_model
from streamproc.runtime.frame_input import FrameInput
from streamproc.runtime.frame_result import FrameClock, FrameError, FrameRecord, FrameResult
from streamproc.runtime.metrics import RuntimeMetrics
from streamproc.runtime.motion import MotionDetector, wants_closeup
from streamproc.runtime.observers import FrameObserver, busy, reuse_plan, tracked_boxes
from streamproc.runtime.reuse import ReusePlan
from streamproc.runtime.sinks import EventSink
from streamproc.shapes import BoundingBox, FrameSection, Shape
from streamproc.sources import Frame, Source, SourceState, StatusEvent
from streamproc.transport.publisher import (
    Publisher,
    events_subject,
    frames_subject,
    status_subject,
)

__all__ = ["StreamRunner", "StreamStats"]

log = logging.getLogger(__name__)


@dataclass
class StreamStats:
    analysed: int = 0
    budget_skipped: int = 0
    events: int = 0
    frame_errors: int = 0
    last_latency_ms: float = 0.0
    observer_seconds: float = 0.0  # time spent in observers, all frames together
    idle_skipped: int = 0  # frames without motion and nobody tracked: no model ran
    embedded: int = 0  # faces embedded (SFace runs) on analysed frames
    carried: int = 0  # faces that carried a tracked identity instead (identity reuse)
    analysis_seconds: float = 0.0  # operations + observers of analysed frames, all together
    fenced: int = 0  # publishes refused because this node no longer held the lease (cluster)
    closeup_skipped: int = 0  # analysed frames on which the close-up pass was not allowed


class StreamRunner:
    """Runs one configured stream until its source ends or the runtime stops it."""

    def __init__(
        self,
        config: StreamConfig,
        source: Source,
        *,
        engine: Engine,
        publisher: Publisher,
        executor: Executor,
        source_label: str,
        metrics: RuntimeMetrics | None = None,
        sinks: Sequence[EventSink] = (),
        tap: Callable[[FrameResult], None] | None = None,
        node: str | None = None,
        fence: Callable[[], bool] | None = None,
    ) -> None:
        self.config = config
        #: With cluster: this node's name, in frame records and status messages.
        self.node = node
        #: With cluster: may this node publish for the stream now (does it hold the lease)?
        #: Checked before each publish and sink call; refused ones are counted in stats.
        self.fence = fence
        self.sinks = list(sinks)
        self.tap = tap  # sees every analysed frame in the worker (the console's live view)
        self.source = source
        self.engine = engine
        self.publisher = publisher
        self.executor = executor
        self.source_label = source_label
        self.stats = StreamStats()
        self.metrics = metrics or RuntimeMetrics()
        self.operations: list[tuple[Operation, Any]] = []
        for op_config in config.operations:
            operation = engine.operation(op_config.operation)
            request = frame_request_model(operation).model_validate(op_config.params)
            self.operations.append((operation, request))
        self.needs = frozenset().union(*(op.frame_needs(req) for op, req in self.operations))
        # Identity reuse replaces a face search's embedding with a track's matches: only
        # when one SearchFacesByImage is the stream's only use of embeddings.
        embedding_users = [op.name for op, req in self.operations
                           if "embeddings" in op.frame_needs(req)]
        self.reuse = config.reuse if (
            config.reuse.enabled and embedding_users == ["SearchFacesByImage"]
        ) else None
        self._plan: ReusePlan | None = None
        self._tracked: list[BoundingBox] = []  # the observers' open tracks, latest frame
        names = frozenset(op.name for op, _ in self.operations)
        offered = engine.plugin_manager.hook.streamproc_frame_observers(
            stream_id=config.id, config=config, operations=names
        )
        self.observers: list[FrameObserver] = [o for found in offered if found for o in found]
        motion = config.motion
        self.motion = (
            MotionDetector(threshold=motion.threshold, min_area=motion.min_area,
                           masks=motion.mask)
            if motion.enabled
            else None
        )
        # Observers see one frame (or end) at a time, in order, whichever thread runs them.
        self._observer_lock = threading.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_clock: FrameClock | None = None

    # -- publishing (never raises: a dead NATS is the publisher's problem, logged there) ------

    def _fenced(self) -> bool:
        """This node lost the stream's lease: publish nothing more for it."""
        if self.fence is None or self.fence():
            return False
        if not self.stats.fenced:
            log.warning("%s: not publishing: node %s no longer holds the stream's lease",
                        self.config.id, self.node)
        self.stats.fenced += 1
        return True

    async def _publish(self, subject: str, payload: dict[str, Any] | Shape) -> None:
        if self._fenced():
            return
        if self.node is not None and isinstance(payload, dict) and "StreamName" in payload:
            payload = {**payload, "Node": self.node}  # a status message names its node
        try:
            await self.publisher.publish(subject, payload)
        except Exception:
            log.exception("%s: publishing on %s failed", self.config.id, subject)

    def _soon(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish_events(self, events: Sequence[Shape]) -> None:
        for event in events:
            kind = getattr(event, "EventType", type(event).__name__)
            self.stats.events += 1
            self.metrics.events.labels(self.config.id, kind).inc()
            log.info("%s: %s %s", self.config.id, kind,
                     getattr(event, "VisitorId", "")[:8] or getattr(event, "Label", ""))
            await self._publish(events_subject(self.config.id), event)
        self._to_sinks("on_events", events)

    def _to_sinks(self, method: str, *args: Any) -> None:
        """Hand events or a state change to every sink; a failing sink only logs."""
        if self.sinks and self._fenced():
            return
        for sink in self.sinks:
            try:
                getattr(sink, method)(self.config.id, *args)
            except Exception:
                log.exception("%s: event sink %s failed", self.config.id, type(sink).__name__)

    async def _report_errors(self, clock: FrameClock, errors: Sequence[FrameError]) -> None:
        """Each failure on the status subject as an ``Error`` record: the stream's state (the
        ``Status`` records) is unchanged, and the next frame is analysed as usual."""
        for error in errors:
            self.stats.frame_errors += 1
            self.metrics.frame_errors.labels(self.config.id, error.stage).inc()
            await self._publish(
                status_subject(self.config.id),
                {
                    "StreamName": self.config.id,
                    "Error": {"Stage": error.stage, "Code": error.error,
                              "Message": error.message},
                    "FrameNumber": clock.frame_number,
                    "FrameOffsetInSeconds": clock.offset,
                    "Timestamp": time.time(),
                },
            )

    # -- observers (in the worker pool, one frame at a time) ----------------------------------

    def _observe(self, result: FrameResult) -> list[Shape]:
        events: list[Shape] = []
        started = time.perf_counter()
        with self._observer_lock:
            for observer in self.observers:
                try:
                    events += observer.observe(result)
                except Exception as exc:
                    log.exception("%s: observer %s failed on frame %d", self.config.id,
                                  observer.name, result.frame.frame_number)
                    result.errors.append(
                        FrameError(f"observer:{observer.name}", type(exc).__name__, str(exc))
                    )
            self._tracked = [b for o in self.observers for b in tracked_boxes(o)]
            if self.reuse is not None:
                self._plan = next(
                    (p for o in self.observers if (p := reuse_plan(o, self.reuse)) is not None),
                    None,
                )
            self.stats.observer_seconds += time.perf_counter() - started
        return events

    def _end_observers(self, clock: FrameClock, reason: str) -> list[Shape]:
        events: list[Shape] = []
        with self._observer_lock:
            self._plan = None  # the visits end: nothing left to carry
            self._tracked = []
            for observer in self.observers:
                try:
                    events += observer.end(clock, reason)
                except Exception:
                    log.exception("%s: observer %s failed to end", self.config.id, observer.name)
                    self.metrics.frame_errors.labels(
                        self.config.id, f"observer:{observer.name}"
                    ).inc()
        return events

    async def _end_soon(self, clock: FrameClock, reason: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            events = await loop.run_in_executor(self.executor, self._end_observers, clock, reason)
        except RuntimeError:  # the pool is shut down: the runtime is closing
            events = self._end_observers(clock, reason)
        await self._publish_events(events)

    def _on_status(self, event: StatusEvent) -> None:
        self.metrics.online.labels(self.config.id).set(event.state == SourceState.ONLINE)
        payload = {
            "StreamName": self.config.id,
            "Status": event.state.value.upper(),
            "Reason": event.reason,
            "Timestamp": event.time,
            "Attempt": event.attempt,
            "RetryInSeconds": event.retry_in,
        }
        self._soon(self._publish(status_subject(self.config.id), payload))
        self._to_sinks("on_status", event.state.value.upper(), event.reason)
        if event.state in (SourceState.OFFLINE, SourceState.STOPPED):
            last = self._last_clock or FrameClock(0.0, time.time(), 0)
            clock = FrameClock(last.offset, time.time(), last.frame_number)
            self._soon(self._end_soon(clock, event.reason or event.state.value))

    # -- analysis (in the worker pool) --------------------------------------------------------

    def idle(self, frame: Frame) -> bool:
        """Nothing moves and no observer follows anything: this frame needs no model."""
        if self.motion is None or self.motion.moving(frame.luma()):
            return False
        with self._observer_lock:
            return not any(busy(o) for o in self.observers)

    def closeup(self, frame: Frame) -> bool:
        """May this frame hold a face only the detector's close-up pass finds? Only when
        much of the picture changed or a tracked face is large (motion.wants_closeup);
        without motion gating, always (as for single images)."""
        if self.motion is None:
            return True
        with self._observer_lock:
            tracked = list(self._tracked)
        if wants_closeup(self.motion.last_fraction, tracked, frame.width, frame.height):
            return True
        self.stats.closeup_skipped += 1
        return False

    def analyse(
        self, frame: Frame, clock: FrameClock
    ) -> tuple[FrameResult | None, list[Shape]]:
        """Every operation's section, then the observers' events, for one frame (None:
        gated, nothing moved)."""
        if self.idle(frame):
            return None, []
        frame_input = FrameInput(frame, self.engine.context.faces, self.needs, reuse=self._plan,
                                 closeup=self.closeup(frame))
        result = FrameResult(self.config.id, frame, clock)
        for operation, request in self.operations:
            assert operation.frame_handler is not None
            started = time.perf_counter()
            try:
                section = operation.frame_handler(frame_input, request, self.engine.context)
                if not isinstance(section, FrameSection):
                    raise TypeError(
                        f"{operation.name}'s frame handler returned {type(section).__name__}, "
                        "not a FrameSection"
                    )
                result.sections.append(section)
                self.metrics.operations.succeeded(
                    operation.name, time.perf_counter() - started, section
                )
            except Exception as exc:
                self.metrics.operations.failed(
                    operation.name,
                    exc if isinstance(exc, RekognitionError) else InternalServerError(str(exc)),
                    time.perf_counter() - started,
                )
                log.exception("%s: %s failed on frame %d", self.config.id, operation.name,
                              frame.frame_number)
                result.errors.append(FrameError(operation.name, type(exc).__name__, str(exc)))
        result.faces = frame_input.analysed
        result.carried = {i: c.visitor_id for i, c in frame_input.carried.items()}
        if result.faces is not None:
            self.stats.embedded += sum(f.embedding is not None for f in result.faces.faces)
            self.stats.carried += len(result.carried)
        events = self._observe(result)
        if self.tap is not None:
            try:
                self.tap(result)
            except Exception:
                log.exception("%s: frame tap failed on frame %d", self.config.id,
                              frame.frame_number)
        return result, events

    def record(self, result: FrameResult) -> FrameRecord:
        """The frame's record, shaped after a Rekognition Video stream-processor output."""
        return FrameRecord.of(
            result,
            source=self.source_label,
            server_time=time.time(),
            skipped=self.stats.budget_skipped + self.source.budget_skipped
            + self.source.frames_skipped
            + self.stats.idle_skipped,
            idle=self.stats.idle_skipped,
            node=self.node,
        )

    # -- the loop -----------------------------------------------------------------------------

    async def _process(self, frame: Frame) -> None:
        loop = asyncio.get_running_loop()
        clock = FrameClock(frame.pts, frame.capture_time, frame.frame_number)
        started = time.perf_counter()
        try:
            result, events = await loop.run_in_executor(self.executor, self.analyse, frame, clock)
        except Exception as exc:  # a bug outside the operations: still only this frame
            log.exception("%s: analysing frame %d failed", self.config.id, frame.frame_number)
            await self._report_errors(clock, [FrameError("analysis", type(exc).__name__, str(exc))])
            return
        if result is None:  # gated: counted in the next record's SkippedFrames
            self.stats.idle_skipped += 1
            return
        elapsed = time.perf_counter() - started
        self.stats.analysis_seconds += elapsed
        self.metrics.analysis.labels(self.config.id).observe(elapsed)
        record = self.record(result)
        self.stats.analysed += 1
        await self._publish(frames_subject(self.config.id), record)
        latency = time.time() - frame.capture_time
        self.stats.last_latency_ms = latency * 1000
        self.metrics.frames.labels(self.config.id).inc()
        self.metrics.latency.labels(self.config.id).observe(latency)
        self.metrics.skipped.labels(self.config.id).set(record.InputInformation.SkippedFrames)
        self._last_clock = clock
        await self._report_errors(clock, result.errors)
        await self._publish_events(events)

    async def run(self) -> str:
        """Analyse frames until the source ends; returns why the stream stopped."""
        unsubscribe = self.source.add_status_listener(self._on_status)
        hook = self.engine.plugin_manager.hook
        hook.streamproc_stream_started(stream_id=self.config.id, config=self.config)
        interval = 1.0 / self.config.fps - 1e-3  # tolerate float pts jitter
        self.source.limit_rate(self.config.fps)  # where it can, the source drops them
        last_pts: float | None = None
        reason = "source ended"
        try:
            async for frame in self.source:
                # Within the budget interval of the last analysed frame: skip. A pts that
                # jumps backwards (a reconnect) restarts the budget.
                if last_pts is not None and last_pts <= frame.pts < last_pts + interval:
                    self.stats.budget_skipped += 1
                    continue
                last_pts = frame.pts
                await self._process(frame)
        except asyncio.CancelledError:
            reason = "stopped"
            raise
        except Exception as exc:
            reason = f"failed: {type(exc).__name__}: {exc}"
            log.exception("%s: the stream failed", self.config.id)
            raise
        finally:
            unsubscribe()
            last = self._last_clock or FrameClock(0.0, time.time(), 0)
            await self._publish_events(
                self._end_observers(FrameClock(last.offset, time.time(), last.frame_number), reason)
            )
            await self.source.close()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._publish(
                status_subject(self.config.id),
                {
                    "StreamName": self.config.id,
                    "Status": "STOPPED",
                    "Reason": reason,
                    "Timestamp": time.time(),
                },
            )
            self._to_sinks("on_status", "STOPPED", reason)
            hook.streamproc_stream_stopped(stream_id=self.config.id, reason=reason)
        return reason
