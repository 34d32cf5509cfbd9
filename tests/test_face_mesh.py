"""The face mesh: committed ONNX goldens, pure geometry, and DetectFaces ALL on real photos."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from streamproc.client import Client
from streamproc.faces.mesh import load_canonical_face
from streamproc.images import decode_image
from streamproc.inference import get_session, load_manifest
from streamproc.inference.shipped import sha256_file
from streamproc.vision.eyes_mouth import (
    eye_aspect_ratio,
    eyes_open,
    mouth_aspect_ratio,
    mouth_open,
)
from streamproc.vision.head_pose import fit_similarity_3d, pose_from_mesh, pose_from_rotation
from streamproc.vision.mesh_landmarks import (
    MESH_LANDMARKS,
    mesh_crop,
    mesh_crop_matrix,
    mesh_to_image,
)
from tests.conftest import DATA, image
from tests.rekognition_model import assert_valid_response

ALL_TYPES = [
    "eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight", "leftEyeBrowLeft",
    "leftEyeBrowRight", "leftEyeBrowUp", "rightEyeBrowLeft", "rightEyeBrowRight",
    "rightEyeBrowUp", "leftEyeLeft", "leftEyeRight", "leftEyeUp", "leftEyeDown",
    "rightEyeLeft", "rightEyeRight", "rightEyeUp", "rightEyeDown", "noseLeft", "noseRight",
    "mouthUp", "mouthDown", "leftPupil", "rightPupil",
]  # fmt: skip


def _rot(axis: str, degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return {
        "x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
        "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
        "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
    }[axis]


@pytest.fixture(scope="module")
def canonical() -> np.ndarray:
    spec = load_manifest().get("face_mesh")
    assert spec.path is not None
    return load_canonical_face(spec.path)


# ----------------------------------------------------------------- committed model files


def test_committed_model_matches_manifest_and_golden_outputs() -> None:
    """CI checks the committed ONNX by its outputs on a real face, not by re-converting."""
    spec = load_manifest().get("face_mesh")
    assert spec.distribution == "repo" and spec.recipe == "copy"
    assert spec.path is not None and sha256_file(spec.path) == spec.sha256
    rgb = decode_image((DATA / "faces_single/emotion_neutral.jpg").read_bytes()).rgb
    matrix = mesh_crop_matrix(
        np.array([245.0, 49.0, 370.0, 216.0]), np.array([276.0, 115.0]), np.array([335.0, 118.0])
    )
    session = get_session("face_mesh")
    points, logit = session.run(None, {"input_1": mesh_crop(rgb, matrix)})
    points = points.reshape(468, 3)
    assert float(logit.reshape(-1)[0]) == pytest.approx(31.154, abs=0.05)
    golden = {  # crop pixels, from tf2onnx 1.16.1 (two conversions gave identical outputs)
        1: (90.07, 111.79, -22.07),  # nose tip
        33: (61.37, 86.07, 9.00),  # outer corner of the image-left eye
        263: (124.66, 85.09, 3.27),
        61: (77.20, 131.43, 3.61),  # mouth corners
        291: (110.21, 130.70, -0.07),
        152: (93.74, 161.17, 6.02),  # chin
    }
    for index, expected in golden.items():
        np.testing.assert_allclose(points[index], expected, atol=0.05, err_msg=str(index))
    np.testing.assert_allclose(points.mean(axis=0), (92.733, 107.214, -0.026), atol=0.01)


def test_canonical_face(canonical: np.ndarray) -> None:
    assert canonical.shape == (468, 4)
    weights = canonical[:, 3]
    assert (weights > 0).sum() == 33 and weights.sum() == pytest.approx(1.055, abs=1e-3)
    # x to the image right (the subject's right eye outer corner 33 is at x < 0), y up,
    # z towards the camera (the nose tip is the closest point).
    assert canonical[33, 0] < 0 < canonical[263, 0]
    assert canonical[10, 1] > canonical[1, 1] > canonical[152, 1]
    assert canonical[1, 2] == canonical[:, 2].max() or canonical[4, 2] == canonical[:, 2].max()


# ----------------------------------------------------------------- pure geometry


def test_crop_matrix_levels_the_eyes_and_maps_back() -> None:
    box = np.array([100.0, 50.0, 200.0, 170.0])
    matrix = mesh_crop_matrix(box, np.array([120.0, 90.0]), np.array([180.0, 120.0]))
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    assert scale == pytest.approx(1.5 * 120 / 192)
    centre = matrix @ np.array([96.0, 96.0, 1.0])
    np.testing.assert_allclose(centre, (150.0, 110.0))
    direction = matrix[:, :2] @ np.array([1.0, 0.0])  # the crop's x axis runs along the eyes
    assert math.degrees(math.atan2(direction[1], direction[0])) == pytest.approx(26.565, abs=1e-3)
    pts = mesh_to_image(np.array([[96.0, 96.0, 10.0]]), matrix)
    np.testing.assert_allclose(pts[0], (150.0, 110.0, 10.0 * scale))


def test_similarity_fit_recovers_a_known_transform(canonical: np.ndarray) -> None:
    rotation = _rot("z", 20) @ _rot("y", -35) @ _rot("x", 10)
    moved = 3.0 * canonical[:, :3] @ rotation.T + np.array([5.0, -2.0, 7.0])
    scale, fitted, shift = fit_similarity_3d(canonical[:, :3], moved, canonical[:, 3])
    assert scale == pytest.approx(3.0)
    np.testing.assert_allclose(fitted, rotation, atol=1e-9)
    np.testing.assert_allclose(shift, (5.0, -2.0, 7.0), atol=1e-9)


@pytest.mark.parametrize(
    ("axis", "angle", "expected"),
    [
        ("y", 30, (0.0, 30.0, 0.0)),  # turned towards the image's right: positive yaw
        ("x", -20, (0.0, 0.0, 20.0)),  # nose up (canonical y up): positive pitch
        ("z", -25, (25.0, 0.0, 0.0)),  # clockwise in the image (y up): positive roll
    ],
)
def test_pose_signs(
    canonical: np.ndarray, axis: str, angle: float, expected: tuple[float, ...]
) -> None:
    assert pose_from_rotation(_rot(axis, angle)) == pytest.approx(expected, abs=1e-9)
    # through the image frame (x right, y down, z away from the camera) as the mesh gives it
    image_points = (canonical[:, :3] @ _rot(axis, angle).T) * np.array([40.0, -40.0, -40.0])
    assert pose_from_mesh(image_points, canonical, canonical[:, 3]) == pytest.approx(
        expected, abs=1e-6
    )


def test_aspect_ratios_on_the_canonical_face(canonical: np.ndarray) -> None:
    points = canonical[:, :3] * np.array([1.0, -1.0, 1.0])  # y down, as in images
    assert 0.2 < eye_aspect_ratio(points) < 0.45
    assert mouth_aspect_ratio(points) < 0.15  # the canonical lips almost touch
    assert eyes_open(0.3) == (True, pytest.approx(100.0, abs=0.5))
    assert eyes_open(0.05)[0] is False
    assert mouth_open(0.55) == (True, pytest.approx(100.0, abs=0.1))
    assert mouth_open(0.03)[0] is False and mouth_open(0.03)[1] > 95


def test_every_rekognition_type_has_mesh_points() -> None:
    assert list(MESH_LANDMARKS) == ALL_TYPES
    assert all(0 <= i < 468 for idx in MESH_LANDMARKS.values() for i in idx)


# ----------------------------------------------------------------- DetectFaces ALL


def _all(client: Client, data: bytes) -> dict:
    response = client.detect_faces(Image={"Bytes": data}, Attributes=["ALL"])
    assert_valid_response("DetectFaces", response)
    return response


@pytest.mark.parametrize(
    "path",
    ["faces_single/emotion_neutral.jpg", "faces/barack_obama/4.jpg", "groups/fr_two_people.jpg"],
)
def test_all_25_landmarks_are_plausible(client: Client, path: str) -> None:
    response = _all(client, image(path)["Bytes"])
    for face in response["FaceDetails"]:
        marks = {m["Type"]: np.array([m["X"], m["Y"]]) for m in face["Landmarks"]}
        assert list(marks) == ALL_TYPES
        box = face["BoundingBox"]
        w, h = box["Width"], box["Height"]
        for name, (x, y) in marks.items():  # inside the box, or just beside it (brows)
            assert box["Left"] - 0.1 * w <= x <= box["Left"] + 1.1 * w, name
            assert box["Top"] - 0.1 * h <= y <= box["Top"] + 1.1 * h, name
        brow_y = max(marks[n][1] for n in ALL_TYPES if "Brow" in n)
        eye_y = max(marks[n][1] for n in ("leftPupil", "rightPupil", "eyeLeft", "eyeRight"))
        assert brow_y < eye_y < marks["nose"][1] < marks["mouthUp"][1] < marks["mouthDown"][1]
        for side in ("left", "right"):
            left, right = marks[f"{side}EyeLeft"], marks[f"{side}EyeRight"]
            up, down = marks[f"{side}EyeUp"], marks[f"{side}EyeDown"]
            pupil = marks[f"{side}Pupil"]
            assert left[0] < pupil[0] < right[0] and up[1] < pupil[1] < down[1], side
            assert marks[f"{side}EyeBrowLeft"][0] < marks[f"{side}EyeBrowRight"][0]
            # the mesh pupil and YuNet's eye centre agree within a fifth of the face width
            assert np.linalg.norm(pupil - marks[f"eye{side.title()}"]) < 0.2 * w
        assert marks["rightEyeLeft"][0] > marks["leftEyeRight"][0]  # the eyes do not overlap
        assert marks["noseLeft"][0] < marks["nose"][0] < marks["noseRight"][0]
        assert marks["mouthLeft"][0] < marks["mouthUp"][0] < marks["mouthRight"][0]


def test_default_keeps_five_landmarks_and_no_eyes_mouth(client: Client) -> None:
    face = client.detect_faces(Image=image("faces_single/emotion_neutral.jpg"))["FaceDetails"][0]
    assert [m["Type"] for m in face["Landmarks"]] == ALL_TYPES[:5]
    assert "EyesOpen" not in face and "MouthOpen" not in face
    full = _all(client, image("faces_single/emotion_neutral.jpg")["Bytes"])["FaceDetails"][0]
    assert full["Landmarks"][:5] == face["Landmarks"]  # the same five points in both modes
    assert full["Pose"] == face["Pose"]  # the same (mesh) pose in both modes


@pytest.mark.parametrize(
    ("name", "mouth"),
    [("surprised", True), ("neutral", False), ("sad", False), ("angry", False)],
)
def test_eyes_and_mouth_on_labelled_emotions(client: Client, name: str, mouth: bool) -> None:
    face = _all(client, image(f"faces_single/emotion_{name}.jpg")["Bytes"])["FaceDetails"][0]
    assert face["EyesOpen"]["Value"] is True and face["EyesOpen"]["Confidence"] > 90
    assert face["MouthOpen"]["Value"] is mouth and face["MouthOpen"]["Confidence"] > 85


def test_open_eyes_on_clear_photos(client: Client) -> None:
    for path in ("faces/barack_obama/4.jpg", "faces/rose_leslie/1.jpg", "faces/joe_biden/2.jpg"):
        face = _all(client, image(path)["Bytes"])["FaceDetails"][0]
        assert face["EyesOpen"]["Value"] is True and face["EyesOpen"]["Confidence"] > 90, path


@pytest.mark.parametrize("path", ["faces_single/emotion_neutral.jpg", "faces/barack_obama/4.jpg"])
@pytest.mark.parametrize("angle", [-30, -15, 15, 30])
def test_pose_roll_follows_image_rotation(client: Client, path: str, angle: int) -> None:
    source = Image.open(DATA / path).convert("RGB")
    upright = client.detect_faces(Image=image(path))
    base = upright["FaceDetails"][0]["Pose"]
    buf = io.BytesIO()
    source.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True).save(buf, "PNG")
    faces = client.detect_faces(Image={"Bytes": buf.getvalue()})["FaceDetails"]
    assert len(faces) == 1
    pose = faces[0]["Pose"]
    # PIL turns counter-clockwise; positive roll is clockwise.
    assert pose["Roll"] == pytest.approx(base["Roll"] - angle, abs=2.0)
    # roll is applied last, about the camera axis: yaw and pitch stay put
    assert pose["Yaw"] == pytest.approx(base["Yaw"], abs=3.0)
    assert pose["Pitch"] == pytest.approx(base["Pitch"], abs=6.0)


def test_upside_down_image_keeps_landmark_sides(client: Client) -> None:
    """Upside-down input: landmarks are mapped back, "left" stays the face's upright left."""
    source = Image.open(DATA / "faces/barack_obama/4.jpg").convert("RGB")
    buf = io.BytesIO()
    source.rotate(180, expand=True).save(buf, "PNG")
    response = _all(client, buf.getvalue())
    assert response["OrientationCorrection"] == "ROTATE_180"
    marks = {m["Type"]: (m["X"], m["Y"]) for m in response["FaceDetails"][0]["Landmarks"]}
    assert len(marks) == 25
    assert marks["leftPupil"][0] > marks["rightPupil"][0]  # mirrored by the half turn
    assert marks["mouthDown"][1] < marks["nose"][1] < marks["leftPupil"][1]
