"""Face tracks across frames: visits, not frames.

Pure logic (no I/O, no models). Each analysed frame's faces arrive as
:class:`Observation` s (box, the embedding the face search already computed, quality, best
match); the tracker assigns them to tracks and returns the visitor events that frame causes.

**Association** is one global assignment per frame (``scipy.optimize.linear_sum_assignment``)
over a cost that combines motion and appearance:

- *motion*: IoU with the track's predicted box (constant velocity), or, for a fast move
  within half a second, centres closer than the face's size at a similar size;
- *appearance*: the cosine between the face's embedding and the track's template (the
  quality-weighted mean of its embedded faces). A face whose embedding clearly disagrees
  (cosine below ``appearance_threshold``) never joins the track, however much the boxes
  overlap; a face that clearly agrees (cosine at or above ``reassociate_threshold``) may
  join a track without motion evidence (after a cut or an occlusion);
- without an appearance to compare, a face matching someone other than the track's
  announced name is someone else.

After an abrupt scene change (``scene_cut``) no track can be continued by motion: only
appearance can carry a visitor across a cut. Faces too small to embed, and streams with no
face search, are associated by motion only and carry no identity evidence.

A face that *carried* a track's identity (identity reuse: not embedded on this frame, see
``streamproc.runtime.reuse``) joins that track only and adds no identity evidence: only
measured frames vote. :meth:`VisitorTracker.reuse_candidates` lists the tracks whose
identity is confident enough to be carried.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from streamproc.runtime.deployment import EventsConfig
from streamproc.runtime.events import VisitorArrived, VisitorEvent, VisitorIdentified, VisitorLeft
from streamproc.runtime.frame_result import FrameClock
from streamproc.runtime.identity import Decision, IdentityVote
from streamproc.runtime.reuse import ReuseCandidate
from streamproc.shapes import BoundingBox, FaceMatch

__all__ = ["Observation", "Track", "VisitorTracker"]

#: Cost of an impossible pairing (kept finite for the solver).
_IMPOSSIBLE = 1e6
#: A template needs this much quality weight before it may veto a pairing.
MIN_TEMPLATE_WEIGHT = 0.3
#: Appearance cost of a face without an embedding (too small) for a track that has a
#: template: about that of a weak agreement, so an embedded face that agrees wins.
UNSEEN_APPEARANCE = 0.7
#: A fast move (centres apart, boxes not overlapping) continues a track only within this
#: gap; after a longer absence only overlap with the last box, or appearance, can.
FAST_MOVE_GAP_S = 0.5


@dataclass
class Observation:
    """One face on one frame, as the tracker sees it."""

    box: BoundingBox
    confidence: float
    match: FaceMatch | None = None  # the best collection match, when the face was searched
    embedding: np.ndarray | None = field(default=None, repr=False)  # unit vector
    quality: float = 0.0  # identity.face_quality
    searched: bool = False  # False: too small to identify, or no search on the stream
    snapshot: Callable[[], bytes] | None = field(default=None, repr=False)
    matches: tuple[FaceMatch, ...] = ()  # every match of the search (best first)
    signature: np.ndarray | None = field(default=None, repr=False)  # appearance fingerprint
    carried_from: str | None = None  # VisitorId whose identity the face carried (not embedded)


@dataclass
class Track:
    visitor_id: str
    box: BoundingBox
    first_seen: float
    last_seen: float
    vote: IdentityVote
    velocity: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # corners per second
    frames: int = 0
    confirmed: bool = False
    by_motion: bool = True  # False after a scene cut: only appearance can continue it
    template_sum: np.ndarray | None = field(default=None, repr=False)
    template_weight: float = 0.0
    best_score: float = -1.0
    snapshot: Callable[[], bytes] | None = field(default=None, repr=False)
    _snapshot_jpeg: bytes | None = field(default=None, repr=False)
    # The last embedded and searched face (identity reuse compares with and carries it).
    embedded_at: float | None = None
    signature: np.ndarray | None = field(default=None, repr=False)
    matches: tuple[FaceMatch, ...] = ()

    @property
    def template(self) -> np.ndarray | None:
        if self.template_sum is None or self.template_weight < MIN_TEMPLATE_WEIGHT:
            return None
        norm = float(np.linalg.norm(self.template_sum))
        return self.template_sum / norm if norm > 0 else None

    def predicted(self, offset: float) -> BoundingBox:
        dt = min(max(0.0, offset - self.last_seen), FAST_MOVE_GAP_S)
        corners = [c + v * dt for c, v in zip(self.box.corners(), self.velocity, strict=True)]
        if corners[2] <= corners[0] or corners[3] <= corners[1]:
            return self.box
        return BoundingBox.from_corners(*corners)

    def update(self, obs: Observation, offset: float) -> None:
        dt = offset - self.last_seen
        if dt > 0 and self.frames > 0:
            pairs = zip(obs.box.corners(), self.box.corners(), strict=True)
            moved = [(new - old) / dt for new, old in pairs]
            # Smooth the velocity: detector boxes jitter from frame to frame.
            self.velocity = tuple(  # type: ignore[assignment]
                0.5 * v + 0.5 * m for v, m in zip(self.velocity, moved, strict=True)
            )
        self.box, self.last_seen = obs.box, offset
        self.frames += 1
        self.by_motion = True
        if obs.embedding is not None and obs.quality > 0:
            weighted = obs.embedding.astype(np.float64) * obs.quality
            total = self.template_sum
            self.template_sum = weighted if total is None else total + weighted
            self.template_weight += obs.quality
        if obs.searched:
            self.vote.add(obs.match, obs.quality)
            self.embedded_at, self.signature, self.matches = offset, obs.signature, obs.matches
        score = (0.2 + obs.quality) * obs.confidence * obs.box.area
        if obs.snapshot is not None and score > self.best_score:
            self.best_score, self.snapshot, self._snapshot_jpeg = score, obs.snapshot, None

    def snapshot_jpeg(self) -> bytes:
        """The best face so far as JPEG, encoded once per new best (only when announced)."""
        if self._snapshot_jpeg is None:
            self._snapshot_jpeg = self.snapshot() if self.snapshot is not None else b""
        return self._snapshot_jpeg


def _near(a: BoundingBox, b: BoundingBox) -> bool:
    """Centres closer than the track's size at a similar size: one face moving fast."""
    (ax, ay), (bx, by) = a.center, b.center
    size = max(a.Width, a.Height)
    ratio = (a.area + 1e-9) / (b.area + 1e-9)
    return (ax - bx) ** 2 + (ay - by) ** 2 < size**2 and 0.25 <= ratio <= 4.0


class VisitorTracker:
    """Turns per-frame faces into VisitorArrived / Identified / Left events."""

    def __init__(self, stream_name: str, config: EventsConfig, *, identify: bool = True) -> None:
        self.stream_name = stream_name
        self.config = config
        self.identify = identify  # False when no face search runs: arrivals/departures only
        self.tracks: list[Track] = []
        self._last_offset: float | None = None

    def _base(self, track: Track, clock: FrameClock) -> dict[str, object]:
        return {
            "StreamName": self.stream_name,
            "VisitorId": track.visitor_id,
            "Timestamp": clock.wall,
            "FrameNumber": clock.frame_number,
            "FrameOffsetInSeconds": clock.offset,
        }

    def _new_track(self, obs: Observation, offset: float) -> Track:
        c = self.config
        vote = IdentityVote(
            identify_after_frames=c.identify_after_frames,
            unknown_after_frames=c.unknown_after_frames,
            recognisable_quality=c.recognisable_quality,
            evidence_window=c.evidence_window,
        )
        return Track(uuid.uuid4().hex, obs.box, offset, offset, vote)

    def _cost(self, track: Track, obs: Observation, offset: float, scene_cut: bool) -> float:
        c = self.config
        if obs.carried_from is not None:  # the same face as that track's, checked by reuse
            if obs.carried_from != track.visitor_id:
                return _IMPOSSIBLE
            return 1.0 - max(track.predicted(offset).iou(obs.box), track.box.iou(obs.box))
        template = track.template
        appearance = (
            float(np.dot(template, obs.embedding))
            if template is not None and obs.embedding is not None
            else None
        )
        if appearance is not None and appearance < c.appearance_threshold:
            return _IMPOSSIBLE  # clearly someone else, wherever the box is
        name = track.vote.name
        if (
            appearance is None
            and name is not None
            and obs.match is not None
            and obs.match.Face.ExternalImageId not in (None, name)
        ):
            # No appearance to compare: a face matching someone other than the track's
            # announced name is someone else. (With one, such a match on the same face is
            # evidence for a correction, weighed by the identity vote.)
            return _IMPOSSIBLE
        if track.by_motion and not scene_cut:
            predicted = track.predicted(offset)
            overlap = max(predicted.iou(obs.box), track.box.iou(obs.box))
            recent = offset - track.last_seen <= FAST_MOVE_GAP_S
            if overlap >= c.iou_threshold or (recent and _near(track.box, obs.box)):
                if appearance is not None:
                    disagreement = 1.0 - appearance
                else:  # the face was not embedded: an agreeing embedded face is preferred
                    disagreement = UNSEEN_APPEARANCE if template is not None else 0.0
                return (1.0 - overlap) + disagreement
        if appearance is not None and appearance >= c.reassociate_threshold:
            return 2.0 + (1.0 - appearance)  # appearance alone: a cut, an occlusion, a jump
        return _IMPOSSIBLE

    def _associate(
        self, observations: list[Observation], offset: float, scene_cut: bool
    ) -> list[tuple[Track, Observation]]:
        pairs: list[tuple[Track, Observation]] = []
        used: set[int] = set()
        if self.tracks and observations:
            cost = np.array(
                [[self._cost(t, o, offset, scene_cut) for o in observations] for t in self.tracks]
            )
            rows, cols = linear_sum_assignment(cost)
            for ti, oi in zip(rows, cols, strict=True):
                if cost[ti, oi] < _IMPOSSIBLE:
                    pairs.append((self.tracks[ti], observations[oi]))
                    used.add(int(oi))
        if scene_cut:
            for track in self.tracks:
                track.by_motion = False
        for oi, obs in enumerate(observations):
            if oi not in used:
                track = self._new_track(obs, offset)
                self.tracks.append(track)
                pairs.append((track, obs))
        return pairs

    def update(
        self, clock: FrameClock, observations: list[Observation], *, scene_cut: bool = False
    ) -> list[VisitorEvent]:
        events: list[VisitorEvent] = []
        if self._last_offset is not None and clock.offset < self._last_offset:
            events += self.close(clock)  # the stream restarted (reconnect): new visits
        self._last_offset = clock.offset
        events += self.expire(clock)
        for track, obs in self._associate(observations, clock.offset, scene_cut):
            track.update(obs, clock.offset)
            if not track.confirmed and track.frames >= self.config.confirm_frames:
                track.confirmed = True
                events.append(VisitorArrived(**self._base(track, clock), BoundingBox=obs.box))  # type: ignore[arg-type]
            if self.identify and track.confirmed:
                previous = track.vote.decided
                decision = track.vote.decide()
                if decision is not None:
                    events.append(self._identified(track, clock, decision, previous))
        return events

    def _identified(
        self, track: Track, clock: FrameClock, decision: Decision, previous: Decision | None
    ) -> VisitorIdentified:
        match = decision.match
        return VisitorIdentified(
            **self._base(track, clock),  # type: ignore[arg-type]
            Matched=decision.name is not None,
            ExternalImageId=decision.name,
            FaceId=match.Face.FaceId if match is not None else None,
            Similarity=match.Similarity if match is not None else None,
            FramesVoted=decision.frames,
            Revision=track.vote.revision,
            PreviousMatched=None if previous is None else previous.name is not None,
            PreviousExternalImageId=None if previous is None else previous.name,
            Snapshot=track.snapshot_jpeg(),
        )

    def _leave(self, track: Track, clock: FrameClock) -> VisitorLeft | None:
        if not track.confirmed:
            return None  # a one-frame flicker was never announced
        decided = track.vote.decided
        return VisitorLeft(
            **self._base(track, clock),  # type: ignore[arg-type]
            Matched=None if decided is None else decided.name is not None,
            ExternalImageId=track.vote.name,
            DurationSeconds=max(0.0, track.last_seen - track.first_seen),
            FramesSeen=track.frames,
        )

    def reuse_candidates(self) -> list[ReuseCandidate]:
        """Tracks whose identity a next frame may carry instead of embedding: confirmed,
        seen on the latest frame, named, and their latest searched face matched that name
        first. New, undecided and unknown tracks are never carried (embedded every frame)."""
        out = []
        for t in self.tracks:
            name = t.vote.name
            if (
                name is None or not t.confirmed or t.last_seen != self._last_offset
                or t.embedded_at is None or t.signature is None or not t.matches
                or t.matches[0].Face.ExternalImageId != name
            ):
                continue
            out.append(ReuseCandidate(
                visitor_id=t.visitor_id, box=t.box, velocity=t.velocity, seen_at=t.last_seen,
                embedded_at=t.embedded_at, signature=t.signature, matches=t.matches,
            ))
        return out

    def expire(self, clock: FrameClock) -> list[VisitorEvent]:
        """VisitorLeft for tracks unseen for ``left_after_s`` (call on frames and on ticks)."""
        gone = [t for t in self.tracks if clock.offset - t.last_seen >= self.config.left_after_s]
        self.tracks = [t for t in self.tracks if t not in gone]
        return [e for t in gone if (e := self._leave(t, clock)) is not None]

    def close(self, clock: FrameClock) -> list[VisitorEvent]:
        """Every track leaves: the stream stopped, went offline or restarted."""
        gone, self.tracks = self.tracks, []
        return [e for t in gone if (e := self._leave(t, clock)) is not None]
