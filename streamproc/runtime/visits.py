"""The visitor-events observer: typed frame results in, VisitorArrived/Identified/Left out.

It reuses what the frame's face analysis and search already computed (boxes, embeddings,
best matches): tracking adds no model run. Scene cuts are detected on a tiny thumbnail.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

from streamproc.faces.describe import bounding_box
from streamproc.runtime.deployment import EventsConfig, ReuseConfig
from streamproc.runtime.frame_result import FrameClock, FrameResult
from streamproc.runtime.identity import face_quality
from streamproc.runtime.reuse import ReusePlan
from streamproc.runtime.scene import SceneChangeDetector
from streamproc.runtime.snapshots import face_snapshot
from streamproc.runtime.tracker import FAST_MOVE_GAP_S, Observation, VisitorTracker
from streamproc.shapes import BoundingBox, FaceSearchSection, Shape

__all__ = ["VisitObserver"]

log = logging.getLogger(__name__)


class VisitObserver:
    """One stream's visits: any face operation gives arrivals and departures; a face search
    (SearchFacesByImage) also gives identities."""

    name = "visits"

    def __init__(self, stream_id: str, config: EventsConfig) -> None:
        self.tracker = VisitorTracker(stream_id, config)
        self.min_face_px = config.min_face_px
        self.scene = SceneChangeDetector(config.scene_change)
        self.scene_cuts = 0

    def observations(self, result: FrameResult) -> list[Observation]:
        """The frame's faces with the search's matches (records are in analysis order)."""
        faces = result.faces
        if faces is None:
            return []
        search = result.section(FaceSearchSection)
        records = search.FaceSearchResponse if search is not None else None
        if records is not None and len(records) != len(faces.faces):
            log.warning("%s: face search gave %d records for %d faces; matches ignored",
                        result.stream_id, len(records), len(faces.faces))
            records = None
        out = []
        for i, face in enumerate(faces.faces):
            if min(face.box[2] - face.box[0], face.box[3] - face.box[1]) < self.min_face_px:
                continue  # a passer-by far away on the street, not a visitor
            box = bounding_box(face, faces)
            carried = result.carried.get(i)  # not embedded: carries that track's identity
            searched = records is not None and face.embedding is not None and carried is None
            matches = records[i].MatchedFaces if records is not None and searched else []
            out.append(
                Observation(
                    box=box,
                    confidence=face.confidence,
                    match=matches[0] if matches else None,
                    embedding=face.embedding,
                    quality=face_quality(face),
                    searched=searched,
                    snapshot=functools.partial(face_snapshot, result.frame.rgb, box),
                    matches=tuple(matches),
                    signature=face.signature,
                    carried_from=carried,
                )
            )
        return out

    def observe(self, result: FrameResult) -> Sequence[Shape]:
        cut = self.scene.changed(result.frame.luma())
        if cut:
            self.scene_cuts += 1
            log.info("%s: scene change at %.2f s (%.0f%% of the picture changed)",
                     result.stream_id, result.clock.offset, 100 * self.scene.last_fraction)
        return self.tracker.update(result.clock, self.observations(result), scene_cut=cut)

    def busy(self) -> bool:
        """Open tracks: keep analysing frames (a visitor standing still makes no motion)."""
        return bool(self.tracker.tracks)

    def tracked_boxes(self) -> list[BoundingBox]:
        """The open tracks' latest boxes (ratios of the frame)."""
        return [t.box for t in self.tracker.tracks]

    def reuse_plan(self, settings: ReuseConfig) -> ReusePlan:
        """What the next analysed frame may carry instead of embedding (identity reuse)."""
        return ReusePlan(
            candidates=tuple(self.tracker.reuse_candidates()),
            scene=self.scene.last_thumbnail,
            scene_change=self.scene.threshold,
            max_age_s=settings.max_age_s,
            min_appearance=settings.min_appearance,
            max_gap_s=FAST_MOVE_GAP_S,
        )

    def end(self, clock: FrameClock, reason: str) -> Sequence[Shape]:
        self.scene.reset()
        return self.tracker.close(clock)
