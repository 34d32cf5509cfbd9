"""IndexFaces, ListFaces, DeleteFaces: the faces stored in a collection.

Only feature vectors and metadata are stored, never image bytes; the image is known by
its sha256 so that indexing the same bytes with the same ExternalImageId twice stores
nothing new and returns the existing records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np

from streamproc.faces.analyzer import ImageFaces
from streamproc.faces.describe import face_detail
from streamproc.faces.versions import pipeline_for
from streamproc.hookspecs import hookimpl
from streamproc.images import load_image
from streamproc.operations import Operation, OperationContext
from streamproc.shapes import (
    BoundingBox,
    DeleteFacesRequest,
    DeleteFacesResponse,
    Face,
    FaceDetail,
    FaceRecord,
    IndexFacesRequest,
    IndexFacesResponse,
    ListFacesRequest,
    ListFacesResponse,
)
from streamproc.store import BoundingBox as StoredBox
from streamproc.store import FaceRecord as StoredFace
from streamproc.store import NewFace
from streamproc.vision.boxes import iou

#: As DetectFaces: at most the 100 largest faces of an image.
MAX_FACES = 100


def face_shape(record: StoredFace) -> Face:
    """A stored face as the Rekognition ``Face`` type."""
    box = record.bounding_box
    return Face(
        FaceId=record.face_id,
        BoundingBox=BoundingBox(Width=box.width, Height=box.height, Left=box.left, Top=box.top),
        ImageId=record.image_id,
        ExternalImageId=record.external_image_id,
        Confidence=record.confidence,
    )


def _details_for(records: list[StoredFace], details: list[FaceDetail]) -> list[FaceDetail]:
    """Pair stored faces with this call's analysis by box overlap (re-index returns old ids)."""
    boxes = np.array(
        [
            [
                d.BoundingBox.Left,
                d.BoundingBox.Top,
                d.BoundingBox.Left + d.BoundingBox.Width,
                d.BoundingBox.Top + d.BoundingBox.Height,
            ]
            for d in details
        ]
    )
    paired = []
    for record in records:
        b = record.bounding_box
        overlaps = iou(np.array([b.left, b.top, b.left + b.width, b.top + b.height]), boxes)
        paired.append(details[int(np.argmax(overlaps))])
    return paired


def index_faces(request: IndexFacesRequest, context: OperationContext) -> IndexFacesResponse:
    image = load_image(request.Image, context.buckets)
    # Fail fast on an unknown collection, before paying for the models.
    collection = context.store.describe_collection(request.CollectionId)
    # Vectors are made the way the collection's FaceModelVersion made them: never mixed.
    pipeline = pipeline_for(collection.face_model_version)
    all_attributes = "ALL" in (request.DetectionAttributes or ["DEFAULT"])
    result: ImageFaces = context.faces.analyze(
        image,
        attributes=all_attributes,
        embeddings=True,
        max_faces=min(request.MaxFaces or MAX_FACES, MAX_FACES),
        edge=pipeline.edge,
        flip_average=pipeline.flip_average,
    )
    details = [face_detail(f, result, all_attributes=all_attributes) for f in result.faces]
    new_faces = [
        NewFace(
            bounding_box=StoredBox(
                left=d.BoundingBox.Left,
                top=d.BoundingBox.Top,
                width=d.BoundingBox.Width,
                height=d.BoundingBox.Height,
            ),
            confidence=d.Confidence,
            embedding=np.asarray(f.embedding, dtype=np.float32),
        )
        for f, d in zip(result.faces, details, strict=True)
    ]
    stored = context.store.index_faces(
        request.CollectionId,
        image_sha256=image.sha256 or hashlib.sha256(request.Image.Bytes or b"").hexdigest(),
        external_image_id=request.ExternalImageId,
        faces=new_faces,
    )
    records = list(stored.faces)
    return IndexFacesResponse(
        FaceRecords=[
            FaceRecord(Face=face_shape(r), FaceDetail=d)
            for r, d in zip(
                records, _details_for(records, details) if details else [], strict=False
            )
        ],
        OrientationCorrection=result.orientation,  # type: ignore[arg-type]
        FaceModelVersion=collection.face_model_version,
    )


def list_faces(request: ListFacesRequest, context: OperationContext) -> ListFacesResponse:
    collection = context.store.describe_collection(request.CollectionId)
    faces, token = context.store.list_faces(
        request.CollectionId, request.MaxResults, request.NextToken
    )
    return ListFacesResponse(
        Faces=[face_shape(f) for f in faces],
        NextToken=token,
        FaceModelVersion=collection.face_model_version,
    )


def delete_faces(request: DeleteFacesRequest, context: OperationContext) -> DeleteFacesResponse:
    return DeleteFacesResponse(
        DeletedFaces=context.store.delete_faces(request.CollectionId, request.FaceIds)
    )


@hookimpl
def streamproc_register_operations(register: Callable[[Operation], None]) -> None:
    register(
        Operation(
            "IndexFaces",
            IndexFacesRequest,
            IndexFacesResponse,
            index_faces,
            "Detect faces in an image and add their feature vectors to a collection.",
        )
    )
    register(
        Operation(
            "ListFaces",
            ListFacesRequest,
            ListFacesResponse,
            list_faces,
            "List the faces of a collection, paginated in a stable order.",
        )
    )
    register(
        Operation(
            "DeleteFaces",
            DeleteFacesRequest,
            DeleteFacesResponse,
            delete_faces,
            "Delete faces by FaceId; returns those that were deleted.",
        )
    )
