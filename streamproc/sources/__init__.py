"""Video sources: files and cameras as async iterators of RGB frames with status events."""

from streamproc.sources.base import LatestFrame, Source, SourceState, StatusEvent, StatusListener
from streamproc.sources.file import FileSource
from streamproc.sources.frame import Frame
from streamproc.sources.registry import (
    SOURCE_FACTORIES,
    SourceFactory,
    UnsupportedSourceError,
    create_source,
    register_source,
    source_scheme,
)
from streamproc.sources.rtsp import Backoff, RtspSource
from streamproc.sources.threaded import ThreadedSource
from streamproc.sources.whip import WhipError, WhipSource

__all__ = [
    "SOURCE_FACTORIES",
    "Backoff",
    "FileSource",
    "Frame",
    "LatestFrame",
    "RtspSource",
    "Source",
    "SourceFactory",
    "SourceState",
    "StatusEvent",
    "StatusListener",
    "ThreadedSource",
    "WhipError",
    "WhipSource",
    "UnsupportedSourceError",
    "create_source",
    "register_source",
    "source_scheme",
]
