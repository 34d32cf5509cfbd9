"""MediaPipe face mesh: its input crop, and its 468 points as Rekognition's 25 landmarks.

The mesh model expects what MediaPipe's own pipeline feeds it: a square crop 1.5 times the
face box, rotated so that the eyes are level, resized to 192 x 192. Its points come back
in crop pixels (z at the same scale, smaller = closer to the camera) and are mapped back
through the same similarity transform.

Naming follows the existing five points: "left" is the image's left of an upright face
(``eyeLeft`` is the subject's right eye), so ``leftEyeLeft`` is the outer corner of the
eye on the image's left. Mesh indices (MediaPipe's canonical topology, subject's right
eye = image left): eye corners 33/133 and 362/263, lids 159/145 and 386/374, brows (upper
contour) 70..107 and 336..300 with tops 105 and 334, nose alae 129 and 358, lips 0 (top)
and 17 (bottom), mouth corners 61 and 291. MediaPipe's 468-point mesh has no iris points:
a pupil is the centre of its eye's 16-point contour, which matches the pupil of an eye
looking ahead.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

__all__ = [
    "MESH_CROP_SCALE",
    "MESH_SIZE",
    "MESH_LANDMARKS",
    "EYE_CONTOURS",
    "mesh_crop",
    "mesh_crop_matrix",
    "mesh_to_image",
    "mesh_landmarks",
]

MESH_SIZE = 192
#: MediaPipe's face-landmark ROI: the detection box enlarged 1.5 times, made square.
MESH_CROP_SCALE = 1.5

#: Closed contours of the two eyes (image-left eye first), 16 points each.
EYE_CONTOURS: dict[str, tuple[int, ...]] = {
    "left": (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
    "right": (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466),
}

#: Rekognition landmark type -> mesh indices (averaged when several).
MESH_LANDMARKS: dict[str, tuple[int, ...]] = {
    "eyeLeft": EYE_CONTOURS["left"],
    "eyeRight": EYE_CONTOURS["right"],
    "nose": (1,),
    "mouthLeft": (61,),
    "mouthRight": (291,),
    "leftEyeBrowLeft": (70,),
    "leftEyeBrowRight": (107,),
    "leftEyeBrowUp": (105,),
    "rightEyeBrowLeft": (336,),
    "rightEyeBrowRight": (300,),
    "rightEyeBrowUp": (334,),
    "leftEyeLeft": (33,),
    "leftEyeRight": (133,),
    "leftEyeUp": (159,),
    "leftEyeDown": (145,),
    "rightEyeLeft": (362,),
    "rightEyeRight": (263,),
    "rightEyeUp": (386,),
    "rightEyeDown": (374,),
    "noseLeft": (129,),
    "noseRight": (358,),
    "mouthUp": (0,),
    "mouthDown": (17,),
    "leftPupil": EYE_CONTOURS["left"],
    "rightPupil": EYE_CONTOURS["right"],
}


def mesh_crop_matrix(box: np.ndarray, eye_left: np.ndarray, eye_right: np.ndarray) -> np.ndarray:
    """2 x 3 affine taking mesh-crop pixels to image pixels (a rotation, scale and shift)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = MESH_CROP_SCALE * max(x2 - x1, y2 - y1)
    dx, dy = np.asarray(eye_right, dtype=np.float64) - np.asarray(eye_left, dtype=np.float64)
    angle = math.atan2(dy, dx)
    scale = side / MESH_SIZE
    cos_a, sin_a = math.cos(angle) * scale, math.sin(angle) * scale
    linear = np.array([[cos_a, -sin_a], [sin_a, cos_a]])
    centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
    half = np.array([MESH_SIZE / 2, MESH_SIZE / 2])
    return np.hstack([linear, (centre - linear @ half)[:, None]])


def mesh_crop(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The model input: 1 x 192 x 192 x 3 float32 RGB in [0, 1] (black outside the image)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    # Warp from the region the crop covers only: copying a whole large frame into PIL
    # costs more than the warp itself.
    corners = np.array([[0, 0, 1], [MESH_SIZE, 0, 1], [0, MESH_SIZE, 1], [MESH_SIZE, MESH_SIZE, 1]])
    mapped = corners @ matrix.T
    h, w = rgb.shape[:2]
    x0 = int(min(max(np.floor(mapped[:, 0].min()) - 1, 0), w - 1))
    y0 = int(min(max(np.floor(mapped[:, 1].min()) - 1, 0), h - 1))
    x1 = int(max(min(np.ceil(mapped[:, 0].max()) + 2, w), x0 + 1))
    y1 = int(max(min(np.ceil(mapped[:, 1].max()) + 2, h), y0 + 1))
    shifted = matrix.copy()
    shifted[:, 2] -= (x0, y0)
    warped = Image.fromarray(np.ascontiguousarray(rgb[y0:y1, x0:x1])).transform(
        (MESH_SIZE, MESH_SIZE),
        Image.Transform.AFFINE,
        data=tuple(shifted.reshape(-1)),
        resample=Image.Resampling.BILINEAR,
    )
    return (np.asarray(warped, dtype=np.float32) / 255.0)[None]


def mesh_to_image(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """468 x 3 crop points -> image pixels; z keeps the crop's sign, scaled like x and y."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    linear = matrix[:, :2]
    out = np.empty_like(pts)
    out[:, :2] = pts[:, :2] @ linear.T + matrix[:, 2]
    out[:, 2] = pts[:, 2] * math.sqrt(abs(np.linalg.det(linear)))
    return out


def mesh_landmarks(points: np.ndarray) -> dict[str, np.ndarray]:
    """Rekognition landmark type -> (x, y), in the coordinates of ``points``."""
    xy = np.asarray(points, dtype=np.float64)[:, :2]
    return {name: xy[list(idx)].mean(axis=0) for name, idx in MESH_LANDMARKS.items()}
