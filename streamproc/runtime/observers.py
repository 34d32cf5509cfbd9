"""Frame observers: per-stream event logic fed with typed frame results.

The visitor tracker and the label events are observers, offered through the
``streamproc_frame_observers`` hook exactly as a third-party plugin offers its own. The
runner calls each observer in frame order, one frame at a time, in a worker thread (so an
observer may encode a JPEG), and publishes the events it returns on
``streamproc.<stream>.events``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from streamproc.runtime.deployment import ReuseConfig
from streamproc.runtime.frame_result import FrameClock, FrameResult
from streamproc.runtime.reuse import ReusePlan
from streamproc.shapes import BoundingBox, Shape

__all__ = ["FrameObserver", "busy", "reuse_plan", "tracked_boxes"]


@runtime_checkable
class FrameObserver(Protocol):
    """What the runner needs of an observer; events are shapes with an ``EventType``."""

    #: Names the observer in logs, metrics and error records.
    name: str

    def observe(self, result: FrameResult) -> Sequence[Shape]:
        """The events this analysed frame causes (often none)."""
        ...

    def end(self, clock: FrameClock, reason: str) -> Sequence[Shape]:
        """The stream went offline, restarted or stopped: close what is open (e.g. visits)."""
        ...


def busy(observer: object) -> bool:
    """An observer that follows something (an open visit) wants every frame analysed, even
    without motion; observers may say so with an optional ``busy()`` method."""
    method = getattr(observer, "busy", None)
    return bool(method()) if callable(method) else False


def tracked_boxes(observer: object) -> list[BoundingBox]:
    """The boxes (ratios) of what an observer follows, from an optional ``tracked_boxes()``
    method: the runner lets the detector look for close-up faces while one is large."""
    method = getattr(observer, "tracked_boxes", None)
    return list(method()) if callable(method) else []


def reuse_plan(observer: object, settings: ReuseConfig) -> ReusePlan | None:
    """What the next frame may carry instead of embedding (identity reuse), from an
    observer that tracks identities (an optional ``reuse_plan(settings)`` method)."""
    method = getattr(observer, "reuse_plan", None)
    return method(settings) if callable(method) else None  # type: ignore[no-any-return]
