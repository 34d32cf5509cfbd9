"""DetectModerationLabels' post-processing: taxonomy, NudeNet decoding, mapping, calibration.

Pure functions on model outputs, so every rule is unit-tested without a model: the
plugin ``streamproc_plugins.moderation`` runs OpenNSFW (overall score) and, when the
optional AGPL ``nudenet`` wheel is installed, NudeNet (body parts for child labels).
"""

from __future__ import annotations

from streamproc.shapes import (
    DetectModerationLabelsRequest,
    DetectModerationLabelsResponse,
    ModerationLabel,
)

from .calibration import (
    EXPLICIT_CURVE,
    SUGGESTIVE_CURVE,
    LogitCurve,
    explicit_confidence,
    fused_confidence,
    suggestive_confidence,
)
from .detections import (
    IOU_THRESHOLD,
    NUDENET_CLASSES,
    SCORE_THRESHOLD,
    Detection,
    decode_nudenet,
    non_max_suppression,
)
from .inputs import nudenet_input, opennsfw_input, to_tensor
from .mapping import CLASS_LABELS, class_scores, part_labels
from .scoring import LabelScore, moderation_scores, select_labels
from .taxonomy import CHILDREN, EXPLICIT_NUDITY, SUGGESTIVE, TOP_LEVEL, parent_of

__all__ = [
    "CHILDREN",
    "CLASS_LABELS",
    "EXPLICIT_CURVE",
    "EXPLICIT_NUDITY",
    "IOU_THRESHOLD",
    "NUDENET_CLASSES",
    "SCORE_THRESHOLD",
    "SUGGESTIVE",
    "SUGGESTIVE_CURVE",
    "TOP_LEVEL",
    "DetectModerationLabelsRequest",
    "DetectModerationLabelsResponse",
    "Detection",
    "LabelScore",
    "LogitCurve",
    "ModerationLabel",
    "class_scores",
    "decode_nudenet",
    "explicit_confidence",
    "fused_confidence",
    "non_max_suppression",
    "nudenet_input",
    "opennsfw_input",
    "parent_of",
    "part_labels",
    "moderation_scores",
    "select_labels",
    "suggestive_confidence",
    "to_tensor",
]
