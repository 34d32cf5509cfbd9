"""Abrupt scene changes (a cut, a PTZ move, a camera switch) from a tiny grey thumbnail.

After a cut, where a face was says nothing about who is there now: the visit tracker then
associates faces by appearance only. A person walking up to a door camera changes a part
of the picture; a cut changes most of it. Costs well under a millisecond per frame.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SceneChangeDetector", "changed_fraction", "thumbnail"]

#: Thumbnail size (width x height) the comparison runs on.
THUMB_W, THUMB_H = 64, 36
#: A thumbnail pixel "changed" when its grey level moved by more than this (of 255).
PIXEL_CHANGE = 30.0


def thumbnail(luma: np.ndarray) -> np.ndarray:
    """Brightness samples on a fixed grid (one pixel per block)."""
    h, w = luma.shape[:2]
    ys = (np.arange(THUMB_H + 1) * h) // THUMB_H
    xs = (np.arange(THUMB_W + 1) * w) // THUMB_W
    green = luma
    # Sample one row and one column per block instead of averaging the whole block.
    rows = green[((ys[:-1] + ys[1:]) // 2)]
    return rows[:, ((xs[:-1] + xs[1:]) // 2)].astype(np.float32)


def changed_fraction(before: np.ndarray, after: np.ndarray) -> float:
    """The fraction of thumbnail pixels that changed (1.0 for thumbnails of another size)."""
    if before.shape != after.shape:
        return 1.0
    return float(np.mean(np.abs(after - before) > PIXEL_CHANGE))


class SceneChangeDetector:
    """``changed(luma)`` is true when most of the picture differs from the previous frame
    (``luma``: the frame's brightness, ``Frame.luma()``).

    ``threshold`` is the fraction of thumbnail pixels that must change (0.5 by default); a
    frame of another size is always a change.
    """

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self._last: np.ndarray | None = None
        self.last_fraction = 0.0

    def changed(self, luma: np.ndarray) -> bool:
        thumb = thumbnail(luma)
        last, self._last = self._last, thumb
        if last is None:
            return False
        fraction = changed_fraction(last, thumb)
        self.last_fraction = fraction
        return fraction >= self.threshold

    @property
    def last_thumbnail(self) -> np.ndarray | None:
        """The thumbnail of the last frame looked at (None before the first)."""
        return self._last

    def reset(self) -> None:
        self._last = None
