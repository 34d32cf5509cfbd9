"""Collection snapshots: a collection's whole state as one object in the JetStream object
store, so the log can let the records before it go (README, Scaling out: Retention).

A snapshot file is a msgpack stream: a header map, then each record of
:func:`.collection_records.collection_records` as one bin item holding the record's own
msgpack encoding, so reading it back goes through the log's strict decoder. The object
store chunks it (128 KiB chunks) and checks its SHA-256 on the way back; the file is
streamed both ways, never held in memory (a million-face collection is over half a GB).

Objects are named ``<encoded collection id>/<sequence>-<node>``: the collection's subject
token, the stream sequence of the collection's last record when the snapshot began, and
the node that wrote it (two nodes compacting at once write different objects; one publish
wins).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import msgpack
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import ObjectStoreConfig, StorageType
from nats.js.object_store import ObjectStore

from streamproc.store import CollectionStore

from .collection_records import collection_records
from .errors import RecordError
from .records import CreateCollection, IndexFaces, Record, decode_record, encode_record
from .subjects import decode_collection_id, encode_collection_id

__all__ = [
    "SNAPSHOT_FORMAT",
    "snapshot_bucket",
    "ObjectName",
    "SnapshotFile",
    "SnapshotMissing",
    "SnapshotObjects",
    "read_snapshot",
    "write_snapshot",
]

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = "streamproc-collection-snapshot/1"
_NAME = re.compile(r"^([A-Za-z0-9_\-]+)/(\d+)-([A-Za-z0-9_\-]+)$")
_INNER_WRITER = "snapshot"


def snapshot_bucket(log_stream: str) -> str:
    """The object store bucket of a collection log's snapshots."""
    return f"{log_stream}_SNAPSHOTS"


class SnapshotMissing(Exception):
    """The object a Snapshot record names is not in the object store (any more)."""


@dataclass(frozen=True)
class ObjectName:
    """What a snapshot object's name says: whose state, as of which record, by whom."""

    collection_id: str
    through: int
    node: str

    def __str__(self) -> str:
        return f"{encode_collection_id(self.collection_id)}/{self.through}-{self.node}"

    @classmethod
    def parse(cls, name: str) -> ObjectName | None:
        """The parts of ``name``; None for an object that is not a snapshot."""
        m = _NAME.match(name)
        if m is None:
            return None
        try:
            return cls(decode_collection_id(m[1]), int(m[2]), m[3])
        except Exception:
            return None


@dataclass(frozen=True)
class SnapshotFile:
    """A written snapshot file: where it is and what it holds."""

    path: Path
    collection_id: str
    face_model_version: str
    position: int  # the store's log position when it was read: it holds every record up to it
    collection_seq: int  # the collection's last record the store applied (0: not recorded)
    images: int
    faces: int
    size: int


def write_snapshot(store: CollectionStore, collection_id: str, path: Path) -> SnapshotFile | None:
    """Write the collection as ``store`` holds it now to ``path``, with the store's log
    position, in one read transaction; None if the store has no such collection."""
    images = faces = 0
    with store._read() as conn, open(path, "wb") as out:
        row = conn.execute("SELECT seq FROM log_applied").fetchone()
        position = int(row[0]) if row is not None else 0
        row = conn.execute("SELECT seq FROM log_collections WHERE name = ?",
                           (collection_id,)).fetchone()
        collection_seq = int(row[0]) if row is not None else 0
        packer = msgpack.Packer(use_bin_type=True)
        records = collection_records(conn, collection_id)
        try:
            first = next(records)
        except KeyError:
            return None
        assert isinstance(first, CreateCollection)
        model = first.face_model_version
        out.write(packer.pack({"format": SNAPSHOT_FORMAT, "collection": collection_id,
                               "model": model, "position": position}))
        for r in itertools.chain([first], records):
            if isinstance(r, IndexFaces):
                images += 1
                faces += len(r.faces)
            out.write(packer.pack(encode_record(r, record_id=str(images),
                                                writer=_INNER_WRITER)))
        out.flush()
        os.fsync(out.fileno())
    return SnapshotFile(path, collection_id, model, position, collection_seq, images, faces,
                        path.stat().st_size)


def read_snapshot(file: IO[bytes], collection_id: str) -> Iterator[Record]:
    """The records in a snapshot file, strictly decoded; RecordError if it is not a
    snapshot of ``collection_id``."""
    unpacker = msgpack.Unpacker(file, raw=False, use_list=True, max_buffer_size=64 << 20)
    try:
        header: Any = next(unpacker)
    except StopIteration:
        raise RecordError("the snapshot object is empty") from None
    if not isinstance(header, dict) or header.get("format") != SNAPSHOT_FORMAT:
        raise RecordError(f"not a {SNAPSHOT_FORMAT} object (header {header!r:.120})")
    if header.get("collection") != collection_id:
        raise RecordError(f"the snapshot object holds collection "
                          f"{header.get('collection')!r}, not {collection_id!r}")
    for item in unpacker:
        if not isinstance(item, bytes):
            raise RecordError("a snapshot item is not a record")
        record = decode_record(item).record
        if record.collection_id != collection_id:
            raise RecordError(f"the snapshot of {collection_id!r} holds a record of "
                              f"{record.collection_id!r}")
        yield record


class SnapshotObjects:
    """The object store bucket of the snapshots (replicated like the log)."""

    def __init__(self, js: JetStreamContext, bucket: str, replicas: int) -> None:
        self.js = js
        self.bucket = bucket
        self.replicas = replicas
        self._store: ObjectStore | None = None

    async def ensure(self) -> ObjectStore:
        if self._store is None:
            try:
                self._store = await self.js.object_store(self.bucket)
            except nats.js.errors.BucketNotFoundError:
                self._store = await self.js.create_object_store(
                    self.bucket,
                    ObjectStoreConfig(
                        description="streamproc collection snapshots",
                        storage=StorageType.FILE,
                        replicas=self.replicas,
                    ),
                )
        return self._store

    async def put(self, name: ObjectName, path: Path) -> int:
        store = await self.ensure()
        with open(path, "rb") as data:
            info = await store.put(str(name), data)
        return int(info.size or 0)

    async def get(self, name: str, into: IO[bytes], timeout: float) -> None:
        """Stream the object into ``into``. SnapshotMissing if it is not there (or changed
        while it was read); other errors (NATS unavailable, ``timeout`` passed: chunks of an
        object deleted meanwhile never all arrive) are for the caller to retry."""
        store = await self.ensure()
        into.seek(0)
        into.truncate()
        try:
            await asyncio.wait_for(store.get(name, writeinto=into), timeout)  # type: ignore[arg-type]
        except (nats.js.errors.NotFoundError, nats.js.errors.DigestMismatchError) as exc:
            raise SnapshotMissing(f"{name}: {type(exc).__name__} {exc}") from exc

    async def names(self) -> list[tuple[ObjectName, float]]:
        """Every snapshot object with its modification time (seconds since the epoch)."""
        store = await self.ensure()
        try:
            infos = await store.list()
        except nats.js.errors.NotFoundError:
            return []
        out = []
        for info in infos:
            parsed = ObjectName.parse(info.name or "")
            if parsed is not None and not info.deleted:
                out.append((parsed, _mtime(info.mtime)))
        return out

    async def delete(self, name: ObjectName) -> None:
        store = await self.ensure()
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await store.delete(str(name))


def _mtime(value: str | None) -> float:
    if not value:
        return 0.0
    try:  # Go writes nanoseconds; Python's fromisoformat takes at most microseconds
        return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value)).timestamp()
    except ValueError:
        return 0.0
