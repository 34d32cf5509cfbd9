"""Streaming pipeline against the bare decode + inference bound, measured in one run.

``python bench/bench_stream.py`` (needs the RTSP test server's Debian packages:
``.ci/system-deps.sh``):

1. makes a 1280 x 720 H.264 clip (the door clip's real frames, scaled up, 20 fps);
2. **bare bound**: decodes that clip from the file and runs face analysis (detect +
   embed) and the collection search on every frame, back to back: frames/s;
3. **pipeline at full speed**: the same clip from a real RTSP server through the runtime
   (DetectFaces-style analysis + SearchFacesByImage per frame, published on NATS) with
   no frame budget: analysed frames/s, as a ratio of min(bare bound, camera fps);
4. **latency** at 10 analysed fps: frame capture → record received by a NATS
   subscriber, p50 / p99;
5. **capacity**: how many 720p streams at 5 analysed fps the machine sustains
   (each stream keeps >= 95 % of its budget).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import nats
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamproc.client import Client  # noqa: E402
from streamproc.engine import Engine  # noqa: E402
from streamproc.images import DecodedImage  # noqa: E402
from streamproc.runtime.deployment import parse_deployment  # noqa: E402
from streamproc.runtime.frame_input import MIN_IDENTIFIABLE_FACE  # noqa: E402
from streamproc.runtime.runtime import Runtime  # noqa: E402
from streamproc.settings import Settings  # noqa: E402
from streamproc.transport import EmbeddedNatsServer, detect_codec  # noqa: E402
from tests.fixtures_streaming import RtspTestServer  # noqa: E402

CAMERA_FPS = 20


def make_720p_clip(out: Path) -> Path:
    with av.open(str(ROOT / "examples/clips/door.mp4")) as src, av.open(str(out), "w") as dst:
        stream = dst.add_stream("libx264", rate=CAMERA_FPS)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.codec_context.time_base = Fraction(1, CAMERA_FPS)
        stream.options = {"crf": "23", "bf": "0", "g": str(CAMERA_FPS)}
        for i, frame in enumerate(src.decode(video=0)):
            big = frame.reformat(width=1280, height=720, format="yuv420p")
            big.pts, big.time_base = i, Fraction(1, CAMERA_FPS)
            for packet in stream.encode(big):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return out


def household(store: Path) -> None:
    client = Client(store=store)
    client.create_collection(CollectionId="household")
    for photo in sorted((ROOT / "examples/household").glob("*/*.jpg")):
        client.index_faces(
            CollectionId="household",
            Image={"Bytes": photo.read_bytes()},
            ExternalImageId=photo.parent.name,
            MaxFaces=1,
        )
    client.close()


def bare_bound(clip: Path, store: Path) -> float:
    """Decode + face analysis + search per frame, sequential, no runtime at all."""
    engine = Engine(Settings(store=store))
    faces, collection = engine.context.faces, engine.context.store
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        frames = 0
        start = time.perf_counter()
        for frame in container.decode(stream):
            # The same work the stream does per frame: no mesh, faces under 50 px not searched.
            result = faces.analyze(
                DecodedImage.from_array(frame.to_ndarray(format="rgb24")),
                embeddings=True,
                detect_orientation=False,
                mesh=False,
                embed_min_size=MIN_IDENTIFIABLE_FACE,
            )
            for face in result.faces:
                if face.embedding is not None:
                    collection.search("household", face.embedding, max_faces=10, min_score=0.46)
            frames += 1
        elapsed = time.perf_counter() - start
    engine.close()
    return frames / elapsed


async def run_streams(
    nats_url: str, store: Path, urls: list[str], fps: float, seconds: float
) -> tuple[list[float], list[float]]:
    """Analysed fps per stream and capture→receive latencies (ms) over ``seconds``."""
    streams = [
        {
            "id": f"cam{i}",
            "url": url,
            "fps": fps,
            "operations": [{"operation": "SearchFacesByImage", "CollectionId": "household"}],
            "events": {"enabled": True},
        }
        for i, url in enumerate(urls)
    ]
    deployment = parse_deployment(
        {
            "nats": {"url": nats_url},
            "store": str(store),
            "workers": 2,
            "service": False,
            "streams": streams,
        }
    )
    latencies: list[float] = []
    counts = {s["id"]: 0 for s in streams}
    measuring = False
    nc = await nats.connect(nats_url)

    async def on_frame(msg: Any) -> None:
        record = detect_codec(msg.data, msg.headers).decode(msg.data)
        if measuring:
            latencies.append((time.time() - record["InputInformation"]["ProducerTimestamp"]) * 1e3)
            counts[record["StreamProcessorInformation"]["Name"]] += 1

    await nc.subscribe("streamproc.*.frames", cb=on_frame)
    await nc.flush()
    await nc.flush()
    runtime = Runtime(deployment)
    task = asyncio.create_task(runtime.run())
    await asyncio.sleep(3.0)  # connect, load models, warm up
    measuring = True
    await asyncio.sleep(seconds)
    measuring = False
    runtime.stop()
    await task
    await nc.close()
    return [counts[s["id"]] / seconds for s in streams], latencies


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="streamproc-bench-") as tmp:
        tmpdir = Path(tmp)
        clip = make_720p_clip(tmpdir / "door720.mp4")
        store = tmpdir / "store"
        household(store)
        bound = bare_bound(clip, store)
        print(f"bare bound (decode + detect + embed + search, 720p): {bound:.1f} frames/s")

        with EmbeddedNatsServer() as server:
            cameras = [RtspTestServer(clip=clip, name="door") for _ in range(4)]
            for camera in cameras:
                camera.start()
            try:
                rates, lat = await run_streams(server.url, store, [cameras[0].url], 120, 10)
                target = min(bound, CAMERA_FPS)
                print(
                    f"pipeline over RTSP at full speed: {rates[0]:.1f} analysed frames/s = "
                    f"{rates[0] / target * 100:.0f} % of min(bare bound, camera {CAMERA_FPS} fps)"
                )
                _, lat = await run_streams(server.url, store, [cameras[0].url], 10, 10)
                print(
                    f"latency capture → NATS subscriber at 10 analysed fps: "
                    f"p50 {statistics.median(lat):.0f} ms, p99 {np.percentile(lat, 99):.0f} ms "
                    f"({len(lat)} frames)"
                )
                sustained = 0
                for n in range(1, len(cameras) + 1):
                    rates, lat = await run_streams(
                        server.url, store, [c.url for c in cameras[:n]], 5, 8
                    )
                    ok = min(rates) >= 0.95 * 5
                    print(
                        f"{n} x 720p at 5 fps: per-stream {', '.join(f'{r:.2f}' for r in rates)}"
                        f" fps, latency p99 {np.percentile(lat, 99):.0f} ms -> "
                        f"{'sustained' if ok else 'not sustained'}"
                    )
                    if not ok:
                        break
                    sustained = n
                print(f"streams of 720p at 5 analysed fps sustained on this machine: {sustained}")
            finally:
                for camera in cameras:
                    camera.stop()


if __name__ == "__main__":
    asyncio.run(main())
