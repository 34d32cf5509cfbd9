"""Motion gating: the detector runs only where something moves (as Frigate does).

A small grey copy of each frame (about 96 px wide, sampled, never resized) is compared
with a running background: pixels that differ by more than ``threshold`` grey levels and
lie outside the masks are "changed"; a frame moves when the changed pixels cover at least
``min_area`` of the picture. The background follows slow changes (light, clouds), so a
static porch costs a fraction of a millisecond per frame and no model runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from streamproc.shapes import BoundingBox

__all__ = ["CLOSEUP_MOTION", "CLOSEUP_TRACK_SIDE", "MotionDetector", "wants_closeup"]

#: Width of the grey copy the comparison runs on.
GREY_WIDTH = 96
#: How fast the background follows the picture (per analysed frame).
BACKGROUND_ALPHA = 0.2
#: The detector's close-up pass (README, "Close-up faces") only ever keeps faces at least
#: 0.93 of the image's long side (all 56 on the 181 test images): such a face covers most of
#: the picture, so it cannot arrive without changing at least this fraction of it ...
CLOSEUP_MOTION = 0.2
#: ... and once it is tracked, its box is at least this fraction of the long side.
CLOSEUP_TRACK_SIDE = 0.5


def _grey(luma: np.ndarray) -> np.ndarray:
    """Brightness samples on a ~96-px-wide grid: no resize, no colour conversion."""
    h, w = luma.shape[:2]
    step = max(1, w // GREY_WIDTH)
    return luma[step // 2::step, step // 2::step].astype(np.float32)


def _mask(shape: tuple[int, int], polygons: Sequence[Sequence[tuple[float, float]]]) -> np.ndarray:
    """True where motion counts: everywhere except inside the polygons (ratios)."""
    h, w = shape
    image = Image.new("1", (w, h), 1)
    draw = ImageDraw.Draw(image)
    for polygon in polygons:
        draw.polygon([(x * w, y * h) for x, y in polygon], fill=0)
    return np.asarray(image, dtype=bool)


class MotionDetector:
    """``moving(luma)``: did enough of the unmasked picture change since the background?
    ``luma`` is the frame's brightness (``Frame.luma()``: the decoder's Y plane)."""

    def __init__(
        self,
        *,
        threshold: float = 25.0,
        min_area: float = 0.002,
        masks: Sequence[Sequence[tuple[float, float]]] = (),
    ) -> None:
        self.threshold = threshold
        self.min_area = min_area
        self.masks = [list(p) for p in masks]
        self._background: np.ndarray | None = None
        self._counted: np.ndarray | None = None
        self.last_fraction = 0.0

    def moving(self, luma: np.ndarray) -> bool:
        grey = _grey(luma)
        if self._background is None or self._background.shape != grey.shape:
            self._background = grey
            self._counted = _mask(grey.shape, self.masks)  # type: ignore[arg-type]
            self.last_fraction = 1.0  # all of it is new
            return True  # a first (or resized) picture: look at it once
        assert self._counted is not None
        changed = (np.abs(grey - self._background) > self.threshold) & self._counted
        total = max(1, int(self._counted.sum()))
        self.last_fraction = float(changed.sum()) / total
        self._background += BACKGROUND_ALPHA * (grey - self._background)
        return self.last_fraction >= self.min_area


def wants_closeup(
    fraction: float, tracked: Iterable[BoundingBox], width: int, height: int
) -> bool:
    """Whether a stream frame may hold a face only the close-up pass finds: a large part
    of the picture changed (``fraction``, the motion detector's), or an open track's box
    (ratios of the frame) is close-up sized."""
    if fraction >= CLOSEUP_MOTION:
        return True
    long_side = max(width, height)
    return any(
        max(box.Width * width, box.Height * height) >= CLOSEUP_TRACK_SIDE * long_side
        for box in tracked
    )
