"""The moderation labels of one image from the two models' outputs.

Top-level labels always come from OpenNSFW; children only when NudeNet ran and found a
part behind them (without it, the answer is top-level only). Ordering: confidence
descending, a parent before its children on ties, so a parent always precedes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .calibration import explicit_confidence, fused_confidence, suggestive_confidence
from .detections import Detection
from .mapping import part_labels
from .taxonomy import CHILDREN, EXPLICIT_NUDITY, SUGGESTIVE, parent_of

__all__ = ["LabelScore", "moderation_scores", "select_labels"]


@dataclass(frozen=True)
class LabelScore:
    """A label with its ``ParentName`` ("" at the top level) and confidence 0-100."""

    name: str
    parent: str
    confidence: float


def moderation_scores(nsfw: float, detections: Sequence[Detection] | None) -> list[LabelScore]:
    """Every label the models can score for one image, sorted.

    ``nsfw`` is OpenNSFW's nsfw probability; ``detections`` NudeNet's decoded parts, or
    None when NudeNet is not installed.
    """
    children: dict[str, float] = {}
    if detections is not None:
        children = {
            name: fused_confidence(part, nsfw) for name, part in part_labels(detections).items()
        }
    top = {
        EXPLICIT_NUDITY: explicit_confidence(nsfw),
        SUGGESTIVE: suggestive_confidence(nsfw),
    }
    for parent in top:
        for child in CHILDREN[parent]:
            if child in children:
                top[parent] = max(top[parent], children[child])
    scores = [LabelScore(name, "", conf) for name, conf in top.items()]
    scores += [LabelScore(name, parent_of(name), conf) for name, conf in children.items()]
    return _sorted(scores)


def _sorted(scores: Iterable[LabelScore]) -> list[LabelScore]:
    return sorted(scores, key=lambda s: (-s.confidence, s.parent != "", s.name))


def select_labels(scores: Iterable[LabelScore], min_confidence: float) -> list[LabelScore]:
    """Labels at or above ``min_confidence``, still sorted (a child implies its parent)."""
    return _sorted(s for s in scores if s.confidence >= min_confidence)
