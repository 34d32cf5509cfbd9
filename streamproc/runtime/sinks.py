"""Event sinks: where a stream's typed events and state go besides NATS (e.g. MQTT).

The runner hands each sink the events it has just published and every state change of
the stream, on the event loop: a sink only queues (an MQTT client publishes from its own
thread), never blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from streamproc.shapes import Shape

__all__ = ["EventSink"]


class EventSink(Protocol):
    def on_events(self, stream_id: str, events: Sequence[Shape]) -> None:
        """Events just published on ``streamproc.<stream>.events`` (visitor, label, ...)."""
        ...

    def on_status(self, stream_id: str, status: str, reason: str | None) -> None:
        """``CONNECTING``, ``ONLINE``, ``OFFLINE`` or ``STOPPED``."""
        ...
