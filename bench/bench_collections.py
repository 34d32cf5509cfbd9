"""SearchFacesByImage split into detect+embed and search; IndexFaces throughput.

``python bench/bench_collections.py`` indexes the test face sets into a fresh collection
(images/s), then times SearchFacesByImage on every photo, next to the time of its two
halves measured on the same photos in the same run: face analysis (decode, detect,
align, embed) and the collection search alone.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from streamproc.client import Client
from streamproc.images import decode_image

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    store = Path(tempfile.mkdtemp(prefix="streamproc-bench-"))
    try:
        client = Client(store=store)
        client.create_collection(CollectionId="bench")
        photos = [
            p
            for p in sorted((ROOT / "tests/data/faces").glob("*/*"))
            if p.read_bytes()[:4] != b"RIFF"
        ]
        blobs = [p.read_bytes() for p in photos]
        client.detect_faces(Image={"Bytes": blobs[0]})  # load models before timing
        start = time.perf_counter()
        for path, blob in zip(photos, blobs, strict=True):
            client.index_faces(
                CollectionId="bench",
                Image={"Bytes": blob},
                ExternalImageId=path.parent.name,
                MaxFaces=1,
            )
        index_s = time.perf_counter() - start
        engine = client.engine
        analyzer = engine.context.faces
        store_obj = engine.context.store
        total, analyse, search = [], [], []
        for blob in blobs:
            t0 = time.perf_counter()
            client.search_faces_by_image(CollectionId="bench", Image={"Bytes": blob})
            t1 = time.perf_counter()
            faces = analyzer.analyze(decode_image(blob), embeddings=True, max_faces=1)
            t2 = time.perf_counter()
            store_obj.search("bench", faces.faces[0].embedding, max_faces=4096, min_score=0.46)
            t3 = time.perf_counter()
            total.append((t1 - t0) * 1000)
            analyse.append((t2 - t1) * 1000)
            search.append((t3 - t2) * 1000)
        print(
            f"IndexFaces: {len(blobs)} photos in {index_s:.1f} s = "
            f"{len(blobs) / index_s:.1f} images/s"
        )
        print(f"{'SearchFacesByImage':<28}{'median ms':>10}{'p90 ms':>9}")
        for label, values in (
            ("total (client)", total),
            ("detect + embed", analyse),
            (f"search ({len(blobs)} faces)", search),
        ):
            print(f"{label:<28}{statistics.median(values):>10.2f}{np.percentile(values, 90):>9.2f}")
        ratio = statistics.median(total) / (statistics.median(analyse) + statistics.median(search))
        print(f"ratio total / (detect+embed + search): {ratio:.2f}")
        print("search alone over 10k/100k/1M faces: python bench/bench_store.py")
    finally:
        shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
