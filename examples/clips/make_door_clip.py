"""How ``door.mp4`` was made: real frames from the shared data set, re-encoded once.

The demo camera first shows a household member walking up to the door: a head-and-shoulders
cut of ``faces/joe_biden/1.jpg`` (not the photo the demo indexes, ``household/joe/2.jpg``)
on a real house photo (``negatives/opencv_home.jpg``), the face growing from ~30 px (too
small to recognise: the visit is announced, unnamed) to ~220 px (named) over 4 s; it stays
a second and leaves. Then a known person (the deepface "elon" identity of the shared face
sets: ``video/dlib_elon_musk_smoke.gif`` from davisking/dlib, played three times), then
people walking towards the camera whom no collection knows
(``video/facenet_people_walking_towards_camera.mp4`` from timesler/facenet-pytorch).
The approach is rendered with the helpers of ``bench/make_visit_clips.py``.
Frames are letterboxed into 640 x 360 and encoded as H.264 (no B-frames, a key frame per
second) at 20 fps so the RTSP test server can stream it. Run from the repository root:
``python examples/clips/make_door_clip.py ../shared/data/video``.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

WIDTH, HEIGHT, FPS = 640, 360, 20


def letterbox(rgb: np.ndarray) -> np.ndarray:
    img = Image.fromarray(rgb)
    scale = min(WIDTH / img.width, HEIGHT / img.height)
    img = img.resize(
        (round(img.width * scale), round(img.height * scale)), Image.Resampling.BILINEAR
    )
    canvas = Image.new("RGB", (WIDTH, HEIGHT))
    canvas.paste(img, ((WIDTH - img.width) // 2, (HEIGHT - img.height) // 2))
    return np.asarray(canvas)


def frames(
    path: Path, every: int = 1, window: tuple[int, int, int, int] | None = None
) -> list[np.ndarray]:
    """Every ``every``-th frame, cut to ``window`` (x1, y1, x2, y2) if given, letterboxed."""
    with av.open(str(path)) as container:
        out = []
        for i, f in enumerate(container.decode(video=0)):
            if i % every == 0:
                rgb = f.to_ndarray(format="rgb24")
                if window is not None:
                    rgb = rgb[window[1]:window[3], window[0]:window[2]]
                out.append(letterbox(rgb))
        return out


def approach() -> list[np.ndarray]:
    """Joe walks up to the door (4 s), waits (1 s) and leaves (1.5 s of the empty porch)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from bench.make_visit_clips import Appearance, Clip, glide, synthetic

    walk = glide(4 * FPS, (250, 170, 30), (330, 175, 220))
    joe = Appearance("joe", "tests/data/faces/joe_biden/1.jpg", 0, walk + [walk[-1]] * FPS)
    clip = synthetic(Clip("door", "", [], {}), "tests/data/negatives/opencv_home.jpg", [joe],
                     len(joe.path) + 3 * FPS // 2)
    return clip.frames


def main() -> None:
    video = Path(sys.argv[1])
    elon = frames(video / "dlib_elon_musk_smoke.gif")
    # The part of the street scene where faces come close (as bench/make_visit_clips.py
    # cuts it): in the whole 1080p frame they stay under 50 px at 640 x 360.
    from bench.make_visit_clips import WALK_WINDOW

    walking = frames(video / "facenet_people_walking_towards_camera.mp4", window=WALK_WINDOW)
    sequence = approach() + elon * 3 + walking
    out = Path(__file__).with_name("door.mp4")
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.time_base = Fraction(1, FPS)
        stream.options = {"crf": "26", "preset": "medium", "bf": "0", "g": str(FPS)}
        for rgb in sequence:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    print(f"{out}: {len(sequence)} frames, {out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
