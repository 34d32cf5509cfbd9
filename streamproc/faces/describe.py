"""Analysed faces → Rekognition shapes (ratios of the image size, confidences 0-100)."""

from __future__ import annotations

from streamproc.faces.analyzer import AnalyzedFace, ImageFaces
from streamproc.shapes import (
    AgeRange,
    BoundingBox,
    ComparedFace,
    ComparedSourceImageFace,
    Emotion,
    EyeOpen,
    FaceDetail,
    Gender,
    ImageQuality,
    Landmark,
    MouthOpen,
    Pose,
    Smile,
)
from streamproc.vision.eyes_mouth import eyes_open, mouth_open
from streamproc.vision.mesh_landmarks import MESH_LANDMARKS, mesh_landmarks

__all__ = [
    "LANDMARK_TYPES",
    "ALL_LANDMARK_TYPES",
    "EMOTION_TYPES",
    "SMILE_THRESHOLD",
    "bounding_box",
    "landmarks",
    "all_landmarks",
    "face_detail",
    "compared_face",
    "compared_source_face",
]

LANDMARK_TYPES = ("eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight")
#: ALL: the detector's five (the same points as DEFAULT), then the 20 from the face mesh.
ALL_LANDMARK_TYPES = LANDMARK_TYPES + tuple(t for t in MESH_LANDMARKS if t not in LANDMARK_TYPES)
#: fer's classes as Rekognition emotion types; fear has no Rekognition type and
#: nothing produces CONFUSED, so neither is reported.
EMOTION_TYPES = {
    "happy": "HAPPY",
    "sad": "SAD",
    "angry": "ANGRY",
    "disgust": "DISGUSTED",
    "surprise": "SURPRISED",
    "neutral": "CALM",
}
#: Smile is the emotion model's happiness: smiling when P(happy) >= 0.5.
SMILE_THRESHOLD = 0.5


def _clamp_pct(value: float) -> float:
    return float(min(100.0, max(0.0, value)))


def bounding_box(face: AnalyzedFace, image: ImageFaces) -> BoundingBox:
    x1, y1, x2, y2 = (float(v) for v in face.box)
    return BoundingBox(
        Width=(x2 - x1) / image.width,
        Height=(y2 - y1) / image.height,
        Left=x1 / image.width,
        Top=y1 / image.height,
    )


def landmarks(face: AnalyzedFace, image: ImageFaces) -> list[Landmark]:
    return [
        Landmark(Type=name, X=float(x) / image.width, Y=float(y) / image.height)  # type: ignore[arg-type]
        for name, (x, y) in zip(LANDMARK_TYPES, face.landmarks, strict=True)
    ]


def all_landmarks(face: AnalyzedFace, image: ImageFaces) -> list[Landmark]:
    """The five detector landmarks, plus Rekognition's other 20 when the mesh ran."""
    marks = landmarks(face, image)
    if face.mesh_points is None:
        return marks
    dense = mesh_landmarks(face.mesh_points)
    for name in ALL_LANDMARK_TYPES[len(LANDMARK_TYPES) :]:
        x, y = dense[name]
        marks.append(Landmark(Type=name, X=float(x) / image.width, Y=float(y) / image.height))  # type: ignore[arg-type]
    return marks


def _pose(face: AnalyzedFace) -> Pose:
    return Pose(Roll=face.roll, Yaw=face.yaw, Pitch=face.pitch)


def _quality(face: AnalyzedFace) -> ImageQuality:
    return ImageQuality(
        Brightness=_clamp_pct(face.brightness), Sharpness=_clamp_pct(face.sharpness)
    )


def face_detail(face: AnalyzedFace, image: ImageFaces, *, all_attributes: bool) -> FaceDetail:
    """DEFAULT: box, confidence, landmarks, pose, quality; ALL adds what models back."""
    detail = FaceDetail(
        BoundingBox=bounding_box(face, image),
        Confidence=_clamp_pct(face.confidence),
        Landmarks=landmarks(face, image),
        Pose=_pose(face),
        Quality=_quality(face),
    )
    if all_attributes:
        detail.Landmarks = all_landmarks(face, image)
        if face.eye_ratio is not None:
            value, confidence = eyes_open(face.eye_ratio)
            detail.EyesOpen = EyeOpen(Value=value, Confidence=_clamp_pct(confidence))
        if face.mouth_ratio is not None:
            value, confidence = mouth_open(face.mouth_ratio)
            detail.MouthOpen = MouthOpen(Value=value, Confidence=_clamp_pct(confidence))
    attrs = face.attributes
    if all_attributes and attrs is not None:
        detail.AgeRange = AgeRange(Low=attrs.age_low, High=attrs.age_high)
        detail.Gender = Gender(Value=attrs.gender, Confidence=_clamp_pct(attrs.gender_confidence))  # type: ignore[arg-type]
        emotions = [
            Emotion(Type=EMOTION_TYPES[name], Confidence=_clamp_pct(p * 100.0))  # type: ignore[arg-type]
            for name, p in attrs.emotions.items()
            if name in EMOTION_TYPES
        ]
        detail.Emotions = sorted(emotions, key=lambda e: e.Confidence, reverse=True)
        happy = attrs.emotions["happy"]
        smiling = happy >= SMILE_THRESHOLD
        detail.Smile = Smile(
            Value=smiling, Confidence=_clamp_pct(100.0 * (happy if smiling else 1.0 - happy))
        )
    return detail


def compared_face(face: AnalyzedFace, image: ImageFaces) -> ComparedFace:
    return ComparedFace(
        BoundingBox=bounding_box(face, image),
        Confidence=_clamp_pct(face.confidence),
        Landmarks=landmarks(face, image),
        Pose=_pose(face),
        Quality=_quality(face),
    )


def compared_source_face(face: AnalyzedFace, image: ImageFaces) -> ComparedSourceImageFace:
    return ComparedSourceImageFace(
        BoundingBox=bounding_box(face, image), Confidence=_clamp_pct(face.confidence)
    )
