"""SearchFaces and SearchFacesByImage: who in the collection looks like this face.

Similarity is the calibrated score of CompareFaces (README, "Similarity calibration"), so
a FaceMatchThreshold means the same in both places.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from streamproc.errors import InvalidParameterException
from streamproc.faces.describe import bounding_box, compared_face
from streamproc.faces.similarity import cosine_for_similarity, similarity
from streamproc.faces.versions import pipeline_for
from streamproc.hookspecs import hookimpl
from streamproc.images import load_image
from streamproc.operations import Operation, OperationContext
from streamproc.runtime.frame_input import FrameInput
from streamproc.shapes import (
    FaceMatch,
    FaceSearchRecord,
    FaceSearchSection,
    SearchFacesByImageRequest,
    SearchFacesByImageResponse,
    SearchFacesRequest,
    SearchFacesResponse,
)
from streamproc_plugins.index_faces import face_shape

DEFAULT_THRESHOLD = 80.0
#: The reference's limit on matches a search returns.
MAX_MATCHES = 4096


def search_collection(
    context: OperationContext,
    collection_id: str,
    embedding: np.ndarray,
    *,
    max_faces: int | None,
    threshold: float | None,
    exclude_face_id: str | None = None,
) -> list[FaceMatch]:
    """Matches at or above the threshold, best first; shared by both searches and streams."""
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    hits = context.store.search(
        collection_id,
        embedding,
        max_faces=max_faces or MAX_MATCHES,
        min_score=cosine_for_similarity(threshold),
        exclude_face_id=exclude_face_id,
    )
    matches = [
        FaceMatch(Similarity=float(similarity(cosine)), Face=face_shape(record))
        for record, cosine in hits
    ]
    return [m for m in matches if m.Similarity >= threshold]


def search_faces(request: SearchFacesRequest, context: OperationContext) -> SearchFacesResponse:
    collection = context.store.describe_collection(request.CollectionId)
    face = context.store.get_face(request.CollectionId, request.FaceId)
    assert face.embedding is not None
    return SearchFacesResponse(
        SearchedFaceId=request.FaceId,
        FaceMatches=search_collection(
            context,
            request.CollectionId,
            face.embedding,
            max_faces=request.MaxFaces,
            threshold=request.FaceMatchThreshold,
            exclude_face_id=request.FaceId,
        ),
        FaceModelVersion=collection.face_model_version,
    )


def search_faces_by_image(
    request: SearchFacesByImageRequest, context: OperationContext
) -> SearchFacesByImageResponse:
    image = load_image(request.Image, context.buckets)
    collection = context.store.describe_collection(request.CollectionId)
    # The probe is one plain embedding, as stream frames are, except for a face cut off by
    # the image edge, which is flip-averaged too (one more embedder run for it only): with
    # the gallery's flip-averaged vectors (sface-2021dec-2) that measured best
    # (bench/edge_faces.py, "flip gallery" rows).
    pipeline = pipeline_for(collection.face_model_version)
    result = context.faces.analyze(
        image, embeddings=True, max_faces=1, mesh=False, edge=pipeline.edge, flip_border=True
    )
    if not result.faces:
        raise InvalidParameterException("There are no faces in the image. Should be at least 1.")
    face = result.faces[0]
    assert face.embedding is not None
    return SearchFacesByImageResponse(
        SearchedFaceBoundingBox=bounding_box(face, result),
        SearchedFaceConfidence=min(100.0, face.confidence),
        FaceMatches=search_collection(
            context,
            request.CollectionId,
            face.embedding,
            max_faces=request.MaxFaces,
            threshold=request.FaceMatchThreshold,
        ),
        FaceModelVersion=collection.face_model_version,
    )


def search_faces_in_frame(
    frame: FrameInput, request: SearchFacesByImageRequest, context: OperationContext
) -> FaceSearchSection:
    """Per analysed frame, **every** face is searched, as Rekognition Video stream
    processors do (``FaceSearchResponse``), not only the largest one; one record per face of
    the frame's face analysis, in its order (the visit tracker pairs them by position).
    A face the runner's reuse plan carried (``frame.carried``) is not searched again: its
    record holds the track's matches, marked ``MatchSource: TRACK``."""
    result = frame.faces()
    responses = []
    for i, face in enumerate(result.faces):
        carried = frame.carried.get(i)
        if carried is not None:  # a tracked visitor's face: the track's matches (reuse)
            responses.append(
                FaceSearchRecord(DetectedFace=compared_face(face, result),
                                 MatchedFaces=list(carried.matches), MatchSource="TRACK")
            )
            continue
        matches = (
            search_collection(
                context,
                request.CollectionId,
                face.embedding,
                max_faces=request.MaxFaces,
                threshold=request.FaceMatchThreshold,
            )
            if face.embedding is not None  # None: too small to identify (FrameInput)
            else []
        )
        responses.append(
            FaceSearchRecord(DetectedFace=compared_face(face, result), MatchedFaces=matches)
        )
    return FaceSearchSection(FaceSearchResponse=responses)


@hookimpl
def streamproc_register_operations(register: Callable[[Operation], None]) -> None:
    register(
        Operation(
            "SearchFaces",
            SearchFacesRequest,
            SearchFacesResponse,
            search_faces,
            "Search a collection for faces like a stored face (by FaceId).",
        )
    )
    register(
        Operation(
            "SearchFacesByImage",
            SearchFacesByImageRequest,
            SearchFacesByImageResponse,
            search_faces_by_image,
            "Search a collection for the largest face of an image.",
            frame_handler=search_faces_in_frame,
            frame_needs=lambda request: frozenset({"embeddings"}),
        )
    )
