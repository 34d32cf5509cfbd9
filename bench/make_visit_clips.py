"""Make the labelled visit clips of ``tests/data/visits/`` (and their ``clips.json``).

A visitor tracker ("who is at the door") is scored on these clips: the people named in a
clip's ``gallery`` are indexed from the gallery images, the clip is streamed, and each
visit must be announced with the right name (``null``: a stranger, announced as unknown).
Every input is a real photo or clip of the test data; the synthetic clips paste one real
head-and-shoulders cut-out on a real background, so the ground truth (who is on screen
when) is known by construction. No clip shows the photo its person is indexed from.

After encoding, each clip is decoded again and measured with the project's own face
analyzer (face sizes, gallery-vs-clip cosines), so a regenerated set that no longer fits
its labels fails loudly instead of silently. Run from the repository root:
``python bench/make_visit_clips.py`` (deterministic; about a minute on two cores).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from streamproc.faces import FaceAnalyzer
from streamproc.faces.analyzer import AnalyzedFace
from streamproc.faces.similarity import COSINE_AT_80
from streamproc.images import DecodedImage

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SHARED = ROOT.parent / "shared" / "data"
OUT = DATA / "visits"
WIDTH, HEIGHT, FPS = 640, 360, 20
#: Cosine a gallery image must reach on a clip's large faces of its person (that of the
#: default FaceMatchThreshold, 80), and the margin under it that nobody else may reach.
SAME, OTHER = COSINE_AT_80, 0.35
#: Faces under this many pixels are not searched by the stream runtime, so a visit whose
#: faces never reach it cannot be named, and ``walking`` lists only visits whose faces do.
IDENTIFIABLE = 50.0

WALKING = "video/facenet_people_walking_towards_camera.mp4"
ELON_GIF = "video/dlib_elon_musk_smoke.gif"
#: The walking clip's faces are at most ~105 px in 1920 x 1080 (~35 px if the whole frame
#: were scaled to 640 x 360, too small to identify), so the clip shows this 800 x 450
#: window of the scene (a closer camera), scaled by 0.8.
WALK_WINDOW = (330, 420, 1130, 870)
#: Source frames 0..94 make the clip; the walker's gallery crop comes from frame 98, which
#: the clip leaves out (his face is largest, ~100 px, in frames 96-104). Of those frames,
#: 98 keeps every other walker of the clip under ``OTHER`` (96-104 give 0.34-0.38 for the
#: tall walker; small faces are that close) while matching the walker at 0.58 or more.
WALK_FRAMES = range(0, 95)
WALK_GALLERY_FRAME = 98
#: Roughly where the walker's face is in that frame (source pixels), to pick his face.
WALK_GALLERY_NEAR = (790.0, 700.0)


_analyzer: FaceAnalyzer | None = None


def faces_of(rgb: np.ndarray) -> list[AnalyzedFace]:
    """Faces with embeddings, as the stream runtime analyses a frame (no mesh, upright)."""
    global _analyzer
    if _analyzer is None:
        _analyzer = FaceAnalyzer()
    image = DecodedImage.from_array(np.ascontiguousarray(rgb))
    return _analyzer.analyze(image, embeddings=True, detect_orientation=False, mesh=False).faces


def data_path(rel: str) -> Path:
    """Resolve a path as written in clips.json (relative to the repository root)."""
    return (ROOT / rel).resolve()


def shared(rel: str) -> str:
    return f"../shared/data/{rel}"


def load_photo(rel: str) -> np.ndarray:
    with Image.open(data_path(rel)) as img:
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


def gallery_embedding(rel: str) -> np.ndarray:
    """The embedding IndexFaces would store for a gallery image (its largest face)."""
    faces = faces_of(load_photo(rel))
    if not faces:
        raise SystemExit(f"no face in gallery image {rel}")
    emb = faces[0].embedding
    assert emb is not None
    return emb


Box = Sequence[float] | np.ndarray  # x1, y1, x2, y2


def width_of(box: Box) -> float:
    return float(box[2] - box[0])


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# --------------------------------------------------------------------------- video i/o


def encode(path: Path, frames: Sequence[np.ndarray]) -> None:
    """H.264 as ``examples/clips/make_door_clip.py`` writes it (one thread: same bytes)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.time_base = Fraction(1, FPS)
        stream.options = {"crf": "27", "preset": "medium", "bf": "0", "g": str(FPS), "threads": "1"}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def letterbox(rgb: np.ndarray) -> np.ndarray:
    img = Image.fromarray(rgb)
    scale = min(WIDTH / img.width, HEIGHT / img.height)
    size = (round(img.width * scale), round(img.height * scale))
    img = img.resize(size, Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (WIDTH, HEIGHT))
    canvas.paste(img, ((WIDTH - img.width) // 2, (HEIGHT - img.height) // 2))
    return np.asarray(canvas)


def background(rel: str) -> Image.Image:
    """A no-face photo cropped to 16:9 and scaled to the frame: the camera's empty view."""
    with Image.open(data_path(rel)) as img:
        rgb = img.convert("RGB")
    return ImageOps.fit(rgb, (WIDTH, HEIGHT), Image.Resampling.LANCZOS)


# --------------------------------------------------------------------- synthetic clips


@dataclass
class Cutout:
    """A feathered head-and-shoulders cut of a photo, and where its face is in it."""

    image: Image.Image  # RGBA
    face: tuple[float, float, float, float]  # x1, y1, x2, y2 in the cut-out's pixels

    @property
    def face_width(self) -> float:
        return self.face[2] - self.face[0]


def cutout(rel: str, largest_face: float) -> Cutout:
    """Cut head and shoulders around the photo's largest face.

    The cut is scaled down once so its face is ``largest_face`` wide (every frame then
    only shrinks it), and its edge is feathered so no hard rectangle frames the person.
    """
    rgb = load_photo(rel)
    faces = faces_of(rgb)
    if not faces:
        raise SystemExit(f"no face in {rel}")
    x1, y1, x2, y2 = (float(v) for v in faces[0].box)
    w, h = x2 - x1, y2 - y1
    cx = (x1 + x2) / 2
    region = (
        max(0, round(cx - 1.15 * w)),
        max(0, round(y1 - 0.55 * h)),
        min(rgb.shape[1], round(cx + 1.15 * w)),
        min(rgb.shape[0], round(y2 + 1.0 * h)),
    )
    img = Image.fromarray(rgb).crop(region)
    scale = min(1.0, largest_face / w)
    size = (round(img.width * scale), round(img.height * scale))
    img = img.resize(size, Image.Resampling.LANCZOS)
    feather = max(3, round(0.05 * min(size)))
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rounded_rectangle(
        (feather, feather, size[0] - 1 - feather, size[1] - 1 - feather),
        radius=2 * feather,
        fill=255,
    )
    img.putalpha(mask.filter(ImageFilter.GaussianBlur(feather / 2)))
    face = (
        (x1 - region[0]) * scale,
        (y1 - region[1]) * scale,
        (x2 - region[0]) * scale,
        (y2 - region[1]) * scale,
    )
    return Cutout(img, face)


def place(canvas: Image.Image, cut: Cutout, cx: float, cy: float, face_w: float) -> tuple:
    """Paste ``cut`` so its face is ``face_w`` wide, centred at (cx, cy); the face box."""
    s = face_w / cut.face_width
    size = (max(1, round(cut.image.width * s)), max(1, round(cut.image.height * s)))
    img = cut.image.resize(size, Image.Resampling.LANCZOS)
    fx, fy = (cut.face[0] + cut.face[2]) / 2 * s, (cut.face[1] + cut.face[3]) / 2 * s
    ox, oy = round(cx - fx), round(cy - fy)
    canvas.paste(img, (ox, oy), img)
    x1, y1, x2, y2 = cut.face
    return (ox + x1 * s, oy + y1 * s, ox + x2 * s, oy + y2 * s)


Path3 = list[tuple[float, float, float]]  # per frame: face centre x, y and face width


def glide(frames: int, start: tuple[float, float, float], end: tuple[float, float, float]) -> Path3:
    """Move linearly and grow geometrically (constant speed towards the camera)."""
    steps = max(1, frames - 1)
    return [
        (
            start[0] + (end[0] - start[0]) * i / steps,
            start[1] + (end[1] - start[1]) * i / steps,
            start[2] * (end[2] / start[2]) ** (i / steps),
        )
        for i in range(frames)
    ]


@dataclass
class Appearance:
    """One visit of a synthetic clip: who, from which photo, from which frame, and how."""

    name: str | None
    photo: str
    start: int
    path: Path3

    @property
    def end(self) -> int:
        return self.start + len(self.path)


@dataclass
class Clip:
    """What clips.json says about one clip, and what the checks need to know."""

    name: str
    description: str
    sources: list[str]
    gallery: dict[str, list[str]]
    frames: list[np.ndarray] = field(default_factory=list)
    visits: list[dict[str, Any]] = field(default_factory=list)
    #: Per visit, per frame index: the expected face box (synthetic clips only).
    expected: list[dict[int, tuple | None]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    measured: list[dict[str, Any]] = field(default_factory=list)


def synthetic(clip: Clip, backdrop: str, appearances: list[Appearance], total: int) -> Clip:
    """Render the appearances over a real background; the visits follow by construction."""
    bg = background(backdrop)
    cuts = {a.photo: cutout(a.photo, max(w for _, _, w in a.path)) for a in appearances}
    clip.expected = [{} for _ in appearances]
    for i in range(total):
        canvas = bg.copy()
        for k, a in enumerate(appearances):
            if a.start <= i < a.end:
                cx, cy, w = a.path[i - a.start]
                clip.expected[k][i] = place(canvas, cuts[a.photo], cx, cy, w)
        clip.frames.append(np.asarray(canvas))
    clip.visits = [
        {"name": a.name, "start_s": a.start / FPS, "end_s": a.end / FPS} for a in appearances
    ]
    clip.sources = [*clip.sources, *dict.fromkeys(a.photo for a in appearances), backdrop]
    return clip


def face(rel_identity: str, n: int, ext: str = "jpg") -> str:
    return f"tests/data/faces/{rel_identity}/{n}.{ext}"


def approach() -> Clip:
    clip = Clip(
        "approach",
        "A door approach: one person (deepface 'George', from a high-resolution photo) "
        "walks up to the camera in front of a building, the face growing geometrically "
        "from 30 to 250 px wide over 4 s while drifting to the centre, stays 1 s, and "
        "leaves (1 s of empty scene). Indexed from a different photo of the same person.",
        [],
        {"george": [face("deepface_george", 1)]},
    )
    walk = glide(80, (245, 165, 30), (320, 180, 250))
    hold = [walk[-1]] * 20
    people = [Appearance("george", face("deepface_george", 2), 0, walk + hold)]
    return synthetic(clip, "tests/data/negatives/opencv_building.jpg", people, 120)


def two_people() -> Clip:
    clip = Clip(
        "two_people",
        "Two indexed people side by side in front of a temple (deepface 'Leonardo' left, "
        "'Scarlett' right), faces 120-140 px, drifting slightly for 4 s; then 1 s of "
        "empty scene. Each is indexed from a different photo than the one shown.",
        [],
        {
            "leonardo": [face("deepface_leonardo", 4)],
            "scarlett": [face("deepface_scarlett", 1)],
        },
    )
    people = [
        Appearance(
            "leonardo", face("deepface_leonardo", 1), 0, glide(80, (175, 178, 120), (195, 170, 135))
        ),
        Appearance(
            "scarlett", face("deepface_scarlett", 4), 0, glide(80, (470, 168, 140), (452, 176, 125))
        ),
    ]
    return synthetic(clip, "tests/data/negatives/sklearn_china.jpg", people, 100)


def cut() -> Clip:
    clip = Clip(
        "cut",
        "A hard cut: indexed person A (deepface 'Mark') in front of a brick wall for 3 s, "
        "then from one frame to the next indexed person B (deepface 'Jack') at the same "
        "place with the same face size (~140 px) for 3 s, then 1 s of empty wall. A "
        "tracker must not carry A's name over to B.",
        [],
        {"mark": [face("deepface_mark", 2)], "jack": [face("deepface_jack", 1)]},
    )
    people = [
        Appearance(
            "mark", face("deepface_mark", 1), 0, glide(60, (316, 172, 138), (324, 168, 142))
        ),
        Appearance(
            "jack", face("deepface_jack", 2), 60, glide(60, (324, 168, 142), (316, 174, 140))
        ),
    ]
    return synthetic(clip, "tests/data/negatives/skimage_brick.png", people, 140)


def strangers() -> Clip:
    clip = Clip(
        "strangers",
        "Only people nobody indexed: 'kit_harington' approaches from the left (2.5 s), "
        "1.2 s of empty scene, 'lennon' approaches from the right (2.5 s), 1 s empty. "
        "The gallery holds the people of approach, two_people and cut, so a wrong name "
        "shows; every visit must be announced as unknown.",
        [],
        {},
    )
    people = [
        Appearance(None, face("kit_harington", 3), 0, glide(50, (200, 185, 80), (300, 175, 150))),
        Appearance(None, face("lennon", 1), 74, glide(50, (440, 180, 90), (345, 172, 150))),
    ]
    return synthetic(clip, "tests/data/negatives/opencv_home.jpg", people, 144)


def elon() -> Clip:
    clip = Clip(
        "elon",
        "The dlib elon-musk-smoke GIF (35 frames) letterboxed into 640 x 360 and played "
        "twice at 20 fps, then 1 s of black. Indexed from the three demo household "
        "photos (= faces/deepface_elon/1-3.jpg, a different source than the GIF).",
        [shared(ELON_GIF)],
        {"elon": [f"examples/household/elon/{n}.jpg" for n in (1, 2, 3)]},
    )
    with av.open(str(SHARED / ELON_GIF)) as container:
        gif = [letterbox(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    clip.frames = gif * 2 + [np.zeros((HEIGHT, WIDTH, 3), np.uint8)] * FPS
    clip.visits = [{"name": "elon", "start_s": 0.0, "end_s": 2 * len(gif) / FPS}]
    clip.expected = [dict.fromkeys(range(2 * len(gif)))]  # None: the frame's largest face
    clip.sources.extend(clip.gallery["elon"])
    return clip


# ------------------------------------------------------------------------- walking


def walking() -> Clip:
    """The real clip; the walker's gallery crop comes from a frame the clip leaves out."""
    clip = Clip(
        "walking",
        "Real footage (facenet-pytorch's people walking towards the camera in an arcade): "
        f"source frames {WALK_FRAMES.start}-{WALK_FRAMES.stop - 1} of 105 (25 fps, shown "
        "frame by frame at 20 fps, i.e. 0.8x speed), an 800 x 450 window of the "
        "1920 x 1080 scene scaled to 640 x 360. The walker in the middle (coming straight "
        "towards the camera, faces of about 50-75 px) is indexed as 'walker' from a crop of source "
        f"frame {WALK_GALLERY_FRAME}, which the clip does not contain; the other walkers "
        "are strangers (visits with faces of at least 50 px are listed).",
        [shared(WALKING)],
        {"walker": ["tests/data/visits/gallery/walker.jpg"]},
    )
    with av.open(str(SHARED / WALKING)) as container:
        source = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    for i in WALK_FRAMES:
        window = Image.fromarray(source[i]).crop(WALK_WINDOW)
        clip.frames.append(np.asarray(window.resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR)))
    gallery_frame = source[WALK_GALLERY_FRAME]
    near = WALK_GALLERY_NEAR
    faces = faces_of(gallery_frame)
    walker = min(
        faces,
        key=lambda f: math.dist(((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2), near),
    )
    others = [tuple(float(v) for v in f.box) for f in faces if f is not walker]
    box = lone_crop(tuple(float(v) for v in walker.box), others, gallery_frame.shape)
    x1, _, x2, _ = walker.box
    (OUT / "gallery").mkdir(parents=True, exist_ok=True)
    Image.fromarray(gallery_frame).crop(box).save(OUT / "gallery" / "walker.jpg", quality=92)
    if len(faces_of(load_photo("tests/data/visits/gallery/walker.jpg"))) != 1:
        raise SystemExit("the walker's gallery crop must show his face only")
    clip.notes.append(
        f"gallery/walker.jpg is source frame {WALK_GALLERY_FRAME} ({WALK_GALLERY_FRAME / 25:.2f}"
        f" s at 25 fps), crop {box} of the 1920 x 1080 frame around the walker's "
        f"{x2 - x1:.0f} px face; the clip holds source frames {WALK_FRAMES.start}-"
        f"{WALK_FRAMES.stop - 1} only"
    )
    return clip


def lone_crop(
    face: tuple[float, ...], others: list[tuple[float, ...]], shape: tuple[int, ...]
) -> tuple[int, int, int, int]:
    """A square 3x the face box that shows no other face (IndexFaces would index it too).

    The square is centred on the face when it can be, else slid (the face kept whole,
    with a quarter face of margin) until it clears every other face.
    """
    x1, y1, x2, y2 = face
    side = round(max(3 * (x2 - x1), 3 * (y2 - y1), 120.0))
    margin = 0.25 * (x2 - x1)
    centred = ((x1 + x2 - side) / 2, (y1 + y2 - side) / 2)
    candidates = [
        (round(x0), round(y0))
        for x0 in np.arange(x2 + margin - side, x1 - margin + 1, 2.0)
        for y0 in np.arange(y2 + margin - side, y1 - margin + 1, 2.0)
        if x0 >= 0 and y0 >= 0 and x0 + side <= shape[1] and y0 + side <= shape[0]
    ]
    clear = [
        (x0, y0)
        for x0, y0 in candidates
        if all(iou((x0, y0, x0 + side, y0 + side), o) == 0.0 for o in others)
    ]
    if not clear:
        raise SystemExit("no crop around the walker's face clears the other faces")
    x0, y0 = min(clear, key=lambda c: (math.dist(c, centred), c))
    return (x0, y0, x0 + side, y0 + side)


def track(detections: list[list[AnalyzedFace]]) -> list[dict[int, AnalyzedFace]]:
    """Link detections frame to frame by nearness (gaps of up to 5 frames are bridged)."""
    tracks: list[dict[int, AnalyzedFace]] = []
    for i, faces in enumerate(detections):
        taken: set[int] = set()
        for f in faces:
            c = ((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2)
            best, best_d = None, math.inf
            for k, t in enumerate(tracks):
                last = max(t)
                if k in taken or i - last > 5:
                    continue
                g = t[last]
                d = math.dist(c, ((g.box[0] + g.box[2]) / 2, (g.box[1] + g.box[3]) / 2))
                if d < 0.6 * max(width_of(f.box), width_of(g.box)) and d < best_d:
                    best, best_d = k, d
            if best is None:
                tracks.append({i: f})
                taken.add(len(tracks) - 1)
            else:
                tracks[best][i] = f
                taken.add(best)
    return tracks


def label_walkers(clip: Clip, decoded: list[np.ndarray], gallery: dict[str, np.ndarray]) -> None:
    """Visits of the walking clip from the detector: the walker's track, and strangers'."""
    detections = [faces_of(rgb) for rgb in decoded]
    walker = gallery["walker"]
    for t in track(detections):
        widths = [width_of(f.box) for f in t.values()]
        if len(t) < 5 or max(widths) < IDENTIFIABLE:
            continue
        cosines = [float(f.embedding @ walker) for f in t.values() if f.embedding is not None]
        name = "walker" if float(np.median(cosines)) >= SAME else None
        clip.visits.append({"name": name, "start_s": min(t) / FPS, "end_s": (max(t) + 1) / FPS})
        clip.expected.append({i: tuple(float(v) for v in f.box) for i, f in t.items()})
    order = sorted(range(len(clip.visits)), key=lambda k: clip.visits[k]["start_s"])
    clip.visits = [clip.visits[k] for k in order]
    clip.expected = [clip.expected[k] for k in order]


# ------------------------------------------------------------------------------ checks


def measure(
    clip: Clip, decoded: list[np.ndarray], gallery: dict[str, list[np.ndarray]], step: int
) -> list[str]:
    """Face sizes and cosines per visit on the decoded clip; the problems found."""
    problems: list[str] = []
    sampled = range(0, len(decoded), step)
    detections = {i: faces_of(decoded[i]) for i in sampled}
    claimed: set[tuple[int, int]] = set()
    for k, visit in enumerate(clip.visits):
        frames = [i for i in sampled if i in clip.expected[k]]
        found: list[tuple[int, AnalyzedFace]] = []
        for i in frames:
            box = clip.expected[k][i]
            if box is None:
                score, j = (1.0, 0) if detections[i] else (0.0, -1)
            else:
                hits = [(iou(f.box, box), j) for j, f in enumerate(detections[i])]
                score, j = max(hits, default=(0.0, -1))
            if score >= 0.3:
                found.append((i, detections[i][j]))
                claimed.add((i, j))
        widths = [width_of(f.box) for _, f in found]
        result: dict[str, Any] = {
            "name": visit["name"],
            "detected_fraction": round(len(found) / max(1, len(frames)), 2),
            "face_px": [round(min(widths)), round(max(widths))] if widths else None,
        }
        name = visit["name"]
        searched = [f for _, f in found if width_of(f.box) >= IDENTIFIABLE]
        others = [g for n, embs in gallery.items() if n != name for g in embs]
        if others and searched:
            worst = max(float(f.embedding @ g) for f in searched for g in others)
            result["max_cosine_other"] = round(worst, 3)
            if worst >= OTHER:
                problems.append(
                    f"{clip.name}: visit {k} ({name}) matches another gallery person at {worst:.3f}"
                )
        if name is not None:
            large = [f for f in searched if width_of(f.box) >= 0.75 * max(widths)]
            cos = [max(float(f.embedding @ g) for g in gallery[name]) for f in large]
            result["large_px_from"] = round(0.75 * max(widths))
            result["cosine_large"] = {
                "frames": len(cos),
                "min": round(min(cos), 3) if cos else None,
                "median": round(float(np.median(cos)), 3) if cos else None,
                "max": round(max(cos), 3) if cos else None,
                "at_least_same": sum(c >= SAME for c in cos),
            }
            if sum(c >= SAME for c in cos) < max(3, len(cos) // 2):
                problems.append(f"{clip.name}: {name} gallery matches too few large faces")
        if result["detected_fraction"] < 0.6:
            problems.append(f"{clip.name}: visit {k} ({name}) found in too few frames")
        clip.measured.append(result)
    strays = [
        (i, round(width_of(f.box)))
        for i in sampled
        for j, f in enumerate(detections[i])
        if (i, j) not in claimed and width_of(f.box) >= IDENTIFIABLE
    ]
    if strays and clip.name != "walking":
        problems.append(f"{clip.name}: faces outside any visit: {strays[:5]}")
    return problems


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    makers: list[Callable[[], Clip]] = [walking, approach, two_people, cut, elon, strangers]
    clips = [make() for make in makers]
    everyone = {
        n: p
        for c in clips
        if c.name in ("approach", "two_people", "cut")
        for n, p in c.gallery.items()
    }
    next(c for c in clips if c.name == "strangers").gallery = everyone
    problems: list[str] = []
    document: dict[str, Any] = {}
    for clip in clips:
        path = OUT / f"{clip.name}.mp4"
        encode(path, clip.frames)
        decoded = decode(path)
        gallery = {n: [gallery_embedding(p) for p in paths] for n, paths in clip.gallery.items()}
        if clip.name == "walking":
            label_walkers(clip, decoded, {n: e[0] for n, e in gallery.items()})
        problems += measure(clip, decoded, gallery, step=1 if clip.name == "walking" else 2)
        document[clip.name] = {
            "file": path.name,
            "fps": FPS,
            "duration_s": len(decoded) / FPS,
            "description": clip.description,
            "sources": clip.sources,
            "gallery": clip.gallery,
            "visits": clip.visits,
            **({"notes": clip.notes} if clip.notes else {}),
            "measured": clip.measured,
        }
        print(f"{path.relative_to(ROOT)}: {len(decoded)} frames, {path.stat().st_size} bytes")
        for m in clip.measured:
            print("   ", json.dumps(m))
    (OUT / "clips.json").write_text(json.dumps(document, indent=1) + "\n")
    for p in problems:
        print("CHECK FAILED:", p)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
