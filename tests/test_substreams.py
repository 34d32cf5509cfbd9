"""Substreams (a camera's low-resolution "detect" stream next to its main one).

Two real RTSP servers play one camera: the main stream at 1280 x 720 (made here from the
door clip's first seconds with PyAV) and the substream at 640 x 360 (the door clip). The
runtime decodes and analyses the substream only: records have its size and URL, the visitor
is named from it, and the snapshot is cut from its frames.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import pytest
from PIL import Image

from streamproc.engine import Engine
from streamproc.runtime.deployment import DeploymentError, parse_deployment
from streamproc.runtime.runtime import Runtime
from streamproc.transport import EmbeddedNatsServer
from tests.fixtures_streaming import RtspTestServer
from tests.test_runtime import DOOR_CLIP, Subscriber, _deployment, household_store

__all__ = ["household_store"]  # the module fixture: a collection with "elon"


def _stream(**fields: object) -> dict[str, object]:
    return {"id": "door", "operations": [{"operation": "DetectFaces"}], **fields}


def test_detect_url_is_validated() -> None:
    ok = parse_deployment({"streams": [_stream(url="rtsp://cam/main", detect_url="rtsp://cam/sub")]})
    assert ok.streams[0].analysed_url == "rtsp://cam/sub"
    plain = parse_deployment({"streams": [_stream(url="rtsp://cam/main")]})
    assert plain.streams[0].analysed_url == "rtsp://cam/main"
    cases = {
        "detect_url is a substream of the camera's url": _stream(
            whip={"token": "12345678"}, detect_url="rtsp://cam/sub"),
        "detect_url is the same as url": _stream(url="rtsp://cam/a", detect_url="rtsp://cam/a"),
        "detect_url is empty": _stream(url="rtsp://cam/a", detect_url=" "),
    }
    for message, stream in cases.items():
        with pytest.raises(DeploymentError, match=message) as info:
            parse_deployment({"streams": [stream]}, source="cams.yaml")
        assert "cams.yaml" in str(info.value) and "streams.0" in str(info.value)


def _main_clip(out: Path, seconds: float = 3.0) -> Path:
    """The door clip's first seconds at 1280 x 720: the camera's main stream."""
    with av.open(str(DOOR_CLIP)) as src, av.open(str(out), "w") as dst:
        rate = int(round(float(src.streams.video[0].average_rate or 20)))
        stream = dst.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.codec_context.time_base = Fraction(1, rate)
        stream.options = {"preset": "ultrafast", "bf": "0", "g": str(rate)}
        for i, frame in enumerate(src.decode(video=0)):
            if i >= seconds * rate:
                break
            big = frame.reformat(width=1280, height=720, format="yuv420p")
            big.pts, big.time_base = i, Fraction(1, rate)
            for packet in stream.encode(big):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return out


async def test_analysis_runs_on_the_substream(
    rtsp_server: Callable[..., RtspTestServer],
    nats_server: EmbeddedNatsServer,
    household_store: Path,
    tmp_path: Path,
) -> None:
    main = rtsp_server(clip=_main_clip(tmp_path / "main720.mp4"), name="main")
    sub = rtsp_server(clip=DOOR_CLIP, name="sub")
    deployment = _deployment(nats_server.url, household_store, main.url, detect_url=sub.url)
    assert deployment.streams[0].url == main.url
    subscriber = Subscriber()
    await subscriber.start(nats_server.url, "front-door")
    runtime = Runtime(deployment)
    task = asyncio.create_task(runtime.run())
    try:
        await subscriber.wait(
            lambda: any(e["EventType"] == "VisitorIdentified" and e["Matched"]
                        for e in subscriber.events),
            60, "VisitorIdentified",
        )
        assert runtime.streams["front-door"].source.url == sub.url  # the one source opened
    finally:
        runtime.stop()
        await asyncio.wait_for(task, 30)
        await subscriber.close()
    infos = [f["InputInformation"] for f in subscriber.frames]
    assert infos and {(i["Width"], i["Height"], i["Source"]) for i in infos} == {
        (640, 360, sub.url)
    }
    identified = next(e for e in subscriber.events
                      if e["EventType"] == "VisitorIdentified" and e["Matched"])
    assert identified["ExternalImageId"] == "elon"
    # The snapshot is cut from a substream frame: within its 640 x 360, and about 3x the
    # face box in substream pixels (a main-stream crop would be twice that).
    snapshot = Image.open(io.BytesIO(identified["Snapshot"]))
    assert snapshot.width <= 640 and snapshot.height <= 360
    arrived = next(e for e in subscriber.events if e["EventType"] == "VisitorArrived"
                   and e["VisitorId"] == identified["VisitorId"])
    face_px = arrived["BoundingBox"]["Width"] * 640
    assert snapshot.width < 3 * face_px * 1.6, (snapshot.size, face_px)


def test_engine_operations_accept_detect_url() -> None:
    """Operations are validated as usual with a substream configured."""
    parse_deployment(
        {"streams": [_stream(url="rtsp://cam/main", detect_url="rtsp://cam/sub")]},
        operations=Engine().operations,
    )
