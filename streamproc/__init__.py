"""streamproc: a self-hosted vision service that speaks the Amazon Rekognition image API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamproc import errors
from streamproc.hookspecs import hookimpl

if TYPE_CHECKING:
    from streamproc.client import Client

__version__ = "0.1.0"

__all__ = ["Client", "errors", "hookimpl", "__version__"]


def __getattr__(name: str) -> Any:
    # The client pulls in the engine and plugins: load it only when asked for.
    if name == "Client":
        from streamproc.client import Client

        return Client
    raise AttributeError(f"module 'streamproc' has no attribute {name!r}")
