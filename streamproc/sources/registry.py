"""Pick the source class for a URL by its scheme (a plain dict until plugins take over)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from streamproc.sources.base import Source
from streamproc.sources.file import FileSource
from streamproc.sources.rtsp import RtspSource

__all__ = [
    "SOURCE_FACTORIES",
    "SourceFactory",
    "UnsupportedSourceError",
    "create_source",
    "register_source",
    "source_scheme",
]

SourceFactory = Callable[..., Source]
"""Called as ``factory(stream_id, url, **options)``."""

SOURCE_FACTORIES: dict[str, SourceFactory] = {
    "rtsp": RtspSource,
    "rtsps": RtspSource,
    "file": FileSource,
}


class UnsupportedSourceError(ValueError):
    """No source is registered for the URL's scheme."""


def source_scheme(url: str) -> str:
    """Lower-case scheme; a plain path (or a Windows drive letter) counts as ``file``."""
    scheme = urlsplit(url).scheme.lower()
    return scheme if len(scheme) > 1 else "file"


def register_source(scheme: str, factory: SourceFactory, *, replace: bool = False) -> None:
    scheme = scheme.lower()
    if scheme in SOURCE_FACTORIES and not replace:
        raise ValueError(f"a source is already registered for {scheme}://")
    SOURCE_FACTORIES[scheme] = factory


def create_source(stream_id: str, url: str, **options: Any) -> Source:
    """The source for ``url``; ``options`` go to its constructor (e.g. ``read_timeout``)."""
    scheme = source_scheme(url)
    try:
        factory = SOURCE_FACTORIES[scheme]
    except KeyError:
        known = ", ".join(sorted(SOURCE_FACTORIES))
        raise UnsupportedSourceError(f"no source for {scheme}:// (known: {known})") from None
    return factory(stream_id, url, **options)
