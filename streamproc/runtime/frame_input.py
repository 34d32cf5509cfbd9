"""One analysed frame as the operations see it: pixels plus a face analysis done once."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from streamproc.faces import FaceAnalyzer, ImageFaces
from streamproc.images import DecodedImage
from streamproc.sources import Frame

__all__ = ["FrameInput", "MIN_IDENTIFIABLE_FACE"]

#: Faces smaller than this (pixels, either side) in a frame are reported but not searched
#: or identified: the reference does not recommend faces under 50 px for recognition, and
#: embedding the far-away faces of a busy street scene would cost most of the frame time.
MIN_IDENTIFIABLE_FACE = 50.0


@dataclass
class FrameInput:
    """A frame and its lazily computed faces, shared by every operation of the frame.

    ``needs`` is the union of what the stream's operations read, so the face models run
    once per frame however many operations use the faces.
    """

    frame: Frame
    analyzer: FaceAnalyzer
    needs: frozenset[str] = frozenset()
    _faces: ImageFaces | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def image(self) -> DecodedImage:
        return DecodedImage.from_array(self.frame.rgb)

    @property
    def analysed(self) -> ImageFaces | None:
        """The face analysis if an operation ran it (observers reuse it), else None."""
        return self._faces

    def faces(self) -> ImageFaces:
        """Camera frames are upright: no orientation search, faces largest first."""
        with self._lock:
            if self._faces is None:
                self._faces = self.analyzer.analyze(
                    self.image,
                    attributes="attributes" in self.needs,
                    embeddings="embeddings" in self.needs,
                    detect_orientation=False,
                    mesh="mesh" in self.needs,
                    embed_min_size=MIN_IDENTIFIABLE_FACE,
                )
            return self._faces
