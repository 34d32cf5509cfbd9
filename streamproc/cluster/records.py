"""The records of the collection log: what each write decided, versioned, in msgpack.

A record is a map ``{"v": RECORD_VERSION, "op": <write>, "id": <record id>, "writer":
<node>, "model": <FaceModelVersion>, "body": {...}}``. ``id`` is also the message's
``Nats-Msg-Id`` (idempotent retries). ``model`` is the face model of the collection the
write concerns. Bodies carry the decision, never the request: an IndexFaces record holds
the FaceIds, ImageId, the unit float32 vectors (little-endian bytes) and boxes the writer
chose, so replicas store exactly what the writer stored without running a model.

Decoding is strict: a newer record version, an unknown operation, a missing or extra field
or a wrong type raises :class:`RecordError` (:class:`UnknownRecordVersion` for a version).
A node must never skip a record it does not understand: it stops applying instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from streamproc.store.replica import ReplicaFace

from .errors import RecordError, UnknownRecordVersion

__all__ = [
    "RECORD_VERSION",
    "CreateCollection",
    "DeleteCollection",
    "DeleteFaces",
    "Envelope",
    "IndexFaces",
    "Record",
    "Snapshot",
    "decode_record",
    "encode_record",
]

#: Bump when a record's meaning or fields change; older nodes then stop, loudly.
RECORD_VERSION = 1
_VECTOR = np.dtype("<f4")


@dataclass(frozen=True, slots=True)
class CreateCollection:
    collection_id: str
    face_model_version: str
    created_at: float


@dataclass(frozen=True, slots=True)
class DeleteCollection:
    collection_id: str
    face_model_version: str


@dataclass(frozen=True, slots=True)
class IndexFaces:
    collection_id: str
    face_model_version: str
    image_id: str
    image_sha256: str
    external_image_id: str | None
    created_at: float
    faces: tuple[ReplicaFace, ...]


@dataclass(frozen=True, slots=True)
class DeleteFaces:
    collection_id: str
    face_model_version: str
    face_ids: tuple[str, ...]  # the faces the writer found and deleted, in request order


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A collection's whole state as of its record at stream sequence ``base``, kept as an
    object (:mod:`.snapshots`), followed by ``delta``: the collection's records published
    after ``base`` up to ``through``, as they were published (writes that went on while
    the object was made). Published as a rollup, it replaces every earlier record of the
    collection in the log."""

    collection_id: str
    face_model_version: str
    object_name: str  # in the snapshot object store
    base: int  # the stream sequence of the last record the object includes
    through: int  # the stream sequence of the last record the snapshot includes (delta's)
    images: int  # in the object
    faces: int  # in the object
    size: int  # bytes of the object
    delta: tuple[bytes, ...] = ()


Record = CreateCollection | DeleteCollection | IndexFaces | DeleteFaces | Snapshot


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded record with its id (the Nats-Msg-Id) and the node that wrote it."""

    record: Record
    record_id: str
    writer: str
    version: int = RECORD_VERSION


def _face(face: ReplicaFace) -> dict[str, Any]:
    return {
        "id": face.face_id,
        "box": [float(v) for v in face.box],
        "conf": float(face.confidence),
        "vec": np.ascontiguousarray(face.vector, dtype=_VECTOR).tobytes(),
        "detail": face.detail,
    }


def _body(record: Record) -> dict[str, Any]:
    match record:
        case CreateCollection():
            return {"collection": record.collection_id, "created_at": record.created_at}
        case DeleteCollection():
            return {"collection": record.collection_id}
        case IndexFaces():
            return {
                "collection": record.collection_id,
                "image_id": record.image_id,
                "sha256": record.image_sha256,
                "external_image_id": record.external_image_id,
                "created_at": record.created_at,
                "faces": [_face(f) for f in record.faces],
            }
        case DeleteFaces():
            return {"collection": record.collection_id, "face_ids": list(record.face_ids)}
        case Snapshot():
            return {
                "collection": record.collection_id,
                "object": record.object_name,
                "base": record.base,
                "through": record.through,
                "images": record.images,
                "faces": record.faces,
                "size": record.size,
                "delta": list(record.delta),
            }
    raise TypeError(f"not a record: {record!r}")


def encode_record(record: Record, *, record_id: str, writer: str) -> bytes:
    """The msgpack bytes of ``record``."""
    return msgpack.packb(
        {
            "v": RECORD_VERSION,
            "op": type(record).__name__,
            "id": record_id,
            "writer": writer,
            "model": record.face_model_version,
            "body": _body(record),
        },
        use_bin_type=True,
    )


# -- strict decoding ------------------------------------------------------------------------


def _fields(value: object, what: str, keys: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise RecordError(f"{what} is not a map")
    if set(value) != keys:
        missing, extra = keys - set(value), set(value) - keys
        raise RecordError(f"{what} fields differ: missing {sorted(missing)}, extra {sorted(extra)}")
    return value


def _str(value: object, what: str, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise RecordError(f"{what} must be a non-empty string, not {value!r:.80}")
    return value


def _num(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecordError(f"{what} must be a finite number, not {value!r:.80}")
    return float(value)


def _count(value: object, what: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RecordError(f"{what} must be an integer >= {minimum}, not {value!r:.80}")
    return value


def _decode_face(value: object, i: int) -> ReplicaFace:
    f = _fields(value, f"faces[{i}]", {"id", "box", "conf", "vec", "detail"})
    box = f["box"]
    if not isinstance(box, list) or len(box) != 4:
        raise RecordError(f"faces[{i}].box must be 4 numbers")
    vec = f["vec"]
    if not isinstance(vec, bytes) or not vec or len(vec) % 4:
        raise RecordError(f"faces[{i}].vec must be float32 bytes")
    detail = f["detail"]
    if detail is not None and not isinstance(detail, dict):
        raise RecordError(f"faces[{i}].detail must be a map or nil")
    return ReplicaFace(
        face_id=_str(f["id"], f"faces[{i}].id"),
        box=(
            _num(box[0], "box"),
            _num(box[1], "box"),
            _num(box[2], "box"),
            _num(box[3], "box"),
        ),
        confidence=_num(f["conf"], f"faces[{i}].conf"),
        vector=np.frombuffer(vec, dtype=_VECTOR).astype(np.float32),
        detail=detail,
    )


def decode_record(data: bytes) -> Envelope:
    """The record in ``data``; RecordError (UnknownRecordVersion) if it cannot be applied."""
    try:
        top = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise RecordError(f"not a msgpack record: {exc}") from exc
    if not isinstance(top, dict):
        raise RecordError("a record must be a map")
    version = top.get("v")
    if version != RECORD_VERSION:
        raise UnknownRecordVersion(
            f"record version {version!r} is not {RECORD_VERSION}, the version this node "
            "applies: upgrade this node (it stops applying the log until then)"
        )
    top = _fields(top, "record", {"v", "op", "id", "writer", "model", "body"})
    op, model = top["op"], _str(top["model"], "model")
    body = top["body"]
    if op == "CreateCollection":
        b = _fields(body, op, {"collection", "created_at"})
        record: Record = CreateCollection(
            _str(b["collection"], "collection"), model, _num(b["created_at"], "created_at")
        )
    elif op == "DeleteCollection":
        b = _fields(body, op, {"collection"})
        record = DeleteCollection(_str(b["collection"], "collection"), model)
    elif op == "IndexFaces":
        b = _fields(
            body,
            op,
            {"collection", "image_id", "sha256", "external_image_id", "created_at", "faces"},
        )
        if not isinstance(b["faces"], list) or not b["faces"]:
            raise RecordError("IndexFaces.faces must be a non-empty list")
        record = IndexFaces(
            collection_id=_str(b["collection"], "collection"),
            face_model_version=model,
            image_id=_str(b["image_id"], "image_id"),
            image_sha256=_str(b["sha256"], "sha256"),
            external_image_id=_str(b["external_image_id"], "external_image_id", optional=True),
            created_at=_num(b["created_at"], "created_at"),
            faces=tuple(_decode_face(f, i) for i, f in enumerate(b["faces"])),
        )
    elif op == "DeleteFaces":
        b = _fields(body, op, {"collection", "face_ids"})
        ids = b["face_ids"]
        if not isinstance(ids, list) or not ids:
            raise RecordError("DeleteFaces.face_ids must be a non-empty list")
        record = DeleteFaces(
            _str(b["collection"], "collection"),
            model,
            tuple(_str(f, "face_ids[]") for f in ids),
        )
    elif op == "Snapshot":
        b = _fields(body, op, {"collection", "object", "base", "through", "images", "faces",
                               "size", "delta"})
        delta = b["delta"]
        if not isinstance(delta, list) or not all(isinstance(d, bytes) for d in delta):
            raise RecordError("Snapshot.delta must be a list of records")
        base = _count(b["base"], "base")  # 0: a seed, the collection's first record
        record = Snapshot(
            _str(b["collection"], "collection"),
            model,
            _str(b["object"], "object"),
            base,
            _count(b["through"], "through", minimum=base),
            _count(b["images"], "images"),
            _count(b["faces"], "faces"),
            _count(b["size"], "size", minimum=1),
            tuple(delta),
        )
    else:
        raise UnknownRecordVersion(
            f"record operation {op!r} is unknown to this node (record version {version})"
        )
    return Envelope(record, _str(top["id"], "id"), _str(top["writer"], "writer"), version)
