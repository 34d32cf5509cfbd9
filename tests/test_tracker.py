"""Visitor tracking and identity votes: one arrival, one identification, one departure."""

from __future__ import annotations

from streamproc.runtime.deployment import EventsConfig
from streamproc.runtime.tracker import Detection, FrameClock, Match, VisitorTracker

ALICE = Match("alice", "11111111-1111-1111-1111-111111111111", 97.0)
BOB = Match("bob", "22222222-2222-2222-2222-222222222222", 91.0)


def det(x: float, match: Match | None = None, size: float = 0.2) -> Detection:
    return Detection((x, 0.2, x + size, 0.2 + size), 99.0, match, snapshot=lambda: b"\xff\xd8jpeg")


def run(
    tracker: VisitorTracker, frames: list[list[Detection]], start: float = 0.0, step: float = 0.2
) -> list[dict]:
    events = []
    for i, detections in enumerate(frames):
        clock = FrameClock(start + i * step, 1000.0 + start + i * step, i)
        events += [e.to_wire() for e in tracker.update(clock, detections)]
    return events


def kinds(events: list[dict]) -> list[tuple[str, str | None]]:
    return [(e["EventType"], e.get("ExternalImageId")) for e in events]


def test_one_visit_gives_three_events() -> None:
    tracker = VisitorTracker("door", EventsConfig(left_after_s=1.0))
    # Alice walks across for 20 frames (one noisy frame without a match), then is gone.
    frames = [[det(0.1 + i * 0.01, None if i == 4 else ALICE)] for i in range(20)] + [[]] * 8
    events = run(tracker, frames)
    assert kinds(events) == [
        ("VisitorArrived", None),
        ("VisitorIdentified", "alice"),
        ("VisitorLeft", "alice"),
    ]
    identified, left = events[1], events[2]
    assert identified["Matched"] and identified["Similarity"] == 97.0
    assert identified["FaceId"] == ALICE.face_id and identified["Snapshot"].startswith(b"\xff\xd8")
    assert left["FramesSeen"] == 20 and left["DurationSeconds"] == 19 * 0.2
    assert len({e["VisitorId"] for e in events}) == 1


def test_unknown_visitor_after_enough_unmatched_frames() -> None:
    tracker = VisitorTracker("door", EventsConfig(unknown_after_frames=5, left_after_s=1.0))
    events = run(tracker, [[det(0.5)] for _ in range(10)] + [[]] * 6)
    assert kinds(events) == [
        ("VisitorArrived", None),
        ("VisitorIdentified", None),
        ("VisitorLeft", None),
    ]
    assert events[1]["Matched"] is False


def test_majority_vote_decides_identity() -> None:
    tracker = VisitorTracker("door", EventsConfig(identify_after_frames=3))
    frames = [[det(0.3, m)] for m in (BOB, ALICE, ALICE, BOB, ALICE)]
    events = run(tracker, frames)
    assert ("VisitorIdentified", "alice") in kinds(events)
    assert ("VisitorIdentified", "bob") not in kinds(events)


def test_two_people_are_two_visits() -> None:
    tracker = VisitorTracker("door", EventsConfig(left_after_s=0.5))
    frames = [[det(0.05, ALICE), det(0.6, BOB)] for _ in range(6)] + [[]] * 4
    events = run(tracker, frames)
    assert sorted(kinds(events)) == sorted(
        [
            ("VisitorArrived", None),
            ("VisitorArrived", None),
            ("VisitorIdentified", "alice"),
            ("VisitorIdentified", "bob"),
            ("VisitorLeft", "alice"),
            ("VisitorLeft", "bob"),
        ]
    )


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
    events = run(tracker, [[det(0.3)] for _ in range(10)] + [[]] * 4)
    assert kinds(events) == [("VisitorArrived", None), ("VisitorLeft", None)]


def test_faces_too_small_to_identify_cast_no_vote() -> None:
    tracker = VisitorTracker("door", EventsConfig(unknown_after_frames=3, left_after_s=0.5))
    far = [Detection((0.5, 0.5, 0.52, 0.52), 99.0, None, identifiable=False) for _ in range(8)]
    events = run(tracker, [[d] for d in far] + [[]] * 4)
    assert kinds(events) == [("VisitorArrived", None), ("VisitorLeft", None)]  # never "unknown"
