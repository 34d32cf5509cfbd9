"""Request-parameter checks, with the constraints the Rekognition API reference states."""

from __future__ import annotations

import math
import re

import numpy as np

from streamproc.errors import InvalidParameterException

from .records import NewFace

__all__ = [
    "MAX_PAGE_SIZE",
    "DEFAULT_PAGE_SIZE",
    "MAX_DELETE_FACE_IDS",
    "MAX_SEARCH_FACES",
    "check_collection_id",
    "check_external_image_id",
    "check_face_id",
    "check_image_sha256",
    "check_max_results",
    "check_max_faces",
    "check_new_face",
    "unit_vector",
]

MAX_PAGE_SIZE = 4096
DEFAULT_PAGE_SIZE = 1000
MAX_DELETE_FACE_IDS = 4096
MAX_SEARCH_FACES = 4096

_COLLECTION_ID = re.compile(r"[a-zA-Z0-9_.\-]{1,255}")
_EXTERNAL_IMAGE_ID = re.compile(r"[a-zA-Z0-9_.\-:]{1,255}")
_FACE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_collection_id(collection_id: object) -> str:
    """CollectionId: 1-255 chars of [a-zA-Z0-9_.-], case-sensitive."""
    if not isinstance(collection_id, str) or not _COLLECTION_ID.fullmatch(collection_id):
        raise InvalidParameterException(
            f"CollectionId {collection_id!r} must be 1-255 characters of [a-zA-Z0-9_.\\-]"
        )
    return collection_id


def check_external_image_id(external_image_id: object) -> str | None:
    """ExternalImageId: optional, 1-255 chars of [a-zA-Z0-9_.:-]."""
    if external_image_id is None:
        return None
    if not isinstance(external_image_id, str) or not _EXTERNAL_IMAGE_ID.fullmatch(
        external_image_id
    ):
        raise InvalidParameterException(
            f"ExternalImageId {external_image_id!r} must be 1-255 characters of [a-zA-Z0-9_.\\-:]"
        )
    return external_image_id


def check_face_id(face_id: object) -> str:
    """FaceId: a lower-case UUID, as the store assigns them."""
    if not isinstance(face_id, str) or not _FACE_ID.fullmatch(face_id):
        raise InvalidParameterException(f"FaceId {face_id!r} is not a valid face id")
    return face_id


def check_image_sha256(image_sha256: object) -> str:
    """The idempotency key: hex SHA-256 of the image bytes (lower-case)."""
    if not isinstance(image_sha256, str) or not _SHA256.fullmatch(image_sha256):
        raise InvalidParameterException("image_sha256 must be 64 lower-case hex digits")
    return image_sha256


def check_max_results(max_results: object) -> int:
    """MaxResults: 0-4096; None or 0 mean the default page size (0 would never progress)."""
    if max_results is None:
        return DEFAULT_PAGE_SIZE
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise InvalidParameterException("MaxResults must be an integer")
    if not 0 <= max_results <= MAX_PAGE_SIZE:
        raise InvalidParameterException(f"MaxResults must be between 0 and {MAX_PAGE_SIZE}")
    return max_results or DEFAULT_PAGE_SIZE


def check_max_faces(max_faces: object) -> int:
    """MaxFaces: 1-4096."""
    if isinstance(max_faces, bool) or not isinstance(max_faces, int):
        raise InvalidParameterException("MaxFaces must be an integer")
    if not 1 <= max_faces <= MAX_SEARCH_FACES:
        raise InvalidParameterException(f"MaxFaces must be between 1 and {MAX_SEARCH_FACES}")
    return max_faces


def unit_vector(embedding: object, *, what: str = "embedding") -> np.ndarray:
    """A finite, non-zero 1-D vector as contiguous unit-norm float32 (cosine = dot product)."""
    try:
        vec = np.asarray(embedding, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterException(f"{what} is not a numeric vector") from exc
    if vec.ndim != 1 or vec.size == 0:
        raise InvalidParameterException(f"{what} must be a non-empty 1-D vector")
    if not np.all(np.isfinite(vec)):
        raise InvalidParameterException(f"{what} contains NaN or infinity")
    norm = float(np.linalg.norm(vec.astype(np.float64)))
    if norm == 0.0 or not math.isfinite(norm):
        raise InvalidParameterException(f"{what} has zero length")
    return np.ascontiguousarray(vec / np.float32(norm), dtype=np.float32)


def _finite(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise InvalidParameterException(f"{name} must be a number")
    out = float(value)
    if not math.isfinite(out):
        raise InvalidParameterException(f"{name} must be finite")
    return out


def check_new_face(face: object, index: int) -> tuple[tuple[float, float, float, float], float]:
    """Box ratios and confidence of one NewFace; boxes may stick out of the image a little."""
    if not isinstance(face, NewFace):
        raise InvalidParameterException(f"faces[{index}] is not a NewFace")
    box = face.bounding_box
    ratios = tuple(
        _finite(getattr(box, name), f"faces[{index}].bounding_box.{name}")
        for name in ("left", "top", "width", "height")
    )
    if ratios[2] < 0 or ratios[3] < 0:
        raise InvalidParameterException(f"faces[{index}].bounding_box has a negative size")
    confidence = _finite(face.confidence, f"faces[{index}].confidence")
    if not 0.0 <= confidence <= 100.0:
        raise InvalidParameterException(f"faces[{index}].confidence must be within 0-100")
    return (ratios[0], ratios[1], ratios[2], ratios[3]), confidence
