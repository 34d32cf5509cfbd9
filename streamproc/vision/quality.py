"""Face image quality: brightness and sharpness on a 0-100 scale, from the face crop."""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["brightness", "sharpness", "SHARPNESS_SCALE"]

#: Laplacian variance at which sharpness reaches ~63 (1 - 1/e) on a 112-px face crop.
SHARPNESS_SCALE = 200.0


def _gray(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def brightness(crop: np.ndarray) -> float:
    """Mean luma of the crop, 0 (black) to 100 (white)."""
    if crop.size == 0:
        return 0.0
    return float(_gray(crop.astype(np.float32)).mean() / 255.0 * 100.0)


def sharpness(crop: np.ndarray, size: int = 112) -> float:
    """Variance of the Laplacian of the crop resized to a fixed width, mapped to 0-100.

    Resizing first makes the score independent of how large the face is in the image.
    """
    if crop.size == 0 or min(crop.shape[:2]) < 2:
        return 0.0
    gray = np.asarray(
        Image.fromarray(crop).convert("L").resize((size, size), Image.Resampling.BILINEAR),
        dtype=np.float32,
    )
    lap = gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:] - 4 * gray[1:-1, 1:-1]
    return float(100.0 * (1.0 - np.exp(-lap.var() / SHARPNESS_SCALE)))
