"""Frames received over RTSP are the frames of the file, pixel for pixel.

The door clip has two slices per frame, as many cameras send; a server or client that
splits or drops slices shows up here as a difference, long before face search fails.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from streamproc.sources import RtspSource
from tests.fixtures_streaming import RtspTestServer

DOOR_CLIP = Path(__file__).resolve().parents[1] / "examples/clips/door.mp4"


async def test_rtsp_frames_equal_file_frames(rtsp_server: Callable[..., RtspTestServer]) -> None:
    with av.open(str(DOOR_CLIP)) as container:
        reference = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)][:40]
    camera = rtsp_server(clip=DOOR_CLIP, name="door")
    source = RtspSource("door", camera.url, drop_stale=False)
    received = []
    async for frame in source:
        received.append(frame.rgb)
        if len(received) == len(reference):
            break
    await source.close()
    for i, (got, want) in enumerate(zip(received, reference, strict=True)):
        assert np.array_equal(got, want), f"frame {i} differs"
