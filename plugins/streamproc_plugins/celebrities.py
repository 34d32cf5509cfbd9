"""RecognizeCelebrities and GetCelebrityInfo against a local celebrity catalog.

The catalog (``STREAMPROC_CELEBRITIES``, default the bundled one) is loaded once per
process. A face is a celebrity when its best catalog match reaches Similarity 80, the
calibrated score CompareFaces and face search use, so a match means the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamproc.celebrities.catalog import Catalog
from streamproc.celebrities.loader import catalog_path, load_catalog
from streamproc.errors import ResourceNotFoundException
from streamproc.faces.analyzer import ImageFaces
from streamproc.faces.describe import compared_face
from streamproc.hookspecs import hookimpl
from streamproc.images import load_image
from streamproc.operations import Operation, OperationContext
from streamproc.runtime.frame_input import FrameInput
from streamproc.shapes import (
    CelebritiesSection,
    Celebrity,
    ComparedFace,
    GetCelebrityInfoRequest,
    GetCelebrityInfoResponse,
    RecognizeCelebritiesRequest,
    RecognizeCelebritiesResponse,
)

__all__ = [
    "MAX_FACES",
    "MATCH_THRESHOLD",
    "catalog",
    "recognize_faces",
    "recognize_celebrities",
    "recognize_celebrities_in_frame",
    "get_celebrity_info",
]

#: The reference: RecognizeCelebrities looks at the 15 largest faces.
MAX_FACES = 15
#: The default match threshold of CompareFaces and face search.
MATCH_THRESHOLD = 80.0


def catalog(context: OperationContext) -> Catalog:
    """The configured catalog, loaded once per process (per file, if the setting changes)."""
    path = catalog_path().resolve()
    return context.resource(f"celebrities.catalog:{path}", lambda: load_catalog(path))  # type: ignore[no-any-return]


def recognize_faces(
    result: ImageFaces, known: Catalog
) -> tuple[list[Celebrity], list[ComparedFace]]:
    """Each face's best celebrity at or above the threshold; the others are unrecognised."""
    celebrities: list[Celebrity] = []
    unrecognized: list[ComparedFace] = []
    for face in result.faces[:MAX_FACES]:
        # No embedding: a face in a frame too small to identify (see FrameInput).
        match = known.best_match(face.embedding) if face.embedding is not None else None
        if match is None or match.similarity < MATCH_THRESHOLD:
            unrecognized.append(compared_face(face, result))
            continue
        celebrities.append(
            Celebrity(
                Urls=list(match.celebrity.urls),
                Name=match.celebrity.name,
                Id=match.celebrity.id,
                Face=compared_face(face, result),
                MatchConfidence=match.similarity,
            )
        )
    return celebrities, unrecognized


def recognize_celebrities(
    request: RecognizeCelebritiesRequest, context: OperationContext
) -> RecognizeCelebritiesResponse:
    image = load_image(request.Image, context.buckets)
    known = catalog(context)
    result = context.faces.analyze(image, embeddings=True, max_faces=MAX_FACES)
    celebrities, unrecognized = recognize_faces(result, known)
    return RecognizeCelebritiesResponse(
        CelebrityFaces=celebrities,
        UnrecognizedFaces=unrecognized,
        OrientationCorrection=result.orientation,  # type: ignore[arg-type]
    )


def recognize_celebrities_in_frame(
    frame: FrameInput, request: Any, context: OperationContext
) -> CelebritiesSection:
    """Per analysed frame: the 15 largest faces, as RecognizeCelebrities' two lists."""
    celebrities, unrecognized = recognize_faces(frame.faces(), catalog(context))
    return CelebritiesSection(CelebrityFaces=celebrities, UnrecognizedFaces=unrecognized)


def get_celebrity_info(
    request: GetCelebrityInfoRequest, context: OperationContext
) -> GetCelebrityInfoResponse:
    known = catalog(context)
    celebrity = known.get(request.Id)
    if celebrity is None:
        raise ResourceNotFoundException(
            f"GetCelebrityInfo: no celebrity with Id {request.Id!r} in the catalog "
            f"({len(known)} celebrities)"
        )
    return GetCelebrityInfoResponse(Urls=list(celebrity.urls), Name=celebrity.name)


@hookimpl
def streamproc_register_operations(register: Callable[[Operation], None]) -> None:
    register(
        Operation(
            name="RecognizeCelebrities",
            request=RecognizeCelebritiesRequest,
            response=RecognizeCelebritiesResponse,
            handler=recognize_celebrities,
            summary="Recognise catalog celebrities among the 15 largest faces of an image "
            "(Similarity >= 80); the other faces are UnrecognizedFaces.",
            frame_handler=recognize_celebrities_in_frame,
            frame_needs=lambda request: frozenset({"embeddings"}),
        )
    )
    register(
        Operation(
            name="GetCelebrityInfo",
            request=GetCelebrityInfoRequest,
            response=GetCelebrityInfoResponse,
            handler=get_celebrity_info,
            summary="Name and Urls of a celebrity by the Id RecognizeCelebrities returned.",
        )
    )
