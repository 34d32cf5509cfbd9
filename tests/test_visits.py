"""Visits on real footage: labelled clips streamed through the real runtime and NATS.

Built on ``bench/eval_visits.py`` (the same scoring, one run for the module): every
indexed person on screen is announced with the right name, no visit ever gets a wrong
name, a visitor is named within 1 s of stream time after the first frame whose per-frame
search already returns them, and strangers are announced as unknown once per visit.

Identity reuse (on by default) is checked against a second run with it off: the same
visitor events, fewer faces embedded, and carried matches marked in the frame records.
"""

from __future__ import annotations

import asyncio

import pytest

from bench.eval_visits import ClipReport, evaluate, load_clips

#: Seconds of stream time between the first frame whose search names the person and the
#: VisitorIdentified that names them.
MAX_NAMING_DELAY_S = 1.0


@pytest.fixture(scope="module")
def reports() -> dict[str, ClipReport]:
    return {r.clip: r for r in asyncio.run(evaluate(fps=5.0))}


@pytest.fixture(scope="module")
def reports_without_reuse() -> dict[str, ClipReport]:
    """The same clips with identity reuse off: every identifiable face embedded."""
    return {r.clip: r for r in asyncio.run(evaluate(fps=5.0, reuse=False))}


def test_every_labelled_clip_was_evaluated(reports: dict[str, ClipReport]) -> None:
    assert set(reports) == set(load_clips()) == {
        "walking", "approach", "two_people", "cut", "elon", "strangers"
    }
    for report in reports.values():
        assert len(report.frames) >= 20, report.clip  # 4.5-7 s at 5 fps, every frame analysed


@pytest.mark.parametrize("clip", ["walking", "approach", "two_people", "cut", "elon"])
def test_every_indexed_person_is_named_and_nobody_wrongly(
    reports: dict[str, ClipReport], clip: str
) -> None:
    report = reports[clip]
    summary = report.summary()
    assert report.correct == report.named_people >= 1, summary
    assert report.wrong == [], summary
    assert report.switches == 0, summary
    for person in report.people:
        if person.name is None:
            continue
        assert person.first_match_at is not None, summary
        delay = person.delay_after_first_match
        assert delay is not None and 0 <= delay <= MAX_NAMING_DELAY_S, summary
        # The final word on the visit is the right name too.
        left = [e for e in report.of_kind("VisitorLeft") if e.get("ExternalImageId") == person.name]
        assert left and all(e["Matched"] for e in left), summary


def test_strangers_are_announced_unknown_once_per_visit(reports: dict[str, ClipReport]) -> None:
    strangers = reports["strangers"]  # one after the other: each visit on its own
    assert [p.unknown_announcements for p in strangers.people] == [1, 1], strangers.summary()
    walking = reports["walking"]  # two strangers on screen at once beside the walker
    unknown = [p for p in walking.people if p.name is None]
    assert walking.unknown_announcements == len(unknown) == 2, walking.summary()
    for report in reports.values():  # never more than one unknown announcement per visit
        visits = [e["VisitorId"] for e in report.of_kind("VisitorIdentified") if not e["Matched"]]
        assert len(visits) == len(set(visits)), report.summary()
    assert strangers.visits == 2 and not strangers.of_kind("VisitorIdentified")[0]["Matched"]
    assert all(not e["Matched"] for e in strangers.of_kind("VisitorIdentified"))


def test_approach_is_one_visit_named_once_the_face_is_large(
    reports: dict[str, ClipReport],
) -> None:
    """The visitor is first seen at ~30 px (too small to search): no unknown announcement
    from those frames, one visit, and the name as soon as the search has it."""
    report = reports["approach"]
    assert report.visits == 1
    identified = report.of_kind("VisitorIdentified")
    assert [(e["ExternalImageId"], e["Revision"]) for e in identified] == [("george", 0)]
    first_frame = report.frames[0]["FaceSearchResponse"][0]
    assert first_frame["DetectedFace"]["BoundingBox"]["Width"] * 640 < 50  # far away at first
    assert first_frame["MatchedFaces"] == []


def test_hard_cut_gives_the_second_person_a_visit_of_their_own(
    reports: dict[str, ClipReport],
) -> None:
    report = reports["cut"]
    named = {e["VisitorId"]: e["ExternalImageId"] for e in report.of_kind("VisitorIdentified")}
    assert sorted(named.values()) == ["jack", "mark"] and len(named) == 2
    arrivals = {e["VisitorId"]: e["FrameOffsetInSeconds"] for e in report.of_kind("VisitorArrived")}
    jack = next(v for v, n in named.items() if n == "jack")
    assert 3.0 <= arrivals[jack] <= 3.5  # a new visit right after the cut at 3 s


def _visitor_events(report: ClipReport) -> list[tuple[object, ...]]:
    """What a subscriber learns, without the random VisitorIds and snapshots."""
    return sorted(
        (e["FrameOffsetInSeconds"], e["EventType"], str(e.get("ExternalImageId")),
         str(e.get("Matched")), str(e.get("Revision")))
        for e in report.events
    )


@pytest.mark.parametrize("clip", ["walking", "approach", "two_people", "cut", "elon", "strangers"])
def test_identity_reuse_changes_no_visitor_event(
    reports: dict[str, ClipReport], reports_without_reuse: dict[str, ClipReport], clip: str
) -> None:
    """Issue 9, item 7: the same visits, names and decision times with reuse on and off."""
    on, off = reports[clip], reports_without_reuse[clip]
    assert off.carried == 0
    assert sorted(map(str, on.final_names.values())) == sorted(map(str, off.final_names.values()))
    assert _visitor_events(on) == _visitor_events(off), (on.summary(), off.summary())
    # Every face big enough to identify is either embedded or carried; never more embedded.
    assert on.embedded + on.carried == off.embedded and on.embedded <= off.embedded


def test_identity_reuse_embeds_a_named_visitor_about_once_a_second(
    reports: dict[str, ClipReport], reports_without_reuse: dict[str, ClipReport]
) -> None:
    """two_people: both named at 0.4 s (3 frames each), then on screen until 4 s at 5 fps:
    re-embedded once a second instead of on every frame."""
    on, off = reports["two_people"], reports_without_reuse["two_people"]
    assert off.embedded == 40  # 2 faces x 20 frames
    assert on.embedded <= 2 * 3 + 2 * 4 and on.carried >= 26, on.summary()
    assert reports["strangers"].carried == 0  # unknown visitors are embedded every frame


def test_carried_matches_are_marked_in_the_frame_records(
    reports: dict[str, ClipReport], reports_without_reuse: dict[str, ClipReport]
) -> None:
    on = reports["two_people"]
    entries = [r for frame in on.frames for r in frame.get("FaceSearchResponse", [])]
    carried = [r for r in entries if r.get("MatchSource") == "TRACK"]
    assert len(carried) == on.carried and all(
        r.get("MatchSource") in (None, "TRACK") for r in entries
    )
    for entry in carried:  # the track's name, with the detection of this frame
        assert entry["MatchedFaces"][0]["Face"]["ExternalImageId"] in ("leonardo", "scarlett")
        assert entry["DetectedFace"]["BoundingBox"]["Width"] > 0
    off = reports_without_reuse["two_people"]
    assert not any("MatchSource" in r for frame in off.frames
                   for r in frame.get("FaceSearchResponse", []))
    # After the hard cut no face carries the first person's match.
    cut = reports["cut"]
    for frame in cut.frames:
        if frame["InputInformation"]["FrameOffsetInSeconds"] >= 3.0:
            for r in frame.get("FaceSearchResponse", []):
                if r.get("MatchSource") == "TRACK":
                    assert r["MatchedFaces"][0]["Face"]["ExternalImageId"] == "jack"
