"""Detections and class probabilities -> one confidence per label, parents included.

A label's confidence is the best evidence from either model:

* detector: every detection gives its label and the label's ancestors the detection's
  calibrated score (a parent takes the max of its children: "Animal" is as sure as the
  surest dog or cat);
* classifier: a label's softmax mass is the sum of the probabilities of every class
  whose label is it or lies below it, then calibrated (ImageNet's 118 dog breeds add up
  to "Dog" even when no single breed is sure).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .calibration import classifier_confidence, detector_confidence
from .nanodet import Detection
from .taxonomy import Taxonomy

__all__ = ["CLASS_FLOOR", "classifier_labels", "detector_labels", "merge", "select"]

#: Classes below this probability are ignored (noise; they cannot reach a useful label).
CLASS_FLOOR = 0.005


def detector_labels(detections: Iterable[Detection], taxonomy: Taxonomy) -> dict[str, float]:
    """Label -> confidence from the detector, each label and parent at its best detection."""
    out: dict[str, float] = {}
    for det in detections:
        confidence = detector_confidence(det.score)
        for name in taxonomy.with_ancestors(taxonomy.coco[det.class_id]):
            out[name] = max(out.get(name, 0.0), confidence)
    return out


def classifier_labels(probs: np.ndarray, taxonomy: Taxonomy) -> dict[str, float]:
    """Label -> confidence from ImageNet probabilities (softmax output, 1000 values)."""
    mass: dict[str, float] = {}
    for i in np.flatnonzero(probs >= CLASS_FLOOR):
        for name in taxonomy.with_ancestors(taxonomy.imagenet[int(i)]):
            mass[name] = mass.get(name, 0.0) + float(probs[i])
    return {name: classifier_confidence(min(m, 1.0)) for name, m in mass.items()}


def merge(*sources: dict[str, float]) -> dict[str, float]:
    """Per label, the highest confidence any source gives."""
    out: dict[str, float] = {}
    for source in sources:
        for name, confidence in source.items():
            out[name] = max(out.get(name, 0.0), confidence)
    return out


def select(
    confidences: dict[str, float], min_confidence: float, max_labels: int | None = None
) -> list[tuple[str, float]]:
    """Labels at or above ``min_confidence``, most confident first (ties by name), capped."""
    kept = sorted(
        ((name, c) for name, c in confidences.items() if c >= min_confidence),
        key=lambda item: (-item[1], item[0]),
    )
    return kept if max_labels is None else kept[:max_labels]
