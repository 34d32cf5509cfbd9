"""Replicated collections on a NATS cluster (issue 13, item 1).

Every write to the collections (CreateCollection, DeleteCollection, IndexFaces,
DeleteFaces) is decided by one node against its caught-up store, published as a versioned
record on a JetStream stream (:mod:`.log`), and applied by every node to its own SQLite
store in stream order (:mod:`.applier`), together with the stream sequence in the same
transaction. :class:`.collections.ReplicatedCollections` is a node's front: writes return
once applied locally (read-your-writes); consistent reads first catch up.

- :mod:`.records`: the records and their strict msgpack encoding.
- :mod:`.subjects`: collection ids (which may contain ``.``) in subjects, reversibly.
- :mod:`.log`: the JetStream stream: idempotent, per-collection ordered publishing.
- :mod:`.applier`: applies the log to a store; stops loudly on a record it cannot apply.
- :mod:`.collections`: decide, publish, wait: the replicated write operations.
"""

from __future__ import annotations

from .applier import ApplierStopped, LogApplier
from .collections import ReplicatedCollections
from .errors import ClusterError, RecordError, UnknownRecordVersion
from .log import DEFAULT_STREAM, CollectionLog, WrongLastSequence
from .records import RECORD_VERSION, Record, decode_record, encode_record
from .subjects import collection_subject, decode_collection_id, encode_collection_id

__all__ = [
    "ApplierStopped",
    "ClusterError",
    "CollectionLog",
    "DEFAULT_STREAM",
    "LogApplier",
    "RECORD_VERSION",
    "Record",
    "RecordError",
    "ReplicatedCollections",
    "UnknownRecordVersion",
    "WrongLastSequence",
    "collection_subject",
    "decode_collection_id",
    "decode_record",
    "encode_collection_id",
    "encode_record",
]
