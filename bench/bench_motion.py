"""Idle streams with and without motion gating, side by side in one run.

``python bench/bench_motion.py [--streams 4] [--seconds 20]``: makes a 1280 x 720 porch clip
from a real photo (a static scene with sensor noise, one 3 s visit in the middle), runs
N copies of it as real-time file cameras at 5 analysed fps through the runtime, once with
motion gating and once without, and prints the CPU the process used (cores), frames
analysed and frames left idle per stream.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.make_visit_clips import Appearance, Clip, glide, synthetic  # noqa: E402
from streamproc.runtime.deployment import parse_deployment  # noqa: E402
from streamproc.runtime.runtime import Runtime  # noqa: E402

FPS = 20


def porch_clip(out: Path, seconds: int) -> Path:
    """The porch at 720p: quiet, a visitor for 3 s in the middle, quiet again; with noise."""
    start = (seconds // 2 - 1) * FPS
    visitor = Appearance("joe", "tests/data/faces/joe_biden/1.jpg", start,
                         glide(3 * FPS, (300, 170, 90), (330, 175, 130)))
    frames = synthetic(Clip("porch", "", [], {}), "tests/data/negatives/opencv_home.jpg",
                       [visitor], seconds * FPS).frames
    rng = np.random.default_rng(0)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.codec_context.time_base = Fraction(1, FPS)
        stream.options = {"crf": "25", "bf": "0", "g": str(FPS)}
        for rgb in frames:
            big = np.asarray(Image.fromarray(rgb).resize((1280, 720)), dtype=np.float32)
            noisy = np.clip(big + rng.normal(0, 3, big.shape), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(noisy, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


async def run(clip: Path, streams: int, motion: bool, store: Path) -> dict[str, float]:
    deployment = parse_deployment({
        "store": str(store),
        "service": False,
        "streams": [{
            "id": f"cam{i}", "url": str(clip), "fps": 5, "realtime": True,
            "operations": [{"operation": "DetectFaces"}],
            "motion": {"enabled": motion},
        } for i in range(streams)],
    })
    runtime = Runtime(deployment)
    await runtime.start()
    before, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    await runtime.run(until_done=True, close=False)
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - wall
    stats = [s.stats for s in runtime.streams.values()]
    await runtime.close()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "cores": cpu / wall,
        "analysed": sum(s.analysed for s in stats) / streams,
        "idle": sum(s.idle_skipped for s in stats) / streams,
        "wall": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-motion-") as tmp:
        clip = porch_clip(Path(tmp) / "porch.mp4", args.seconds)
        results = {
            motion: asyncio.run(run(clip, args.streams, motion, Path(tmp) / "store"))
            for motion in (False, True)
        }
    print(f"{args.streams} idle 720p streams, {args.seconds} s each, 5 analysed fps, DetectFaces")
    for motion, r in results.items():
        print(f"  motion gating {'on ' if motion else 'off'}: {r['cores']:.2f} cores, "
              f"{r['analysed']:.0f} frames analysed and {r['idle']:.0f} idle per stream")
    off, on = results[False]["cores"], results[True]["cores"]
    print(f"summary: gating uses {on / off:.0%} of the CPU of analysing every frame "
          f"({on:.2f} vs {off:.2f} cores for {args.streams} streams)")


if __name__ == "__main__":
    main()
