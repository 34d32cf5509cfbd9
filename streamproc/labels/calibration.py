"""Raw model scores -> Rekognition-style confidences (0-100).

Neither model's score is a calibrated probability of "the label is in the photo":

* NanoDet's class scores sit at 0.3-0.8 for real objects. Anchors were chosen on the
  shared object photos (``tests/data/objects``, labels in its MANIFEST.json): 0.35 -> 50
  keeps every labelled person, car, dog, cat, bird, motorcycle, orange and tie found there
  while dropping most spurious detections (0.2-0.34: "cell phone" on the cat, "bird" on
  the butterfly, "person" on the baboon); 0.5 -> 75 and 0.7 -> 92 rank solid detections
  (people 0.5-0.9, cars 0.5-0.73) like Rekognition's 90s.
* EfficientNet's softmax mass of a label (the sum over the classes under it, since ImageNet
  classes exclude each other) is closer to a probability but spread across look-alike
  classes (two cat classes at 0.38 and 0.37): 0.3 -> 50, 0.6 -> 80, 0.9 -> 95.

Both are monotone piecewise-linear maps, so MinConfidence keeps its meaning.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CLASSIFIER_ANCHORS",
    "DETECTOR_ANCHORS",
    "classifier_confidence",
    "detector_confidence",
]

#: (NanoDet score, confidence) anchors.
DETECTOR_ANCHORS = ((0.0, 0.0), (0.2, 30.0), (0.35, 50.0), (0.5, 75.0), (0.7, 92.0),
                    (0.9, 98.0), (1.0, 99.5))  # fmt: skip
#: (softmax mass, confidence) anchors.
CLASSIFIER_ANCHORS = ((0.0, 0.0), (0.3, 50.0), (0.6, 80.0), (0.9, 95.0), (1.0, 99.5))


def _interp(value: float, anchors: tuple[tuple[float, float], ...]) -> float:
    xs, ys = zip(*anchors, strict=True)
    return float(np.interp(min(max(value, 0.0), 1.0), xs, ys))


def detector_confidence(score: float) -> float:
    """NanoDet class score (0-1) -> confidence (0-100)."""
    return _interp(score, DETECTOR_ANCHORS)


def classifier_confidence(mass: float) -> float:
    """Summed ImageNet softmax probability of a label's classes (0-1) -> confidence."""
    return _interp(mass, CLASSIFIER_ANCHORS)
