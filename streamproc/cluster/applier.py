"""LogApplier: apply the collection log to this node's store, in stream order.

The applier reads the stream with an ordered consumer (nats-py recreates it after a gap,
missed heartbeats or a server change) from the sequence after the store's position, and
applies records in batches: each batch is one store transaction that also records the last
sequence applied (``streamproc.store.replica``). A restarted node therefore resumes exactly
where its store stopped, and a new node (empty store) rebuilds from sequence 1.

A Snapshot record (:mod:`.snapshots`) replaces a collection's earlier records: a node that
applied the log past the record the snapshot was taken at already holds that state and
only advances; any other node streams the object to a temporary file beside its store and
rebuilds the collection from it in one transaction with the record's sequence. If the
object is gone because a newer snapshot replaced that record too, the record is skipped
(the newer one follows in the stream).

A record this node cannot apply (a newer record version, a face model it does not know,
a decision that does not fit its store) stops the applier: it logs the sequence and the
reason at CRITICAL, and every wait on it raises InternalServerError naming them. Skipping a
record would silently fork this replica from the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import IO, TypeVar

from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from streamproc.errors import InternalServerError, ThrottlingException
from streamproc.store import CollectionStore
from streamproc.store.replica import (
    ReplicaTransaction,
    log_position,
    replica_transaction,
)

from .errors import RecordError, UnknownRecordVersion
from .log import CollectionLog
from .records import (
    CreateCollection,
    DeleteCollection,
    DeleteFaces,
    IndexFaces,
    Record,
    Snapshot,
    decode_record,
)
from .snapshots import SnapshotMissing, SnapshotObjects, read_snapshot
from .subjects import collection_from_subject

__all__ = ["ApplierStopped", "LogApplier"]

log = logging.getLogger(__name__)


_Failure = tuple[int, str, str]  # (sequence, subject, reason) of a record not applied
T = TypeVar("T")


@dataclass(frozen=True)
class _NeedsSnapshot:
    """The batch stopped before ``index``: a snapshot whose object must be fetched."""

    index: int
    record: Snapshot


@dataclass(frozen=True)
class ApplierStopped:
    """Why the applier stopped: the record it could not apply."""

    seq: int
    subject: str
    reason: str

    def __str__(self) -> str:
        return f"stopped at stream sequence {self.seq} ({self.subject}): {self.reason}"


def _apply(tx: ReplicaTransaction, record: Record) -> None:
    match record:
        case CreateCollection():
            tx.create_collection(
                record.collection_id, record.face_model_version, record.created_at
            )
        case DeleteCollection():
            # A tombstone (a rollup) may be all a node ever sees of a collection: the
            # records that created it went with it.
            tx.discard_collection(record.collection_id)
        case IndexFaces():
            tx.index_faces(
                record.collection_id,
                face_model_version=record.face_model_version,
                image_id=record.image_id,
                image_sha256=record.image_sha256,
                external_image_id=record.external_image_id,
                created_at=record.created_at,
                faces=record.faces,
            )
        case DeleteFaces():
            tx.delete_faces(record.collection_id, record.face_ids)
        case Snapshot():  # a snapshot inside a snapshot
            raise RecordError("a snapshot holds only collection, image and face records")


class LogApplier:
    """Applies ``log`` to ``store``; :meth:`wait_applied` and :meth:`catch_up` wait for it.

    ``face_models``: the FaceModelVersions this node can serve; a record of another model
    stops the applier (None: any).
    """

    def __init__(
        self,
        store: CollectionStore,
        log_: CollectionLog,
        *,
        face_models: Collection[str] | None = None,
        snapshots: SnapshotObjects | None = None,
        batch: int = 256,
        heartbeat_s: float = 1.0,
    ) -> None:
        self.store = store
        self.log = log_
        self.snapshots = snapshots
        self.snapshots_loaded = 0  # snapshots this node rebuilt a collection from
        self.face_models = frozenset(face_models) if face_models is not None else None
        self.batch = batch
        self.heartbeat_s = heartbeat_s
        self.applied = 0
        self.records_applied = 0
        self.stopped: ApplierStopped | None = None
        self._queue: asyncio.Queue[Msg] = asyncio.Queue(maxsize=4 * batch)
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._sub: object | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the store's position and start following the log from the next record."""
        identity = self.log.identity
        position = await asyncio.to_thread(log_position, self.store, self.log.stream, identity)
        self.applied = position.seq
        info = await self.log.info()
        # The log may start after this store's position: records go only by rollup, and
        # each rolled-up record is replaced by a later one (a snapshot or a tombstone).
        last = int(info.state.last_seq or 0)
        if last < self.applied:
            await self._stop(
                self.applied,
                self.log.subjects,
                f"this store applied up to sequence {self.applied} but the log ends at "
                f"{last}: the stream lost records or is not the one this store followed",
            )
            return
        self._sub = await self.log.js.subscribe(
            self.log.subjects,
            stream=self.log.stream,
            cb=self._queue.put,
            ordered_consumer=True,
            idle_heartbeat=self.heartbeat_s,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self.applied + 1,
            ),
        )
        self._task = asyncio.create_task(self._run(), name=f"log-applier-{self.log.stream}")

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()  # type: ignore[attr-defined]
            self._sub = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- waiting --------------------------------------------------------------------------

    def _raise_if_stopped(self) -> None:
        if self.stopped is not None:
            raise InternalServerError(
                f"this node stopped applying the collection log ({self.stopped}); its "
                "collections are out of date until an operator fixes it"
            )

    async def wait_applied(self, seq: int, timeout: float) -> None:
        """Return once the store has applied stream sequence ``seq``.

        ThrottlingException after ``timeout`` seconds (the node is behind: retry);
        InternalServerError if the applier stopped.
        """
        if self.applied >= seq:
            return
        self._raise_if_stopped()

        async def reached() -> None:
            async with self._changed:
                await self._changed.wait_for(
                    lambda: self.applied >= seq or self.stopped is not None
                )

        try:
            await asyncio.wait_for(reached(), timeout)
        except TimeoutError:
            raise ThrottlingException(
                f"this node has applied the collection log up to sequence {self.applied}, "
                f"not yet {seq}, after waiting {timeout:g}s; try again"
            ) from None
        if self.applied < seq:
            self._raise_if_stopped()

    async def catch_up(self, timeout: float) -> int:
        """Wait until the store has applied the stream's last sequence (as of now)."""
        start = time.monotonic()
        last = await self.log.last_seq()
        await self.wait_applied(last, max(0.0, timeout - (time.monotonic() - start)))
        return last

    # -- applying -------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while True:
                msgs = [await self._queue.get()]
                while len(msgs) < self.batch and not self._queue.empty():
                    msgs.append(self._queue.get_nowait())
                pending = [m for m in msgs if m.metadata.sequence.stream > self.applied]
                while pending:
                    outcome = await self._retry_busy(self._apply_batch, pending)
                    if isinstance(outcome, _NeedsSnapshot):
                        msg = pending[outcome.index]
                        pending = pending[outcome.index + 1:]
                        failure = await self._load_snapshot(msg, outcome.record)
                    else:
                        pending, failure = [], outcome
                    async with self._changed:
                        self._changed.notify_all()
                    if failure is not None:
                        await self._stop(*failure)
                        return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: say so loudly rather than hang every caller
            log.exception("the log applier failed")
            await self._stop(self.applied + 1, self.log.subjects, f"applier error: {exc!r}")

    async def _retry_busy(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in a thread, again while the store is busy (not a record's fault)."""
        while True:
            try:
                return await asyncio.to_thread(fn, *args)
            except ThrottlingException as exc:
                log.warning("collection store busy applying the log: %s", exc)
                await asyncio.sleep(0.2)

    async def _load_snapshot(self, msg: Msg, record: Snapshot) -> _Failure | None:
        """Rebuild ``record``'s collection from its object (or skip a superseded one)."""
        seq = msg.metadata.sequence.stream
        if self.snapshots is None:
            return seq, msg.subject, "a snapshot record, and this node has no snapshot store"
        started = time.monotonic()
        with tempfile.TemporaryFile(dir=self.store.directory, prefix=".snapshot-") as f:
            try:
                await self.snapshots.get(record.object_name, f, 60.0 + record.size / 5e6)
            except SnapshotMissing as exc:
                if await self.log.holds(seq):
                    return seq, msg.subject, f"its snapshot object is missing ({exc})"
                log.info("snapshot record %d of %r was replaced by a newer one; skipped",
                         seq, record.collection_id)
                await self._retry_busy(self._skip, seq)
                return None
            try:
                await self._retry_busy(self._apply_snapshot_file, f, seq, record)
            except Exception as exc:
                return seq, msg.subject, f"{type(exc).__name__}: {exc}"
        self.snapshots_loaded += 1
        log.info("collection %r rebuilt from snapshot %s (%d faces, %.1f MB) in %.1f s",
                 record.collection_id, record.object_name, record.faces, record.size / 1e6,
                 time.monotonic() - started)
        return None

    def _skip(self, seq: int) -> None:
        with replica_transaction(self.store, self.log.stream, self.log.identity) as tx:
            if seq > tx.position:
                tx.advance(seq)
        self.applied = max(self.applied, tx.position)

    def _apply_snapshot_file(self, f: IO[bytes], seq: int, record: Snapshot) -> None:
        f.seek(0)
        cid = record.collection_id
        with replica_transaction(self.store, self.log.stream, self.log.identity) as tx:
            if seq <= tx.position:
                return
            tx.discard_collection(cid)
            for r in read_snapshot(f, cid):
                self._check_part(r, record)
                _apply(tx, r)
            held = tx.counts(cid)
            if held != (record.images, record.faces):
                raise RecordError(
                    f"the snapshot of {cid!r} rebuilt {held[0]} images and {held[1]} faces; "
                    f"its record says {record.images} and {record.faces}"
                )
            for data in record.delta:  # the writes made while the object was made
                r = decode_record(data).record
                self._check_part(r, record)
                _apply(tx, r)
            tx.advance(seq)
        self.applied = max(self.applied, tx.position)
        self.records_applied += 1

    def _check_part(self, part: Record, snapshot: Snapshot) -> None:
        if part.collection_id != snapshot.collection_id or isinstance(part, Snapshot):
            raise RecordError(f"the snapshot of {snapshot.collection_id!r} holds a "
                              f"{type(part).__name__} record of {part.collection_id!r}")
        if self.face_models is not None and part.face_model_version not in self.face_models:
            raise UnknownRecordVersion(
                f"face model {part.face_model_version!r} is unknown to this node"
            )

    async def _stop(self, seq: int, subject: str, reason: str) -> None:
        self.stopped = ApplierStopped(seq, subject, reason)
        log.critical(
            "collection log %s: this node %s. It applies nothing more until an operator "
            "fixes the cause (upgrade this node, or rebuild its store from the log).",
            self.log.stream,
            self.stopped,
        )
        async with self._changed:
            self._changed.notify_all()

    def _decode(self, msg: Msg) -> Record:
        envelope = decode_record(msg.data)
        record = envelope.record
        try:
            named = collection_from_subject(msg.subject, self.log.settings.prefix)
        except ValueError as exc:
            raise RecordError(str(exc)) from exc
        if named != record.collection_id:
            raise RecordError(
                f"the record names collection {record.collection_id!r}, its subject {named!r}"
            )
        if self.face_models is not None and record.face_model_version not in self.face_models:
            raise UnknownRecordVersion(
                f"face model {record.face_model_version!r} is unknown to this node "
                f"(it knows {sorted(self.face_models)})"
            )
        return record

    def _apply_batch(self, msgs: Sequence[Msg]) -> _Failure | _NeedsSnapshot | None:
        """Apply ``msgs`` in one transaction, up to a snapshot that needs its object; on a
        failure, apply the good prefix one record at a time and return (seq, subject,
        reason) of the record that failed."""
        try:
            return self._apply_in_one(msgs)
        except ThrottlingException:
            raise
        except Exception as exc:
            if len(msgs) == 1:
                m = msgs[0]
                return m.metadata.sequence.stream, m.subject, f"{type(exc).__name__}: {exc}"
        for i, m in enumerate(msgs):
            try:
                needs = self._apply_in_one([m])
            except ThrottlingException:
                raise
            except Exception as exc:
                return m.metadata.sequence.stream, m.subject, f"{type(exc).__name__}: {exc}"
            if needs is not None:
                return _NeedsSnapshot(i, needs.record)
        return None

    def _apply_in_one(self, msgs: Sequence[Msg]) -> _NeedsSnapshot | None:
        needs: _NeedsSnapshot | None = None
        applied = 0
        with replica_transaction(self.store, self.log.stream, self.log.identity) as tx:
            for i, m in enumerate(msgs):
                seq = m.metadata.sequence.stream
                if seq <= tx.position:
                    continue  # applied before (a redelivery after a consumer reset)
                record = self._decode(m)
                if isinstance(record, Snapshot):
                    if tx.position < record.through:  # this node lacks that state
                        needs = _NeedsSnapshot(i, record)
                        break
                    # else: this store already holds the state the snapshot captured
                else:
                    _apply(tx, record)
                tx.advance(seq)
                applied += 1
        self.applied = max(self.applied, tx.position)
        self.records_applied += applied
        return needs
