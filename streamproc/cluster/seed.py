"""Seed the collection log once from an existing single-node store (``streamproc cluster
seed``; README, Scaling out).

Each collection becomes one snapshot (:mod:`.snapshots`): the records that rebuild it
exactly as the store holds it (its creation time, the store's own FaceIds, ImageIds,
boxes, confidences, FaceDetails and float32 vectors bit for bit) in an object of the log's
snapshot store, and one Snapshot record naming it as the collection's first record. A node
that rebuilds from the log answers exactly as the single-node store did (same FaceIds, same
similarities), and a million faces go in one object rather than a million records. Deleted
faces are simply absent. The source store is only read (the files are written to a
temporary directory).

Seeding is refused when the log already holds a record (seeding twice, or over a cluster
that already took writes, would duplicate or collide), and when the store is itself a
cluster node's replica.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from streamproc.store import CollectionStore

from .errors import ClusterError
from .log import CollectionLog
from .records import Snapshot
from .snapshots import ObjectName, SnapshotObjects, snapshot_bucket, write_snapshot

__all__ = ["SeedSummary", "seed_log"]

SEED_WRITER = "seed"


@dataclass
class SeedSummary:
    collections: int = 0
    images: int = 0
    faces: int = 0
    records: int = 0
    bytes: int = 0
    last_seq: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "Collections": self.collections,
            "Images": self.images,
            "Faces": self.faces,
            "Records": self.records,
            "SnapshotBytes": self.bytes,
            "LastSequence": self.last_seq,
            "Seconds": round(self.seconds, 3),
        }


async def seed_log(store_dir: Path, log: CollectionLog) -> SeedSummary:
    """Publish ``store_dir``'s collections to the (empty) log; ClusterError if it is not."""
    started = time.monotonic()
    await log.ensure()
    info = await log.info()
    if info.state.messages or (info.state.last_seq or 0) > 0:
        raise ClusterError(
            f"the collection log {log.stream} already holds records (last sequence "
            f"{info.state.last_seq}): a log is seeded once, before any node writes to it. "
            "To seed again, delete the stream first (it deletes every node's collections: "
            f"`nats stream rm {log.stream}`) and give every node an empty store"
        )
    if not (store_dir / "streamproc.db").is_file():
        raise ClusterError(f"{store_dir} holds no streamproc store (streamproc.db)")
    summary = SeedSummary()
    objects = SnapshotObjects(log.js, snapshot_bucket(log.stream), log.settings.replicas)
    store = CollectionStore(store_dir)
    try:
        names = await asyncio.to_thread(_collection_names, store)
        with tempfile.TemporaryDirectory(prefix="streamproc-seed-") as tmp:
            for name in names:
                path = Path(tmp) / "snapshot"
                written = await asyncio.to_thread(write_snapshot, store, name, path)
                if written is None:
                    continue  # deleted meanwhile
                object_name = ObjectName(name, 0, SEED_WRITER)
                size = await objects.put(object_name, path)
                record = Snapshot(name, written.face_model_version, str(object_name), 0, 0,
                                  written.images, written.faces, size)
                seq = await log.publish(record, record_id=f"seed:{object_name}",
                                        writer=SEED_WRITER, expected_subject_seq=0,
                                        rollup=True)
                summary.collections += 1
                summary.images += written.images
                summary.faces += written.faces
                summary.bytes += size
                summary.records += 1
                summary.last_seq = seq
    finally:
        store.close()
    summary.seconds = time.monotonic() - started
    return summary


def _collection_names(store: CollectionStore) -> list[str]:
    with store._read() as conn:
        if conn.execute("SELECT 1 FROM log_applied").fetchone() is not None:
            raise ClusterError(
                f"{store.directory} is already a cluster node's replica: its collections are "
                "in the log already; there is nothing to seed from it"
            )
        return [r[0] for r in conn.execute("SELECT name FROM collections ORDER BY id")]
