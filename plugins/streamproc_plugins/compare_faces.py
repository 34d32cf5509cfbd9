"""CompareFaces: the largest source face against up to 15 largest target faces."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from streamproc.errors import InvalidParameterException
from streamproc.faces.describe import compared_face, compared_source_face
from streamproc.faces.similarity import similarity
from streamproc.hookspecs import hookimpl
from streamproc.images import load_image
from streamproc.operations import Operation, OperationContext
from streamproc.shapes import CompareFacesMatch, CompareFacesRequest, CompareFacesResponse

MAX_TARGET_FACES = 15


def compare_faces(request: CompareFacesRequest, context: OperationContext) -> CompareFacesResponse:
    source_image = load_image(request.SourceImage, context.buckets)
    target_image = load_image(request.TargetImage, context.buckets)
    # The source face is reported by box and confidence only: no mesh needed for it.
    # Faces cut off by the image edge are flip-averaged (FaceAnalyzer.analyze, flip_border).
    source = context.faces.analyze(source_image, embeddings=True, max_faces=1, mesh=False,
                                   flip_border=True)
    if not source.faces:
        raise InvalidParameterException("CompareFaces: no face was detected in the SourceImage")
    target = context.faces.analyze(target_image, embeddings=True, max_faces=MAX_TARGET_FACES,
                                   flip_border=True)
    src_vec = source.faces[0].embedding
    assert src_vec is not None
    matches: list[CompareFacesMatch] = []
    unmatched = []
    for face in target.faces:
        assert face.embedding is not None
        score = float(similarity(float(np.dot(src_vec, face.embedding))))
        if score >= request.SimilarityThreshold:
            matches.append(CompareFacesMatch(Similarity=score, Face=compared_face(face, target)))
        else:
            unmatched.append(compared_face(face, target))
    matches.sort(key=lambda m: m.Similarity, reverse=True)
    return CompareFacesResponse(
        SourceImageFace=compared_source_face(source.faces[0], source),
        FaceMatches=matches,
        UnmatchedFaces=unmatched,
        SourceImageOrientationCorrection=source.orientation,  # type: ignore[arg-type]
        TargetImageOrientationCorrection=target.orientation,  # type: ignore[arg-type]
    )


@hookimpl
def streamproc_register_operations(register: Callable[[Operation], None]) -> None:
    register(
        Operation(
            name="CompareFaces",
            request=CompareFacesRequest,
            response=CompareFacesResponse,
            handler=compare_faces,
            summary="Compare the largest face of SourceImage with up to 15 faces of "
            "TargetImage; matches at or above SimilarityThreshold (default 80).",
        )
    )
