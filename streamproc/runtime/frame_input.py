"""One analysed frame as the operations see it: pixels plus a face analysis done once."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from streamproc.faces import FaceAnalyzer, ImageFaces
from streamproc.faces.analyzer import AnalyzedFace
from streamproc.images import DecodedImage
from streamproc.runtime.reuse import ReuseCandidate, ReusePlan
from streamproc.shapes import BoundingBox
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

    ``reuse``: the runner's plan of confidently identified tracks (streamproc.runtime.reuse);
    faces that carry a track's identity are not embedded and are listed in ``carried``
    (face index: the track's candidate), for the face search to report its matches.

    ``closeup``: whether the detector may run its close-up pass (the runner decides from
    motion and the open tracks; streamproc.runtime.motion.wants_closeup).
    """

    frame: Frame
    analyzer: FaceAnalyzer
    needs: frozenset[str] = frozenset()
    reuse: ReusePlan | None = None
    closeup: bool = True
    carried: dict[int, ReuseCandidate] = field(default_factory=dict, init=False)
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
                    flip_border=True,  # a face cut off by the frame's edge (a close-up)
                    reuse=self._carry if self.reuse is not None else None,
                    closeup=self.closeup,
                )
            return self._faces

    def _carry(self, faces: list[AnalyzedFace], wanted: list[int]) -> list[int]:
        """The faces that carry a tracked identity (called by the analyzer after detection,
        when the frame is converted: ``luma`` is then what the visit tracker looks at)."""
        plan = self.reuse
        if plan is None or not wanted or plan.cut(self.frame.luma()):
            return []
        w, h = self.frame.width, self.frame.height
        boxes = [
            BoundingBox.from_corners(f.box[0] / w, f.box[1] / h, f.box[2] / w, f.box[3] / h)
            for f in faces
        ]
        signatures = [faces[i].signature if i in wanted else None for i in range(len(faces))]
        self.carried = plan.assign(self.frame.pts, boxes, signatures)
        return list(self.carried)
