"""Motion gating: a quiet porch runs no model; a visit is still seen, named and ended.

A clip made here from real photos: a static scene with sensor noise, a visitor for 3 s,
then the quiet scene again. With gating the same visit names come out as without it, and
the quiet frames are counted as idle, not analysed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.eval_visits import evaluate_clip
from bench.make_visit_clips import FPS, Appearance, Clip, encode, face, glide, synthetic
from streamproc.runtime.motion import MotionDetector
from streamproc.transport import EmbeddedNatsServer


@pytest.fixture(scope="module")
def porch_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s quiet, 3 s of a visitor walking in, 4 s quiet (10 s at 20 fps), with noise."""
    path = glide(3 * FPS, (300, 170, 90), (330, 175, 130))
    visitor = Appearance("joe", face("joe_biden", 1), 3 * FPS, path)
    clip = synthetic(Clip("porch", "", [], {}), "tests/data/negatives/opencv_home.jpg",
                     [visitor], 10 * FPS)
    rng = np.random.default_rng(0)
    noisy = [np.clip(f + rng.normal(0, 3, f.shape), 0, 255).astype(np.uint8)
             for f in clip.frames]
    out = tmp_path_factory.mktemp("porch") / "porch.mp4"
    encode(out, noisy)
    return out


def test_detector_ignores_noise_and_masks() -> None:
    rng = np.random.default_rng(1)
    scene = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
    detector = MotionDetector(masks=[[(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]])
    assert detector.moving(scene[..., 1])  # the first picture is looked at once
    noisy = np.clip(scene + rng.normal(0, 4, scene.shape), 0, 255).astype(np.uint8)
    assert not detector.moving(noisy[..., 1])
    moved = scene.copy()
    moved[100:200, 50:250] = 255 - moved[100:200, 50:250]  # only inside the mask
    assert not detector.moving(moved[..., 1])
    moved[100:200, 400:500] = 255 - moved[100:200, 400:500]  # outside it
    assert detector.moving(moved[..., 1])


async def test_gating_keeps_the_visit_and_skips_the_quiet_frames(
    porch_clip: Path, tmp_path: Path
) -> None:
    spec = {"file": str(porch_clip), "gallery": {"joe": ["examples/household/joe/2.jpg"]},
            "visits": [{"name": "joe", "start_s": 3.0, "end_s": 6.0}]}
    async with EmbeddedNatsServer() as server:
        reports = {
            motion: await evaluate_clip("porch", spec, nats_url=server.url,
                                        store=tmp_path / f"store-{motion}", motion=motion,
                                        events={"left_after_s": 1.0})
            for motion in (True, False)
        }
    gated, full = reports[True], reports[False]
    assert sorted(gated.final_names.values()) == sorted(full.final_names.values()) == ["joe"]
    assert gated.correct == full.correct == 1 and not gated.wrong
    assert full.idle_frames == 0 and len(full.frames) == 50  # 10 s at 5 fps
    # The quiet seconds before and after the visit ran no model.
    assert gated.idle_frames >= 20 and len(gated.frames) + gated.idle_frames == 50
    last = gated.frames[-1]["InputInformation"]
    assert last["IdleSkippedFrames"] <= last["SkippedFrames"]
