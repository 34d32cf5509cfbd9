"""How ``door.mp4`` was made: real frames from the shared data set, re-encoded once.

The demo camera shows a known person (the deepface "elon" identity of the shared face
sets: ``video/dlib_elon_musk_smoke.gif`` from davisking/dlib, played three times), then
people walking towards the camera whom no collection knows
(``video/facenet_people_walking_towards_camera.mp4`` from timesler/facenet-pytorch).
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


def frames(path: Path, every: int = 1) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [
            letterbox(f.to_ndarray(format="rgb24"))
            for i, f in enumerate(container.decode(video=0))
            if i % every == 0
        ]


def main() -> None:
    video = Path(sys.argv[1])
    elon = frames(video / "dlib_elon_musk_smoke.gif")
    walking = frames(video / "facenet_people_walking_towards_camera.mp4")
    sequence = elon * 3 + walking
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
