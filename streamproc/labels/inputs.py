"""Pixels -> model input tensors for NanoDet and EfficientNet-Lite0.

Normalisation constants come from the manifest's input specs (``(x - mean) * scale``),
so they are written down once; NanoDet's per-channel normalisation lives in its graph.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from streamproc.inference import InputSpec
from streamproc.vision.letterbox import Letterbox, letterbox

__all__ = ["CLASSIFIER_CROP", "CLASSIFIER_RESIZE", "efficientnet_input", "nanodet_input"]

CLASSIFIER_RESIZE = 256
CLASSIFIER_CROP = 224


def _to_tensor(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    if spec.color == "BGR":
        pixels = pixels[..., ::-1]
    x = (pixels.astype(np.float32) - np.asarray(spec.mean, np.float32)) * np.float32(spec.scale)
    if spec.layout == "NCHW":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None])


def nanodet_input(rgb: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Letterbox]:
    """Letterboxed (centred, black padding) square input and where the image went."""
    canvas, box = letterbox(rgb, int(spec.shape[-1]))
    return _to_tensor(canvas, spec), box


def efficientnet_input(rgb: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Short side to 256 (bilinear), centre 224x224 crop: ImageNet's evaluation view."""
    height, width = rgb.shape[:2]
    scale = CLASSIFIER_RESIZE / min(height, width)
    new_w, new_h = (
        max(CLASSIFIER_CROP, round(width * scale)),
        max(CLASSIFIER_CROP, round(height * scale)),
    )
    resized = np.asarray(
        Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.BILINEAR, reducing_gap=3.0)
    )
    top, left = (new_h - CLASSIFIER_CROP) // 2, (new_w - CLASSIFIER_CROP) // 2
    crop = resized[top : top + CLASSIFIER_CROP, left : left + CLASSIFIER_CROP]
    return _to_tensor(crop, spec)
