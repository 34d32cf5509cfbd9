"""ConnectedHome-style label events: the first sighting of each watched label per session.

A door camera wants "a person / a dog / a package arrived", once, not a label per frame.
A session runs from the moment the stream comes online until it goes offline or stops;
each watched label is announced once per session (with a snapshot of the frame), and the
session ends with a summary of everything seen. Pure logic: the runner feeds it labels.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from streamproc.runtime.deployment import LabelEventsConfig
from streamproc.runtime.frame_result import FrameClock, FrameResult
from streamproc.runtime.snapshots import frame_snapshot
from streamproc.shapes import Label, LabelsSection, Shape

__all__ = [
    "LabelDetected",
    "LabelEventsObserver",
    "LabelSessionSummary",
    "LabelSession",
    "LabelSummary",
]


class LabelDetected(Shape):
    EventType: Literal["LabelDetected"] = "LabelDetected"
    StreamName: str
    SessionId: str
    Label: str
    Confidence: float
    Timestamp: float
    FrameNumber: int
    FrameOffsetInSeconds: float
    Snapshot: bytes  # JPEG of the frame where the label was first seen


class LabelSummary(Shape):
    Name: str
    FirstSeenOffsetInSeconds: float
    LastSeenOffsetInSeconds: float
    FramesSeen: int
    MaxConfidence: float


class LabelSessionSummary(Shape):
    EventType: Literal["LabelSessionSummary"] = "LabelSessionSummary"
    StreamName: str
    SessionId: str
    Reason: str
    Timestamp: float
    FramesAnalysed: int
    DurationSeconds: float
    Labels: list[LabelSummary] = Field(default_factory=list)


@dataclass
class _Seen:
    first: float
    last: float
    frames: int = 0
    max_confidence: float = 0.0


@dataclass
class LabelSession:
    """One session of one stream; watched labels are matched case-sensitively by name."""

    stream_name: str
    session_id: str
    watched: frozenset[str]
    min_confidence: float
    started: float | None = None
    last_offset: float = 0.0
    frames: int = 0
    seen: dict[str, _Seen] = field(default_factory=dict)

    def update(
        self, clock: FrameClock, labels: Sequence[Label], snapshot: Callable[[], bytes]
    ) -> list[LabelDetected]:
        """Events for the watched labels this frame shows for the first time this session."""
        if self.started is None:
            self.started = clock.offset
        self.last_offset = clock.offset
        self.frames += 1
        events: list[LabelDetected] = []
        image: bytes | None = None
        for label in labels:
            name, confidence = label.Name, float(label.Confidence)
            if name not in self.watched or confidence < self.min_confidence:
                continue
            seen = self.seen.get(name)
            if seen is None:
                seen = self.seen[name] = _Seen(first=clock.offset, last=clock.offset)
                image = image if image is not None else snapshot()
                events.append(LabelDetected(
                    StreamName=self.stream_name, SessionId=self.session_id, Label=name,
                    Confidence=confidence, Timestamp=clock.wall, FrameNumber=clock.frame_number,
                    FrameOffsetInSeconds=clock.offset, Snapshot=image,
                ))
            seen.last = clock.offset
            seen.frames += 1
            seen.max_confidence = max(seen.max_confidence, confidence)
        return events

    def summary(self, reason: str, wall: float) -> LabelSessionSummary:
        return LabelSessionSummary(
            StreamName=self.stream_name, SessionId=self.session_id, Reason=reason,
            Timestamp=wall, FramesAnalysed=self.frames,
            DurationSeconds=max(
                0.0, self.last_offset - (self.started if self.started is not None else 0.0)
            ),
            Labels=[
                LabelSummary(Name=name, FirstSeenOffsetInSeconds=s.first,
                             LastSeenOffsetInSeconds=s.last, FramesSeen=s.frames,
                             MaxConfidence=s.max_confidence)
                for name, s in sorted(self.seen.items(), key=lambda kv: kv[1].first)
            ],
        )


class LabelEventsObserver:
    """A stream's label sessions: one from the first analysed frame until the stream ends."""

    name = "label_events"

    def __init__(self, stream_id: str, config: LabelEventsConfig) -> None:
        self.stream_id = stream_id
        self.config = config
        self.session: LabelSession | None = None

    def observe(self, result: FrameResult) -> Sequence[Shape]:
        section = result.section(LabelsSection)
        if section is None:
            return []
        if self.session is None:
            self.session = LabelSession(
                self.stream_id, uuid.uuid4().hex, frozenset(self.config.labels),
                self.config.min_confidence,
            )
        return self.session.update(
            result.clock, section.Labels, functools.partial(frame_snapshot, result.frame.rgb)
        )

    def end(self, clock: FrameClock, reason: str) -> Sequence[Shape]:
        """The session summary, once, when the stream goes offline or stops."""
        session, self.session = self.session, None
        return [session.summary(reason, time.time())] if session is not None else []
