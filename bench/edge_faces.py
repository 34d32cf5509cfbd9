"""Faces cut off by the image edge: build the measurement set, print before/after.

``python bench/edge_faces.py [DATA_DIR] [--step N] [--sweep]``

Builds, in a temporary directory, every identity photo of ``DATA_DIR/faces`` (default:
the shared data set when present, else ``tests/data``) cropped so that 10 %, 25 % and
40 % of its face box lies outside the image, on each side in turn (the other sides keep
a 15 % margin: a close-up, the face fills the frame), and prints for the whole photos and
for the cut-off set: ROC AUC, same-person pairs at Similarity >= 80, different-person
pairs at >= 80, and search rank-1 with the first photo of each identity indexed.

Galleries are whole photos indexed the product's way (flip-averaged: FaceModelVersion
sface-2021dec-2) or single embeddings; probes are the cut images (and the whole photos) as
a search or a camera frame gives them: "plain" (one embedding) or "flip-border" (the
product's: flip-averaged where the face touches the border). ``--border-pass`` adds the
border pass (re-detection on a padded canvas, ``analyze(edge=...)``), which measured no
gain and is off in the product. ``--sweep`` measures the canvas and crop fills and canvas
scales instead (on the 25 % and 40 % cuts); ``--step N`` uses every N-th photo (quicker,
less exact: trust the full set).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from streamproc.faces import FaceAnalyzer, similarity
from streamproc.faces.analyzer import EDGE_FACES
from streamproc.faces.detector import DetectedFace
from streamproc.faces.edge import EdgeOptions, edge_aligned_crop, recover_edge_face
from streamproc.images import DecodedImage
from streamproc.vision.edge import landmark_layout, touches_border

ROOT = Path(__file__).resolve().parents[1]
FRACTIONS = (0.10, 0.25, 0.40)
SIDES = ("left", "right", "top", "bottom")
#: Context kept on the three other sides, as a fraction of the face box.
CONTEXT = 0.15


def default_data_dir() -> Path:
    shared = ROOT.parent / "shared" / "data"
    return shared if (shared / "faces").is_dir() else ROOT / "tests" / "data"


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))


def cut_window(
    box: np.ndarray, width: int, height: int, side: str, fraction: float
) -> tuple[int, int, int, int] | None:
    """The crop (x1, y1, x2, y2) leaving ``fraction`` of the box past ``side``; None if the
    photo already cuts that much off there."""
    x1, y1, x2, y2 = (float(v) for v in box)
    bw, bh = x2 - x1, y2 - y1
    win = [x1 - CONTEXT * bw, y1 - CONTEXT * bh, x2 + CONTEXT * bw, y2 + CONTEXT * bh]
    cut = {
        "left": (0, x1 + fraction * bw),
        "top": (1, y1 + fraction * bh),
        "right": (2, x2 - fraction * bw),
        "bottom": (3, y2 - fraction * bh),
    }[side]
    win[cut[0]] = cut[1]
    if (side in ("left", "top") and cut[1] <= 0) or (side == "right" and cut[1] >= width):
        return None
    if side == "bottom" and cut[1] >= height:
        return None
    ix1, iy1 = max(0, round(win[0])), max(0, round(win[1]))
    ix2, iy2 = min(width, round(win[2])), min(height, round(win[3]))
    return (ix1, iy1, ix2, iy2) if ix2 - ix1 >= 16 and iy2 - iy1 >= 16 else None


@dataclass(frozen=True)
class Cut:
    path: Path
    source: str  # identity/photo of the whole photo it was cut from
    side: str
    fraction: float


def build_set(
    analyzer: FaceAnalyzer, photos: dict[str, Path], out: Path
) -> tuple[list[Cut], dict[str, np.ndarray]]:
    """The cut-off images (PNG, lossless) and the whole photos' face boxes."""
    cuts, boxes = [], {}
    for key, path in photos.items():
        rgb = load_rgb(path)
        faces = analyzer.analyze(
            DecodedImage.from_array(rgb), max_faces=1, mesh=False, edge=None
        ).faces
        if not faces:
            continue
        boxes[key] = faces[0].box
        h, w = rgb.shape[:2]
        for side, fraction in itertools.product(SIDES, FRACTIONS):
            window = cut_window(faces[0].box, w, h, side, fraction)
            if window is None:
                continue
            name = out / f"{key.replace('/', '__')}__{side}_{int(fraction * 100)}.png"
            Image.fromarray(rgb[window[1] : window[3], window[0] : window[2]]).save(name)
            cuts.append(Cut(name, key, side, fraction))
    return cuts, boxes


def embed(
    analyzer: FaceAnalyzer, rgb: np.ndarray, edge: EdgeOptions | None, flip: bool,
    flip_border: bool = False,
) -> np.ndarray | None:
    faces = analyzer.analyze(
        DecodedImage.from_array(rgb),
        embeddings=True,
        max_faces=1,
        mesh=False,
        edge=edge,
        flip_average=flip,
        flip_border=flip_border,
    ).faces
    return faces[0].embedding if faces else None


def auc(same: np.ndarray, different: np.ndarray) -> float:
    """ROC AUC: P(a same-person pair scores above a different-person pair), ties half."""
    ordered = np.sort(different)
    below = np.searchsorted(ordered, same, side="left")
    not_above = np.searchsorted(ordered, same, side="right")
    return float((below + not_above).sum() / 2 / (len(same) * len(different)))


def identity(key: str) -> str:
    return key.split("/")[0]


@dataclass
class Row:
    name: str
    auc: float
    same_80: int
    same_n: int
    diff_80: int
    diff_n: int
    diff_max: float
    rank1: int
    rank1_80: int
    searches: int

    def line(self) -> str:
        return (
            f"| {self.name} | {self.auc:.4f} | {self.same_80}/{self.same_n} "
            f"({100 * self.same_80 / max(self.same_n, 1):.1f} %) | {self.diff_80}/{self.diff_n} "
            f"(max {self.diff_max:.1f}) | {self.rank1}/{self.searches} | "
            f"{self.rank1_80}/{self.searches} |"
        )


HEADER = (
    "| | ROC AUC | same-person >= 80 | different-person >= 80 | rank-1 | rank-1 >= 80 |\n"
    "|---|---|---|---|---|---|"
)


def evaluate(
    name: str,
    probes: dict[str, tuple[str, np.ndarray]],
    gallery: dict[str, np.ndarray],
    first: dict[str, str],
    excluded: set[frozenset[str]],
    symmetric: bool,
) -> Row:
    """``probes``: key -> (source photo, vector); pairs against every other gallery photo.

    ``symmetric`` (whole photos against themselves): each unordered pair counted once.
    Search: the first photo of each identity is indexed, probes from other photos search.
    """
    same, different = [], []
    keys = list(gallery)
    matrix = np.stack([gallery[k] for k in keys])
    for _probe, (source, vector) in probes.items():
        cosines = matrix @ vector
        for key, cosine in zip(keys, cosines, strict=True):
            if key == source or frozenset((key, source)) in excluded:
                continue
            if symmetric and key < source:
                continue
            (same if identity(key) == identity(source) else different).append(float(cosine))
    sim_same = np.asarray(similarity(np.asarray(same)))
    sim_diff = np.asarray(similarity(np.asarray(different)))
    people = sorted(first)
    index = np.stack([gallery[first[p]] for p in people])
    rank1 = rank1_80 = searches = 0
    for _probe, (source, vector) in probes.items():
        if source == first[identity(source)]:
            continue
        searches += 1
        cosines = index @ vector
        best = int(np.argmax(cosines))
        if people[best] == identity(source):
            rank1 += 1
            rank1_80 += int(similarity(float(cosines[best])) >= 80)
    return Row(
        name,
        auc(np.asarray(same), np.asarray(different)),
        int((sim_same >= 80).sum()),
        len(same),
        int((sim_diff >= 80).sum()),
        len(different),
        float(sim_diff.max()),
        rank1,
        rank1_80,
        searches,
    )


def sweep(
    analyzer: FaceAnalyzer,
    cuts: list[Cut],
    whole: dict[str, np.ndarray],
    excluded: set[frozenset[str]],
) -> None:
    """Mean same-person cosine and same-person pairs >= 80 of cut probes, per fill."""
    cuts = [c for c in cuts if c.fraction >= 0.25]
    canvas_fills = ("black", "grey", "mean", "replicate")
    crop_fills = ("canvas", "black", "mean", "mirror")
    scales = (2.0, 2.5, 3.0)
    variants = [("before", None, "")] + [
        (f"scale {s} canvas {cf} crop {kf}", EdgeOptions(s, cf, kf), f"{s}{cf}")  # type: ignore[arg-type]
        for s in scales
        for cf in canvas_fills
        for kf in crop_fills
        if s == 2.5 or (cf == "black" and kf == "canvas")
    ]
    vectors: dict[str, dict[str, np.ndarray]] = {v[0]: {} for v in variants}
    chosen: dict[str, int] = {}
    start = time.perf_counter()
    for cut in cuts:
        rgb = load_rgb(cut.path)
        faces = analyzer.analyze(
            DecodedImage.from_array(rgb),
            detect_orientation=False,
            max_faces=1,
            mesh=False,
            edge=None,
            embeddings=True,
        ).faces
        if not faces:
            continue
        f = faces[0]
        assert f.embedding is not None
        vectors["before"][str(cut.path)] = f.embedding
        det = DetectedFace(box=f.box, score=f.confidence / 100, landmarks=f.landmarks)
        recovered: dict[str, object] = {}
        crops, names = [], []
        for name, options, canvas_key in variants[1:]:
            assert options is not None
            if canvas_key not in recovered:
                recovered[canvas_key] = recover_edge_face(analyzer.detector, rgb, det, options)
            found = recovered[canvas_key]
            if found is None:  # does not touch the border: as before
                vectors[name][str(cut.path)] = f.embedding
                continue
            chosen[name] = chosen.get(name, 0) + int(found.canvas is not None)  # type: ignore[attr-defined]
            crops.append(edge_aligned_crop(rgb, found, options))  # type: ignore[arg-type]
            names.append(name)
        for name, vector in zip(names, analyzer.embedder.embed_crops(crops), strict=True):
            vectors[name][str(cut.path)] = vector
    print(f"sweep: {len(cuts)} cut images (25 % and 40 %), {time.perf_counter() - start:.0f} s")
    source = {str(c.path): c.source for c in cuts}
    print("| variant | mean same-person cosine | same-person >= 80 | diff >= 80 | canvas chosen |")
    print("|---|---|---|---|---|")
    for name, found_vectors in vectors.items():
        same, diff = [], []
        for key, vector in found_vectors.items():
            for other, whole_vector in whole.items():
                if other == source[key] or frozenset((other, source[key])) in excluded:
                    continue
                cosine = float(whole_vector @ vector)
                (same if identity(other) == identity(source[key]) else diff).append(cosine)
        s, d = np.asarray(same), np.asarray(diff)
        print(
            f"| {name} | {s.mean():.4f} | {(similarity(s) >= 80).mean() * 100:.1f} % | "
            f"{int((similarity(d) >= 80).sum())} | {chosen.get(name, 0)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=default_data_dir())
    parser.add_argument("--step", type=int, default=1)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--border-pass", action="store_true",
                        help="also the border pass (re-detection on a padded canvas)")
    args = parser.parse_args()
    data_dir: Path = args.data_dir
    manifest = json.loads((data_dir / "MANIFEST.json").read_text())
    excluded = {frozenset(p[:2]) for p in manifest.get("near_duplicate_pairs", [])}
    excluded = {frozenset(k.removeprefix("faces/") for k in pair) for pair in excluded}
    photos = {
        str(p.relative_to(data_dir / "faces")): p for p in sorted((data_dir / "faces").glob("*/*"))
    }
    photos = dict(list(photos.items())[:: args.step])
    first: dict[str, str] = {}
    for key in photos:
        first.setdefault(identity(key), key)
    analyzer = FaceAnalyzer()
    with tempfile.TemporaryDirectory(prefix="edge_faces_") as tmp:
        start = time.perf_counter()
        cuts, boxes = build_set(analyzer, photos, Path(tmp))
        print(
            f"data: {data_dir}  whole photos: {len(boxes)}  cut-off images: {len(cuts)} "
            f"({time.perf_counter() - start:.0f} s)"
        )
        border = [k for k, b in boxes.items() if touches_border(b, *_size(photos[k]))]
        print(f"whole photos whose face touches the border: {len(border)}")
        layouts = (
            [
                landmark_layout(f.box, f.landmarks)
                for k in boxes
                if k not in border
                for f in analyzer.analyze(
                    DecodedImage.from_array(load_rgb(photos[k])), max_faces=1, mesh=False
                ).faces
            ]
            if args.sweep
            else []
        )
        for name in layouts[0] if layouts else []:
            values = np.array([lay[name] for lay in layouts])
            print(
                f"layout {name}: p0.5 {np.percentile(values, 0.5):.3f} "
                f"p99.5 {np.percentile(values, 99.5):.3f}"
            )
        # gallery pipelines (whole photos): name -> (border pass, flip-averaged)
        modes = {"single": (None, False), "flip": (None, True)}
        if args.border_pass:
            modes |= {"after": (EDGE_FACES, False), "after+flip": (EDGE_FACES, True)}
        if args.sweep:
            modes = {"single": (None, False)}
        whole: dict[str, dict[str, np.ndarray]] = {m: {} for m in modes}
        timings: dict[str, float] = {}
        for mode, (edge, flip) in modes.items():
            start = time.perf_counter()
            for key, path in photos.items():
                vector = embed(analyzer, load_rgb(path), edge, flip)
                if vector is not None:
                    whole[mode][key] = vector
            timings[f"whole {mode}"] = (time.perf_counter() - start) / len(photos)
        if args.sweep:
            sweep(analyzer, cuts, whole["single"], excluded)
            return
        # probe pipelines (cut images and whole photos as a camera or a search gives them):
        # plain, or flip-averaged where the face touches the border (the product's probes)
        probe_modes = {"plain": (None, False), "flip-border": (None, True)}
        if args.border_pass:
            probe_modes["after"] = (EDGE_FACES, False)
        probes: dict[str, dict[str, tuple[str, np.ndarray]]] = {}
        whole_probes: dict[str, dict[str, tuple[str, np.ndarray]]] = {}
        for mode, (edge, flip_border) in probe_modes.items():
            probes[mode], whole_probes[mode] = {}, {}
            start = time.perf_counter()
            for cut in cuts:
                vector = embed(analyzer, load_rgb(cut.path), edge, False, flip_border)
                if vector is not None:
                    probes[mode][str(cut.path)] = (cut.source, vector)
            timings[f"cut {mode}"] = (time.perf_counter() - start) / len(cuts)
            for key, path in photos.items():
                vector = embed(analyzer, load_rgb(path), edge, False, flip_border)
                if vector is not None:
                    whole_probes[mode][key] = (key, vector)
    print("\nWhole photos, all pairs (first photo of each identity indexed for rank-1):")
    print(HEADER)
    singles = {m: {k: (k, v) for k, v in whole[m].items()} for m in whole}
    print(evaluate("single vs single (the calibration's setting)", singles["single"],
                   whole["single"], first, excluded, True).line())
    for mode in probe_modes:
        gallery = "after+flip" if mode == "after" else "flip"
        print(evaluate(f"flip gallery, {mode} probe", whole_probes[mode], whole[gallery],
                       first, excluded, False).line())
    print("\nCut-off set: each cut image (probe) against the other whole photos (gallery):")
    print(HEADER)
    rows = [(f"flip gallery, {mode} probe", probes[mode],
             whole["after+flip" if mode == "after" else "flip"]) for mode in probe_modes]
    rows.insert(0, ("single gallery, plain probe", probes["plain"], whole["single"]))
    for name, probe, gallery in rows:
        print(evaluate(name, probe, gallery, first, excluded, False).line())
    for fraction in FRACTIONS:
        keep = {str(c.path) for c in cuts if c.fraction == fraction}
        for name, probe, gallery in rows:
            subset = {k: v for k, v in probe.items() if k in keep}
            label = f"{name}, {int(fraction * 100)} % outside"
            print(evaluate(label, subset, gallery, first, excluded, False).line())
    print("\nms per image (analyze, largest face, no mesh):")
    for name, seconds in timings.items():
        print(f"  {name}: {seconds * 1000:.0f}")


def _size(path: Path) -> tuple[int, int]:
    width, height = ImageOps.exif_transpose(Image.open(path)).size
    return width, height


if __name__ == "__main__":
    sys.exit(main())
