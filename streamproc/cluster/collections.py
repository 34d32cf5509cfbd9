"""ReplicatedCollections: a node's collection writes through the log, and consistent reads.

Each write: read the collection's last record sequence from the stream, wait until this
node's store has applied it, decide against the store exactly as ``CollectionStore`` would
(same checks, same errors, new FaceIds/ImageId), publish the decision with that sequence as
``Nats-Expected-Last-Subject-Sequence``, and wait until the local store has applied the
record (read-your-writes). If another writer appended first, the publish is refused and the
write decides again on the newer state (at most ``max_attempts`` times).

Consistent reads (``describe_collection``, ``list_collections``, ``list_faces``,
``search``; what an API read on any node uses) first :meth:`catch_up`: wait until the store
has applied the stream's last sequence as of the call. Past ``read_timeout_s`` they raise
ThrottlingException (HTTP 500, "temporarily unable to process the request": AWS SDKs retry
it); per-frame search should call the store directly and accept bounded staleness (the
applier's lag, normally milliseconds). A node whose applier stopped answers every write and
consistent read with InternalServerError naming the record it could not apply.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np

from streamproc.errors import (
    InvalidParameterException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
    ThrottlingException,
)
from streamproc.store import (
    DEFAULT_FACE_MODEL_VERSION,
    BoundingBox,
    Collection,
    CollectionStore,
    FaceRecord,
    IndexResult,
    NewFace,
)
from streamproc.store.replica import ReplicaFace
from streamproc.store.validation import (
    MAX_DELETE_FACE_IDS,
    check_collection_id,
    check_external_image_id,
    check_face_id,
    check_image_sha256,
)

from .applier import LogApplier
from .log import CollectionLog, WrongLastSequence
from .records import CreateCollection, DeleteCollection, DeleteFaces, IndexFaces, Record

__all__ = ["ReplicatedCollections"]

T = TypeVar("T")
# A decision: the record to publish (None: nothing to write) and the write's result.
Decision = tuple[Record | None, T]


class ReplicatedCollections:
    """One node's view of the replicated collections (its store, the log, its applier)."""

    def __init__(
        self,
        store: CollectionStore,
        log: CollectionLog,
        applier: LogApplier,
        *,
        node: str,
        write_timeout_s: float = 15.0,
        read_timeout_s: float = 5.0,
        max_attempts: int = 50,
    ) -> None:
        self.store = store
        self.log = log
        self.applier = applier
        self.node = node
        self.write_timeout_s = write_timeout_s
        self.read_timeout_s = read_timeout_s
        self.max_attempts = max_attempts
        self.conflicts = 0  # publishes refused because another writer was first

    # -- the write protocol -------------------------------------------------------------

    async def _write(self, collection_id: str, decide: Callable[[], Decision[T]]) -> T:
        deadline = time.monotonic() + self.write_timeout_s

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        for _ in range(self.max_attempts):
            expected = await self.log.last_subject_seq(collection_id)
            await self.applier.wait_applied(expected, left())
            record, result = await asyncio.to_thread(decide)
            if record is None:
                return result
            try:
                seq = await self.log.publish(
                    record,
                    record_id=str(uuid.uuid4()),
                    writer=self.node,
                    expected_subject_seq=expected,
                    # a deleted collection's records are of no use to anyone: one tombstone
                    rollup=isinstance(record, DeleteCollection),
                )
            except WrongLastSequence:
                self.conflicts += 1
                await asyncio.sleep(0)
                continue
            await self.applier.wait_applied(seq, left())
            return result
        raise ThrottlingException(
            f"collection {collection_id} is being written by other nodes; gave up after "
            f"{self.max_attempts} attempts: try again"
        )

    async def catch_up(self, timeout: float | None = None) -> int:
        """Wait until this node's store has applied everything the log held at the call."""
        return await self.applier.catch_up(self.read_timeout_s if timeout is None else timeout)

    # -- writes ---------------------------------------------------------------------------

    async def create_collection(
        self, collection_id: str, *, face_model_version: str = DEFAULT_FACE_MODEL_VERSION
    ) -> Collection:
        check_collection_id(collection_id)
        if not isinstance(face_model_version, str) or not face_model_version:
            raise InvalidParameterException("face_model_version must be a non-empty string")

        def decide() -> Decision[Collection]:
            try:
                self.store.describe_collection(collection_id)
            except ResourceNotFoundException:
                pass
            else:
                raise ResourceAlreadyExistsException(
                    f"The collection id: {collection_id} already exists"
                )
            created = time.time()
            collection = Collection(
                collection_id=collection_id,
                arn=self.store.arn(collection_id),
                face_model_version=face_model_version,
                created_at=datetime.fromtimestamp(created, tz=UTC),
                face_count=0,
                dimension=None,
            )
            return CreateCollection(collection_id, face_model_version, created), collection

        return await self._write(collection_id, decide)

    async def delete_collection(self, collection_id: str) -> None:
        check_collection_id(collection_id)

        def decide() -> Decision[None]:
            collection = self.store.describe_collection(collection_id)  # NotFound if absent
            return DeleteCollection(collection_id, collection.face_model_version), None

        await self._write(collection_id, decide)

    async def index_faces(
        self,
        collection_id: str,
        *,
        image_sha256: str,
        external_image_id: str | None,
        faces: Sequence[NewFace],
    ) -> IndexResult:
        """As ``CollectionStore.index_faces``, replicated."""
        check_collection_id(collection_id)
        check_image_sha256(image_sha256)
        check_external_image_id(external_image_id)
        prepared = self.store.prepare_faces(faces)

        def decide() -> Decision[IndexResult]:
            with self.store._read() as conn:
                decided = self.store.decide_index(
                    conn, collection_id, image_sha256, external_image_id, prepared
                )
                model = conn.execute(
                    "SELECT face_model_version FROM collections WHERE name = ?",
                    (collection_id,),
                ).fetchone()[0]
            if isinstance(decided, IndexResult):
                return None, decided
            image_id = str(uuid.uuid4())
            chosen = [
                ReplicaFace(
                    face_id=str(uuid.uuid4()),
                    box=box,
                    confidence=confidence,
                    vector=np.asarray(vector, dtype=np.float32),
                    detail=face.detail,
                )
                for (box, confidence, vector, _), face in zip(prepared, faces, strict=True)
            ]
            record = IndexFaces(
                collection_id=collection_id,
                face_model_version=model,
                image_id=image_id,
                image_sha256=image_sha256,
                external_image_id=external_image_id,
                created_at=time.time(),
                faces=tuple(chosen),
            )
            result = IndexResult(
                faces=[
                    FaceRecord(
                        face_id=f.face_id,
                        image_id=image_id,
                        external_image_id=external_image_id,
                        bounding_box=BoundingBox(*f.box),
                        confidence=f.confidence,
                        detail=f.detail,
                    )
                    for f in chosen
                ],
                image_id=image_id,
                already_indexed=False,
            )
            return record, result

        return await self._write(collection_id, decide)

    async def delete_faces(self, collection_id: str, face_ids: Sequence[str]) -> list[str]:
        """As ``CollectionStore.delete_faces``, replicated: the FaceIds that existed."""
        check_collection_id(collection_id)
        if isinstance(face_ids, str) or not isinstance(face_ids, Sequence):
            raise InvalidParameterException("FaceIds must be a list of face ids")
        if not 1 <= len(face_ids) <= MAX_DELETE_FACE_IDS:
            raise InvalidParameterException(
                f"FaceIds must hold between 1 and {MAX_DELETE_FACE_IDS} face ids"
            )
        wanted = list(dict.fromkeys(check_face_id(f) for f in face_ids))

        def decide() -> Decision[list[str]]:
            collection = self.store.describe_collection(collection_id)
            with self.store._read() as conn:
                key = self.store._collection_row(conn, collection_id)[0]
                found = {r[1] for r in self.store.face_rows(conn, key, wanted)}
            deleted = [f for f in wanted if f in found]
            if not deleted:
                return None, []
            record = DeleteFaces(collection_id, collection.face_model_version, tuple(deleted))
            return record, deleted

        return await self._write(collection_id, decide)

    # -- consistent reads -----------------------------------------------------------------

    async def _read(self, call: Callable[[], T]) -> T:
        await self.catch_up()
        return await asyncio.to_thread(call)

    async def describe_collection(self, collection_id: str) -> Collection:
        return await self._read(lambda: self.store.describe_collection(collection_id))

    async def list_collections(
        self, max_results: int | None = None, next_token: str | None = None
    ) -> tuple[list[Collection], str | None]:
        return await self._read(lambda: self.store.list_collections(max_results, next_token))

    async def list_faces(
        self, collection_id: str, max_results: int | None = None, next_token: str | None = None
    ) -> tuple[list[FaceRecord], str | None]:
        return await self._read(
            lambda: self.store.list_faces(collection_id, max_results, next_token)
        )

    async def search(
        self, collection_id: str, embedding: np.ndarray, *, max_faces: int, min_score: float = -1.0
    ) -> list[tuple[FaceRecord, float]]:
        return await self._read(
            lambda: self.store.search(
                collection_id, embedding, max_faces=max_faces, min_score=min_score
            )
        )
