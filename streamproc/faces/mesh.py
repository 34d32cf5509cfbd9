"""The 468-point face mesh (MediaPipe, converted once to ONNX and committed under models/).

One inference per face (~5 ms) gives dense landmarks in image pixels; the pure functions
in :mod:`streamproc.vision` turn them into Rekognition's 25 landmarks, EyesOpen, MouthOpen
and a 3-D head pose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from streamproc.vision.eyes_mouth import eye_aspect_ratio, mouth_aspect_ratio
from streamproc.vision.head_pose import pose_from_mesh
from streamproc.vision.mesh_landmarks import (
    mesh_crop,
    mesh_crop_matrix,
    mesh_landmarks,
    mesh_to_image,
)

__all__ = [
    "CANONICAL_FACE_FILE",
    "MAX_PASSES",
    "MIN_PRESENCE",
    "RELEVEL_DEGREES",
    "FaceMesh",
    "MeshResult",
    "load_canonical_face",
]

#: MediaPipe's canonical face next to the mesh model: 468 x (x, y, z, Procrustes weight).
CANONICAL_FACE_FILE = "canonical_face.npy"
#: Below this face-presence probability the mesh is not trusted (MediaPipe uses 0.5).
MIN_PRESENCE = 0.5
#: YuNet's eyes barely follow a face rolled by 30 degrees (it reports ~5), and the mesh
#: under-reports the roll of a crop that is not level: when the mesh's own eye line is
#: off level by more than this, the crop is re-levelled on it and the mesh runs again
#: (MediaPipe's tracking does the same from frame to frame).
RELEVEL_DEGREES = 4.0
MAX_PASSES = 3


@dataclass
class MeshResult:
    """One face's mesh in image pixels, and what is derived from it."""

    points: np.ndarray = field(repr=False)  # 468 x 3, image pixels (z: smaller = closer)
    presence: float  # 0-1
    roll: float
    yaw: float
    pitch: float
    eye_ratio: float
    mouth_ratio: float


def load_canonical_face(model_path: Path) -> np.ndarray:
    """The canonical face shipped beside the mesh model."""
    canonical = np.load(model_path.parent / CANONICAL_FACE_FILE)
    if canonical.shape != (468, 4):
        raise ValueError(f"canonical face has shape {canonical.shape}, expected (468, 4)")
    return canonical.astype(np.float64)


class FaceMesh:
    """Runs the mesh on a face given its box and eyes (YuNet's), in image pixels."""

    def __init__(self, session: ort.InferenceSession, canonical: np.ndarray) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name
        self._canonical = canonical

    def raw(self, crop: np.ndarray) -> tuple[np.ndarray, float]:
        """468 x 3 points in crop pixels and the presence probability for a 1x192x192x3 crop."""
        mesh, logit = self._session.run(None, {self._input: crop.astype(np.float32)})
        presence = 1.0 / (1.0 + math.exp(-float(np.clip(logit.reshape(-1)[0], -50, 50))))
        return mesh.reshape(468, 3).astype(np.float64), presence

    def run(
        self, rgb: np.ndarray, box: np.ndarray, eye_left: np.ndarray, eye_right: np.ndarray
    ) -> MeshResult:
        for _ in range(MAX_PASSES):
            matrix = mesh_crop_matrix(box, eye_left, eye_right)
            crop_points, presence = self.raw(mesh_crop(rgb, matrix))
            points = mesh_to_image(crop_points, matrix)
            pupils = mesh_landmarks(crop_points)
            dx, dy = pupils["rightPupil"] - pupils["leftPupil"]
            if abs(math.degrees(math.atan2(dy, dx))) <= RELEVEL_DEGREES or presence < MIN_PRESENCE:
                break
            marks = mesh_landmarks(points)
            eye_left, eye_right = marks["leftPupil"], marks["rightPupil"]
        roll, yaw, pitch = pose_from_mesh(points, self._canonical, self._canonical[:, 3])
        return MeshResult(
            points=points,
            presence=presence,
            roll=roll,
            yaw=yaw,
            pitch=pitch,
            eye_ratio=eye_aspect_ratio(crop_points),
            mouth_ratio=mouth_aspect_ratio(crop_points),
        )
