"""What an operation is, and the shared context operations run in."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from streamproc.settings import Settings
from streamproc.shapes import FrameSection, Request, Shape

if TYPE_CHECKING:
    from streamproc.buckets import Buckets
    from streamproc.faces import FaceAnalyzer
    from streamproc.store import CollectionStore

__all__ = ["Operation", "OperationContext", "snake_case"]


def snake_case(name: str) -> str:
    """``"SearchFacesByImage"`` → ``"search_faces_by_image"`` (boto3's method names)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class Operation:
    """A Rekognition action: its shapes and the function that answers it.

    An operation that can also run on every analysed frame of a stream gives a
    ``frame_handler``: it receives the frame (with its shared face analysis) and the
    validated request built from the deployment's parameters (without ``Image``), and
    returns a typed :class:`~streamproc.shapes.FrameSection` (e.g. ``FaceDetailsSection``)
    whose fields become keys of the frame record and which observers read as an object.
    ``frame_needs`` says which face-analysis parts it reads ("embeddings",
    "attributes"), so each frame is analysed once for all operations.
    """

    name: str
    request: type[Request]
    response: type[Shape]
    handler: Callable[[Any, OperationContext], Shape]
    summary: str = ""
    frame_handler: Callable[[Any, Any, OperationContext], FrameSection] | None = None
    frame_needs: Callable[[Any], frozenset[str]] = lambda request: frozenset()

    @property
    def method_name(self) -> str:
        return snake_case(self.name)

    @property
    def cli_name(self) -> str:
        return self.method_name.replace("_", "-")


class OperationContext:
    """Shared, lazily built resources: models load on first use, once per process."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._lock = threading.Lock()
        self._resources: dict[str, Any] = {}

    def resource(self, key: str, factory: Callable[[], Any]) -> Any:
        """A process-wide singleton for plugins' own resources (catalogs, extra models)."""
        with self._lock:
            if key not in self._resources:
                self._resources[key] = factory()
            return self._resources[key]

    @cached_property
    def faces(self) -> FaceAnalyzer:
        from streamproc.faces import FaceAnalyzer

        return FaceAnalyzer(threads=self.settings.threads)

    @cached_property
    def store(self) -> CollectionStore:
        from streamproc.store import CollectionStore

        return CollectionStore(
            self.settings.store,
            region=self.settings.region,
            account_id=self.settings.account_id,
        )

    def use_store(self, store: CollectionStore) -> None:
        """Answer every operation from ``store`` (a cluster node's ReplicatedStore) from now
        on; a plain store opened before is closed."""
        old = self.__dict__.get("store")
        self.__dict__["store"] = store
        if old is not None and old is not store:
            old.close()

    def request_scope(self) -> AbstractContextManager[object]:
        """Around one API request (:meth:`Engine.run`): a cluster node's store catches up
        with the collection log before the request's first read (README, Scaling out);
        per-frame work runs outside any request and reads what is applied (no wait)."""
        scope = getattr(self.__dict__.get("store"), "consistent_reads", None)
        return scope() if scope is not None else contextlib.nullcontext()

    @cached_property
    def buckets(self) -> Buckets:
        """Where ``Image.S3Object`` is read from; empty (S3 not configured) by default."""
        from streamproc.buckets import load_buckets

        return load_buckets(self.settings.buckets)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
        if "buckets" in self.__dict__:
            self.buckets.close()
        for value in self._resources.values():
            close = getattr(value, "close", None)
            if callable(close):
                close()
        self._resources.clear()
