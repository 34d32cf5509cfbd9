"""Calibrated Similarity: SFace cosine → the 0-100 score Rekognition users threshold on.

A logistic curve through two anchors measured on the shared face sets (see README,
"Similarity calibration", and ``bench/calibrate_similarity.py``): cosine
``COSINE_AT_80`` maps to 80 (the default threshold), cosine ``COSINE_AT_99`` to 99.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["COSINE_AT_80", "COSINE_AT_99", "similarity", "cosine_for_similarity"]

COSINE_AT_80 = 0.46
COSINE_AT_99 = 0.60

_LOGIT_80 = math.log(80 / 20)
_LOGIT_99 = math.log(99 / 1)
_SLOPE = (_LOGIT_99 - _LOGIT_80) / (COSINE_AT_99 - COSINE_AT_80)
_OFFSET = COSINE_AT_80 - _LOGIT_80 / _SLOPE  # cosine at similarity 50


def similarity(cosine: float | np.ndarray) -> float | np.ndarray:
    """Similarity in [0, 100], increasing with cosine."""
    value = 100.0 / (1.0 + np.exp(-_SLOPE * (np.asarray(cosine, dtype=np.float64) - _OFFSET)))
    return float(value) if np.ndim(value) == 0 else value


def cosine_for_similarity(threshold: float) -> float:
    """The cosine a match needs to reach ``threshold`` (inverse of :func:`similarity`)."""
    if threshold <= 0.0:
        return -1.0
    if threshold >= 100.0:
        return 1.0 + 1e-6
    return _OFFSET + math.log(threshold / (100.0 - threshold)) / _SLOPE
