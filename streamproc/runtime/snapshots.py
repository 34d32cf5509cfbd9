"""JPEG snapshots attached to events: a face with its context, or a whole frame.

Encoded in worker threads (observers run there), never on the event loop.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from streamproc.shapes import BoundingBox

__all__ = ["face_snapshot", "frame_snapshot", "CONTEXT", "MIN_SNAPSHOT_SIDE"]

#: A face snapshot spans this many times the face box (the face and its surroundings), so
#: it can be indexed later with IndexFaces (whose detector wants context around a face).
CONTEXT = 3.0
#: ... and at least this many pixels a side where the frame allows (IndexFaces' minimum).
MIN_SNAPSHOT_SIDE = 80
QUALITY = 85


def _jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=QUALITY)
    return buf.getvalue()


def _span(center: float, size: float, limit: int) -> tuple[int, int]:
    """``size`` pixels around ``center``, shifted (not shrunk) to stay inside ``limit``."""
    size = min(float(limit), size)
    start = min(max(0.0, center - size / 2), limit - size)
    return int(round(start)), int(round(start + size))


def face_snapshot(rgb: np.ndarray, box: BoundingBox) -> bytes:
    """The face at ``CONTEXT`` times its box, at least ``MIN_SNAPSHOT_SIDE`` a side."""
    h, w = rgb.shape[:2]
    bw, bh = box.pixels(w, h)
    cx, cy = box.center
    side_w = max(bw * CONTEXT, MIN_SNAPSHOT_SIDE)
    side_h = max(bh * CONTEXT, MIN_SNAPSHOT_SIDE)
    left, right = _span(cx * w, side_w, w)
    top, bottom = _span(cy * h, side_h, h)
    return _jpeg(Image.fromarray(rgb[top:bottom, left:right]))


def frame_snapshot(rgb: np.ndarray, width: int = 640) -> bytes:
    """The whole frame, at most ``width`` pixels wide: what a label event shows."""
    image = Image.fromarray(rgb)
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)))
    return _jpeg(image)
