"""Quarter-turn rotations, for images whose orientation must be detected.

Rekognition's ``OrientationCorrection`` names the counter-clockwise rotation of the
input image; turning the image clockwise by that angle makes it upright, and
coordinates are reported in the input image as given (before correction).
"""

from __future__ import annotations

import numpy as np

__all__ = ["rotate_upright", "rotate_points_back"]


def rotate_upright(rgb: np.ndarray, degrees: int) -> np.ndarray:
    """Turn an image that is rotated ``degrees`` counter-clockwise back upright."""
    return np.ascontiguousarray(np.rot90(rgb, k=-(degrees // 90) % 4))


def rotate_points_back(points: np.ndarray, degrees: int, width: int, height: int) -> np.ndarray:
    """Map ``... x 2`` points of the upright image to the input image (``width x height``)."""
    pts = np.asarray(points, dtype=np.float32)
    x, y = pts[..., 0], pts[..., 1]
    k = (degrees // 90) % 4
    if k == 0:
        return pts.copy()
    if k == 1:  # input rotated 90 CCW; upright = input turned CW: upright (x, y) <- input
        out = np.stack([y, height - x], axis=-1)
    elif k == 2:
        out = np.stack([width - x, height - y], axis=-1)
    else:
        out = np.stack([width - y, x], axis=-1)
    return out.astype(np.float32)
