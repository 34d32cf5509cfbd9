"""Compactor: keeps the collection log from growing forever (README, Scaling out:
Retention).

Every node runs one. Every ``check_s`` (with jitter, so nodes do not all look at once) it
asks the stream how many records each collection has, and snapshots a collection whose
records since its last snapshot reach ``max(min_records, faces / 2)``. A one-face
IndexFaces record is about 1.0 KB and a face in a snapshot about 0.9 KB (bench_cluster), so
the records behind a snapshot stay under about half its size: a collection takes at most
about 1.5 times its snapshot in JetStream (object and records together), and each face is
rewritten into a snapshot a bounded number of times (the amortised cost of a write stays
constant however big the collection grows).

Snapshotting a collection: read its last record's sequence B, wait until this node's
store has applied B, write the collection as the store holds it to a file together with
the store's log position P (one read transaction: the file holds exactly the records up to
P, so its base is the collection's last record up to P), put the file in the object store,
then publish a Snapshot record as a rollup with ``Nats-Expected-Last-Subject-Sequence`` set
to the collection's last sequence T, carrying the collection's records after the base up to
T as they were published (the writes made meanwhile). A write after T refuses the publish
and the record is made again with it, so writes never pause for a snapshot, however long a
big collection takes to write out. The snapshot is dropped (its object deleted) if the
collection was deleted or snapshotted by another node meanwhile, or the writes after the
base would not fit one record.

Objects no record names any more are deleted: those older than the collection's current
snapshot at once, and those of a deleted collection once ``orphan_age_s`` old. Any other
object may be a snapshot whose publish is still in flight, so it is never taken from under
it; the orphan of a node that died between put and publish is older than the collection's
next snapshot and goes then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from streamproc.store import CollectionStore

from .applier import LogApplier
from .errors import RecordError
from .log import CollectionLog, WrongLastSequence
from .records import DeleteCollection, Snapshot, decode_record
from .snapshots import ObjectName, SnapshotObjects, write_snapshot

__all__ = ["Compactor", "CompactorSettings", "SnapshotResult"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompactorSettings:
    #: Snapshot a collection once it has at least this many records since its last one...
    min_records: int = 1000
    #: ...and at least this many per face it holds (0.5: the records outweigh the snapshot).
    records_per_face: float = 0.5
    check_s: float = 60.0
    #: An object no record names is deleted once this old (a put awaiting its publish).
    orphan_age_s: float = 600.0
    #: How long a snapshot waits for this node to apply the collection's last record.
    catch_up_s: float = 30.0
    #: Publishes of one snapshot refused by newer writes before it is dropped.
    publish_attempts: int = 20


@dataclass
class SnapshotResult:
    """A published snapshot: what it holds and what it cost."""

    collection_id: str
    seq: int
    base: int  # the object holds the collection as of this record
    through: int  # ... and the record carries the writes after it up to this one
    records_before: int
    delta: int
    images: int
    faces: int
    size: int
    seconds: float
    pruned: list[str] = field(default_factory=list)


class Compactor:
    """Snapshots due collections of ``log`` from this node's ``store``."""

    def __init__(
        self,
        store: CollectionStore,
        log_: CollectionLog,
        applier: LogApplier,
        objects: SnapshotObjects,
        *,
        node: str,
        settings: CompactorSettings | None = None,
    ) -> None:
        self.store = store
        self.log = log_
        self.applier = applier
        self.objects = objects
        self.node = node
        self.settings = settings or CompactorSettings()
        self.snapshots = 0
        self.pruned = 0
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"compactor-{self.log.stream}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.check_s * random.uniform(0.5, 1.5))
            try:
                await self.compact_due()
                await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the log or the object store unavailable: next time
                log.warning("compacting the collection log %s: %s", self.log.stream, exc)

    # -- policy ---------------------------------------------------------------------------

    def due(self, records: int, faces: int) -> bool:
        """Whether a collection with ``records`` in the log (its snapshot among them) and
        ``faces`` faces should be snapshotted now."""
        s = self.settings
        return records - 1 >= max(s.min_records, s.records_per_face * faces)

    async def compact_due(self) -> list[SnapshotResult]:
        counts = await self.log.subject_counts()
        sizes = await asyncio.to_thread(self._face_counts)
        done = []
        for collection_id, records in sorted(counts.items()):
            if collection_id not in sizes or not self.due(records, sizes[collection_id]):
                continue
            # Another node may have snapshotted it since the counts were read (every node
            # looks, a jittered interval apart): look again right before the work.
            records = (await self.log.subject_counts()).get(collection_id, 0)
            if not self.due(records, sizes[collection_id]):
                continue
            result = await self.snapshot(collection_id, records_before=records)
            if result is not None:
                done.append(result)
        return done

    def _face_counts(self) -> dict[str, int]:
        with self.store._read() as conn:
            return {
                str(name): int(n)
                for name, n in conn.execute("SELECT name, face_count FROM collections")
            }

    # -- one snapshot ---------------------------------------------------------------------

    async def snapshot(
        self, collection_id: str, *, records_before: int | None = None
    ) -> SnapshotResult | None:
        """Snapshot the collection now; None if it is gone (or was deleted or snapshotted by
        another node meanwhile, or the writes during it would not fit one record)."""
        started = time.monotonic()
        if records_before is None:  # for the result only: the caller may know it already
            records_before = (await self.log.subject_counts()).get(collection_id, 0)
        base = await self.log.last_subject_seq(collection_id)
        if base == 0:
            return None
        await self.applier.wait_applied(base, self.settings.catch_up_s)
        name = ObjectName(collection_id, base, self.node)
        path = Path(self.store.directory) / f".snapshot-{self.node}-{base}.tmp"
        try:
            written = await asyncio.to_thread(write_snapshot, self.store, collection_id, path)
            if written is None:  # deleted: its tombstone is already a rollup
                return None
            # The file holds every record the store had applied when it was read (its
            # position), which may be past B: those of this collection are in it already.
            base = max([base] + [seq for seq, _ in await self.log.records_after(
                collection_id, base, written.position)])
            if written.collection_seq not in (0, base):
                # This replica skipped records of the collection (rolled up before it saw
                # them): it waits for a snapshot and must not make one of what it holds.
                log.warning("snapshot of %r: this node applied it up to %d, not %d; dropped",
                            collection_id, written.collection_seq, base)
                return None
            size = await self.objects.put(name, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        for _ in range(self.settings.publish_attempts):
            through = await self.log.last_subject_seq(collection_id)
            delta = await self.log.records_after(collection_id, name.through, through)
            kinds = {type(decode_record(data).record) for _, data in delta}
            delta = [(seq, data) for seq, data in delta if seq > base]
            if kinds & {Snapshot, DeleteCollection} or \
                    sum(len(d) for _, d in delta) > self.log.settings.max_record_bytes // 2:
                log.info("snapshot of %r at %d: the collection was %s meanwhile; dropped",
                         collection_id, base, "deleted or snapshotted" if kinds & {
                             Snapshot, DeleteCollection} else "written too much")
                await self.objects.delete(name)
                return None
            record = Snapshot(
                collection_id=collection_id,
                face_model_version=written.face_model_version,
                object_name=str(name),
                base=base,
                through=through,
                images=written.images,
                faces=written.faces,
                size=size,
                delta=tuple(data for _, data in delta),
            )
            try:
                seq = await self.log.publish(
                    record,
                    record_id=f"snapshot:{name}:{through}",
                    writer=self.node,
                    expected_subject_seq=through,
                    rollup=True,
                )
                break
            except WrongLastSequence:  # a write came in between: carry it in the delta too
                continue
            # Any other failure may have published the record all the same: the object
            # stays (prune() deletes it once old if no record names it).
        else:
            log.info("snapshot of %r at %d: writes kept coming; dropped", collection_id, base)
            await self.objects.delete(name)
            return None
        self.snapshots += 1
        result = SnapshotResult(
            collection_id, seq, base, through, records_before, len(delta),
            written.images, written.faces, size, time.monotonic() - started,
        )
        result.pruned = await self.prune(collection_id)
        log.info(
            "collection %r: snapshot %s (%d faces, %.1f MB, %d records after it) replaces %d "
            "records in %.1f s", collection_id, name, written.faces, size / 1e6, len(delta),
            result.records_before, result.seconds,
        )
        return result

    # -- objects no record names ----------------------------------------------------------

    async def prune(self, collection_id: str | None = None) -> list[str]:
        """Delete snapshot objects no record names (of one collection, or all): those older
        than the collection's current snapshot, and those of a deleted collection once
        ``orphan_age_s`` old. Any other object may be a snapshot still being published (or
        the orphan of a node that died meanwhile: it is older than the next snapshot)."""
        now = time.time()
        objects = [
            (name, mtime) for name, mtime in await self.objects.names()
            if collection_id is None or name.collection_id == collection_id
        ]
        current: dict[str, tuple[str, ObjectName | None]] = {}
        pruned = []
        for name, mtime in objects:
            cid = name.collection_id
            if cid not in current:
                current[cid] = await self._current(cid)
            state, named = current[cid]
            if state == "snapshot":
                assert named is not None
                gone = name.through < named.through
            else:
                gone = state == "deleted" and now - mtime >= self.settings.orphan_age_s
            if gone:
                await self.objects.delete(name)
                pruned.append(str(name))
        self.pruned += len(pruned)
        return pruned

    async def _current(self, collection_id: str) -> tuple[str, ObjectName | None]:
        """What the collection's first record says: ("snapshot", the object it names),
        ("deleted", None) for a tombstone or no record, ("live", None) for a collection
        never snapshotted, ("unknown", None) for a record this node cannot read."""
        first = await self.log.first_record(collection_id)
        if first is None:
            return "deleted", None
        try:
            record = decode_record(first[1]).record
        except RecordError:
            return "unknown", None
        if isinstance(record, Snapshot):
            named = ObjectName.parse(record.object_name)
            return ("snapshot", named) if named is not None else ("unknown", None)
        return ("deleted", None) if isinstance(record, DeleteCollection) else ("live", None)
