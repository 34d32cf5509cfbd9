"""Request and response shapes of RecognizeCelebrities and GetCelebrityInfo.

Kept beside the catalog until they move into :mod:`streamproc.shapes` with the others;
names and fields follow the reference (2017-02-09) and botocore's service model.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from streamproc.shapes import ComparedFace, Image, OrientationCorrection, Request, Shape

__all__ = [
    "CelebrityId",
    "Celebrity",
    "RecognizeCelebritiesRequest",
    "RecognizeCelebritiesResponse",
    "GetCelebrityInfoRequest",
    "GetCelebrityInfoResponse",
]

CelebrityId = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]*$")]

_Image = Image
_OrientationCorrection = OrientationCorrection


class Celebrity(Shape):
    """A recognised face: who (Id, Name, Urls), where (Face) and how sure (MatchConfidence)."""

    Urls: list[str] | None = None
    Name: str | None = None
    Id: CelebrityId | None = None
    Face: ComparedFace | None = None
    MatchConfidence: Annotated[float | None, Field(ge=0.0, le=100.0)] = None


class RecognizeCelebritiesRequest(Request):
    Image: _Image


class RecognizeCelebritiesResponse(Shape):
    CelebrityFaces: list[Celebrity]
    UnrecognizedFaces: list[ComparedFace]
    OrientationCorrection: _OrientationCorrection | None = None


class GetCelebrityInfoRequest(Request):
    Id: CelebrityId


class GetCelebrityInfoResponse(Shape):
    Urls: list[str]
    Name: str
