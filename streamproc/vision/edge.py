"""Faces cut off by the image edge: padded canvases, landmark plausibility, crop filling.

YuNet's landmarks for a face that runs past the frame are pulled inwards (the detector
never saw the missing part), so the aligned crop is mis-scaled. Detecting again on a
canvas that extends the image past its edge lets the detector place the face whole.
Pure functions: the detector call lives in :mod:`streamproc.faces.edge`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from streamproc.vision.align import ARCFACE_TEMPLATE, estimate_similarity

__all__ = [
    "CanvasFill",
    "CropFill",
    "FaceCanvas",
    "touches_border",
    "face_canvas",
    "landmark_plausibility",
    "aligned_valid_mask",
    "fill_crop",
]

CanvasFill = Literal["black", "grey", "mean", "replicate"]
CropFill = Literal["black", "grey", "mean", "mirror", "canvas"]

#: A box within this fraction of its size from an image edge (or past it) touches it.
BORDER_MARGIN = 0.02


def touches_border(box: np.ndarray, width: int, height: int) -> bool:
    """True when the face box reaches (or runs past) an edge of the image."""
    x1, y1, x2, y2 = (float(v) for v in box)
    margin = BORDER_MARGIN * max(x2 - x1, y2 - y1)
    return x1 <= margin or y1 <= margin or x2 >= width - margin or y2 >= height - margin


@dataclass(frozen=True)
class FaceCanvas:
    """A square window of the image around a face, padded where it leaves the image."""

    pixels: np.ndarray
    origin: np.ndarray  # image coordinates of the canvas's top-left pixel (x, y)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=np.float32) + self.origin.astype(np.float32)

    def to_canvas(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=np.float64) - self.origin


def face_canvas(rgb: np.ndarray, box: np.ndarray, scale: float, fill: CanvasFill) -> FaceCanvas:
    """A ``scale`` x face-size square centred on the box; outside the image, ``fill``."""
    height, width = rgb.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(2, int(round(scale * max(x2 - x1, y2 - y1))))
    left = int(round((x1 + x2) / 2 - side / 2))
    top = int(round((y1 + y2) / 2 - side / 2))
    # the part of the window inside the image
    ix1, iy1 = max(0, left), max(0, top)
    ix2, iy2 = min(width, left + side), min(height, top + side)
    inside = rgb[iy1:iy2, ix1:ix2]
    if inside.size == 0:
        return FaceCanvas(np.zeros((side, side, 3), np.uint8), np.array([left, top], float))
    pads = ((iy1 - top, top + side - iy2), (ix1 - left, left + side - ix2), (0, 0))
    if fill == "replicate":
        pixels = np.pad(inside, pads, mode="edge")
    else:
        value = {"black": 0, "grey": 127}.get(fill)
        colour = (
            np.full(3, value, np.uint8)
            if value is not None
            else inside.reshape(-1, 3).mean(axis=0).round().astype(np.uint8)
        )
        pixels = np.empty((side, side, 3), np.uint8)
        pixels[:] = colour
        pixels[iy1 - top : iy2 - top, ix1 - left : ix2 - left] = inside
    return FaceCanvas(pixels, np.array([left, top], dtype=np.float64))


#: Landmark layout relative to the face box on whole (not cut-off) faces of the identity
#: sets, p0.5-p99.5 widened by a third of the range (bench/edge_faces.py prints them):
#: eye distance / box width, eye-line height and nose height in the box, nose x in the box.
PLAUSIBLE = {
    "eye_distance": (0.22, 0.62),
    "eye_y": (0.22, 0.52),
    "nose_y": (0.45, 0.75),
    "nose_x": (0.2, 0.8),
}


def landmark_layout(box: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
    """Where the five landmarks sit in the box, as fractions of its size."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)
    eyes = landmarks[:2]
    return {
        "eye_distance": float(np.linalg.norm(eyes[1] - eyes[0])) / w,
        "eye_y": (float(eyes[:, 1].mean()) - y1) / h,
        "nose_y": (float(landmarks[2, 1]) - y1) / h,
        "nose_x": (float(landmarks[2, 0]) - x1) / w,
    }


def landmark_plausibility(box: np.ndarray, landmarks: np.ndarray) -> float:
    """1 when every landmark ratio is in its whole-face range, less the further out."""
    layout = landmark_layout(box, landmarks)
    penalty = 0.0
    for name, (low, high) in PLAUSIBLE.items():
        value = layout[name]
        span = high - low
        penalty += max(0.0, low - value, value - high) / span
    # the nose must lie between the eye line and the mouth line
    eye_y, mouth_y = landmarks[:2, 1].mean(), landmarks[3:, 1].mean()
    if not eye_y < landmarks[2, 1] < mouth_y:
        penalty += 0.5
    return float(max(0.0, 1.0 - penalty))


def aligned_valid_mask(
    landmarks: np.ndarray, width: int, height: int, size: int = 112
) -> np.ndarray:
    """``size x size`` bool: which pixels of the aligned crop come from inside the image."""
    template = ARCFACE_TEMPLATE * (size / 112.0)
    forward = np.vstack([estimate_similarity(landmarks, template), [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(forward)[:2]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    src_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    src_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    return (src_x >= 0) & (src_x <= width - 1) & (src_y >= 0) & (src_y <= height - 1)


def fill_crop(crop: np.ndarray, valid: np.ndarray, fill: CropFill) -> np.ndarray:
    """The aligned crop with its out-of-image pixels filled (``canvas``: left as warped).

    ``mirror`` copies the face's other half (aligned faces are left-right symmetric about
    the template's centre line) where that is inside the image, and the mean colour of
    the valid pixels elsewhere.
    """
    if fill == "canvas" or valid.all():
        return crop
    out = crop.copy()
    missing = ~valid
    mean = crop[valid].mean(axis=0) if valid.any() else np.zeros(3)
    if fill == "mirror":
        mirrored, mirrored_valid = crop[:, ::-1], valid[:, ::-1]
        use = missing & mirrored_valid
        out[use] = mirrored[use]
        missing = missing & ~mirrored_valid
        out[missing] = mean.round().astype(np.uint8)
    elif fill == "black":
        out[missing] = 0
    elif fill == "grey":
        out[missing] = 127
    else:
        out[missing] = mean.round().astype(np.uint8)
    return out
