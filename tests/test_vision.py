"""Unit tests of the pure pre/post-processing functions."""

from __future__ import annotations

import numpy as np
import pytest

from streamproc.faces.attributes import age_range
from streamproc.faces.similarity import cosine_for_similarity, similarity
from streamproc.vision import (
    ARCFACE_TEMPLATE,
    align_face,
    brightness,
    estimate_similarity,
    iou,
    letterbox,
    nms,
    pose_from_landmarks,
    rotate_points_back,
    rotate_upright,
    sharpness,
)


def test_iou_and_nms_keep_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=np.float32)
    scores = np.array([0.8, 0.9, 0.7], dtype=np.float32)
    assert iou(boxes[0], boxes[1:2])[0] == pytest.approx(81 / 119)
    assert iou(boxes[0], boxes[2:3])[0] == 0.0
    assert nms(boxes, scores, 0.3).tolist() == [1, 2]
    assert nms(boxes, scores, 0.9).tolist() == [1, 0, 2]


def test_letterbox_maps_points_back_to_image() -> None:
    rgb = np.zeros((300, 600, 3), dtype=np.uint8)
    rgb[100, 450] = 255
    canvas, box = letterbox(rgb, 640)
    assert canvas.shape == (640, 640, 3)
    ys, xs = np.nonzero(canvas[..., 0])
    back = box.to_image(np.array([[xs.mean(), ys.mean()]]))[0]
    assert back == pytest.approx([450, 100], abs=2)
    shrunk, small = letterbox(rgb, 640, shrink=2.5)
    assert small.scale == pytest.approx(640 / 600 / 2.5, rel=0.01)
    assert shrunk[:, :100].max() == 0  # the image sits in the centre, black around it


def test_similarity_transform_recovers_known_transform() -> None:
    angle = np.radians(20)
    rot = 1.7 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = ARCFACE_TEMPLATE
    dst = src @ rot.T + np.array([5.0, -3.0])
    matrix = estimate_similarity(src, dst)
    assert matrix[:, :2] == pytest.approx(rot, abs=1e-9)
    assert matrix[:, 2] == pytest.approx([5.0, -3.0], abs=1e-9)


def test_align_face_puts_landmarks_on_template() -> None:
    # Paint five dots where the landmarks are, warp, and find the dots on the template.
    rgb = np.zeros((400, 400, 3), dtype=np.uint8)
    landmarks = ARCFACE_TEMPLATE * 2.0 + np.array([80.0, 60.0])
    for x, y in landmarks:
        rgb[int(y) - 3 : int(y) + 4, int(x) - 3 : int(x) + 4] = 255
    crop = align_face(rgb, landmarks, 112)
    assert crop.shape == (112, 112, 3)
    for tx, ty in ARCFACE_TEMPLATE:
        assert crop[int(round(ty)), int(round(tx))].max() > 100


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_rotation_round_trip(degrees: int) -> None:
    rgb = np.zeros((120, 200, 3), dtype=np.uint8)
    rgb[30, 150] = 255  # a marker at x=150, y=30 of the input image
    upright = rotate_upright(rgb, degrees)
    ys, xs = np.nonzero(upright[..., 0])
    back = rotate_points_back(np.array([[xs[0] + 0.5, ys[0] + 0.5]]), degrees, 200, 120)[0]
    assert back == pytest.approx([150.5, 30.5], abs=1e-4)


def test_pose_follows_roll_and_yaw() -> None:
    frontal = ARCFACE_TEMPLATE.copy()
    frontal[2, 1] = frontal[0, 1] + 0.59 * (frontal[3, 1] - frontal[0, 1])
    roll, yaw, pitch = pose_from_landmarks(frontal)
    assert abs(roll) < 1 and abs(yaw) < 1 and abs(pitch) < 1
    angle = np.radians(25)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rolled = (frontal - frontal.mean(0)) @ rot.T
    assert pose_from_landmarks(rolled)[0] == pytest.approx(25, abs=0.5)
    turned = frontal.copy()
    turned[2, 0] += 10  # nose towards the image's right
    assert pose_from_landmarks(turned)[1] > 15
    up = frontal.copy()
    up[2, 1] -= 8  # nose closer to the eyes: face tilted up
    assert pose_from_landmarks(up)[2] > 10


def test_quality_brightness_and_sharpness_order() -> None:
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
    flat = np.full((112, 112, 3), 128, dtype=np.uint8)
    assert brightness(np.zeros((10, 10, 3), np.uint8)) == 0.0
    assert brightness(np.full((10, 10, 3), 255, np.uint8)) == pytest.approx(100.0)
    assert sharpness(texture) > 90 > sharpness(flat) == 0.0


def test_age_range_is_never_a_single_year() -> None:
    probs = np.zeros(81, dtype=np.float32)
    probs[30] = 1.0  # the model is certain: age 30
    low, high = age_range(probs)
    assert low <= 30 <= high and high - low >= 6


def test_similarity_is_monotonic_and_inverts() -> None:
    cosines = np.linspace(-1, 1, 101)
    values = similarity(cosines)
    assert np.all(np.diff(values) >= 0) and values[0] >= 0 and values[-1] <= 100
    for threshold in (50.0, 80.0, 95.0):
        assert similarity(cosine_for_similarity(threshold)) == pytest.approx(threshold)
