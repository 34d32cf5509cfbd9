"""The close-up detector pass on stream frames runs only where a close-up face can be.

Real models and the real StreamRunner, fed real frames: a porch photo, then a face crop
that YuNet's first pass misses entirely (one of the 4 such test photos) filling the
picture. The face is still found when it arrives (most of the picture changes) and while it
stays (its track is close-up sized); a frame where little moved and nothing large is
tracked skips the pass.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from streamproc.engine import Engine
from streamproc.runtime.deployment import StreamConfig
from streamproc.runtime.frame_result import FrameClock
from streamproc.runtime.motion import wants_closeup
from streamproc.runtime.stream import StreamRunner
from streamproc.settings import Settings
from streamproc.shapes import BoundingBox
from streamproc.sources import Frame, create_source
from streamproc.transport.publisher import Publisher
from tests.conftest import DATA

SIDE = 360
#: The first pass finds no face on this crop; the close-up pass does (README, Close-up faces).
CLOSE_UP = DATA / "faces/dlib_john_schneider/6.jpg"


def _picture(path: Path) -> np.ndarray:
    image = Image.open(path).convert("RGB").resize((SIDE, SIDE))
    return np.asarray(image, dtype=np.uint8)


def _noisy(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(rgb + rng.normal(0, 3, rgb.shape), 0, 255).astype(np.uint8)


def test_wants_closeup_thresholds() -> None:
    small = BoundingBox(Width=0.2, Height=0.3, Left=0.4, Top=0.3)
    large = BoundingBox(Width=0.3, Height=0.9, Left=0.3, Top=0.05)  # 0.9 * 360 >= 0.5 * 640
    assert not wants_closeup(0.05, [small], 640, 360)
    assert wants_closeup(0.25, [], 640, 360)
    assert wants_closeup(0.05, [small, large], 640, 360)


def test_closeup_face_is_found_on_arrival_and_while_it_stays(tmp_path: Path) -> None:
    engine = Engine(Settings(store=tmp_path))
    config = StreamConfig.model_validate(
        {"id": "door", "url": str(CLOSE_UP), "fps": 5,
         "operations": [{"operation": "DetectFaces"}], "events": {"min_face_px": 40}}
    )
    runner = StreamRunner(
        config, create_source("door", str(CLOSE_UP)), engine=engine,
        publisher=Publisher("nats://127.0.0.1:1"), executor=ThreadPoolExecutor(1),
        source_label="door",
    )
    rng = np.random.default_rng(0)
    porch = _picture(DATA / "negatives/opencv_home.jpg")
    face = _picture(CLOSE_UP)
    pictures = [porch] * 4 + [face] * 12
    found, closeup, fractions = [], [], []
    for i, rgb in enumerate(pictures):
        frame = Frame("door", i, i / 5, time.time(), SIDE, SIDE, _noisy(rgb, rng))
        skipped = runner.stats.closeup_skipped
        result, _ = runner.analyse(frame, FrameClock(i / 5, frame.capture_time, i))
        assert runner.motion is not None
        fractions.append(runner.motion.last_fraction)
        closeup.append(runner.stats.closeup_skipped == skipped if result is not None else None)
        found.append(len(result.faces.faces) if result is not None and result.faces else 0)
    engine.close()
    # The first porch frame is new (looked at fully), the next ones are gated by motion.
    assert closeup[0] is True and closeup[1:4] == [None] * 3
    # The face arrives (most of the picture changed): the close-up pass finds it ...
    assert closeup[4] is True and found[4] == 1
    # ... and while it stays (the picture no longer changes), its close-up-sized track keeps
    # the pass on: found on every frame, as a single image would be.
    assert sum(f < 0.2 for f in fractions[5:]) >= 4, fractions
    assert closeup[5:] == [True] * 11 and found[5:] == [1] * 11


def test_small_motion_without_large_track_skips_the_pass(tmp_path: Path) -> None:
    """A leaf moving on the porch: the first pass only, about half the detector time."""
    engine = Engine(Settings(store=tmp_path))
    config = StreamConfig.model_validate(
        {"id": "porch", "url": str(CLOSE_UP), "fps": 5,
         "operations": [{"operation": "DetectFaces"}]}
    )
    runner = StreamRunner(
        config, create_source("porch", str(CLOSE_UP)), engine=engine,
        publisher=Publisher("nats://127.0.0.1:1"), executor=ThreadPoolExecutor(1),
        source_label="porch",
    )
    porch = _picture(DATA / "negatives/opencv_home.jpg")
    rng = np.random.default_rng(1)
    runner.analyse(Frame("porch", 0, 0.0, time.time(), SIDE, SIDE, porch),
                   FrameClock(0.0, time.time(), 0))
    for i in range(1, 6):
        leaf = _noisy(porch, rng)
        leaf[40 + 5 * i:80 + 5 * i, 300:340] = 255 - leaf[40 + 5 * i:80 + 5 * i, 300:340]
        result, _ = runner.analyse(Frame("porch", i, i / 5, time.time(), SIDE, SIDE, leaf),
                                   FrameClock(i / 5, time.time(), i))
        assert result is not None and result.faces is not None and not result.faces.faces
    assert runner.stats.closeup_skipped == 5
    engine.close()
