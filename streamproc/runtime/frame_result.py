"""One analysed frame's typed results: what observers read and what the frame record is made of.

Operations' frame handlers return typed :class:`~streamproc.shapes.FrameSection` shapes;
observers (visitor tracking, label events, a plugin's own logic) read them here as
objects, and the wire dict is made only when the record is published.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from streamproc.faces import ImageFaces
from streamproc.shapes import FrameSection, Shape
from streamproc.sources import Frame

__all__ = ["FrameClock", "FrameError", "FrameResult", "FrameRecord"]

S = TypeVar("S", bound=FrameSection)


@dataclass(frozen=True)
class FrameClock:
    """Where the events of a frame are anchored in time."""

    offset: float  # seconds in the stream (drives timeouts)
    wall: float  # wall clock, for the events' Timestamp
    frame_number: int


@dataclass(frozen=True)
class FrameError:
    """An operation or observer that raised on this frame (the stream goes on)."""

    stage: str  # the operation's name, or "observer:<name>"
    error: str  # the exception type
    message: str


@dataclass
class FrameResult:
    """The sections every operation of the stream produced for one frame.

    ``faces`` is the frame's shared face analysis (boxes, embeddings, quality) when an
    operation ran it, so observers reuse what the search computed instead of running a
    model again. A section is missing when its operation failed on this frame.
    """

    stream_id: str
    frame: Frame
    clock: FrameClock
    sections: list[FrameSection] = field(default_factory=list)
    faces: ImageFaces | None = None
    errors: list[FrameError] = field(default_factory=list)
    #: Faces (by index in ``faces``) that were not embedded because they carry a tracked
    #: visitor's identity (identity reuse): the track's VisitorId.
    carried: dict[int, str] = field(default_factory=dict)

    def section(self, kind: type[S]) -> S | None:
        """The section of that type, if an operation of the stream produced one."""
        for section in self.sections:
            if isinstance(section, kind):
                return section
        return None


class _StreamProcessorInformation(Shape):
    Name: str
    Status: str = "RUNNING"
    Node: str | None = None  # with cluster: the node that analysed the frame (holds the lease)


class _InputInformation(Shape):
    Source: str
    FrameNumber: int
    FrameOffsetInSeconds: float
    ProducerTimestamp: float
    ServerTimestamp: float
    Width: int
    Height: int
    SkippedFrames: int
    IdleSkippedFrames: int = 0  # of SkippedFrames: no motion and nobody tracked


class FrameRecord(Shape):
    """The frame's record on ``streamproc.<stream>.frames``, shaped after a Rekognition Video
    stream processor's output; the sections' fields sit at the top level on the wire."""

    StreamProcessorInformation: _StreamProcessorInformation
    InputInformation: _InputInformation
    sections: list[FrameSection] = []

    @classmethod
    def of(
        cls, result: FrameResult, *, source: str, server_time: float, skipped: int, idle: int = 0,
        node: str | None = None,
    ) -> FrameRecord:
        frame = result.frame
        return cls(
            StreamProcessorInformation=_StreamProcessorInformation(Name=result.stream_id,
                                                                   Node=node),
            InputInformation=_InputInformation(
                Source=source,
                FrameNumber=frame.frame_number,
                FrameOffsetInSeconds=frame.pts,
                ProducerTimestamp=frame.capture_time,
                ServerTimestamp=server_time,
                Width=frame.width,
                Height=frame.height,
                SkippedFrames=skipped,
                IdleSkippedFrames=idle,
            ),
            sections=result.sections,
        )

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "StreamProcessorInformation": self.StreamProcessorInformation.to_wire(),
            "InputInformation": self.InputInformation.to_wire(),
        }
        for section in self.sections:
            wire.update(section.to_wire())
        return wire
