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
5. **busy capacity**: how many 720p streams at 5 analysed fps the machine sustains
   with faces in view the whole time (each stream keeps >= 95 % of its budget);
6. **idle capacity**: the same for a porch-like 720p scene (a real photo with sensor noise,
   a 3 s visit every 30 s, looped as real-time file cameras, each camera's loop starting
   at another second so the visits spread as with independent cameras): a frame counts
   toward the budget whether analysed or left idle by motion gating;
7. **decoding apart**: the CPU that decoding one 720p stream in real time costs, and the
   CPU per idle stream beyond it;
8. **memory**: resident memory per stream, and its growth over a soak of 4 idle streams
   (``--soak-minutes``, 10 by default; 0 skips it).

Ends with one summary line. ``--quick`` shortens every window (a smoke run, not numbers).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
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

from bench.bench_motion import porch_clip  # noqa: E402
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


PORCH_SECONDS = 30  # one 3 s visit per loop of the porch clip


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def staggered_copies(clip: Path, count: int) -> list[Path]:
    """``count`` copies of ``clip``, each starting a different second into it (remuxed, not
    re-encoded; the clip has a key frame every second), so the cameras' visits do not all
    come at the same moment, as with real cameras."""
    with av.open(str(clip)) as src:
        stream = src.streams.video[0]
        packets = [p for p in src.demux(stream) if p.size]
    rate = CAMERA_FPS
    total = len(packets)
    step = packets[1].pts - packets[0].pts  # one frame, in the stream's time base
    copies = []
    for i in range(count):
        start = (i * PORCH_SECONDS // max(count, 1)) * rate  # a key frame: every second
        order = packets[start:] + packets[:start]
        out = clip.with_name(f"{clip.stem}-{i}.mp4")
        with av.open(str(clip)) as src, av.open(str(out), "w") as dst:
            template = src.streams.video[0]
            ostream = dst.add_stream_from_template(template)
            for n, packet in enumerate(order):
                packet.stream = ostream
                packet.pts = packet.dts = n * step
                dst.mux(packet)
        copies.append(out)
    assert total > 0
    return copies


def decode_cores(clip: Path) -> float:
    """Cores one real-time stream of ``clip`` costs to decode (as the sources decode)."""
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        duration = float(stream.frames) / CAMERA_FPS if stream.frames else PORCH_SECONDS
        before = cpu_seconds()
        for _ in container.decode(stream):
            pass
        return (cpu_seconds() - before) / duration


async def idle_run(
    clips: list[Path], store: Path, streams: int, seconds: float, warmup: float = 5.0,
    rss_samples: list[tuple[float, float]] | None = None,
) -> dict[str, float]:
    """``streams`` looped porch cameras at 5 fps searching the household; per-stream budget
    held (analysed + idle frames), the process's cores, and resident memory."""
    deployment = parse_deployment({
        "store": str(store),
        "service": False,
        "workers": 2,
        "streams": [{
            "id": f"porch{i}", "url": str(clips[i % len(clips)]), "fps": 5, "realtime": True,
            "loop": True,
            "operations": [{"operation": "SearchFacesByImage", "CollectionId": "household"}],
        } for i in range(streams)],
    })
    runtime = Runtime(deployment)
    await runtime.start()
    task = asyncio.create_task(runtime.run())
    await asyncio.sleep(warmup)
    runners = list(runtime.streams.values())

    def budget() -> list[int]:
        return [r.stats.analysed + r.stats.idle_skipped for r in runners]

    start_counts, start_cpu, start = budget(), cpu_seconds(), time.perf_counter()
    analysed0 = sum(r.stats.analysed for r in runners)
    # Each second: the CPU it took and whether any model ran, so the quiet seconds (motion
    # gating only) are measured apart from the visit's.
    quiet_cpu, quiet_s, last_rss = 0.0, 0, start
    cpu_mark, analysed_mark = start_cpu, analysed0
    while (elapsed := time.perf_counter() - start) < seconds:
        await asyncio.sleep(min(1.0, seconds - elapsed))
        cpu_now, analysed_now = cpu_seconds(), sum(r.stats.analysed for r in runners)
        if analysed_now == analysed_mark:
            quiet_cpu += cpu_now - cpu_mark
            quiet_s += 1
        cpu_mark, analysed_mark = cpu_now, analysed_now
        if rss_samples is not None and time.perf_counter() - last_rss >= 30:
            rss_samples.append((time.perf_counter() - start, rss_mb()))
            last_rss = time.perf_counter()
    if rss_samples is not None:
        rss_samples.append((time.perf_counter() - start, rss_mb()))
    wall = time.perf_counter() - start
    cores = (cpu_seconds() - start_cpu) / wall
    held = [(b - a) / (5 * wall) for a, b in zip(start_counts, budget(), strict=True)]
    analysed = (sum(r.stats.analysed for r in runners) - analysed0) / streams / wall
    rss = rss_mb()
    runtime.stop()
    await task
    return {"held": min(held), "cores": cores, "rss": rss, "analysed_fps": analysed,
            "quiet_cores": quiet_cpu / quiet_s if quiet_s else float("nan")}


async def busy_sections(tmpdir: Path, store: Path, window: float, summary: dict[str, str]) -> None:
    """Sections 1-5: the bound, the pipeline against it, latency, busy capacity."""
    clip = make_720p_clip(tmpdir / "door720.mp4")
    bound = bare_bound(clip, store)
    print(f"bare bound (decode + detect + embed + search, 720p): {bound:.1f} frames/s")
    summary["bound"] = f"bound {bound:.1f} fps"

    with EmbeddedNatsServer() as server:
        cameras = [RtspTestServer(clip=clip, name="door") for _ in range(4)]
        for camera in cameras:
            camera.start()
        try:
            rates, lat = await run_streams(server.url, store, [cameras[0].url], 120,
                                           window + 2)
            target = min(bound, CAMERA_FPS)
            print(
                f"pipeline over RTSP at full speed: {rates[0]:.1f} analysed frames/s = "
                f"{rates[0] / target * 100:.0f} % of min(bare bound, camera {CAMERA_FPS} fps)"
            )
            summary["pipeline"] = f"pipeline {rates[0] / target * 100:.0f} % of bound"
            _, lat = await run_streams(server.url, store, [cameras[0].url], 10, window + 2)
            print(
                f"latency capture → NATS subscriber at 10 analysed fps: "
                f"p50 {statistics.median(lat):.0f} ms, p99 {np.percentile(lat, 99):.0f} ms "
                f"({len(lat)} frames)"
            )
            summary["latency"] = (f"p50/p99 {statistics.median(lat):.0f}/"
                                  f"{np.percentile(lat, 99):.0f} ms at 10 fps")
            sustained = 0
            for n in range(1, len(cameras) + 1):
                rates, lat = await run_streams(
                    server.url, store, [c.url for c in cameras[:n]], 5, window
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
            summary["busy"] = f"busy capacity {sustained}"
        finally:
            for camera in cameras:
                camera.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short windows: a smoke run")
    parser.add_argument("--soak-minutes", type=float, default=10.0)
    parser.add_argument("--idle-only", action="store_true", help="skip sections 1-5")
    parser.add_argument("--idle-streams", default="4,8,12,16",
                        help="idle stream counts to try, in increasing order")
    args = parser.parse_args()
    window = 4.0 if args.quick else 8.0
    idle_window = 8.0 if args.quick else float(PORCH_SECONDS)
    summary: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="streamproc-bench-") as tmp:
        tmpdir = Path(tmp)
        store = tmpdir / "store"
        household(store)
        if not args.idle_only:
            await busy_sections(tmpdir, store, window, summary)
        porch = porch_clip(tmpdir / "porch720.mp4", PORCH_SECONDS)
        decode = decode_cores(porch)
        counts = [int(x) for x in args.idle_streams.split(",")]
        staggered = staggered_copies(porch, max(counts))
        print(f"decoding one 720p porch stream in real time: {decode * 100:.1f} % of a core")
        idle_ok, per_stream, quiet_per_stream = 0, float("nan"), float("nan")
        rss_by_count: dict[int, float] = {}
        for n in counts:
            # Visits spread over the loop as with independent cameras (every camera seeing
            # its visitor in the same second is the worst case, not the idle one).
            result = await idle_run(staggered[:n], store, n, idle_window)
            rss_by_count[n] = result["rss"]
            ok = result["held"] >= 0.95
            print(f"{n} x idle 720p at 5 fps: worst stream held {result['held']:.0%} of its "
                  f"budget ({result['analysed_fps']:.2f} analysed fps per stream), "
                  f"{result['cores']:.2f} cores, {result['cores'] / n * 100:.1f} % of a core "
                  f"per stream ({(result['cores'] / n - decode) * 100:.1f} % beyond decoding), "
                  f"quiet seconds {result['quiet_cores'] / n * 100:.1f} % of a core per stream "
                  f"({(result['quiet_cores'] / n - decode) * 100:.1f} % beyond decoding), "
                  f"RSS {result['rss']:.0f} MB -> {'sustained' if ok else 'not sustained'}")
            if not ok:
                break
            idle_ok, per_stream = n, result["cores"] / n
            if result["quiet_cores"] == result["quiet_cores"]:  # with many cameras, some
                quiet_per_stream = result["quiet_cores"] / n  # visit is always on: no quiet s
        print(f"idle 720p streams at 5 analysed fps sustained: {idle_ok}")
        summary["idle"] = f"idle capacity {idle_ok}"
        summary["idle_cpu"] = (f"{per_stream * 100:.1f} % core/idle stream with its visits, "
                               f"{quiet_per_stream * 100:.1f} % when quiet "
                               f"({(quiet_per_stream - decode) * 100:.1f} % beyond decoding "
                               f"{decode * 100:.1f} %)")
        measured = sorted(rss_by_count)
        if len(measured) >= 2:
            per_rss = (rss_by_count[measured[-1]] - rss_by_count[measured[0]]) / (
                measured[-1] - measured[0])
            print(f"resident memory per added stream: {per_rss:.1f} MB")
            summary["rss"] = f"{per_rss:.0f} MB/stream"
        if args.soak_minutes > 0:
            samples: list[tuple[float, float]] = []
            await idle_run(staggered[:4], store, 4, args.soak_minutes * 60,
                           rss_samples=samples)
            first = next((mb for t, mb in samples if t >= 60), samples[0][1])
            last = samples[-1][1]
            growth = (last - first) / first
            print(f"soak, 4 idle streams for {args.soak_minutes:g} min: RSS {first:.0f} MB at "
                  f"1 min -> {last:.0f} MB at the end ({growth:+.1%}); samples "
                  + ", ".join(f"{t / 60:.1f} min {mb:.0f} MB" for t, mb in samples))
            summary["soak"] = f"soak growth {growth:+.1%}"
    print("summary: " + "; ".join(summary.values()))


if __name__ == "__main__":
    asyncio.run(main())
