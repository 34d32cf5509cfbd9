"""Who a visitor is, from the evidence of the frames of their track, revisable.

A face's **quality** (0-1) says how well it can be recognised: its size, its pose and its
sharpness (:func:`face_quality`). Each frame of a track gives one piece of evidence:

- a **match** (the face's best collection match at or above the stream's threshold) for
  that name, weighted by ``(0.25 + 0.75 * quality) * Similarity / 100``: even a small face
  that matches counts, a large sharp frontal one counts most;
- **no match**, counted only when the face is *recognisable* (quality at or above
  ``recognisable_quality``): a far-away or turned-away face that matches nobody says
  nothing about who it is.

Decisions look at the last ``evidence_window`` pieces of evidence (so an approaching
visitor's early, poor frames fade out) and are announced as ``VisitorIdentified``:

1. **A name** when it has at least ``identify_after_frames`` matches in the window and its
   weight exceeds everything else in the window (other names, plus half the weight of the
   recognisable no-match frames: a missed match is far more common than a false one).
2. **Unknown** when no decision was made yet, the track has ``unknown_after_frames``
   recognisable no-match frames in the window, and their weight is more than twice that of
   all matches in the window.
3. **Revision from unknown to a name**: rule 1, at any later frame.
4. **Correction from one name to another**: the new name needs twice the frames of rule 1
   and more than twice the weight of everything else in the window, and at least
   ``identify_after_frames`` frames must have passed since the last decision: one noisy
   frame never flips a name, and names never flip back and forth frame to frame.

A named visitor is never revised back to unknown (turning away is not evidence against a
name). Compared with an area-weighted vote over a finished event (Frigate 0.16), evidence
here also weighs pose, sharpness and similarity, "unknown" needs recognisable frames, and
decisions are made while the visitor is still there and revised when better frames come.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from streamproc.faces import AnalyzedFace
from streamproc.shapes import FaceMatch

__all__ = ["Decision", "IdentityVote", "face_quality", "QUALITY_RULE"]

#: Face size (shorter side, pixels) where quality starts, and where size stops limiting it.
MIN_SIZE, FULL_SIZE = 40.0, 80.0
#: Head turn (degrees of yaw, or 1.5 x pitch) up to which pose does not limit quality, and
#: where it reaches zero.
POSE_OK, POSE_ZERO = 30.0, 60.0
#: Sharpness (0-100, ``vision.quality.sharpness``) from which blur does not limit quality.
SHARP_OK = 10.0

QUALITY_RULE = (
    f"quality = size x pose x sharpness, each 0-1: size ramps from {MIN_SIZE:.0f} to "
    f"{FULL_SIZE:.0f} px (shorter side), pose from {POSE_ZERO:.0f} to {POSE_OK:.0f} degrees "
    f"(max of |yaw| and 1.5 |pitch|), sharpness from 0 to {SHARP_OK:.0f}"
)


def _ramp(value: float, zero: float, full: float) -> float:
    return min(1.0, max(0.0, (value - zero) / (full - zero)))


def face_quality(face: AnalyzedFace) -> float:
    """How recognisable a face is, 0-1 (see :data:`QUALITY_RULE`)."""
    size = float(min(face.box[2] - face.box[0], face.box[3] - face.box[1]))
    turn = max(abs(face.yaw), 1.5 * abs(face.pitch))
    return (
        _ramp(size, MIN_SIZE, FULL_SIZE)
        * _ramp(turn, POSE_ZERO, POSE_OK)
        * _ramp(face.sharpness, 0.0, SHARP_OK)
    )


@dataclass(frozen=True)
class Decision:
    """What the track was last announced as; ``name`` None means unknown."""

    name: str | None
    match: FaceMatch | None  # the best match of that name (for FaceId and Similarity)
    frames: int  # matches of that name (or recognisable no-match frames) in the window


@dataclass(frozen=True)
class _Evidence:
    name: str | None
    weight: float
    match: FaceMatch | None


@dataclass
class IdentityVote:
    """The evidence of one track and the decisions announced so far."""

    identify_after_frames: int = 3
    unknown_after_frames: int = 4
    recognisable_quality: float = 0.35
    evidence_window: int = 12
    window: deque[_Evidence] = field(init=False)
    best: dict[str, FaceMatch] = field(default_factory=dict)
    decided: Decision | None = None
    revision: int = -1  # 0 for the first decision, then one more per revision
    frames_since_decision: int = 0

    def __post_init__(self) -> None:
        self.window = deque(maxlen=self.evidence_window)

    @property
    def name(self) -> str | None:
        return self.decided.name if self.decided is not None else None

    def add(self, match: FaceMatch | None, quality: float) -> None:
        """One identifiable face of the track (it was searched) on one frame."""
        self.frames_since_decision += 1
        if match is not None and match.Face.ExternalImageId is not None:
            name = match.Face.ExternalImageId
            weight = (0.25 + 0.75 * quality) * match.Similarity / 100.0
            self.window.append(_Evidence(name, weight, match))
            if name not in self.best or match.Similarity > self.best[name].Similarity:
                self.best[name] = match
        elif quality >= self.recognisable_quality:
            self.window.append(_Evidence(None, quality, None))

    def _tally(self) -> tuple[dict[str, tuple[int, float]], int, float]:
        names: dict[str, tuple[int, float]] = {}
        unknown_frames, unknown_weight = 0, 0.0
        for e in self.window:
            if e.name is None:
                unknown_frames += 1
                unknown_weight += e.weight
            else:
                n, w = names.get(e.name, (0, 0.0))
                names[e.name] = (n + 1, w + e.weight)
        return names, unknown_frames, unknown_weight

    def decide(self) -> Decision | None:
        """A new decision when the evidence calls for one (rules in the module docstring)."""
        names, unknown_frames, unknown_weight = self._tally()
        current = self.decided
        if names:
            name, (frames, weight) = max(names.items(), key=lambda kv: kv[1][1])
            others = sum(w for n, (_, w) in names.items() if n != name)
            against = others + 0.5 * unknown_weight
            if current is None or current.name is None:
                if frames >= self.identify_after_frames and weight > against:
                    return self._decide(Decision(name, self.best[name], frames))
            elif name != current.name and (
                frames >= 2 * self.identify_after_frames
                and weight > 2 * (others + unknown_weight)
                and self.frames_since_decision >= self.identify_after_frames
            ):
                return self._decide(Decision(name, self.best[name], frames))
        if current is None and unknown_frames >= self.unknown_after_frames:
            matched = sum(w for _, w in names.values())
            if unknown_weight > 2 * matched:
                return self._decide(Decision(None, None, unknown_frames))
        return None

    def _decide(self, decision: Decision) -> Decision:
        self.decided = decision
        self.revision += 1
        self.frames_since_decision = 0
        return decision
