"""Model scores (0-1) to Rekognition confidences (0-100), with the anchors written down.

* **Top level from OpenNSFW alone.** Yahoo's guidance for open_nsfw is "< 0.2 likely safe,
  > 0.8 likely NSFW, in between suggestive". Each curve is a straight line in logit-logit
  space through two anchors (so it stays monotone and inside 0-100):

  - Explicit Nudity: nsfw 0.80 -> 50, 0.95 -> 90 (0.5 -> 12, 0.2 -> 1).
  - Suggestive: nsfw 0.60 -> 50, 0.80 -> 80, capped at ``100 - Explicit Nudity`` so a
    clearly explicit image is not also called merely suggestive; it peaks near 62 at
    nsfw ~0.75, where both readings are plausible.

* **Child labels** need both models to agree: ``100 * sqrt(part * nsfw)``, the geometric
  mean of NudeNet's part score and OpenNSFW's nsfw probability. NudeNet alone reports
  FEMALE_GENITALIA_EXPOSED up to 0.52 on plain close-up faces (nsfw 0.001 -> 2.3), and
  FEMALE_BREAST_COVERED 0.85 on evening dresses (nsfw 0.08-0.32 -> 26-52).

* **A top-level label** is the larger of its OpenNSFW curve and its children, so it is
  never below a child (the reference returns parents with at least their children's
  confidence).

Measured on the 170 safe photos of ``tests/data`` (faces, groups, negatives,
faces_single): highest nsfw 0.52, highest label 52 (Suggestive / Revealing Clothes on a
low-cut top, ``faces/deepface_jennifer/4.jpg``), every other label below 50. There are no
explicit images to calibrate the positive side on: the anchors above are Yahoo's and
NudeNet's published operating points, not a fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "EXPLICIT_CURVE",
    "SUGGESTIVE_CURVE",
    "LogitCurve",
    "explicit_confidence",
    "fused_confidence",
    "suggestive_confidence",
]

_EPS = 1e-7


def _logit(p: float) -> float:
    p = min(max(p, _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


@dataclass(frozen=True)
class LogitCurve:
    """``logit(y) = a * logit(x) + b`` through two (score, probability) anchors."""

    x1: float
    y1: float
    x2: float
    y2: float

    def __call__(self, x: float) -> float:
        """Confidence 0-100 for a score 0-1."""
        lx1, lx2, ly1, ly2 = _logit(self.x1), _logit(self.x2), _logit(self.y1), _logit(self.y2)
        a = (ly2 - ly1) / (lx2 - lx1)
        z = ly1 + a * (_logit(x) - lx1)
        return 100.0 / (1.0 + math.exp(-z))


EXPLICIT_CURVE = LogitCurve(0.80, 0.50, 0.95, 0.90)
SUGGESTIVE_CURVE = LogitCurve(0.60, 0.50, 0.80, 0.80)


def explicit_confidence(nsfw: float) -> float:
    """Explicit Nudity (0-100) from OpenNSFW's nsfw probability alone."""
    return EXPLICIT_CURVE(nsfw)


def suggestive_confidence(nsfw: float) -> float:
    """Suggestive (0-100) from OpenNSFW alone, capped by ``100 - Explicit Nudity``."""
    return min(SUGGESTIVE_CURVE(nsfw), 100.0 - explicit_confidence(nsfw))


def fused_confidence(part: float, nsfw: float) -> float:
    """A child label (0-100): geometric mean of the part score and the nsfw probability."""
    return 100.0 * math.sqrt(min(max(part, 0.0), 1.0) * min(max(nsfw, 0.0), 1.0))
