"""Visitor events published on ``streamproc.<stream>.events``.

Per visit (one ``VisitorId``): exactly one ``VisitorArrived``, then zero or more
``VisitorIdentified`` (the first with ``Revision`` 0; each later one revises the previous
decision: unknown to a name once a confident match comes, or one name to another when the
evidence strongly favours someone else), then exactly one ``VisitorLeft`` carrying the final
identity. A subscriber that only wants the answer keeps the latest ``VisitorIdentified`` per
``VisitorId``; the rules are in :mod:`streamproc.runtime.identity`.
"""

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
    """The evidence of the track's frames decided who it is, or that nobody matched.

    ``Revision`` is 0 for a visit's first decision; a later one (1, 2, ...) revises the
    decision before it, which ``PreviousMatched`` / ``PreviousExternalImageId`` repeat.
    """

    EventType: Literal["VisitorIdentified"] = "VisitorIdentified"
    Matched: bool
    ExternalImageId: str | None = None
    FaceId: str | None = None
    Similarity: float | None = None
    FramesVoted: int
    Revision: int = 0
    PreviousMatched: bool | None = None
    PreviousExternalImageId: str | None = None
    Snapshot: bytes  # JPEG: the track's best face so far, with context (>= 3x the box)


class VisitorLeft(_VisitorEvent):
    """The track was not seen for ``left_after_s`` seconds (or the stream ended); carries
    the visit's final identity (``Matched`` false: unknown; absent: never decided)."""

    EventType: Literal["VisitorLeft"] = "VisitorLeft"
    Matched: bool | None = None
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
        if event.get("Revision"):
            who = event.get("ExternalImageId") if event.get("Matched") else "unknown"
            before = (
                event.get("PreviousExternalImageId") if event.get("PreviousMatched") else "unknown"
            )
            return (
                f"Update: the visitor at {stream} is {who}, not {before} "
                f"(similarity {event.get('Similarity') or 0:.1f}, visitor {visitor})"
            )
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
