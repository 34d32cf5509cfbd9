"""Head pose estimated from five landmarks.

An estimate, not a 3-D fit: roll is the angle of the eye line; yaw comes from how far
the nose tip sits from the eye midpoint relative to the eye distance, pitch from where
the nose sits between the eye line and the mouth line, both with a nose depth of about
half the eye distance (the proportions of the ArcFace template). Signs: positive roll
turns the face clockwise in the image, positive yaw turns it towards the image's right,
positive pitch tilts it up.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["pose_from_landmarks"]

NOSE_DEPTH = 0.55  # nose-tip depth in front of the eye plane, in eye distances
FRONTAL_NOSE_RATIO = 0.59  # YuNet nose height between eyes and mouth, median of the face sets
EYE_MOUTH_HEIGHT = 1.16  # eye line to mouth line, in eye distances (template)


def _clamp_asin(value: float) -> float:
    return math.degrees(math.asin(max(-1.0, min(1.0, value))))


def pose_from_landmarks(landmarks: np.ndarray) -> tuple[float, float, float]:
    """``(roll, yaw, pitch)`` in degrees from eyes, nose and mouth corners (image pixels)."""
    pts = np.asarray(landmarks, dtype=np.float64)
    eye_l, eye_r, nose, mouth_l, mouth_r = pts
    dx, dy = eye_r - eye_l
    roll = math.degrees(math.atan2(dy, dx))
    # Undo roll so that the remaining geometry is axis-aligned.
    cos_r, sin_r = math.cos(-math.radians(roll)), math.sin(-math.radians(roll))
    rot = np.array([[cos_r, -sin_r], [sin_r, cos_r]])
    eyes_mid = (eye_l + eye_r) / 2
    local = (pts - eyes_mid) @ rot.T
    eye_dist = max(float(np.hypot(dx, dy)), 1e-6)
    mouth_mid = (local[3] + local[4]) / 2
    nose_local = local[2]
    # Yaw: nose shifts sideways by depth * sin(yaw); the eye distance shrinks by cos(yaw).
    yaw = math.degrees(math.atan2(nose_local[0], NOSE_DEPTH * eye_dist))
    # Pitch: nose moves along the eye-mouth axis by depth * sin(pitch).
    eye_mouth = max(float(mouth_mid[1]), 1e-6)
    ratio = float(nose_local[1]) / eye_mouth
    pitch = _clamp_asin((FRONTAL_NOSE_RATIO - ratio) * EYE_MOUTH_HEIGHT / NOSE_DEPTH)
    del nose
    return roll, yaw, pitch
