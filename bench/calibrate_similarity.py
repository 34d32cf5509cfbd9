"""Measure SFace cosines of same- and different-person pairs on the face identity sets.

The anchors of ``streamproc/faces/similarity.py`` come from this script's output:
run ``python bench/calibrate_similarity.py [DATA_DIR]`` (default: the shared data set
when present, else ``tests/data``) and read the suggested anchors.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from streamproc.faces import FaceAnalyzer, similarity
from streamproc.images import DecodedImage

ROOT = Path(__file__).resolve().parents[1]


def default_data_dir() -> Path:
    shared = ROOT.parent / "shared" / "data"
    return shared if (shared / "faces").is_dir() else ROOT / "tests" / "data"


def identity_embeddings(data_dir: Path) -> dict[str, np.ndarray]:
    """Largest-face embedding of every photo under ``faces/<identity>/``, keyed by path."""
    analyzer = FaceAnalyzer()
    out: dict[str, np.ndarray] = {}
    for path in sorted((data_dir / "faces").glob("*/*")):
        # Any format PIL reads (the sets hold a WebP too): calibration is about faces.
        rgb = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
        image = DecodedImage.from_array(rgb)
        faces = analyzer.analyze(image, embeddings=True, max_faces=1)
        if faces.faces and faces.faces[0].embedding is not None:
            out[str(path.relative_to(data_dir))] = faces.faces[0].embedding
        else:
            print(f"no face: {path}", file=sys.stderr)
    return out


def pair_cosines(
    embeddings: dict[str, np.ndarray], excluded: set[frozenset[str]]
) -> tuple[np.ndarray, np.ndarray]:
    same, different = [], []
    for (a, va), (b, vb) in itertools.combinations(embeddings.items(), 2):
        if frozenset((a, b)) in excluded:
            continue
        cosine = float(np.dot(va, vb))
        (same if a.split("/")[1] == b.split("/")[1] else different).append(cosine)
    return np.asarray(same), np.asarray(different)


def main() -> None:
    data_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else default_data_dir()
    manifest = json.loads((data_dir / "MANIFEST.json").read_text())
    excluded = {frozenset(p[:2]) for p in manifest.get("near_duplicate_pairs", [])}
    embeddings = identity_embeddings(data_dir)
    same, different = pair_cosines(embeddings, excluded)
    print(f"data: {data_dir}  photos with a face: {len(embeddings)}")
    print(f"same-person pairs: {len(same)}  different-person pairs: {len(different)}")
    print(
        f"different: max cosine {different.max():.3f}  p99.9 {np.percentile(different, 99.9):.3f}"
    )
    print(
        f"same: min cosine {same.min():.3f}  p1 {np.percentile(same, 1):.3f}  "
        f"median {np.median(same):.3f}"
    )
    sim_same, sim_diff = similarity(same), similarity(different)
    print(
        f"with the current anchors: different pairs >= 80: {(sim_diff >= 80).sum()}  "
        f"max {sim_diff.max():.1f}; same pairs >= 80: {(sim_same >= 80).mean() * 100:.1f} %  "
        f"median {np.median(sim_same):.1f}"
    )


if __name__ == "__main__":
    main()
