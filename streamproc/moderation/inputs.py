"""Pixels to the two models' input tensors, following the manifest's input specs.

Sizes, colour order, mean and scale are read from the :class:`InputSpec`, so the
manifest stays the one place those facts live; only the crops are code.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from streamproc.inference import InputSpec

__all__ = ["nudenet_input", "opennsfw_input", "to_tensor"]

#: open_nsfw's reference pipeline resizes to 256 before the centre crop.
OPENNSFW_RESIZE = 256


def to_tensor(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """RGB 0-255 ``[H, W, 3]`` to a batch of one, in the spec's colour, scaling and layout."""
    x = np.asarray(pixels, np.float32)
    if spec.color == "BGR":
        x = x[..., ::-1]
    x = (x - np.asarray(spec.mean, np.float32)) * np.float32(spec.scale)
    if spec.layout == "NCHW":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None], dtype=np.float32)


def _side(spec: InputSpec) -> int:
    dims = spec.shape[1:3] if spec.layout == "NHWC" else spec.shape[2:4]
    if not all(isinstance(d, int) for d in dims) or dims[0] != dims[1]:
        raise ValueError(f"{spec.name}: expected a fixed square input, got {spec.shape}")
    return int(dims[0])


def opennsfw_input(rgb: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Resize to 256x256, centre-crop, JPEG round trip: Yahoo's scores depend on all three."""
    crop = _side(spec)
    offset = (OPENNSFW_RESIZE - crop) // 2
    img = Image.fromarray(rgb).resize((OPENNSFW_RESIZE, OPENNSFW_RESIZE), Image.Resampling.BILINEAR)
    img = img.crop((offset, offset, offset + crop, offset + crop))
    with io.BytesIO() as buf:
        img.save(buf, format="JPEG")
        buf.seek(0)
        pixels = np.asarray(Image.open(buf).convert("RGB"))
    return to_tensor(pixels, spec)


def nudenet_input(rgb: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Pad right/bottom with black to a square, resize to the input side (NudeNet's layout)."""
    size = _side(spec)
    height, width = rgb.shape[:2]
    side = max(height, width)
    square = np.zeros((side, side, 3), np.uint8)
    square[:height, :width] = rgb
    img = Image.fromarray(square).resize((size, size), Image.Resampling.BILINEAR)
    return to_tensor(np.asarray(img), spec)
