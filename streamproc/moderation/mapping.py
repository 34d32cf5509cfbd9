"""NudeNet body parts -> Rekognition child labels.

=========================================  ==========================================
NudeNet class                              label (parent)
=========================================  ==========================================
FEMALE_GENITALIA_EXPOSED                   Graphic Female Nudity (Explicit Nudity)
MALE_GENITALIA_EXPOSED                     Graphic Male Nudity (Explicit Nudity)
ANUS_EXPOSED                               Graphic Female / Male Nudity by the gender
                                           cues, Nudity when there are none
FEMALE_BREAST_EXPOSED, BUTTOCKS_EXPOSED    Nudity (Explicit Nudity)
exposed breast/buttocks + covered          Partial Nudity (Explicit Nudity): the weaker
FEMALE_GENITALIA                           of the two (topless in swimwear)
FEMALE_GENITALIA_COVERED                   Female Swimwear Or Underwear (Suggestive)
ANUS_COVERED                               Female / Male Swimwear Or Underwear by the
                                           gender cues, Revealing Clothes when none
MALE_BREAST_EXPOSED                        Male Swimwear Or Underwear (Suggestive)
FEMALE_BREAST_COVERED, BELLY_EXPOSED,      Revealing Clothes (Suggestive)
BUTTOCKS_COVERED
FACE_*, FEET_*, ARMPITS_*, BELLY_COVERED   no label (faces are gender cues only)
=========================================  ==========================================

Gender cues: female = FACE_FEMALE and the FEMALE_* parts, male = FACE_MALE,
MALE_BREAST_EXPOSED and MALE_GENITALIA_EXPOSED; the stronger best score wins.
Nothing detects Sexual Activity: that label is never produced rather than guessed.
FEMALE_BREAST_COVERED is not swimwear evidence: it fires at 0.85 on evening dresses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .detections import Detection
from .taxonomy import (
    FEMALE_SWIMWEAR,
    GRAPHIC_FEMALE_NUDITY,
    GRAPHIC_MALE_NUDITY,
    MALE_SWIMWEAR,
    NUDITY,
    PARTIAL_NUDITY,
    REVEALING_CLOTHES,
)

__all__ = ["CLASS_LABELS", "FEMALE_CUES", "MALE_CUES", "class_scores", "part_labels"]

#: Classes with a fixed label; ANUS_* depend on the gender cues, Partial Nudity on a pair.
CLASS_LABELS: dict[str, str] = {
    "FEMALE_GENITALIA_EXPOSED": GRAPHIC_FEMALE_NUDITY,
    "MALE_GENITALIA_EXPOSED": GRAPHIC_MALE_NUDITY,
    "FEMALE_BREAST_EXPOSED": NUDITY,
    "BUTTOCKS_EXPOSED": NUDITY,
    "FEMALE_GENITALIA_COVERED": FEMALE_SWIMWEAR,
    "MALE_BREAST_EXPOSED": MALE_SWIMWEAR,
    "FEMALE_BREAST_COVERED": REVEALING_CLOTHES,
    "BELLY_EXPOSED": REVEALING_CLOTHES,
    "BUTTOCKS_COVERED": REVEALING_CLOTHES,
}

FEMALE_CUES = (
    "FACE_FEMALE",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_BREAST_COVERED",
    "FEMALE_GENITALIA_EXPOSED",
    "FEMALE_GENITALIA_COVERED",
)
MALE_CUES = ("FACE_MALE", "MALE_BREAST_EXPOSED", "MALE_GENITALIA_EXPOSED")

_PARTIAL_EXPOSED = ("FEMALE_BREAST_EXPOSED", "BUTTOCKS_EXPOSED")
_PARTIAL_COVERED = ("FEMALE_GENITALIA_COVERED",)


def class_scores(detections: Iterable[Detection]) -> dict[str, float]:
    """The best score of each detected class."""
    best: dict[str, float] = {}
    for d in detections:
        best[d.label] = max(best.get(d.label, 0.0), d.score)
    return best


def _gendered(scores: Mapping[str, float], female: str, male: str, neither: str) -> str:
    f = max((scores.get(c, 0.0) for c in FEMALE_CUES), default=0.0)
    m = max((scores.get(c, 0.0) for c in MALE_CUES), default=0.0)
    if f > m:
        return female
    if m > f:
        return male
    return neither


def part_labels(detections: Iterable[Detection]) -> dict[str, float]:
    """Child label -> the best part score (0-1) behind it; absent labels had no part."""
    scores = class_scores(detections)
    labels: dict[str, float] = {}

    def add(label: str, score: float) -> None:
        labels[label] = max(labels.get(label, 0.0), score)

    for cls, label in CLASS_LABELS.items():
        if cls in scores:
            add(label, scores[cls])
    if "ANUS_EXPOSED" in scores:
        label = _gendered(scores, GRAPHIC_FEMALE_NUDITY, GRAPHIC_MALE_NUDITY, NUDITY)
        add(label, scores["ANUS_EXPOSED"])
    if "ANUS_COVERED" in scores:
        label = _gendered(scores, FEMALE_SWIMWEAR, MALE_SWIMWEAR, REVEALING_CLOTHES)
        add(label, scores["ANUS_COVERED"])
    exposed = max((scores.get(c, 0.0) for c in _PARTIAL_EXPOSED), default=0.0)
    covered = max((scores.get(c, 0.0) for c in _PARTIAL_COVERED), default=0.0)
    if exposed > 0 and covered > 0:
        add(PARTIAL_NUDITY, min(exposed, covered))
    return labels
