"""Close-up faces cut off by the frame edge: a second look on a padded canvas.

Only faces whose box reaches an image edge get it (one extra detector pass each); every
other face costs exactly what it did. See README, "Close-up faces".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamproc.faces.detector import DetectedFace, FaceDetector
from streamproc.vision.align import align_face
from streamproc.vision.boxes import iou
from streamproc.vision.edge import (
    CanvasFill,
    CropFill,
    FaceCanvas,
    aligned_valid_mask,
    face_canvas,
    fill_crop,
    landmark_plausibility,
    touches_border,
)

__all__ = ["EdgeOptions", "EdgeFace", "recover_edge_face", "edge_aligned_crop"]


@dataclass(frozen=True)
class EdgeOptions:
    """How a face at the border is looked at again (defaults: measured, bench/edge_faces.py)."""

    #: Canvas side over face size: at 2.5 the face takes 40 % of the detector input, the
    #: scale of the close-up pass that finds frame-filling faces.
    canvas_scale: float = 2.5
    canvas_fill: CanvasFill = "black"
    crop_fill: CropFill = "canvas"
    #: The canvas detection must overlap the first one this much to be the same face.
    min_iou: float = 0.3


@dataclass(frozen=True)
class EdgeFace:
    """The detection chosen for a border face, and the canvas it was found on (if any)."""

    detected: DetectedFace
    canvas: FaceCanvas | None


def _choice_key(face: DetectedFace) -> float:
    """Detector score, scaled by how well the landmarks fit the box."""
    return face.score * landmark_plausibility(face.box, face.landmarks)


def recover_edge_face(
    detector: FaceDetector, rgb: np.ndarray, face: DetectedFace, options: EdgeOptions
) -> EdgeFace | None:
    """None when the face does not touch the border (nothing was run)."""
    height, width = rgb.shape[:2]
    if not touches_border(face.box, width, height):
        return None
    canvas = face_canvas(rgb, face.box, options.canvas_scale, options.canvas_fill)
    found = detector.detect_once(canvas.pixels, min_score=0.5)
    if not found:
        return EdgeFace(face, None)
    boxes = np.stack([canvas.to_image(f.box.reshape(2, 2)).reshape(4) for f in found])
    overlaps = iou(face.box, boxes)
    best = int(np.argmax(overlaps))
    if overlaps[best] < options.min_iou:
        return EdgeFace(face, None)
    again = DetectedFace(
        box=boxes[best], score=found[best].score, landmarks=canvas.to_image(found[best].landmarks)
    )
    if _choice_key(again) >= _choice_key(face):
        return EdgeFace(again, canvas)
    return EdgeFace(face, None)


def edge_aligned_crop(
    rgb: np.ndarray, edge: EdgeFace, options: EdgeOptions, size: int = 112
) -> np.ndarray:
    """The aligned crop of a border face, its out-of-image part filled as configured."""
    height, width = rgb.shape[:2]
    landmarks = edge.detected.landmarks
    if edge.canvas is not None:
        crop = align_face(edge.canvas.pixels, edge.canvas.to_canvas(landmarks), size)
    else:
        crop = align_face(rgb, landmarks, size)
    valid = aligned_valid_mask(landmarks, width, height, size)
    return fill_crop(crop, valid, options.crop_fill)
