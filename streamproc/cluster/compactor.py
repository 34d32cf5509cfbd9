"""Compactor: keeps the collection log from growing forever (README, Scaling out:
Retention).

Every node runs one. Every ``check_s`` (with jitter, so nodes do not all look at once) it
asks the stream how many records each collection has, and snapshots a collection whose
records since its last snapshot reach ``max(min_records, faces / 2)``. A one-face
IndexFaces record is about 1.0 KB and a face in a snapshot about 0.9 KB (bench_cluster), so
the records behind a snapshot stay under about half its size: a collection takes at most
about 1.5 times its snapshot in JetStream (object and records together), and each face is rewritten into a snapshot a bounded number of times (the amortised
cost of a write stays constant however big the collection grows).

Snapshotting a collection: read its last record's sequence S, wait until this node's
store has applied S, write the collection as the store holds it to a file (one read
transaction), put the file in the object store, and publish a Snapshot record with
``Nats-Expected-Last-Subject-Sequence: S`` as a rollup. If any write reached the collection
after S (so the file may hold it, or miss it), the publish is refused and the object is
deleted: a snapshot is only ever published for exactly the state it names. Two nodes
snapshotting at once write different objects; one publish wins.

Objects no record names any more are deleted: those older than the collection's current
snapshot at once, and any other (a node that died between put and publish, a collection
deleted since) once it is ``orphan_age_s`` old, so a put whose publish is still in flight
is never taken from under it.
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
from .records import Snapshot, decode_record
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


@dataclass
class SnapshotResult:
    """A published snapshot: what it holds and what it cost."""

    collection_id: str
    seq: int
    through: int
    records_before: int
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
            if collection_id in sizes and self.due(records, sizes[collection_id]):
                result = await self.snapshot(collection_id)
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

    async def snapshot(self, collection_id: str) -> SnapshotResult | None:
        """Snapshot the collection now; None if it is gone or another writer came first."""
        started = time.monotonic()
        counts = await self.log.subject_counts()
        through = await self.log.last_subject_seq(collection_id)
        if through == 0:
            return None
        await self.applier.wait_applied(through, self.settings.catch_up_s)
        name = ObjectName(collection_id, through, self.node)
        path = Path(self.store.directory) / f".snapshot-{self.node}-{through}.tmp"
        try:
            written = await asyncio.to_thread(
                write_snapshot, self.store, collection_id, through, path
            )
            if written is None:  # deleted: its tombstone is already a rollup
                return None
            size = await self.objects.put(name, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        record = Snapshot(
            collection_id=collection_id,
            face_model_version=written.face_model_version,
            object_name=str(name),
            through=through,
            images=written.images,
            faces=written.faces,
            size=size,
        )
        try:
            seq = await self.log.publish(
                record,
                record_id=f"snapshot:{name}",
                writer=self.node,
                expected_subject_seq=through,
                rollup=True,
            )
        except WrongLastSequence:
            log.info("snapshot of %r through %d: a newer write came first; dropped",
                     collection_id, through)
            await self.objects.delete(name)
            return None
        # Any other failure may have published the record all the same: the object stays
        # (prune() deletes it once old if no record names it).
        self.snapshots += 1
        result = SnapshotResult(
            collection_id, seq, through, counts.get(collection_id, 0), written.images,
            written.faces, size, time.monotonic() - started,
        )
        result.pruned = await self.prune(collection_id)
        log.info(
            "collection %r: snapshot %s (%d faces, %.1f MB) replaces %d records in %.1f s",
            collection_id, name, written.faces, size / 1e6, result.records_before,
            result.seconds,
        )
        return result

    # -- objects no record names ----------------------------------------------------------

    async def prune(self, collection_id: str | None = None) -> list[str]:
        """Delete snapshot objects no record names (of one collection, or all)."""
        now = time.time()
        objects = [
            (name, mtime) for name, mtime in await self.objects.names()
            if collection_id is None or name.collection_id == collection_id
        ]
        current: dict[str, str | None] = {}
        pruned = []
        for name, mtime in objects:
            cid = name.collection_id
            if cid not in current:
                current[cid] = await self._current_object(cid)
            named = current[cid]
            if str(name) == named:
                continue
            older = (
                named is not None
                and (parsed := ObjectName.parse(named)) is not None
                and name.through < parsed.through
            )
            if older or now - mtime >= self.settings.orphan_age_s:
                await self.objects.delete(name)
                pruned.append(str(name))
        self.pruned += len(pruned)
        return pruned

    async def _current_object(self, collection_id: str) -> str | None:
        """The object the collection's snapshot record names (its first record, after the
        rollup); None if the collection has none."""
        first = await self.log.first_record(collection_id)
        if first is None:
            return None
        try:
            record = decode_record(first[1]).record
        except RecordError:
            return None
        return record.object_name if isinstance(record, Snapshot) else None
