"""Visitor tracking and revisable identity: the rules of README "How a visit is decided".

Pure logic on synthetic observations (boxes, unit embeddings, matches); the same rules
on real clips are checked in test_visits.py.
"""

from __future__ import annotations

import numpy as np

from streamproc.runtime.deployment import EventsConfig
from streamproc.runtime.frame_result import FrameClock
from streamproc.runtime.tracker import Observation, VisitorTracker
from streamproc.shapes import BoundingBox, Face, FaceMatch

RNG = np.random.default_rng(7)


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


ALICE_VEC, BOB_VEC, CAROL_VEC = (_unit(RNG.normal(size=128)) for _ in range(3))


def match(name: str, similarity: float = 97.0) -> FaceMatch:
    face_id = {"alice": "1", "bob": "2", "carol": "3"}[name] * 8 + "-1111-1111-1111-111111111111"
    return FaceMatch(
        Similarity=similarity,
        Face=Face(FaceId=face_id, BoundingBox=BoundingBox(Width=0.2, Height=0.2, Left=0.1,
                  Top=0.1), ImageId=face_id, ExternalImageId=name, Confidence=99.9),
    )


ALICE, BOB = match("alice"), match("bob", 91.0)


def like(vec: np.ndarray, noise: float = 0.35) -> np.ndarray:
    """The same person on another frame: cosine ~0.9 with ``vec``."""
    return _unit(vec + noise * _unit(RNG.normal(size=vec.size)))


def det(
    x: float,
    m: FaceMatch | None = None,
    *,
    size: float = 0.2,
    vec: np.ndarray | None = None,
    quality: float = 0.9,
    searched: bool = True,
) -> Observation:
    return Observation(
        box=BoundingBox(Left=x, Top=0.2, Width=size, Height=size),
        confidence=99.0,
        match=m,
        embedding=None if vec is None else like(vec),
        quality=quality,
        searched=searched,
        snapshot=lambda: b"\xff\xd8jpeg",
    )


def run(
    tracker: VisitorTracker,
    frames: list[list[Observation]],
    start: float = 0.0,
    step: float = 0.2,
    cuts: frozenset[int] = frozenset(),
) -> list[dict]:
    events = []
    for i, detections in enumerate(frames):
        clock = FrameClock(start + i * step, 1000.0 + start + i * step, i)
        events += [e.to_wire() for e in tracker.update(clock, detections, scene_cut=i in cuts)]
    return events


def kinds(events: list[dict]) -> list[tuple[str, str | None]]:
    return [(e["EventType"], e.get("ExternalImageId")) for e in events]


def test_one_visit_gives_three_events() -> None:
    tracker = VisitorTracker("door", EventsConfig(left_after_s=1.0))
    # Alice walks across for 20 frames (one noisy frame without a match), then is gone.
    frames = [[det(0.1 + i * 0.01, None if i == 4 else ALICE, vec=ALICE_VEC)] for i in range(20)]
    events = run(tracker, frames + [[]] * 8)
    assert kinds(events) == [
        ("VisitorArrived", None),
        ("VisitorIdentified", "alice"),
        ("VisitorLeft", "alice"),
    ]
    identified, left = events[1], events[2]
    assert identified["Matched"] and identified["Similarity"] == 97.0
    assert identified["Revision"] == 0 and "PreviousMatched" not in identified
    assert identified["FaceId"] == ALICE.Face.FaceId
    assert identified["Snapshot"].startswith(b"\xff\xd8")
    assert identified["FrameNumber"] == 2  # the third match: identify_after_frames = 3
    assert left["FramesSeen"] == 20 and abs(left["DurationSeconds"] - 19 * 0.2) < 1e-9
    assert left["Matched"] is True
    assert len({e["VisitorId"] for e in events}) == 1


def test_unknown_visitor_after_enough_recognisable_unmatched_frames() -> None:
    tracker = VisitorTracker("door", EventsConfig(unknown_after_frames=5, left_after_s=1.0))
    events = run(tracker, [[det(0.5, vec=CAROL_VEC)] for _ in range(10)] + [[]] * 6)
    assert kinds(events) == [
        ("VisitorArrived", None),
        ("VisitorIdentified", None),
        ("VisitorLeft", None),
    ]
    assert events[1]["Matched"] is False and events[1]["FrameNumber"] == 4
    assert events[2]["Matched"] is False


def test_poor_frames_never_decide_unknown() -> None:
    """Far away or turned away: matching nobody is no evidence."""
    tracker = VisitorTracker("door", EventsConfig(unknown_after_frames=3, left_after_s=0.5))
    events = run(tracker, [[det(0.5, quality=0.3, vec=CAROL_VEC)] for _ in range(15)] + [[]] * 4)
    assert kinds(events) == [("VisitorArrived", None), ("VisitorLeft", None)]


def test_approaching_visitor_unknown_then_named_is_a_revision() -> None:
    """Decided unknown on mediocre frames, then matched up close: one visit, revised."""
    tracker = VisitorTracker("door", EventsConfig(unknown_after_frames=4, left_after_s=1.0))
    far = [[det(0.4, quality=0.6, size=0.1 + i * 0.005, vec=ALICE_VEC)] for i in range(8)]
    near = [[det(0.4, ALICE, size=0.14 + i * 0.01, vec=ALICE_VEC)] for i in range(6)]
    events = run(tracker, far + near + [[]] * 6)
    assert kinds(events) == [
        ("VisitorArrived", None),
        ("VisitorIdentified", None),
        ("VisitorIdentified", "alice"),
        ("VisitorLeft", "alice"),
    ]
    revision = events[2]
    assert revision["Revision"] == 1 and revision["Matched"] is True
    assert revision["PreviousMatched"] is False and "PreviousExternalImageId" not in revision
    assert revision["FrameNumber"] == 8 + 2  # the third match
    assert len({e["VisitorId"] for e in events}) == 1


def test_majority_of_the_window_decides_the_name() -> None:
    tracker = VisitorTracker("door", EventsConfig(identify_after_frames=3))
    frames = [[det(0.3, m, vec=ALICE_VEC)] for m in (BOB, ALICE, ALICE, BOB, ALICE)]
    events = run(tracker, frames)
    assert ("VisitorIdentified", "alice") in kinds(events)
    assert ("VisitorIdentified", "bob") not in kinds(events)


def test_name_is_corrected_only_on_strong_evidence_and_never_flip_flops() -> None:
    config = EventsConfig(identify_after_frames=3, left_after_s=1.0)
    # A few matches for Bob, then steady matches for Alice: corrected once, to Alice.
    tracker = VisitorTracker("door", config)
    frames = [[det(0.3, m, vec=ALICE_VEC)] for m in [BOB] * 3 + [ALICE] * 12]
    events = run(tracker, frames + [[]] * 6)
    named = [e for e in events if e["EventType"] == "VisitorIdentified"]
    assert [(e["ExternalImageId"], e["Revision"]) for e in named] == [("bob", 0), ("alice", 1)]
    assert named[1]["PreviousExternalImageId"] == "bob" and named[1]["PreviousMatched"] is True
    # Alternating noise after a decision never flips the name.
    tracker = VisitorTracker("door", config)
    frames = [[det(0.3, ALICE, vec=ALICE_VEC)] for _ in range(4)] + [
        [det(0.3, BOB if i % 2 else ALICE, vec=ALICE_VEC)] for i in range(20)
    ]
    named = [e for e in run(tracker, frames) if e["EventType"] == "VisitorIdentified"]
    assert [e["ExternalImageId"] for e in named] == ["alice"]


def test_two_people_are_two_visits() -> None:
    tracker = VisitorTracker("door", EventsConfig(left_after_s=0.5))
    frames = [[det(0.05, ALICE, vec=ALICE_VEC), det(0.6, BOB, vec=BOB_VEC)] for _ in range(6)]
    events = run(tracker, frames + [[]] * 4)
    assert sorted(kinds(events), key=str) == sorted(
        [
            ("VisitorArrived", None),
            ("VisitorArrived", None),
            ("VisitorIdentified", "alice"),
            ("VisitorIdentified", "bob"),
            ("VisitorLeft", "alice"),
            ("VisitorLeft", "bob"),
        ],
        key=str,
    )


def test_two_people_crossing_keep_their_identities() -> None:
    """Boxes swap places between frames; appearance keeps each face on its own track."""
    tracker = VisitorTracker("door", EventsConfig(left_after_s=0.5))
    frames = []
    for i in range(12):
        a, b = 0.2 + i * 0.04, 0.64 - i * 0.04  # they cross around frame 5-6
        frames.append([det(a, ALICE, vec=ALICE_VEC), det(b, BOB, vec=BOB_VEC)])
    events = run(tracker, frames + [[]] * 4)
    named = {e["VisitorId"]: e["ExternalImageId"] for e in events
             if e["EventType"] == "VisitorIdentified"}
    assert sorted(named.values()) == ["alice", "bob"]
    assert len({e["VisitorId"] for e in events}) == 2  # no extra track from the crossing


def test_a_different_face_in_the_same_place_starts_a_new_visit() -> None:
    """An unknown visitor's track does not swallow a different, indexed person's face."""
    tracker = VisitorTracker("door", EventsConfig(unknown_after_frames=3, left_after_s=5.0))
    frames = [[det(0.3, vec=CAROL_VEC)] for _ in range(6)]  # decided unknown
    frames += [[det(0.31, ALICE, vec=ALICE_VEC)] for _ in range(6)]  # Alice, same place
    events = run(tracker, frames)
    visits = {e["VisitorId"] for e in events}
    assert len(visits) == 2
    alice = [e for e in events if e.get("ExternalImageId") == "alice"]
    assert alice and alice[0]["Revision"] == 0  # her own visit, not a revision of Carol's


def test_scene_cut_stops_motion_association() -> None:
    """After a cut, a face without an embedding in the same place is a new visit."""
    tracker = VisitorTracker("door", EventsConfig(left_after_s=5.0), identify=False)
    frames = [[det(0.3, searched=False)] for _ in range(4)] * 2
    events = run(tracker, frames, cuts=frozenset({4}))
    assert [k for k, _ in kinds(events)].count("VisitorArrived") == 2
    # Without the cut it is one visit.
    tracker = VisitorTracker("door", EventsConfig(left_after_s=5.0), identify=False)
    events = run(tracker, frames)
    assert [k for k, _ in kinds(events)].count("VisitorArrived") == 1


def test_appearance_carries_a_visitor_across_a_cut() -> None:
    """A cut back to the same person (elsewhere in the picture) continues the visit."""
    tracker = VisitorTracker("door", EventsConfig(left_after_s=5.0))
    frames = [[det(0.1, ALICE, vec=ALICE_VEC)] for _ in range(5)]
    frames += [[det(0.7, ALICE, vec=ALICE_VEC)] for _ in range(5)]
    events = run(tracker, frames, cuts=frozenset({5}))
    assert len({e["VisitorId"] for e in events}) == 1
    assert kinds(events) == [("VisitorArrived", None), ("VisitorIdentified", "alice")]


def test_single_frame_flicker_is_not_a_visit() -> None:
    tracker = VisitorTracker("door", EventsConfig(left_after_s=0.5))
    assert run(tracker, [[det(0.4)]] + [[]] * 5) == []


def test_identified_track_does_not_absorb_someone_else() -> None:
    tracker = VisitorTracker("door", EventsConfig(left_after_s=5.0))
    frames = [[det(0.3, ALICE)] for _ in range(5)] + [[det(0.31, BOB)] for _ in range(5)]
    events = run(tracker, frames)
    assert ("VisitorIdentified", "bob") in kinds(events)
    assert len({e["VisitorId"] for e in events}) == 2


def test_stream_restart_closes_visits() -> None:
    tracker = VisitorTracker("door", EventsConfig())
    events = run(tracker, [[det(0.3, ALICE)] for _ in range(5)], start=10.0)
    events += run(tracker, [[det(0.3, ALICE)] for _ in range(2)], start=0.0)  # pts went back
    assert [k for k, _ in kinds(events)].count("VisitorLeft") == 1
    assert [k for k, _ in kinds(events)].count("VisitorArrived") == 2


def test_without_face_search_no_identification() -> None:
    tracker = VisitorTracker("door", EventsConfig(left_after_s=0.5), identify=False)
    events = run(tracker, [[det(0.3, searched=False)] for _ in range(10)] + [[]] * 4)
    assert kinds(events) == [("VisitorArrived", None), ("VisitorLeft", None)]


def test_faces_too_small_to_identify_cast_no_vote() -> None:
    tracker = VisitorTracker("door", EventsConfig(unknown_after_frames=3, left_after_s=0.5))
    far = [det(0.5, size=0.02, quality=0.0, searched=False) for _ in range(8)]
    events = run(tracker, [[d] for d in far] + [[]] * 4)
    assert kinds(events) == [("VisitorArrived", None), ("VisitorLeft", None)]  # never "unknown"


def test_events_config_rejects_inconsistent_thresholds() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="reassociate_threshold"):
        EventsConfig(appearance_threshold=0.6, reassociate_threshold=0.5)
    with pytest.raises(ValidationError, match="evidence_window"):
        EventsConfig(identify_after_frames=5, evidence_window=8)
