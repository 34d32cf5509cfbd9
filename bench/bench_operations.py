"""Issue-5 operations: per-image latency against the bare model time, and per-frame cost.

``python bench/bench_operations.py`` times DetectLabels, DetectModerationLabels and
RecognizeCelebrities through the client on the test photos (median, p90), next to the
time of the bare onnxruntime calls those operations make, measured in the same run; then
the per-frame cost of every per-frame operation on the frames of the door clip (what one
analysed frame costs a stream for that operation, face analysis included).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamproc.client import Client  # noqa: E402
from streamproc.inference import get_session  # noqa: E402
from streamproc.runtime.deployment import frame_request_model  # noqa: E402
from streamproc.runtime.frame_input import FrameInput  # noqa: E402
from streamproc.sources import Frame  # noqa: E402


def _bare(name: str) -> float:
    session = get_session(name)
    inp = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    if name == "nudenet":
        shape = [1, 3, 320, 320]
    feed = {inp.name: np.random.default_rng(0).random(shape, np.float32)}
    session.run(None, feed)
    times = []
    for _ in range(15):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    photos = sorted((ROOT / "tests/data/groups").glob("*.jpg")) + sorted(
        (ROOT / "tests/data/objects").glob("*/*.jpg")
    ) + sorted((ROOT / "tests/data/faces").glob("*/1.jpg"))[:10]
    blobs = [p.read_bytes() for p in photos]
    with tempfile.TemporaryDirectory() as tmp:
        client = Client(store=tmp)
        for op in ("detect_labels", "detect_moderation_labels", "recognize_celebrities"):
            getattr(client, op)(Image={"Bytes": blobs[0]})  # load models
        bare = {n: _bare(n) for n in ("nanodet", "efficientnet_lite0", "opennsfw", "nudenet",
                                      "yunet", "sface", "face_mesh")}
        print(f"{len(blobs)} photos; bare model ms: "
              + ", ".join(f"{k} {v:.1f}" for k, v in bare.items()))
        print(f"{'operation':<26}{'median ms':>10}{'p90 ms':>9}{'bare ms':>9}{'ratio':>7}")
        for op, bare_of in (
            ("detect_labels", lambda r: bare["nanodet"] + bare["efficientnet_lite0"]),
            ("detect_moderation_labels", lambda r: bare["opennsfw"] + bare["nudenet"]),
            ("recognize_celebrities", lambda r: bare["yunet"] + (
                len(r["CelebrityFaces"]) + len(r["UnrecognizedFaces"])
            ) * (bare["sface"] + bare["face_mesh"])),
        ):
            times, bares = [], []
            for blob in blobs:
                start = time.perf_counter()
                response = getattr(client, op)(Image={"Bytes": blob})
                times.append((time.perf_counter() - start) * 1000)
                bares.append(bare_of(response))
            print(f"{op:<26}{statistics.median(times):>10.1f}{np.percentile(times, 90):>9.1f}"
                  f"{statistics.median(bares):>9.1f}"
                  f"{statistics.median(times) / statistics.median(bares):>7.2f}")

        engine = client.engine
        frames = []
        with av.open(str(ROOT / "examples/clips/door.mp4")) as container:
            for i, f in enumerate(container.decode(video=0)):
                if i % 10 == 0:
                    frames.append(Frame("door", i, i / 20, time.time(), f.width, f.height,
                                        f.to_ndarray(format="rgb24")))
        client.create_collection(CollectionId="bench")
        params = {
            "DetectFaces": {"Attributes": ["DEFAULT"]},
            "DetectLabels": {},
            "DetectModerationLabels": {},
            "RecognizeCelebrities": {},
            "SearchFacesByImage": {"CollectionId": "bench"},
        }
        print(f"per-frame cost on {len(frames)} frames of the 640x360 door clip "
              f"(face analysis included):")
        for name, p in params.items():
            operation = engine.operations[name]
            request = frame_request_model(operation).model_validate(p)
            needs = operation.frame_needs(request)
            times = []
            for frame in frames:
                start = time.perf_counter()
                assert operation.frame_handler is not None
                operation.frame_handler(FrameInput(frame, engine.context.faces, needs), request,
                                        engine.context)
                times.append((time.perf_counter() - start) * 1000)
            print(f"  {name:<24} median {statistics.median(times):6.1f} ms  "
                  f"p90 {np.percentile(times, 90):6.1f} ms")
        client.close()


if __name__ == "__main__":
    main()
