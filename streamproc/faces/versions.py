"""Which analysis made a collection's vectors: one pipeline per FaceModelVersion.

A collection keeps the FaceModelVersion it was created with, and its faces are indexed the
way that version did, so old and new vectors never mix in one collection. Probes (single
images, stream frames) are one plain embedding for every version. README, "Close-up faces".
"""

from __future__ import annotations

from dataclasses import dataclass

from streamproc.errors import InvalidParameterException
from streamproc.faces.edge import EdgeOptions

__all__ = ["FacePipeline", "PIPELINES", "pipeline_for"]


@dataclass(frozen=True)
class FacePipeline:
    """Keyword arguments of ``FaceAnalyzer.analyze`` for gallery faces (IndexFaces)."""

    edge: EdgeOptions | None
    flip_average: bool


PIPELINES = {
    # the first release: no border pass, single embeddings
    "sface-2021dec": FacePipeline(edge=None, flip_average=False),
    # flip-averaged gallery vectors (the border pass measured no gain, so it stays off:
    # bench/edge_faces.py)
    "sface-2021dec-2": FacePipeline(edge=None, flip_average=True),
}


def pipeline_for(version: str) -> FacePipeline:
    """The pipeline of a collection's FaceModelVersion; unknown versions are refused."""
    try:
        return PIPELINES[version]
    except KeyError:
        raise InvalidParameterException(
            f"The collection's FaceModelVersion {version!r} is not one this server can add "
            f"faces to or search by image (known: {', '.join(PIPELINES)}); create a new "
            "collection and index its faces again."
        ) from None
