"""The built-in event observers: visitor events and label events.

Offered through ``streamproc_frame_observers`` like any third-party plugin's observers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streamproc.hookspecs import hookimpl
from streamproc.runtime.label_events import LabelEventsObserver
from streamproc.runtime.observers import FrameObserver
from streamproc.runtime.visits import VisitObserver

__all__ = ["streamproc_frame_observers"]


@hookimpl
def streamproc_frame_observers(
    stream_id: str, config: Any, operations: frozenset[str]
) -> Sequence[FrameObserver]:
    observers: list[FrameObserver] = []
    if config.events.enabled:
        # Visits follow whatever face analysis the stream's operations ran (none: no
        # visits); identities come only from faces a face search matched or missed.
        observers.append(VisitObserver(stream_id, config.events))
    if config.label_events is not None and "DetectLabels" in operations:
        observers.append(LabelEventsObserver(stream_id, config.label_events))
    return observers
