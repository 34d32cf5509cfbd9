"""DetectModerationLabels request and response shapes (to move into ``streamproc.shapes``)."""

from __future__ import annotations

from streamproc.shapes import Image, Percent, Request, Shape

__all__ = ["DetectModerationLabelsRequest", "DetectModerationLabelsResponse", "ModerationLabel"]

_Image = Image


class ModerationLabel(Shape):
    """One label; ``ParentName`` is ``""`` for a top-level category."""

    Confidence: Percent
    Name: str
    ParentName: str


class DetectModerationLabelsRequest(Request):
    Image: _Image
    MinConfidence: Percent = 50.0


class DetectModerationLabelsResponse(Shape):
    ModerationLabels: list[ModerationLabel]
