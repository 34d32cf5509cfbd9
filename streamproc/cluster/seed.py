"""Seed the collection log once from an existing single-node store (``streamproc cluster
seed``; README, Scaling out).

Each collection becomes a CreateCollection record (its creation time kept), then one
IndexFaces record per stored image, in indexing order, carrying the store's own FaceIds,
ImageIds, boxes, confidences, FaceDetails and float32 vectors bit for bit: a node that
rebuilds from the log answers exactly as the single-node store did (same FaceIds, same
similarities). Deleted faces are simply absent. The source store is only read.

Seeding is refused when the log already holds a record (seeding twice, or over a cluster
that already took writes, would duplicate or collide), and when the store is itself a
cluster node's replica.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from streamproc.store import CollectionStore

from .collection_records import collection_records
from .errors import ClusterError
from .log import CollectionLog
from .records import CreateCollection, IndexFaces, Record, encode_record

__all__ = ["SeedSummary", "seed_log", "store_records"]

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
            "RecordBytes": self.bytes,
            "LastSequence": self.last_seq,
            "Seconds": round(self.seconds, 3),
        }


def store_records(store: CollectionStore) -> Iterator[Record]:
    """The records that rebuild ``store``'s collections, in order (reads one collection
    at a time)."""
    with store._read() as conn:
        if conn.execute("SELECT 1 FROM log_applied").fetchone() is not None:
            raise ClusterError(
                f"{store.directory} is already a cluster node's replica: its collections are "
                "in the log already; there is nothing to seed from it"
            )
        names = [r[0] for r in conn.execute("SELECT name FROM collections ORDER BY id")]
    for name in names:
        with store._read() as conn, contextlib.suppress(KeyError):  # deleted meanwhile
            yield from collection_records(conn, name)


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
    store = CollectionStore(store_dir)
    try:
        last: dict[str, int] = {}
        for record in store_records(store):
            cid = record.collection_id
            if isinstance(record, CreateCollection):
                summary.collections += 1
            elif isinstance(record, IndexFaces):
                summary.images += 1
                summary.faces += len(record.faces)
            summary.bytes += len(encode_record(record, record_id=str(uuid.uuid4()),
                                               writer=SEED_WRITER))
            seq = await log.publish(
                record, record_id=str(uuid.uuid4()), writer=SEED_WRITER,
                expected_subject_seq=last.get(cid, 0),
            )
            last[cid] = seq
            summary.records += 1
            summary.last_seq = seq
    finally:
        store.close()
    summary.seconds = time.monotonic() - started
    return summary
