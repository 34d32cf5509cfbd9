"""Identity reuse: a visitor already named is not re-embedded on every frame.

The visit observer, after each analysed frame, hands the runner a :class:`ReusePlan`: for
every track whose identity is confident (named, and its latest measured match agrees), the
box and velocity to predict where its face will be, the appearance fingerprint and the
search matches of its last *embedded* face, and when that was. The runner passes the plan
into the next frame's :class:`~streamproc.runtime.frame_input.FrameInput` (data flows one
way: analysis never reads the tracker). There, after detection, each face big enough to
identify is paired with at most one candidate; it skips the embedder and carries the
track's matches (``"MatchSource": "TRACK"`` in ``FaceSearchResponse``) only when all hold:

- no scene cut since the plan was made (the same test as the visit tracker's);
- the face's box overlaps the track's predicted box by at least :data:`MIN_IOU`, and
  neither the face nor the candidate could be paired otherwise (no ambiguity);
- the track's last embedding is younger than ``max_age_s`` (1 s by default);
- the face still looks like the last embedded one: :func:`appearance_similarity` of the
  aligned crops at least ``min_appearance`` (0.7).

Anything else (new, undecided or unknown tracks, a failed check) is embedded as before,
so visits are decided exactly as fast as without reuse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from streamproc.runtime.scene import changed_fraction, thumbnail
from streamproc.shapes import BoundingBox, FaceMatch
from streamproc.vision.appearance import appearance_similarity

__all__ = ["MIN_IOU", "ReuseCandidate", "ReusePlan"]

#: A face carries a track's identity only when its box overlaps the track's predicted box
#: this much (the tracker associates from 0.2; reuse wants the same face, not a neighbour).
MIN_IOU = 0.5
#: A face overlapping a second candidate (or a candidate a second face) this much is
#: ambiguous: embedded.
AMBIGUOUS_IOU = 0.1
#: Float slack on stream offsets (pts jitter), seconds.
_SLACK_S = 1e-3


@dataclass(frozen=True)
class ReuseCandidate:
    """A confidently identified track, as the next frame may carry it."""

    visitor_id: str
    box: BoundingBox  # ratios of the frame, at ``seen_at``
    velocity: tuple[float, float, float, float]  # corners (ratios) per second
    seen_at: float  # stream offset of the box
    embedded_at: float  # stream offset of the track's last embedded face
    signature: np.ndarray = field(repr=False)  # that face's appearance_signature
    matches: tuple[FaceMatch, ...] = ()  # that face's search matches (best first)

    def predicted(self, offset: float, max_gap: float) -> BoundingBox:
        dt = min(max(0.0, offset - self.seen_at), max_gap)
        corners = [c + v * dt for c, v in zip(self.box.corners(), self.velocity, strict=True)]
        if corners[2] <= corners[0] or corners[3] <= corners[1]:
            return self.box
        return BoundingBox.from_corners(*corners)


@dataclass(frozen=True)
class ReusePlan:
    """What the next analysed frame may carry instead of embedding (see module docstring)."""

    candidates: tuple[ReuseCandidate, ...]
    scene: np.ndarray | None = field(default=None, repr=False)  # scene.thumbnail of the frame
    scene_change: float = 0.5  # fraction of the thumbnail that makes a cut
    max_age_s: float = 1.0
    min_appearance: float = 0.7
    max_gap_s: float = 0.5  # how far ahead a box is predicted with its velocity

    def cut(self, luma: np.ndarray) -> bool:
        """The picture changed abruptly since the plan was made: carry nothing."""
        if self.scene is None:
            return True
        return changed_fraction(self.scene, thumbnail(luma)) >= self.scene_change

    def assign(
        self,
        offset: float,
        boxes: Sequence[BoundingBox],
        signatures: Sequence[np.ndarray | None],
    ) -> dict[int, ReuseCandidate]:
        """Faces (by index) that may carry a candidate's identity instead of being embedded.

        ``boxes`` are the faces' boxes in ratios; ``signatures`` their appearance
        fingerprints (None: not a face to identify). Scene cuts are checked by the caller.
        """
        fresh = [
            c for c in self.candidates
            if -_SLACK_S <= offset - c.embedded_at < self.max_age_s - _SLACK_S
        ]
        if not fresh or not boxes:
            return {}
        predicted = [c.predicted(offset, self.max_gap_s) for c in fresh]
        overlap = np.array([[p.iou(b) for b in boxes] for p in predicted])
        out: dict[int, ReuseCandidate] = {}
        for ci, candidate in enumerate(fresh):
            fi = int(np.argmax(overlap[ci]))
            if overlap[ci, fi] < MIN_IOU or signatures[fi] is None:
                continue
            # The same face for sure: no other face near the candidate, no other
            # candidate near the face.
            near_candidate = np.sum(overlap[ci] >= AMBIGUOUS_IOU)
            near_face = np.sum(overlap[:, fi] >= AMBIGUOUS_IOU)
            if near_candidate > 1 or near_face > 1:
                continue
            signature = signatures[fi]
            assert signature is not None
            if appearance_similarity(candidate.signature, signature) >= self.min_appearance:
                out[fi] = candidate
        return out
