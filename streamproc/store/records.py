"""Plain records the store hands in and out; the operation layer maps them to wire shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

__all__ = ["BoundingBox", "NewFace", "FaceRecord", "Collection", "IndexResult"]


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """Face box as ratios of the image width/height (Rekognition's BoundingBox)."""

    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class NewFace:
    """A detected face to index: what the face pipeline produced for one face."""

    bounding_box: BoundingBox
    confidence: float
    embedding: np.ndarray
    detail: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class FaceRecord:
    """A stored face. ``embedding`` is only filled by ``get_face`` (unit-norm float32)."""

    face_id: str
    image_id: str
    external_image_id: str | None
    bounding_box: BoundingBox
    confidence: float
    detail: dict[str, Any] | None = None
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Collection:
    """A face collection. ``dimension`` is None until the first face fixes it."""

    collection_id: str
    arn: str
    face_model_version: str
    created_at: datetime
    face_count: int
    dimension: int | None


@dataclass(frozen=True, slots=True)
class IndexResult:
    """Outcome of index_faces.

    ``already_indexed`` is True when the same image bytes with the same ExternalImageId
    had been indexed into this collection before; ``faces`` are then the stored records
    and nothing new was written.
    """

    faces: list[FaceRecord]
    image_id: str | None
    already_indexed: bool
