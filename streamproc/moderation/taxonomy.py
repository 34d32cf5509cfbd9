"""Rekognition's two-level moderation taxonomy (API 2017-02-09), exactly as the reference lists it.

Kept apart from any model so the label names a client filters on are defined once.
"""

from __future__ import annotations

__all__ = [
    "CHILDREN",
    "EXPLICIT_NUDITY",
    "GRAPHIC_FEMALE_NUDITY",
    "GRAPHIC_MALE_NUDITY",
    "FEMALE_SWIMWEAR",
    "MALE_SWIMWEAR",
    "NUDITY",
    "PARTIAL_NUDITY",
    "REVEALING_CLOTHES",
    "SEXUAL_ACTIVITY",
    "SUGGESTIVE",
    "TOP_LEVEL",
    "parent_of",
]

EXPLICIT_NUDITY = "Explicit Nudity"
SUGGESTIVE = "Suggestive"

NUDITY = "Nudity"
GRAPHIC_MALE_NUDITY = "Graphic Male Nudity"
GRAPHIC_FEMALE_NUDITY = "Graphic Female Nudity"
SEXUAL_ACTIVITY = "Sexual Activity"
PARTIAL_NUDITY = "Partial Nudity"
FEMALE_SWIMWEAR = "Female Swimwear Or Underwear"
MALE_SWIMWEAR = "Male Swimwear Or Underwear"
REVEALING_CLOTHES = "Revealing Clothes"

#: Top-level category -> its child categories, in the reference's order.
CHILDREN: dict[str, tuple[str, ...]] = {
    EXPLICIT_NUDITY: (
        NUDITY,
        GRAPHIC_MALE_NUDITY,
        GRAPHIC_FEMALE_NUDITY,
        SEXUAL_ACTIVITY,
        PARTIAL_NUDITY,
    ),
    SUGGESTIVE: (FEMALE_SWIMWEAR, MALE_SWIMWEAR, REVEALING_CLOTHES),
}

TOP_LEVEL: tuple[str, ...] = tuple(CHILDREN)

_PARENT = {child: top for top, children in CHILDREN.items() for child in children}


def parent_of(name: str) -> str:
    """The ``ParentName`` of a label: ``""`` for a top-level category."""
    if name in CHILDREN:
        return ""
    try:
        return _PARENT[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a moderation label") from None
