"""What a cluster looks like now, for operators (``streamproc cluster status``): the
collection log (size, leader, records and snapshot per collection), the snapshot objects,
the live nodes and which node runs each camera. Read only: it asks JetStream and the
lease bucket, and changes nothing."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import nats.js.errors
from nats.js import JetStreamContext

from .log import CollectionLog
from .records import Snapshot, decode_record

__all__ = ["ClusterStatus", "cluster_status"]


@dataclass
class ClusterStatus:
    stream: str
    leader: str | None = None
    replicas: int = 0
    records: int = 0
    bytes: int = 0
    collections: list[dict[str, Any]] = field(default_factory=list)
    snapshot_objects: int = 0
    snapshot_bytes: int = 0
    nodes: list[dict[str, str]] = field(default_factory=list)
    streams: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "Log": {"Stream": self.stream, "Leader": self.leader, "Replicas": self.replicas,
                    "Records": self.records, "Bytes": self.bytes,
                    "Collections": self.collections},
            "Snapshots": {"Objects": self.snapshot_objects, "Bytes": self.snapshot_bytes},
            "Nodes": self.nodes,
            "Streams": self.streams,
        }


async def cluster_status(
    js: JetStreamContext, log: CollectionLog, snapshot_bucket: str, lease_bucket: str
) -> ClusterStatus:
    info = await log.info()
    status = ClusterStatus(
        stream=log.stream,
        leader=info.cluster.leader if info.cluster else None,
        replicas=int(info.config.num_replicas or 1),
        records=int(info.state.messages or 0),
        bytes=int(info.state.bytes or 0),
    )
    for collection_id, records in sorted((await log.subject_counts()).items()):
        entry: dict[str, Any] = {"CollectionId": collection_id, "Records": records,
                                 "Snapshot": None}
        first = await log.first_record(collection_id)
        if first is not None:
            record = decode_record(first[1]).record
            if isinstance(record, Snapshot):
                entry["Snapshot"] = {"Object": record.object_name, "Faces": record.faces,
                                     "Sequence": first[0], "Bytes": record.size,
                                     "RecordsCarried": len(record.delta)}
            elif type(record).__name__ == "DeleteCollection":
                entry["Deleted"] = True
        status.collections.append(entry)
    with contextlib.suppress(nats.js.errors.NotFoundError):  # no bucket, or no object
        store = await js.object_store(snapshot_bucket)
        for obj in await store.list():
            if not obj.deleted:
                status.snapshot_objects += 1
                status.snapshot_bytes += int(obj.size or 0)
    try:
        kv = await js.key_value(lease_bucket)
        keys = await kv.keys()
    except (nats.js.errors.BucketNotFoundError, nats.js.errors.NoKeysError):
        keys = []
    for key in sorted(keys):
        parts = key.split(".")
        if parts[0] == "nodes" and len(parts) == 3:
            status.nodes.append({"Node": parts[2], "Deployment": parts[1]})
        elif parts[0] == "streams" and len(parts) == 2:
            with contextlib.suppress(nats.js.errors.KeyNotFoundError):
                value = json.loads((await kv.get(key)).value or b"{}")
                status.streams.append({"StreamId": parts[1], "Node": value.get("node", "?")})
    return status
