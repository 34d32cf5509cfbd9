"""DetectFaces on real photographs: counts against labelled boxes, negatives, attributes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamproc.client import Client
from tests.conftest import DATA, image
from tests.rekognition_model import assert_valid_response

LANDMARKS = ["eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight"]


def _labelled_groups() -> list[tuple[str, list[dict[str, int]]]]:
    manifest = json.loads((DATA / "MANIFEST.json").read_text())
    return [
        (f["path"], f["labels"]["face_boxes"])
        for f in manifest["files"]
        if f["path"].startswith("groups/") and f["labels"].get("face_boxes")
    ]


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


@pytest.mark.parametrize(("path", "boxes"), _labelled_groups(), ids=lambda v: str(v)[:40])
def test_group_photo_faces_match_labelled_boxes(
    client: Client, path: str, boxes: list[dict[str, int]]
) -> None:
    from PIL import Image

    width, height = Image.open(DATA / path).size
    response = client.detect_faces(Image=image(path))
    assert_valid_response("DetectFaces", response)
    found = [
        (
            f["BoundingBox"]["Left"] * width,
            f["BoundingBox"]["Top"] * height,
            (f["BoundingBox"]["Left"] + f["BoundingBox"]["Width"]) * width,
            (f["BoundingBox"]["Top"] + f["BoundingBox"]["Height"]) * height,
        )
        for f in response["FaceDetails"]
    ]
    for box in boxes:
        label = (box["left"], box["top"], box["left"] + box["width"], box["top"] + box["height"])
        assert max((_iou(label, f) for f in found), default=0) >= 0.3, f"missed face {box}"
    # dlib labels every clearly visible face; at most one unlabelled (tiny/occluded) extra.
    assert len(boxes) <= len(found) <= len(boxes) + 1


@pytest.mark.parametrize("path", sorted(p.name for p in (DATA / "negatives").iterdir()))
def test_no_faces_on_negatives(client: Client, path: str) -> None:
    response = client.detect_faces(Image=image(f"negatives/{path}"), Attributes=["ALL"])
    assert response["FaceDetails"] == []
    # null (absent) when the JPEG's EXIF carries an orientation, else nothing was turned
    assert response.get("OrientationCorrection", "ROTATE_0") == "ROTATE_0"


def test_close_up_face_crops_are_found(client: Client) -> None:
    crops = sorted((DATA / "faces").glob("dlib_john_*/*"))
    assert len(crops) >= 20
    for crop in crops:  # 150 x 150 crops where the face fills most of the image
        faces = client.detect_faces(Image={"Bytes": crop.read_bytes()})["FaceDetails"]
        assert len(faces) >= 1, crop
        assert faces[0]["BoundingBox"]["Width"] > 0.35


def test_default_attributes_landmarks_pose_quality(client: Client) -> None:
    response = client.detect_faces(Image=image("groups/fr_two_people.jpg"))
    assert_valid_response("DetectFaces", response)
    assert len(response["FaceDetails"]) == 2
    for face in response["FaceDetails"]:
        assert set(face) == {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality"}
        box = face["BoundingBox"]
        marks = {m["Type"]: (m["X"], m["Y"]) for m in face["Landmarks"]}
        assert list(marks) == LANDMARKS
        for x, y in marks.values():  # inside the box
            assert box["Left"] <= x <= box["Left"] + box["Width"]
            assert box["Top"] <= y <= box["Top"] + box["Height"]
        # in order: eyes above nose above mouth; left before right
        assert marks["eyeLeft"][0] < marks["eyeRight"][0]
        assert marks["mouthLeft"][0] < marks["mouthRight"][0]
        assert max(marks["eyeLeft"][1], marks["eyeRight"][1]) < marks["nose"][1]
        assert marks["nose"][1] < min(marks["mouthLeft"][1], marks["mouthRight"][1])
        assert 80 <= face["Confidence"] <= 100
        assert 0 < face["Quality"]["Brightness"] < 100
        assert 0 < face["Quality"]["Sharpness"] <= 100
        assert abs(face["Pose"]["Roll"]) < 20 and abs(face["Pose"]["Yaw"]) < 45


def test_all_attributes_on_labelled_emotions(client: Client) -> None:
    expected = {"happy": "HAPPY", "surprised": "SURPRISED", "neutral": "CALM", "angry": "ANGRY"}
    for name, emotion in expected.items():
        response = client.detect_faces(
            Image=image(f"faces_single/emotion_{name}.jpg"), Attributes=["ALL"]
        )
        assert_valid_response("DetectFaces", response)
        (face,) = response["FaceDetails"]
        assert face["Emotions"][0]["Type"] == emotion, name
        assert {e["Type"] for e in face["Emotions"]} <= {
            "HAPPY",
            "SAD",
            "ANGRY",
            "DISGUSTED",
            "SURPRISED",
            "CALM",
        }  # nothing invents CONFUSED
        assert face["Smile"]["Value"] is (name == "happy")
        low, high = face["AgeRange"]["Low"], face["AgeRange"]["High"]
        assert 10 <= low < high <= 80
        # The face mesh backs EyesOpen and MouthOpen (tests/test_face_mesh.py); no model
        # backs these: they are left out, not guessed.
        assert {"EyesOpen", "MouthOpen"} <= set(face)
        assert len(face["Landmarks"]) == 25
        for absent in ("Eyeglasses", "Sunglasses", "Beard", "Mustache"):
            assert absent not in face


@pytest.mark.parametrize(
    ("path", "gender"),
    [
        ("faces/barack_obama/4.jpg", "Male"),
        ("faces/joe_biden/2.jpg", "Male"),
        ("faces/rose_leslie/1.jpg", "Female"),
        ("faces_single/emotion_happy.jpg", "Female"),
    ],
)
def test_gender_on_clear_photos(client: Client, path: str, gender: str) -> None:
    face = client.detect_faces(Image=image(path), Attributes=["ALL"])["FaceDetails"][0]
    assert face["Gender"]["Value"] == gender
    assert face["Gender"]["Confidence"] > 70


def test_all_and_default_together_means_all(client: Client) -> None:
    face = client.detect_faces(
        Image=image("faces/barack_obama/4.jpg"), Attributes=["ALL", "DEFAULT"]
    )["FaceDetails"][0]
    assert "AgeRange" in face and "Emotions" in face


def test_upright_photos_report_rotate_0_or_exif(client: Client) -> None:
    for path in sorted((DATA / "faces").glob("*/1.*")):
        if path.read_bytes()[:4] == b"RIFF":
            continue
        response: dict[str, Any] = client.detect_faces(Image={"Bytes": path.read_bytes()})
        assert response.get("OrientationCorrection", "ROTATE_0") == "ROTATE_0", path
        assert response["FaceDetails"], path


def test_face_sets_each_photo_has_a_face(client: Client) -> None:
    paths = [p for p in sorted((DATA / "faces").glob("*/*")) if p.read_bytes()[:4] != b"RIFF"]
    missing = [
        str(p.relative_to(DATA))
        for p in paths
        if not client.detect_faces(Image={"Bytes": Path(p).read_bytes()})["FaceDetails"]
    ]
    assert missing == []
