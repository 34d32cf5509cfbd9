"""LogApplier: apply the collection log to this node's store, in stream order.

The applier reads the stream with an ordered consumer (nats-py recreates it after a gap,
missed heartbeats or a server change) from the sequence after the store's position, and
applies records in batches: each batch is one store transaction that also records the last
sequence applied (``streamproc.store.replica``). A restarted node therefore resumes exactly
where its store stopped, and a new node (empty store) rebuilds from what the log holds.

A Snapshot record (:mod:`.snapshots`) replaces a collection's earlier records. A replica
that applied exactly the collection's records the snapshot captured (it keeps, per
collection, the last record it applied: its log position counts every collection) only
advances; any other node streams the object to a temporary file beside its store and
rebuilds the collection from it, and the records the snapshot carries, in one transaction
with the record's sequence. If the object is gone because a newer snapshot replaced that
record too, the record is skipped (the newer one follows in the stream), and so are the
collection's records until then: each names the collection's record it was decided
against, and one that follows a record this node never applied would land on the wrong
state.

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


def _holds_snapshot(tx: ReplicaTransaction, snapshot: Snapshot) -> bool:
    """Whether this replica holds the state ``snapshot`` captured: it applied the
    collection's records exactly up to the snapshot's last one (its own position counts
    every collection, so it cannot tell)."""
    return tx.collection_seq(snapshot.collection_id) == snapshot.through and tx.has_collection(
        snapshot.collection_id
    )


def _after_a_gap(tx: ReplicaTransaction, record: Record, msg: Msg) -> bool:
    """Whether ``record`` follows a record of its collection this replica never applied.

    Every writer publishes with the collection's last sequence it decided against
    (``Nats-Expected-Last-Subject-Sequence``). A different last sequence here means records
    in between were rolled up before this node read them (it skipped a snapshot that a newer
    one replaced): applying on top of the wrong state could fail or fork the replica, and the
    newer snapshot, later in the stream, brings the collection back. A CreateCollection
    needs no earlier state; a store from before per-collection sequences (no row for a
    collection it holds) is trusted."""
    if isinstance(record, CreateCollection | DeleteCollection):
        return False
    expected = (msg.headers or {}).get("Nats-Expected-Last-Subject-Sequence")
    if expected is None:
        return False
    seen = tx.collection_seq(record.collection_id)
    if seen == 0:
        return not tx.has_collection(record.collection_id) and int(expected) > 0
    return int(expected) != seen


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
        self.gaps_skipped = 0  # records skipped behind a rollup this node did not see
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
        """Rebuild ``record``'s collection from its object (or skip a superseded one).

        NATS being unavailable (a reconnect, an election of the object store's leader) is
        waited out, retrying with backoff; only an object that stays missing while its record
        is still in the log stops the applier."""
        seq = msg.metadata.sequence.stream
        if self.snapshots is None:
            return seq, msg.subject, "a snapshot record, and this node has no snapshot store"
        started = time.monotonic()
        delay, missing = 0.5, 0
        while True:
            with tempfile.TemporaryFile(dir=self.store.directory, prefix=".snapshot-") as f:
                outcome = await self._fetch(self.snapshots, record, seq, f)
                if outcome == "fetched":
                    try:
                        await self._retry_busy(self._apply_snapshot_file, f, seq, record)
                    except Exception as exc:
                        return seq, msg.subject, f"{type(exc).__name__}: {exc}"
                    self.snapshots_loaded += 1
                    log.info("collection %r rebuilt from snapshot %s (%d faces, %.1f MB) in "
                             "%.1f s", record.collection_id, record.object_name, record.faces,
                             record.size / 1e6, time.monotonic() - started)
                    return None
            if outcome == "replaced":
                log.info("snapshot record %d of %r was replaced by a newer one; skipped",
                         seq, record.collection_id)
                await self._retry_busy(self._skip, seq)
                return None
            if outcome == "missing":
                missing += 1
                if missing >= 3:
                    return seq, msg.subject, (f"its snapshot object is missing "
                                              f"({record.object_name})")
            await asyncio.sleep(delay)
            delay = min(2 * delay, 5.0)

    async def _fetch(
        self, objects: SnapshotObjects, record: Snapshot, seq: int, into: IO[bytes]
    ) -> str:
        """"fetched", "replaced" (the object and its record are gone: a newer snapshot
        replaced it), "missing" (the record is there, the object is not) or "unavailable"."""
        try:
            await objects.get(record.object_name, into, 60.0 + record.size / 5e6)
            return "fetched"
        except SnapshotMissing as exc:
            why = str(exc)
        except Exception as exc:  # NATS unavailable for now (or chunks that never came)
            log.warning("snapshot %s of %r: %s %s", record.object_name, record.collection_id,
                        type(exc).__name__, exc)
            return "unavailable"
        try:
            held = await self.log.holds(seq)
        except Exception as exc:
            log.warning("snapshot %s: %s; the log is unavailable too (%s)",
                        record.object_name, why, exc)
            return "unavailable"
        log.warning("snapshot %s of %r: %s", record.object_name, record.collection_id, why)
        return "missing" if held else "replaced"

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
            tx.set_collection_seq(cid, seq)
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
                if isinstance(record, Snapshot) and not _holds_snapshot(tx, record):
                    needs = _NeedsSnapshot(i, record)
                    break
                if not isinstance(record, Snapshot):
                    if _after_a_gap(tx, record, m):
                        self.gaps_skipped += 1
                        log.info("%s: record %d follows records this node never saw (rolled "
                                 "up meanwhile); skipped until the collection's next "
                                 "snapshot", record.collection_id, seq)
                        tx.advance(seq)
                        continue
                    _apply(tx, record)
                tx.set_collection_seq(record.collection_id, seq)
                tx.advance(seq)
                applied += 1
        self.applied = max(self.applied, tx.position)
        self.records_applied += applied
        return needs
