"""DetectFaces: the faces of an image with landmarks, pose, quality and (ALL) attributes."""

from __future__ import annotations

from collections.abc import Callable

from streamproc.faces.describe import face_detail
from streamproc.hookspecs import hookimpl
from streamproc.images import load_image
from streamproc.operations import Operation, OperationContext
from streamproc.runtime.frame_input import FrameInput
from streamproc.shapes import DetectFacesRequest, DetectFacesResponse, FaceDetailsSection

#: Rekognition's DetectFaces returns at most the 100 largest faces.
MAX_FACES = 100


def detect_faces(request: DetectFacesRequest, context: OperationContext) -> DetectFacesResponse:
    image = load_image(request.Image, context.buckets)
    # ["ALL", "DEFAULT"] means ALL: the reference ANDs them into the larger set.
    all_attributes = "ALL" in (request.Attributes or ["DEFAULT"])
    result = context.faces.analyze(image, attributes=all_attributes, max_faces=MAX_FACES)
    return DetectFacesResponse(
        FaceDetails=[
            face_detail(face, result, all_attributes=all_attributes) for face in result.faces
        ],
        OrientationCorrection=result.orientation,  # type: ignore[arg-type]
    )


def detect_faces_in_frame(
    frame: FrameInput, request: DetectFacesRequest, context: OperationContext
) -> FaceDetailsSection:
    """Per analysed frame: every face, as DetectFaces' ``FaceDetails``."""
    all_attributes = "ALL" in (request.Attributes or ["DEFAULT"])
    result = frame.faces()
    return FaceDetailsSection(
        FaceDetails=[
            face_detail(face, result, all_attributes=all_attributes)
            for face in result.faces[:MAX_FACES]
        ]
    )


def _frame_needs(request: DetectFacesRequest) -> frozenset[str]:
    # The mesh gives the pose (and, with ALL, the dense landmarks and eyes/mouth).
    if "ALL" in (request.Attributes or []):
        return frozenset({"attributes", "mesh"})
    return frozenset({"mesh"})


@hookimpl
def streamproc_register_operations(register: Callable[[Operation], None]) -> None:
    register(
        Operation(
            name="DetectFaces",
            request=DetectFacesRequest,
            response=DetectFacesResponse,
            handler=detect_faces,
            summary="Detect up to 100 faces with box, landmarks, pose and quality; "
            "Attributes=['ALL'] adds age range, gender, emotions and smile.",
            frame_handler=detect_faces_in_frame,
            frame_needs=_frame_needs,
        )
    )
