"""Rekognition request and response shapes (API 2017-02-09), in one place.

Field names, casing, ranges and defaults follow the reference. Wire values follow
what real clients see (botocore's service model): Gender ``Male``/``Female`` and
camelCase landmark types. Operations return these models; the wire encoding is
chosen at the edge (``model_dump`` for Python, JSON with base64 blobs, msgpack).

Field names equal their type names (``BoundingBox: BoundingBox``) as on the wire; the
annotations then name the types through ``_``-prefixed module aliases.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "FrameSection",
    "FaceSearchRecord",
    "FaceSearchSection",
    "FaceDetailsSection",
    "CelebritiesSection",
    "ModerationLabelsSection",
    "LabelsSection",
    "DescribeCollectionRequest",
    "DescribeCollectionResponse",
    "Shape",
    "Request",
    "S3Object",
    "Image",
    "BoundingBox",
    "Landmark",
    "LandmarkType",
    "Pose",
    "ImageQuality",
    "AgeRange",
    "Gender",
    "Emotion",
    "EmotionType",
    "Smile",
    "EyeOpen",
    "MouthOpen",
    "Eyeglasses",
    "Sunglasses",
    "Beard",
    "Mustache",
    "FaceDetail",
    "ComparedFace",
    "ComparedSourceImageFace",
    "CompareFacesMatch",
    "OrientationCorrection",
    "Attribute",
    "DetectFacesRequest",
    "DetectFacesResponse",
    "CompareFacesRequest",
    "CompareFacesResponse",
    "Face",
    "FaceRecord",
    "FaceMatch",
    "CollectionId",
    "ExternalImageId",
    "FaceId",
    "CreateCollectionRequest",
    "CreateCollectionResponse",
    "DeleteCollectionRequest",
    "DeleteCollectionResponse",
    "ListCollectionsRequest",
    "ListCollectionsResponse",
    "IndexFacesRequest",
    "IndexFacesResponse",
    "ListFacesRequest",
    "ListFacesResponse",
    "DeleteFacesRequest",
    "DeleteFacesResponse",
    "SearchFacesRequest",
    "SearchFacesResponse",
    "SearchFacesByImageRequest",
    "SearchFacesByImageResponse",
    "CelebrityId",
    "Celebrity",
    "RecognizeCelebritiesRequest",
    "RecognizeCelebritiesResponse",
    "GetCelebrityInfoRequest",
    "GetCelebrityInfoResponse",
    "ModerationLabel",
    "DetectModerationLabelsRequest",
    "DetectModerationLabelsResponse",
    "Label",
    "DetectLabelsRequest",
    "DetectLabelsResponse",
]

Percent = Annotated[float, Field(ge=0.0, le=100.0)]
Angle = Annotated[float, Field(ge=-180.0, le=180.0)]
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
CollectionId = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[a-zA-Z0-9_.\-]+$")
]
ExternalImageId = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[a-zA-Z0-9_.\-:]+$")
]
FaceId = Annotated[str, StringConstraints(pattern=UUID_PATTERN)]
PaginationToken = Annotated[str, StringConstraints(max_length=255)]

OrientationCorrection = Literal["ROTATE_0", "ROTATE_90", "ROTATE_180", "ROTATE_270"]
Attribute = Literal["DEFAULT", "ALL"]
LandmarkType = Literal[
    "eyeLeft",
    "eyeRight",
    "nose",
    "mouthLeft",
    "mouthRight",
    "leftEyeBrowLeft",
    "leftEyeBrowRight",
    "leftEyeBrowUp",
    "rightEyeBrowLeft",
    "rightEyeBrowRight",
    "rightEyeBrowUp",
    "leftEyeLeft",
    "leftEyeRight",
    "leftEyeUp",
    "leftEyeDown",
    "rightEyeLeft",
    "rightEyeRight",
    "rightEyeUp",
    "rightEyeDown",
    "noseLeft",
    "noseRight",
    "mouthUp",
    "mouthDown",
    "leftPupil",
    "rightPupil",
]
EmotionType = Literal[
    "HAPPY", "SAD", "ANGRY", "CONFUSED", "DISGUSTED", "SURPRISED", "CALM", "UNKNOWN"
]


_OrientationCorrection = OrientationCorrection


_FaceId = FaceId


_ExternalImageId = ExternalImageId


_CollectionId = CollectionId


class Shape(BaseModel):
    """Base of response shapes: absent optional fields are omitted on the wire."""

    model_config = ConfigDict(
        extra="forbid",
        ser_json_bytes="base64",
        val_json_bytes="base64",
        populate_by_name=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The dict boto3 would return (None fields dropped, bytes kept raw)."""
        return self.model_dump(exclude_none=True)


class Request(Shape):
    """Base of request shapes: unknown parameters are an InvalidParameterException."""


class S3Object(Shape):
    Bucket: Annotated[
        str | None, StringConstraints(min_length=3, max_length=255, pattern=r"^[0-9A-Za-z.\-_]*$")
    ] = None
    Name: Annotated[str | None, StringConstraints(min_length=1, max_length=1024)] = None
    Version: Annotated[str | None, StringConstraints(min_length=1, max_length=1024)] = None


_S3Object = S3Object


class Image(Shape):
    """Raw bytes in Python, base64 on JSON wires, or an S3 object reference."""

    Bytes: Annotated[bytes | None, Field(min_length=1)] = None
    S3Object: _S3Object | None = None


_Image = Image


class BoundingBox(Shape):
    """Ratios of the image size; may be slightly outside [0, 1] for faces at the edge.

    The one box type of the frame path: detector output is converted to it once, and the
    tracker, events and snapshots use it as is.
    """

    Width: float
    Height: float
    Left: float
    Top: float

    @classmethod
    def from_corners(cls, x1: float, y1: float, x2: float, y2: float) -> BoundingBox:
        return cls(Width=x2 - x1, Height=y2 - y1, Left=x1, Top=y1)

    def corners(self) -> tuple[float, float, float, float]:
        """``(x1, y1, x2, y2)`` as ratios."""
        return (self.Left, self.Top, self.Left + self.Width, self.Top + self.Height)

    @property
    def area(self) -> float:
        return max(0.0, self.Width) * max(0.0, self.Height)

    @property
    def center(self) -> tuple[float, float]:
        return (self.Left + self.Width / 2, self.Top + self.Height / 2)

    def iou(self, other: BoundingBox) -> float:
        ax1, ay1, ax2, ay2 = self.corners()
        bx1, by1, bx2, by2 = other.corners()
        inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def pixels(self, width: int, height: int) -> tuple[float, float]:
        """Width and height in pixels of a ``width`` x ``height`` image."""
        return (self.Width * width, self.Height * height)


_BoundingBox = BoundingBox


class Landmark(Shape):
    Type: LandmarkType
    X: float
    Y: float


class Pose(Shape):
    Roll: Angle
    Yaw: Angle
    Pitch: Angle


_Pose = Pose


class ImageQuality(Shape):
    Brightness: Percent
    Sharpness: Percent


class AgeRange(Shape):
    Low: Annotated[int, Field(ge=0)]
    High: Annotated[int, Field(ge=0)]


_AgeRange = AgeRange


class Gender(Shape):
    Value: Literal["Male", "Female"]
    Confidence: Percent


_Gender = Gender


class Emotion(Shape):
    Type: EmotionType
    Confidence: Percent


class _BooleanAttribute(Shape):
    Value: bool
    Confidence: Percent


class Smile(_BooleanAttribute):
    pass


_Smile = Smile


class EyeOpen(_BooleanAttribute):
    pass


class MouthOpen(_BooleanAttribute):
    pass


_MouthOpen = MouthOpen


class Eyeglasses(_BooleanAttribute):
    pass


_Eyeglasses = Eyeglasses


class Sunglasses(_BooleanAttribute):
    pass


_Sunglasses = Sunglasses


class Beard(_BooleanAttribute):
    pass


_Beard = Beard


class Mustache(_BooleanAttribute):
    pass


_Mustache = Mustache


class FaceDetail(Shape):
    """A detected face; attributes no model backs are left out rather than guessed."""

    BoundingBox: _BoundingBox
    AgeRange: _AgeRange | None = None
    Smile: _Smile | None = None
    Eyeglasses: _Eyeglasses | None = None
    Sunglasses: _Sunglasses | None = None
    Gender: _Gender | None = None
    Beard: _Beard | None = None
    Mustache: _Mustache | None = None
    EyesOpen: EyeOpen | None = None
    MouthOpen: _MouthOpen | None = None
    Emotions: list[Emotion] | None = None
    Landmarks: list[Landmark] | None = None
    Pose: _Pose | None = None
    Quality: ImageQuality | None = None
    Confidence: Percent


_FaceDetail = FaceDetail


class ComparedFace(Shape):
    BoundingBox: _BoundingBox
    Confidence: Percent
    Landmarks: list[Landmark] | None = None
    Pose: _Pose | None = None
    Quality: ImageQuality | None = None


class ComparedSourceImageFace(Shape):
    BoundingBox: _BoundingBox
    Confidence: Percent


class CompareFacesMatch(Shape):
    Similarity: Percent
    Face: ComparedFace


# --- DetectFaces / CompareFaces -------------------------------------------------------------


class DetectFacesRequest(Request):
    Image: _Image
    Attributes: list[Attribute] | None = None


class DetectFacesResponse(Shape):
    FaceDetails: list[FaceDetail]
    OrientationCorrection: _OrientationCorrection | None = None


class CompareFacesRequest(Request):
    SourceImage: Image
    TargetImage: Image
    SimilarityThreshold: Percent = 80.0


class CompareFacesResponse(Shape):
    SourceImageFace: ComparedSourceImageFace | None = None
    FaceMatches: list[CompareFacesMatch]
    UnmatchedFaces: list[ComparedFace]
    SourceImageOrientationCorrection: OrientationCorrection | None = None
    TargetImageOrientationCorrection: OrientationCorrection | None = None


# --- collections ----------------------------------------------------------------------------


class Face(Shape):
    FaceId: str
    BoundingBox: _BoundingBox
    ImageId: str
    ExternalImageId: str | None = None
    Confidence: Percent


_Face = Face


class FaceRecord(Shape):
    Face: _Face
    FaceDetail: _FaceDetail


class FaceMatch(Shape):
    Similarity: Percent
    Face: _Face


class CreateCollectionRequest(Request):
    CollectionId: _CollectionId


class CreateCollectionResponse(Shape):
    StatusCode: int
    CollectionArn: str
    FaceModelVersion: str


class DeleteCollectionRequest(Request):
    CollectionId: _CollectionId


class DeleteCollectionResponse(Shape):
    StatusCode: int


class ListCollectionsRequest(Request):
    NextToken: PaginationToken | None = None
    MaxResults: Annotated[int | None, Field(ge=0, le=4096)] = None


class DescribeCollectionRequest(Request):
    """Not in the 2017-02-09 reference; shapes from botocore's service model (Double Take
    calls it first to see whether its collection exists)."""

    CollectionId: _CollectionId


class DescribeCollectionResponse(Shape):
    FaceCount: int | None = None
    FaceModelVersion: str | None = None
    CollectionARN: str | None = None  # sic: "ARN" here, "Arn" in CreateCollection
    CreationTimestamp: datetime | None = None


class ListCollectionsResponse(Shape):
    CollectionIds: list[str]
    NextToken: str | None = None
    FaceModelVersions: list[str]


class IndexFacesRequest(Request):
    CollectionId: _CollectionId
    Image: _Image
    ExternalImageId: _ExternalImageId | None = None
    DetectionAttributes: list[Attribute] | None = None
    #: From later API versions: index only the largest ``MaxFaces`` faces of the image.
    MaxFaces: Annotated[int | None, Field(ge=1, le=100)] = None


class IndexFacesResponse(Shape):
    FaceRecords: list[FaceRecord]
    OrientationCorrection: _OrientationCorrection | None = None
    FaceModelVersion: str


class ListFacesRequest(Request):
    CollectionId: _CollectionId
    NextToken: PaginationToken | None = None
    MaxResults: Annotated[int | None, Field(ge=0, le=4096)] = None


class ListFacesResponse(Shape):
    Faces: list[Face]
    NextToken: str | None = None
    FaceModelVersion: str


class DeleteFacesRequest(Request):
    CollectionId: _CollectionId
    FaceIds: Annotated[list[FaceId], Field(min_length=1, max_length=4096)]


class DeleteFacesResponse(Shape):
    DeletedFaces: list[str]


class SearchFacesRequest(Request):
    CollectionId: _CollectionId
    FaceId: _FaceId
    MaxFaces: Annotated[int | None, Field(ge=1, le=4096)] = None
    FaceMatchThreshold: Percent | None = None


class SearchFacesResponse(Shape):
    SearchedFaceId: str
    FaceMatches: list[FaceMatch]
    FaceModelVersion: str


class SearchFacesByImageRequest(Request):
    CollectionId: _CollectionId
    Image: _Image
    MaxFaces: Annotated[int | None, Field(ge=1, le=4096)] = None
    FaceMatchThreshold: Percent | None = None


class SearchFacesByImageResponse(Shape):
    SearchedFaceBoundingBox: BoundingBox
    SearchedFaceConfidence: Percent
    FaceMatches: list[FaceMatch]
    FaceModelVersion: str


# --- celebrities ----------------------------------------------------------------------------

CelebrityId = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]*$")]


class Celebrity(Shape):
    """A recognised face: who (Id, Name, Urls), where (Face) and how sure (MatchConfidence)."""

    Urls: list[str] | None = None
    Name: str | None = None
    Id: CelebrityId | None = None
    Face: ComparedFace | None = None
    MatchConfidence: Percent | None = None


class RecognizeCelebritiesRequest(Request):
    Image: _Image


class RecognizeCelebritiesResponse(Shape):
    CelebrityFaces: list[Celebrity]
    UnrecognizedFaces: list[ComparedFace]
    OrientationCorrection: _OrientationCorrection | None = None


class GetCelebrityInfoRequest(Request):
    Id: CelebrityId


class GetCelebrityInfoResponse(Shape):
    Urls: list[str]
    Name: str


# --- moderation -----------------------------------------------------------------------------


class ModerationLabel(Shape):
    """One label; ``ParentName`` is ``""`` for a top-level category."""

    Confidence: Percent
    Name: str
    ParentName: str


class DetectModerationLabelsRequest(Request):
    Image: _Image
    MinConfidence: Percent = 50.0


class DetectModerationLabelsResponse(Shape):
    ModerationLabels: list[ModerationLabel]


# --- labels ---------------------------------------------------------------------------------


class Label(Shape):
    """One label: the 2017-02-09 API returns only its name and confidence."""

    Name: str
    Confidence: Percent


class DetectLabelsRequest(Request):
    Image: _Image
    MaxLabels: Annotated[int | None, Field(ge=0)] = None
    MinConfidence: Percent = 50.0


class DetectLabelsResponse(Shape):
    Labels: list[Label]
    OrientationCorrection: _OrientationCorrection | None = None


# --- per-frame record sections ----------------------------------------------------------------


class FrameSection(Shape):
    """What an operation's frame handler adds to a frame record: its fields become keys of
    the record on ``streamproc.<stream>.frames``, named as in the operation's response."""


class FaceSearchRecord(Shape):
    """One face of a frame and its matches, as a Rekognition Video stream processor gives.

    ``MatchSource`` ``"TRACK"`` (streamproc's own field): the face was not embedded on this
    frame; it is the same face as a confidently identified visitor's track, and
    ``MatchedFaces`` are that track's matches from its last embedded frame (identity reuse,
    README "Streams"). Absent: searched on this frame, as the reference does.
    """

    DetectedFace: ComparedFace
    MatchedFaces: list[FaceMatch]
    MatchSource: Literal["TRACK"] | None = None


class FaceSearchSection(FrameSection):
    """SearchFacesByImage per frame: every face, in the order of the frame's face analysis."""

    FaceSearchResponse: list[FaceSearchRecord]


class FaceDetailsSection(FrameSection):
    FaceDetails: list[FaceDetail]


class CelebritiesSection(FrameSection):
    CelebrityFaces: list[Celebrity]
    UnrecognizedFaces: list[ComparedFace]


class ModerationLabelsSection(FrameSection):
    ModerationLabels: list[ModerationLabel]


class LabelsSection(FrameSection):
    Labels: list[Label]
