"""Per-image latency of the face operations against the bare model time, in one run.

``python bench/bench_faces.py`` prints, for DetectFaces DEFAULT and ALL and for
CompareFaces on the test photos: median and p90 ms through the full client (decode,
validation, detection, alignment, attributes, response shapes) and the time of the bare
onnxruntime calls those images need, measured side by side; the ratio is the overhead.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

from streamproc.client import Client
from streamproc.inference import get_session

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = sorted(
    p for p in (ROOT / "tests/data/faces").glob("*/1.*") if p.read_bytes()[:4] != b"RIFF"
) + sorted((ROOT / "tests/data/groups").glob("*.jpg"))


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def _bare(name: str, shape: tuple[int, ...], repeat: int) -> float:
    """Median ms of one inference of model ``name`` on a blob of ``shape``."""
    session = get_session(name)
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).random(shape, np.float32)}
    session.run(None, feed)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    client = Client(store=Path("/tmp/streamproc-bench-store"))
    data = [p.read_bytes() for p in PHOTOS]
    client.detect_faces(Image={"Bytes": data[0]}, Attributes=["ALL"])  # load models
    bare = {
        "yunet": _bare("yunet", (1, 3, 640, 640), 20),
        "sface": _bare("sface", (1, 3, 112, 112), 20),
        "age": _bare("age", (1, 3, 64, 64), 20),
        "gender": _bare("gender", (1, 3, 32, 32), 20),
        "emotion": _bare("emotion", (1, 1, 64, 64), 20),
        "face_mesh": _bare("face_mesh", (1, 192, 192, 3), 20),
    }
    rows = []
    for label, attributes in (("DetectFaces DEFAULT", ["DEFAULT"]), ("DetectFaces ALL", ["ALL"])):
        times, bare_times = [], []
        for blob in data:
            start = time.perf_counter()
            response = client.detect_faces(Image={"Bytes": blob}, Attributes=attributes)
            times.append((time.perf_counter() - start) * 1000)
            n = len(response["FaceDetails"])
            per_face = bare["face_mesh"]  # the pose comes from the mesh in both modes
            if attributes == ["ALL"]:
                per_face += bare["age"] + bare["gender"] + bare["emotion"]
            bare_times.append(bare["yunet"] + n * per_face)
        rows.append((label, times, bare_times))
    times, bare_times = [], []
    source = data[0]
    for blob in data[1:]:
        start = time.perf_counter()
        response = client.compare_faces(
            SourceImage={"Bytes": source}, TargetImage={"Bytes": blob}, SimilarityThreshold=0
        )
        times.append((time.perf_counter() - start) * 1000)
        n = len(response["FaceMatches"]) + len(response["UnmatchedFaces"])
        bare_times.append(2 * bare["yunet"] + (1 + n) * bare["sface"] + n * bare["face_mesh"])
    rows.append(("CompareFaces", times, bare_times))

    print(
        f"photos: {len(data)}  bare model ms: " + ", ".join(f"{k} {v:.1f}" for k, v in bare.items())
    )
    print(f"{'operation':<22}{'median ms':>10}{'p90 ms':>9}{'bare ms':>9}{'ratio':>7}")
    for label, t, b in rows:
        ratio = statistics.median(t) / statistics.median(b)
        print(
            f"{label:<22}{statistics.median(t):>10.1f}{_p(t, 90):>9.1f}"
            f"{statistics.median(b):>9.1f}{ratio:>7.2f}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
