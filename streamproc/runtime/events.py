"""Visitor events published on ``streamproc.<stream>.events``: one of each per visit."""

from __future__ import annotations

from typing import Any, Literal

from streamproc.shapes import BoundingBox, Shape

__all__ = [
    "VisitorArrived",
    "VisitorIdentified",
    "VisitorLeft",
    "VisitorEvent",
    "describe_event",
]


class _VisitorEvent(Shape):
    StreamName: str
    VisitorId: str
    Timestamp: float  # wall clock (s since the epoch) of the frame that caused the event
    FrameNumber: int
    FrameOffsetInSeconds: float


class VisitorArrived(_VisitorEvent):
    """A new face track was confirmed (seen on ``confirm_frames`` analysed frames)."""

    EventType: Literal["VisitorArrived"] = "VisitorArrived"
    BoundingBox: BoundingBox


class VisitorIdentified(_VisitorEvent):
    """The vote over the track's frames decided who it is, or that nobody matched."""

    EventType: Literal["VisitorIdentified"] = "VisitorIdentified"
    Matched: bool
    ExternalImageId: str | None = None
    FaceId: str | None = None
    Similarity: float | None = None
    FramesVoted: int
    Snapshot: bytes  # JPEG of the best face crop of the track so far


class VisitorLeft(_VisitorEvent):
    """The track was not seen for ``left_after_s`` seconds (or the stream ended)."""

    EventType: Literal["VisitorLeft"] = "VisitorLeft"
    ExternalImageId: str | None = None
    DurationSeconds: float
    FramesSeen: int


VisitorEvent = VisitorArrived | VisitorIdentified | VisitorLeft


def describe_event(event: dict[str, Any]) -> str:
    """One human line per event, as a door notification would say it."""
    stream = event.get("StreamName", "?")
    visitor = str(event.get("VisitorId", ""))[:8]
    kind = event.get("EventType")
    if kind == "VisitorArrived":
        return f"Someone arrived at {stream} (visitor {visitor})"
    if kind == "VisitorIdentified":
        if event.get("Matched"):
            return (
                f"{event.get('ExternalImageId')} is at {stream} "
                f"(similarity {event.get('Similarity', 0):.1f}, visitor {visitor})"
            )
        return f"An unknown visitor is at {stream} (visitor {visitor})"
    if kind == "VisitorLeft":
        who = event.get("ExternalImageId") or "The visitor"
        return (
            f"{who} left {stream} after {event.get('DurationSeconds', 0):.1f} s "
            f"({event.get('FramesSeen')} frames, visitor {visitor})"
        )
    return f"{kind} on {stream}"
