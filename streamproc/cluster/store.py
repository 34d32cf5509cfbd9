"""ReplicatedStore: a cluster node's collection store, as every operation sees it.

On a node, ``OperationContext.store`` is a ReplicatedStore instead of a plain
CollectionStore (:class:`.node.ClusterNode` installs it), so every front door (HTTP API,
NATS service, web console, Python client of the node's engine) goes through the log
without a line of per-operation code:

- writes (CreateCollection, DeleteCollection, IndexFaces, DeleteFaces) are handed to the
  node's :class:`.collections.ReplicatedCollections` on its event loop: decided, published,
  and returned once applied here (read-your-writes);
- reads are this node's SQLite replica. Inside an API request
  (:meth:`consistent_reads`, entered by ``Engine.run``) the request's first read waits
  until the store has applied the stream's last sequence as of that moment (at most
  ``cluster.read_wait_s``, then ThrottlingException, which AWS SDKs retry);
- outside a request (per-frame search of a stream) reads do not wait: they see what the
  applier has applied, normally milliseconds behind the log (bounded staleness).

Operations run in worker threads; the log lives on the node's event loop. Calling a write
or a consistent read on the event loop's own thread would deadlock and raises instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from typing import TypeVar

import numpy as np

from streamproc.errors import InternalServerError, ThrottlingException
from streamproc.store import (
    DEFAULT_FACE_MODEL_VERSION,
    Collection,
    CollectionStore,
    FaceRecord,
    IndexResult,
    NewFace,
)

from .collections import ReplicatedCollections

__all__ = ["ReplicatedStore"]

T = TypeVar("T")

#: Beyond the write/read bounds of ReplicatedCollections: a loop that stopped answering.
_BRIDGE_SLACK_S = 30.0


async def _bounded(wait: Awaitable[T], limit: float) -> T:
    """The whole catch-up (asking the log its last sequence included) within ``limit``."""
    try:
        return await asyncio.wait_for(wait, limit)
    except TimeoutError:
        raise ThrottlingException(
            f"this node could not catch up with the collection log within {limit:g}s "
            "(cluster.read_wait_s): the log is unreachable or this node is behind; try again"
        ) from None


class ReplicatedStore(CollectionStore):
    """A node's SQLite replica whose writes go through the collection log."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._replicated: ReplicatedCollections | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scope = threading.local()

    def attach(self, collections: ReplicatedCollections, loop: asyncio.AbstractEventLoop) -> None:
        self._replicated = collections
        self._loop = loop

    def detach(self) -> None:
        self._replicated = None

    # -- the bridge to the node's event loop ----------------------------------------------

    def _run(self, call: Callable[[ReplicatedCollections], Awaitable[T]], limit: float) -> T:
        replicated, loop = self._replicated, self._loop
        if replicated is None or loop is None or loop.is_closed():
            raise InternalServerError(
                "this node is not connected to its cluster's collection log (starting or "
                "stopping): try another node or again shortly"
            )
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise RuntimeError(
                "ReplicatedStore called on the node's event loop thread: call it from a "
                "worker thread (asyncio.to_thread)"
            )

        async def go() -> T:
            return await call(replicated)

        future = asyncio.run_coroutine_threadsafe(go(), loop)
        try:
            return future.result(limit + _BRIDGE_SLACK_S)
        except FutureTimeout:
            future.cancel()
            raise ThrottlingException(
                "this node's collection log did not answer in time; try again"
            ) from None

    def _write_limit(self) -> float:
        return self._replicated.write_timeout_s if self._replicated else 0.0

    # -- consistent reads -----------------------------------------------------------------

    @contextmanager
    def consistent_reads(self) -> Iterator[None]:
        """One API request: its first read catches up with the log (see the module doc)."""
        outer = getattr(self._scope, "pending", None)
        self._scope.pending = True
        try:
            yield
        finally:
            self._scope.pending = outer

    def _catch_up_if_asked(self) -> None:
        if getattr(self._scope, "pending", None):
            self._scope.pending = False
            limit = self._replicated.read_timeout_s if self._replicated else 0.0
            self._run(lambda r: _bounded(r.catch_up(), limit), limit)

    def describe_collection(self, collection_id: str) -> Collection:
        self._catch_up_if_asked()
        return super().describe_collection(collection_id)

    def list_collections(
        self, max_results: int | None = None, next_token: str | None = None
    ) -> tuple[list[Collection], str | None]:
        self._catch_up_if_asked()
        return super().list_collections(max_results, next_token)

    def list_faces(
        self, collection_id: str, max_results: int | None = None, next_token: str | None = None
    ) -> tuple[list[FaceRecord], str | None]:
        self._catch_up_if_asked()
        return super().list_faces(collection_id, max_results, next_token)

    def get_face(self, collection_id: str, face_id: str) -> FaceRecord:
        self._catch_up_if_asked()
        return super().get_face(collection_id, face_id)

    def search(
        self,
        collection_id: str,
        embedding: np.ndarray,
        *,
        max_faces: int,
        min_score: float = -1.0,
        exclude_face_id: str | None = None,
    ) -> list[tuple[FaceRecord, float]]:
        self._catch_up_if_asked()
        return super().search(
            collection_id, embedding, max_faces=max_faces, min_score=min_score,
            exclude_face_id=exclude_face_id,
        )

    # -- writes: through the log ----------------------------------------------------------

    def create_collection(
        self, collection_id: str, *, face_model_version: str = DEFAULT_FACE_MODEL_VERSION
    ) -> Collection:
        return self._run(
            lambda r: r.create_collection(collection_id, face_model_version=face_model_version),
            self._write_limit(),
        )

    def delete_collection(self, collection_id: str) -> None:
        self._run(lambda r: r.delete_collection(collection_id), self._write_limit())

    def index_faces(
        self,
        collection_id: str,
        *,
        image_sha256: str,
        external_image_id: str | None,
        faces: Sequence[NewFace],
    ) -> IndexResult:
        return self._run(
            lambda r: r.index_faces(
                collection_id, image_sha256=image_sha256,
                external_image_id=external_image_id, faces=faces,
            ),
            self._write_limit(),
        )

    def delete_faces(self, collection_id: str, face_ids: Sequence[str]) -> list[str]:
        return self._run(lambda r: r.delete_faces(collection_id, face_ids), self._write_limit())
