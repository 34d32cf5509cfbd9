"""Everything a plugin author imports, from one module.

A plugin is a module registered under the ``streamproc`` entry point group that implements
hooks (:mod:`streamproc.hookspecs` documents each) with :data:`hookimpl`:

- ``streamproc_register_operations``: a Rekognition operation (:class:`Operation`) that
  appears in the Client, the CLI, NATS and, with a ``frame_handler``, on every frame;
- ``streamproc_register_sources``: a video source for a URL scheme (:class:`Source`);
- ``streamproc_frame_observers``: per-stream event logic (:class:`FrameObserver`) fed with
  typed :class:`FrameResult` s, as the built-in visitor and label events are.
"""

from __future__ import annotations

from streamproc import errors
from streamproc.faces import AnalyzedFace, ImageFaces
from streamproc.hookspecs import hookimpl
from streamproc.operations import Operation, OperationContext
from streamproc.runtime.events import VisitorArrived, VisitorIdentified, VisitorLeft
from streamproc.runtime.frame_input import FrameInput
from streamproc.runtime.frame_result import FrameClock, FrameError, FrameResult
from streamproc.runtime.observers import FrameObserver
from streamproc.shapes import (
    BoundingBox,
    CelebritiesSection,
    FaceDetailsSection,
    FaceSearchRecord,
    FaceSearchSection,
    FrameSection,
    LabelsSection,
    ModerationLabelsSection,
    Request,
    Shape,
)
from streamproc.sources import Frame, Source

__all__ = [
    "AnalyzedFace",
    "BoundingBox",
    "CelebritiesSection",
    "FaceDetailsSection",
    "FaceSearchRecord",
    "FaceSearchSection",
    "Frame",
    "FrameClock",
    "FrameError",
    "FrameInput",
    "FrameObserver",
    "FrameResult",
    "FrameSection",
    "ImageFaces",
    "LabelsSection",
    "ModerationLabelsSection",
    "Operation",
    "OperationContext",
    "Request",
    "Shape",
    "Source",
    "VisitorArrived",
    "VisitorIdentified",
    "VisitorLeft",
    "errors",
    "hookimpl",
]
