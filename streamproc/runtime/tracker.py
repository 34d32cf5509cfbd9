"""Face tracks across frames and one identity vote per track: visits, not frames.

Pure logic (no I/O, no models): the runner feeds it each analysed frame's faces with
their best collection match, and it returns the visitor events that frame causes.
Association is greedy IoU with a centroid fallback, enough for a door camera at a few
analysed frames per second.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamproc.runtime.deployment import EventsConfig
from streamproc.runtime.events import VisitorArrived, VisitorEvent, VisitorIdentified, VisitorLeft
from streamproc.shapes import BoundingBox
from streamproc.vision.boxes import iou

__all__ = ["Detection", "Match", "Track", "VisitorTracker", "FrameClock"]

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 as ratios of the frame


@dataclass(frozen=True)
class Match:
    external_image_id: str | None
    face_id: str
    similarity: float


@dataclass(frozen=True)
class FrameClock:
    """Where the events of a frame are anchored in time."""

    offset: float  # seconds in the stream (drives timeouts)
    wall: float  # wall clock, for the events' Timestamp
    frame_number: int


@dataclass
class Detection:
    box: Box
    confidence: float
    match: Match | None
    snapshot: Callable[[], bytes] | None = None  # JPEG of the face crop, made on demand
    identifiable: bool = True  # False: too small to search, so it casts no identity vote


@dataclass
class Track:
    visitor_id: str
    box: Box
    first_seen: float
    last_seen: float
    frames: int = 0
    confirmed: bool = False
    identified: bool = False
    identity: str | None = None
    votes: dict[str, list[Match]] = field(default_factory=dict)
    unmatched: int = 0
    best_score: float = -1.0
    snapshot: bytes = b""

    def vote(self, detection: Detection) -> None:
        match = detection.match
        if not detection.identifiable:
            pass
        elif match is None or match.external_image_id is None:
            self.unmatched += 1
        else:
            self.votes.setdefault(match.external_image_id, []).append(match)
        score = detection.confidence * _area(detection.box)
        if detection.snapshot is not None and score > self.best_score:
            self.best_score, self.snapshot = score, detection.snapshot()


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _iou(a: Box, b: Box) -> float:
    return float(iou(np.asarray(a), np.asarray([b]))[0])


def _near(a: Box, b: Box) -> bool:
    """Centres closer than the track's size: the same face moving fast between frames."""
    ax, ay = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2
    bx, by = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    size = max(a[2] - a[0], a[3] - a[1])
    return (ax - bx) ** 2 + (ay - by) ** 2 < size**2


def _similar_size(a: Box, b: Box) -> bool:
    """A face does not double or halve in size between two analysed frames."""
    ratio = (_area(a) + 1e-9) / (_area(b) + 1e-9)
    return 0.25 <= ratio <= 4.0


def _bbox(box: Box) -> BoundingBox:
    return BoundingBox(Left=box[0], Top=box[1], Width=box[2] - box[0], Height=box[3] - box[1])


class VisitorTracker:
    """Turns per-frame face matches into VisitorArrived / Identified / Left events."""

    def __init__(self, stream_name: str, config: EventsConfig, *, identify: bool = True) -> None:
        self.stream_name = stream_name
        self.config = config
        self.identify = identify  # False when no face search runs: arrivals/departures only
        self.tracks: list[Track] = []
        self._last_offset: float | None = None

    def _base(self, track: Track, clock: FrameClock) -> dict[str, Any]:
        return {
            "StreamName": self.stream_name,
            "VisitorId": track.visitor_id,
            "Timestamp": clock.wall,
            "FrameNumber": clock.frame_number,
            "FrameOffsetInSeconds": clock.offset,
        }

    def update(self, clock: FrameClock, detections: list[Detection]) -> list[VisitorEvent]:
        events: list[VisitorEvent] = []
        if self._last_offset is not None and clock.offset < self._last_offset:
            events += self.close(clock)  # the stream restarted (reconnect): new visits
        self._last_offset = clock.offset
        events += self.expire(clock)
        pairs = sorted(
            (
                (_iou(t.box, d.box), ti, di)
                for ti, t in enumerate(self.tracks)
                for di, d in enumerate(detections)
            ),
            reverse=True,
        )
        used_tracks: set[int] = set()
        used_dets: set[int] = set()
        assigned: list[tuple[Track, Detection]] = []
        for score, ti, di in pairs:
            if ti in used_tracks or di in used_dets:
                continue
            track, det = self.tracks[ti], detections[di]
            if not self._compatible(track, det):
                continue
            if score >= self.config.iou_threshold or (
                _near(track.box, det.box) and _similar_size(track.box, det.box)
            ):
                used_tracks.add(ti)
                used_dets.add(di)
                assigned.append((self.tracks[ti], detections[di]))
        for di, det in enumerate(detections):
            if di not in used_dets:
                track = Track(uuid.uuid4().hex, det.box, clock.offset, clock.offset)
                self.tracks.append(track)
                assigned.append((track, det))
        for track, det in assigned:
            track.box, track.last_seen = det.box, clock.offset
            track.frames += 1
            track.vote(det)
            if not track.confirmed and track.frames >= self.config.confirm_frames:
                track.confirmed = True
                events.append(
                    VisitorArrived(**self._base(track, clock), BoundingBox=_bbox(det.box))
                )
            if self.identify and track.confirmed and not track.identified:
                event = self._decide(track, clock)
                if event is not None:
                    events.append(event)
        return events

    @staticmethod
    def _compatible(track: Track, det: Detection) -> bool:
        """A face matching someone else than the track's decided identity is someone else."""
        if not track.identified or track.identity is None or det.match is None:
            return True
        return det.match.external_image_id in (None, track.identity)

    def _decide(self, track: Track, clock: FrameClock) -> VisitorIdentified | None:
        """A name once it has ``identify_after_frames`` votes and a majority of the matched
        frames; "unknown" once ``unknown_after_frames`` frames matched nobody."""
        voted = sum(len(v) for v in track.votes.values())
        if track.votes:
            name, matches = max(track.votes.items(), key=lambda kv: len(kv[1]))
            if len(matches) >= self.config.identify_after_frames and len(matches) * 2 > voted:
                best = max(matches, key=lambda m: m.similarity)
                track.identified, track.identity = True, name
                return VisitorIdentified(
                    **self._base(track, clock),
                    Matched=True,
                    ExternalImageId=name,
                    FaceId=best.face_id,
                    Similarity=best.similarity,
                    FramesVoted=len(matches),
                    Snapshot=track.snapshot,
                )
        if track.unmatched >= self.config.unknown_after_frames and voted < track.unmatched:
            track.identified = True
            return VisitorIdentified(
                **self._base(track, clock),
                Matched=False,
                FramesVoted=track.unmatched,
                Snapshot=track.snapshot,
            )
        return None

    def _leave(self, track: Track, clock: FrameClock) -> VisitorLeft | None:
        if not track.confirmed:
            return None  # a one-frame flicker was never announced
        return VisitorLeft(
            **self._base(track, clock),
            ExternalImageId=track.identity,
            DurationSeconds=max(0.0, track.last_seen - track.first_seen),
            FramesSeen=track.frames,
        )

    def expire(self, clock: FrameClock) -> list[VisitorEvent]:
        """VisitorLeft for tracks unseen for ``left_after_s`` (call on frames and on ticks)."""
        gone = [t for t in self.tracks if clock.offset - t.last_seen >= self.config.left_after_s]
        self.tracks = [t for t in self.tracks if t not in gone]
        return [e for t in gone if (e := self._leave(t, clock)) is not None]

    def close(self, clock: FrameClock) -> list[VisitorEvent]:
        """Every track leaves: the stream stopped, went offline or restarted."""
        gone, self.tracks = self.tracks, []
        return [e for t in gone if (e := self._leave(t, clock)) is not None]
