"""Five-point face alignment onto the ArcFace template that SFace was trained with."""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["ARCFACE_TEMPLATE", "align_face", "estimate_similarity"]

#: Eye (image-left, image-right), nose tip, mouth corners (image-left, image-right)
#: in a 112 x 112 crop.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama) taking ``src`` points onto ``dst``.

    Returns a 2 x 3 matrix ``M`` with ``dst ≈ M @ [x, y, 1]``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rotation = u @ np.diag(d) @ vt
    var_src = (src_c**2).sum() / len(src)
    scale = float((s * d).sum() / var_src) if var_src > 0 else 1.0
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def align_face(rgb: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """Warp the face so its five landmarks land on the template; ``size x size x 3`` RGB."""
    template = ARCFACE_TEMPLATE * (size / 112.0)
    forward = np.vstack([estimate_similarity(landmarks, template), [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(forward)[:2]  # PIL maps output pixels to input pixels
    warped = Image.fromarray(rgb).transform(
        (size, size),
        Image.Transform.AFFINE,
        data=tuple(inverse.reshape(-1)),
        resample=Image.Resampling.BILINEAR,
    )
    return np.asarray(warped)
