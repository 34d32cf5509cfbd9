"""Hook specifications: how plugins extend streamproc.

Built-in operations are plugins too, registered through the same ``streamproc`` entry
point group a third-party package would use. Hooks are grouped by lifecycle; each is
prefixed ``streamproc_`` and documented here, the one place a plugin author reads.
Implementations are marked with :data:`streamproc.hookimpl`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from streamproc.operations import Operation
    from streamproc.runtime.observers import FrameObserver

__all__ = [
    "hookspec",
    "hookimpl",
    "streamproc_register_operations",
    "streamproc_register_sources",
    "streamproc_stream_started",
    "streamproc_frame_observers",
    "streamproc_stream_stopped",
]

hookspec = pluggy.HookspecMarker("streamproc")
hookimpl = pluggy.HookimplMarker("streamproc")


# --- start-up: what the process can do --------------------------------------------------------


@hookspec
def streamproc_register_operations(register: Callable[[Operation], None]) -> None:
    """Offer Rekognition operations by calling ``register(Operation(...))`` for each.

    An operation names its Rekognition action (``"DetectFaces"``), its request and
    response shapes, and the function that answers a validated request given the
    shared :class:`~streamproc.operations.OperationContext`. Every front door (the
    Python client, the CLI, the NATS service, per-frame analysis) reaches operations
    only through this registry, so one registration serves them all. Registering a
    name twice is an error.
    """


@hookspec
def streamproc_register_sources(register: Callable[..., None]) -> None:
    """Offer video sources by URL scheme: ``register("onvif", factory)``.

    ``factory(stream_id, url, **options)`` returns a :class:`streamproc.sources.Source`
    (an async iterator of decoded frames with status events). ``rtsp``, ``rtsps`` and
    ``file`` are built in; WHIP streams are served by the runtime's HTTP endpoint.
    """


# --- streams: called by the runtime for every stream of a deployment ---------------------------


@hookspec
def streamproc_stream_started(stream_id: str, config: Any) -> None:
    """A stream of the deployment starts (``config`` is its StreamConfig); before any frame."""


@hookspec
def streamproc_frame_observers(
    stream_id: str, config: Any, operations: frozenset[str]
) -> Sequence[FrameObserver] | None:
    """Offer per-stream event logic: return observers for this stream (or None).

    Called once when a stream starts, with its ``StreamConfig`` and the names of the
    operations it runs. Each :class:`~streamproc.runtime.observers.FrameObserver` then
    receives every analysed frame's typed :class:`~streamproc.runtime.frame_result.FrameResult`
    in order (``observe``) and the stream's end (``end``), in a worker thread, and returns
    the events to publish on ``streamproc.<stream>.events`` (shapes with an ``EventType``).
    The built-in visitor events and label events are observers offered this way. An
    observer that raises is logged, counted and reported on the status subject; the stream
    goes on.
    """


@hookspec
def streamproc_stream_stopped(stream_id: str, reason: str) -> None:
    """A stream ended: its source finished (a file), or the runtime is shutting down."""
