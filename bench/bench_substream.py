"""What analysing a camera's substream saves: decoding CPU of 720p against 360p over RTSP.

``python bench/bench_substream.py [--seconds 10]`` (needs the RTSP test server's Debian
packages: ``.ci/system-deps.sh``) makes, in a temp directory, a 1280 x 720 and a 640 x 360
H.264 clip at 25 fps from the shared 1080p walking footage (real detail and motion), serves
each from a real RTSP server, and reads each through streamproc's RtspSource (as a stream
does: TCP, one decoder thread, frames only decoded) for ``--seconds``. It prints the
process CPU per stream (% of one core, from ``time.process_time``: all threads of this
process; the server is another process) and the frames decoded per second, side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamproc.sources import create_source  # noqa: E402
from tests.fixtures_streaming import RtspTestServer  # noqa: E402

FOOTAGE = ROOT.parent / "shared/data/video/facenet_people_walking_towards_camera.mp4"
RATE = 25


def make_clip(out: Path, width: int, height: int) -> Path:
    with av.open(str(FOOTAGE)) as src, av.open(str(out), "w") as dst:
        stream = dst.add_stream("libx264", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, RATE)
        # A camera's usual encoding: no B-frames, a key frame every 2 s.
        stream.options = {"crf": "23", "bf": "0", "g": str(2 * RATE), "preset": "veryfast"}
        for i, frame in enumerate(src.decode(video=0)):
            scaled = frame.reformat(width=width, height=height, format="yuv420p")
            scaled.pts, scaled.time_base = i, Fraction(1, RATE)
            for packet in stream.encode(scaled):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return out


async def decode_cpu(url: str, seconds: float) -> tuple[float, float]:
    """(% of one core, frames per second) spent reading ``url`` for ``seconds``."""
    source = create_source("bench", url)
    frames = 0
    started_at: tuple[float, float] | None = None

    async def consume() -> None:
        nonlocal frames, started_at
        async for _ in source:
            if started_at is None:  # count from the first frame: opening is not decoding
                started_at = (time.perf_counter(), time.process_time())
            frames += 1

    task = asyncio.create_task(consume())
    while started_at is None:
        await asyncio.sleep(0.05)
    await asyncio.sleep(seconds)
    wall, cpu = time.perf_counter() - started_at[0], time.process_time() - started_at[1]
    counted = frames
    await source.close()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return 100 * cpu / wall, counted / wall


async def main_async(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for width, height in ((1280, 720), (640, 360)):
            clip = make_clip(Path(tmp) / f"walk{height}.mp4", width, height)
            server = RtspTestServer(clip=clip, name=f"walk{height}")
            server.start()
            try:
                results[height] = await decode_cpu(server.url, seconds)
            finally:
                server.stop()
            cpu, fps = results[height]
            print(f"{width} x {height}: {cpu:5.1f} % of a core, {fps:.1f} frames/s decoded")
    (main_cpu, _), (sub_cpu, _) = results[720], results[360]
    print(f"substream saves {main_cpu - sub_cpu:.1f} points of a core per camera "
          f"({main_cpu:.1f} % -> {sub_cpu:.1f} %, {main_cpu / max(sub_cpu, 1e-9):.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="reading time per stream")
    asyncio.run(main_async(parser.parse_args().seconds))


if __name__ == "__main__":
    main()
