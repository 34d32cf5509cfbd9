"""One stream: source → frame budget → operations (worker pool) → record, events → NATS.

Data flows one way. The source keeps only the newest decoded frame while the operations
run, so analysis never works on stale frames and nothing queues without bound; frames
beyond the stream's analysed-fps budget are skipped, and both kinds of skip are counted
in every record.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from streamproc.engine import Engine
from streamproc.operations import Operation
from streamproc.runtime.deployment import StreamConfig, frame_request_model
from streamproc.runtime.events import VisitorEvent
from streamproc.runtime.frame_input import MIN_IDENTIFIABLE_FACE, FrameInput
from streamproc.runtime.label_events import LabelSession
from streamproc.runtime.metrics import RuntimeMetrics
from streamproc.runtime.tracker import Detection, FrameClock, Match, VisitorTracker
from streamproc.shapes import Shape
from streamproc.sources import Frame, Source, SourceState, StatusEvent
from streamproc.transport.publisher import (
    Publisher,
    events_subject,
    frames_subject,
    status_subject,
)

__all__ = ["StreamRunner", "StreamStats"]

log = logging.getLogger(__name__)

SNAPSHOT_MARGIN = 0.25
SNAPSHOT_QUALITY = 85


@dataclass
class StreamStats:
    analysed: int = 0
    budget_skipped: int = 0
    events: int = 0
    last_latency_ms: float = 0.0


def _snapshot(rgb: np.ndarray, box: tuple[float, float, float, float]) -> bytes:
    """The face crop (with some margin) as JPEG: what a notification shows."""
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * SNAPSHOT_MARGIN, (y2 - y1) * SNAPSHOT_MARGIN
    left, top = int(max(0, (x1 - mx) * w)), int(max(0, (y1 - my) * h))
    right, bottom = int(min(w, (x2 + mx) * w)), int(min(h, (y2 + my) * h))
    return _jpeg(Image.fromarray(rgb[top:bottom, left:right]))


def _jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=SNAPSHOT_QUALITY)
    return buf.getvalue()


def _frame_snapshot(rgb: np.ndarray, width: int = 640) -> bytes:
    """The whole frame, at most ``width`` pixels wide, as JPEG: what a label event shows."""
    image = Image.fromarray(rgb)
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)))
    return _jpeg(image)


def _detections(frame: Frame, sections: dict[str, Any]) -> list[Detection]:
    """Faces for the tracker, with their best match when a face search ran."""
    out: list[Detection] = []
    searched = sections.get("FaceSearchResponse")
    if searched is not None:
        faces = [(r["DetectedFace"], r["MatchedFaces"]) for r in searched]
    else:
        faces = [(d, []) for d in sections.get("FaceDetails", [])]
    for face, matches in faces:
        b = face["BoundingBox"]
        box = (b["Left"], b["Top"], b["Left"] + b["Width"], b["Top"] + b["Height"])
        match = None
        if matches:
            best = matches[0]
            match = Match(
                external_image_id=best["Face"].get("ExternalImageId"),
                face_id=best["Face"]["FaceId"],
                similarity=best["Similarity"],
            )
        out.append(
            Detection(
                box=box,
                confidence=face["Confidence"],
                match=match,
                snapshot=functools.partial(_snapshot, frame.rgb, box),
                identifiable=min(b["Width"] * frame.width, b["Height"] * frame.height)
                >= MIN_IDENTIFIABLE_FACE,
            )
        )
    return out


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
    ) -> None:
        self.config = config
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
        searches = any(op.name == "SearchFacesByImage" for op, _ in self.operations)
        self.tracker = (
            VisitorTracker(config.id, config.events, identify=searches)
            if config.events.enabled
            else None
        )
        self.label_session: LabelSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_clock: FrameClock | None = None

    # -- publishing (never raises: a dead NATS is the publisher's problem, logged there) ------

    async def _publish(self, subject: str, payload: dict[str, Any]) -> None:
        try:
            await self.publisher.publish(subject, payload)
        except Exception:
            log.exception("%s: publishing on %s failed", self.config.id, subject)

    def _publish_soon(self, subject: str, payload: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._publish(subject, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish_events(self, events: Sequence[VisitorEvent | Shape]) -> None:
        for event in events:
            kind = getattr(event, "EventType", type(event).__name__)
            self.stats.events += 1
            self.metrics.events.labels(self.config.id, kind).inc()
            log.info("%s: %s %s", self.config.id, kind,
                     getattr(event, "VisitorId", "")[:8] or getattr(event, "Label", ""))
            await self._publish(events_subject(self.config.id), event.to_wire())

    def _end_label_session(self, reason: str) -> list[Shape]:
        """The session summary, once, when the stream goes offline or stops."""
        session, self.label_session = self.label_session, None
        return [session.summary(reason, time.time())] if session is not None else []

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
        self._publish_soon(status_subject(self.config.id), payload)
        if event.state in (SourceState.OFFLINE, SourceState.STOPPED):
            clock = self._last_clock or FrameClock(0.0, time.time(), 0)
            events: list[Any] = []
            if self.tracker is not None:
                events += self.tracker.close(
                    FrameClock(clock.offset, time.time(), clock.frame_number)
                )
            events += self._end_label_session(event.reason or event.state.value)
            if events:
                task = asyncio.get_running_loop().create_task(self._publish_events(events))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    # -- analysis (in the worker pool) --------------------------------------------------------

    def _analyse(self, frame: Frame) -> tuple[dict[str, Any], list[Detection]]:
        frame_input = FrameInput(frame, self.engine.context.faces, self.needs)
        sections: dict[str, Any] = {}
        for operation, request in self.operations:
            assert operation.frame_handler is not None
            sections.update(operation.frame_handler(frame_input, request, self.engine.context))
        detections = _detections(frame, sections) if self.tracker is not None else []
        return sections, detections

    def record(self, frame: Frame, sections: dict[str, Any]) -> dict[str, Any]:
        """The frame's record, shaped after a Rekognition Video stream-processor output."""
        return {
            "StreamProcessorInformation": {"Name": self.config.id, "Status": "RUNNING"},
            "InputInformation": {
                "Source": self.source_label,
                "FrameNumber": frame.frame_number,
                "FrameOffsetInSeconds": frame.pts,
                "ProducerTimestamp": frame.capture_time,
                "ServerTimestamp": time.time(),
                "Width": frame.width,
                "Height": frame.height,
                "SkippedFrames": self.stats.budget_skipped + self.source.frames_skipped,
            },
            **sections,
        }

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> str:
        """Analyse frames until the source ends; returns why the stream stopped."""
        loop = asyncio.get_running_loop()
        unsubscribe = self.source.add_status_listener(self._on_status)
        hook = self.engine.plugin_manager.hook
        hook.streamproc_stream_started(stream_id=self.config.id, config=self.config)
        interval = 1.0 / self.config.fps - 1e-3  # tolerate float pts jitter
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
                started = time.perf_counter()
                sections, detections = await loop.run_in_executor(
                    self.executor, self._analyse, frame
                )
                self.metrics.analysis.labels(self.config.id).observe(time.perf_counter() - started)
                record = self.record(frame, sections)
                self.stats.analysed += 1
                await self._publish(frames_subject(self.config.id), record)
                latency = time.time() - frame.capture_time
                self.stats.last_latency_ms = latency * 1000
                self.metrics.frames.labels(self.config.id).inc()
                self.metrics.latency.labels(self.config.id).observe(latency)
                self.metrics.skipped.labels(self.config.id).set(
                    record["InputInformation"]["SkippedFrames"]
                )
                hook.streamproc_frame_analyzed(stream_id=self.config.id, frame=frame, record=record)
                clock = FrameClock(frame.pts, frame.capture_time, frame.frame_number)
                self._last_clock = clock
                if self.tracker is not None:
                    await self._publish_events(self.tracker.update(clock, detections))
                if self.config.label_events is not None and "Labels" in record:
                    if self.label_session is None:
                        self.label_session = LabelSession(
                            self.config.id, uuid.uuid4().hex,
                            frozenset(self.config.label_events.labels),
                            self.config.label_events.min_confidence,
                        )
                    await self._publish_events(self.label_session.update(
                        clock, record["Labels"], functools.partial(_frame_snapshot, frame.rgb)
                    ))
        except asyncio.CancelledError:
            reason = "stopped"
            raise
        finally:
            unsubscribe()
            if self.tracker is not None:
                clock = self._last_clock or FrameClock(0.0, time.time(), 0)
                await self._publish_events(self.tracker.close(clock))
            await self._publish_events(self._end_label_session(reason))
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
            hook.streamproc_stream_stopped(stream_id=self.config.id, reason=reason)
        return reason
