"""Identity reuse on real frames: which faces may carry a tracked identity, and which not.

Frames of ``tests/data/visits/two_people.mp4`` (leonardo left, scarlett right) through the
real face models; the plan is built as the visit observer builds it (box, velocity,
signature and matches of the last embedded face). End-to-end checks (same visitor events
with reuse on and off, fewer embeddings, marked records) are in ``tests/test_visits.py``.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from streamproc.faces import FaceAnalyzer
from streamproc.runtime.frame_input import FrameInput
from streamproc.runtime.reuse import ReuseCandidate, ReusePlan
from streamproc.runtime.scene import thumbnail
from streamproc.shapes import BoundingBox
from streamproc.sources import Frame
from streamproc.vision.appearance import appearance_similarity

CLIP = Path(__file__).parent / "data" / "visits" / "two_people.mp4"


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer()


@pytest.fixture(scope="module")
def frames() -> dict[int, np.ndarray]:
    """Frames 0, 4 (0.2 s later) and 10 (0.5 s) of the clip, and 90 (4.5 s: nobody)."""
    wanted = {0, 4, 10, 90}
    out = {}
    with av.open(str(CLIP)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                out[i] = frame.to_ndarray(format="rgb24")
    return out


def _input(rgb: np.ndarray, number: int, analyzer: FaceAnalyzer,
           plan: ReusePlan | None = None) -> FrameInput:
    h, w = rgb.shape[:2]
    frame = Frame("test", number, number / 20, 0.0, w, h, rgb)
    return FrameInput(frame, analyzer, frozenset({"embeddings"}), reuse=plan)


def _plan(first: FrameInput, *, age: float = 0.0, swap: bool = False,
          **settings: float) -> ReusePlan:
    """Candidates from the first frame's faces as the tracker would hand them over."""
    faces = first.faces()
    signatures = [f.signature for f in faces.faces]
    if swap:  # each box with the other person's appearance
        signatures = signatures[::-1]
    w, h = faces.width, faces.height
    candidates = []
    for i, (face, signature) in enumerate(zip(faces.faces, signatures, strict=True)):
        assert signature is not None
        box = BoundingBox.from_corners(face.box[0] / w, face.box[1] / h,
                                       face.box[2] / w, face.box[3] / h)
        candidates.append(ReuseCandidate(
            visitor_id=f"track-{i}", box=box, velocity=(0.0, 0.0, 0.0, 0.0),
            seen_at=first.frame.pts, embedded_at=first.frame.pts - age, signature=signature,
        ))
    return ReusePlan(tuple(candidates), scene=thumbnail(first.frame.luma()), **settings)


def test_signatures_tell_the_same_face_from_another(
    frames: dict[int, np.ndarray], analyzer: FaceAnalyzer
) -> None:
    plan = ReusePlan(())  # any plan: the analyzer then fingerprints every identifiable face
    a = _input(frames[0], 0, analyzer, plan).faces().faces
    b = _input(frames[10], 10, analyzer, plan).faces().faces
    assert len(a) == len(b) == 2 and all(f.signature is not None for f in a + b)
    left = lambda faces: min(faces, key=lambda f: f.box[0])  # noqa: E731
    right = lambda faces: max(faces, key=lambda f: f.box[0])  # noqa: E731
    same = [appearance_similarity(left(a).signature, left(b).signature),  # type: ignore[arg-type]
            appearance_similarity(right(a).signature, right(b).signature)]  # type: ignore[arg-type]
    other = appearance_similarity(left(a).signature, right(b).signature)  # type: ignore[arg-type]
    assert min(same) >= 0.7 > other, (same, other)


def test_a_tracked_face_is_carried_and_not_embedded(
    frames: dict[int, np.ndarray], analyzer: FaceAnalyzer
) -> None:
    first = _input(frames[0], 0, analyzer, ReusePlan(()))
    later = _input(frames[4], 4, analyzer, _plan(first))
    faces = later.faces().faces
    assert sorted(c.visitor_id for c in later.carried.values()) == ["track-0", "track-1"]
    assert all(f.embedding is None for f in faces)  # no SFace run on this frame
    for i, candidate in later.carried.items():  # each face carries its own track
        assert candidate.box.iou(_box(later, i)) > 0.5


def _box(frame_input: FrameInput, i: int) -> BoundingBox:
    faces = frame_input.faces()
    x1, y1, x2, y2 = faces.faces[i].box
    return BoundingBox.from_corners(x1 / faces.width, y1 / faces.height,
                                    x2 / faces.width, y2 / faces.height)


@pytest.mark.parametrize("case", ["too old", "looks different", "scene cut", "two candidates"])
def test_faces_are_embedded_when_reuse_is_not_safe(
    frames: dict[int, np.ndarray], analyzer: FaceAnalyzer, case: str
) -> None:
    first = _input(frames[0], 0, analyzer, ReusePlan(()))
    if case == "too old":  # embedded 1 s before the frame: due again
        plan = _plan(first, age=1.0 - 4 / 20, max_age_s=1.0)
    elif case == "looks different":  # someone else where the track was
        plan = _plan(first, swap=True)
    elif case == "scene cut":  # the plan was made on another picture (the empty scene)
        plan = ReusePlan(_plan(first).candidates, scene=thumbnail(frames[90][..., 1]))
    else:  # a second candidate on the same face: ambiguous
        base = _plan(first)
        plan = ReusePlan(base.candidates + (base.candidates[0],), scene=base.scene)
    later = _input(frames[4], 4, analyzer, plan)
    faces = later.faces().faces
    if case != "two candidates":
        assert later.carried == {} and all(f.embedding is not None for f in faces)
    else:  # the ambiguous face is embedded; the other still carries its own track
        assert [c.visitor_id for c in later.carried.values()] == ["track-1"]
        assert sum(f.embedding is not None for f in faces) == 1
