"""DetectLabels request and response shapes (to move into ``streamproc.shapes``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from streamproc.shapes import Image, OrientationCorrection, Percent, Request, Shape

__all__ = ["DetectLabelsRequest", "DetectLabelsResponse", "Label"]

_Image = Image
_OrientationCorrection = OrientationCorrection


class Label(Shape):
    """One label: the 2017-02-09 API returns only its name and confidence."""

    Name: str
    Confidence: Percent


class DetectLabelsRequest(Request):
    Image: _Image
    MaxLabels: Annotated[int | None, Field(ge=0)] = None
    MinConfidence: Percent = 50.0


class DetectLabelsResponse(Shape):
    Labels: list[Label]
    OrientationCorrection: _OrientationCorrection | None = None
