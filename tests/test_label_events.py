"""Label events: one announcement per watched label per session, then a session summary."""

from __future__ import annotations

import asyncio
from pathlib import Path

from streamproc.runtime.deployment import parse_deployment
from streamproc.runtime.frame_result import FrameClock
from streamproc.runtime.label_events import LabelSession
from streamproc.runtime.runtime import Runtime
from streamproc.shapes import Label
from streamproc.transport import EmbeddedNatsServer
from tests.test_runtime import Subscriber

ROOT = Path(__file__).resolve().parents[1]


def test_first_sighting_only_and_summary() -> None:
    session = LabelSession("door", "s1", frozenset({"Person", "Dog"}), min_confidence=70)
    shots: list[int] = []

    def snap() -> bytes:
        shots.append(1)
        return b"\xff\xd8"

    frames = [
        [Label(Name="Person", Confidence=65.0)],  # below the threshold: not yet
        [Label(Name="Person", Confidence=91.0), Label(Name="Chair", Confidence=99.0)],
        [Label(Name="Person", Confidence=95.0), Label(Name="Dog", Confidence=80.0)],
        [Label(Name="Person", Confidence=88.0)],
    ]
    events = []
    for i, labels in enumerate(frames):
        events += session.update(FrameClock(i * 0.5, 100.0 + i, i), labels, snap)
    assert [(e.Label, e.FrameNumber) for e in events] == [("Person", 1), ("Dog", 2)]
    assert len(shots) == 2  # a snapshot only for announcements
    summary = session.summary("stream stopped", 200.0).to_wire()
    assert summary["FramesAnalysed"] == 4 and summary["DurationSeconds"] == 1.5
    person, dog = summary["Labels"]
    assert (person["Name"], person["FramesSeen"], person["MaxConfidence"]) == ("Person", 3, 95.0)
    assert person["FirstSeenOffsetInSeconds"] == 0.5 and dog["FramesSeen"] == 1


async def test_stream_announces_person_once(nats_server: EmbeddedNatsServer,
                                            tmp_path: Path) -> None:
    deployment = parse_deployment({
        "nats": {"url": nats_server.url}, "store": str(tmp_path / "store"),
        "streams": [{
            "id": "door", "url": str(ROOT / "examples/clips/door.mp4"), "fps": 2,
            "realtime": False, "operations": [{"operation": "DetectLabels"}],
            "label_events": {"labels": ["Person", "Giraffe"], "min_confidence": 60},
        }],
    })
    sub = Subscriber()
    await sub.start(nats_server.url, "door")
    runtime = Runtime(deployment)
    await asyncio.wait_for(runtime.run(until_done=True), 120)
    await sub.wait(lambda: any(e["EventType"] == "LabelSessionSummary" for e in sub.events),
                   10, "session summary")
    await sub.close()
    detected = [e for e in sub.events if e["EventType"] == "LabelDetected"]
    assert [e["Label"] for e in detected] == ["Person"]  # once, never per frame
    assert detected[0]["Snapshot"][:3] == b"\xff\xd8\xff"
    (summary,) = [e for e in sub.events if e["EventType"] == "LabelSessionSummary"]
    assert summary["SessionId"] == detected[0]["SessionId"]
    assert summary["Labels"][0]["Name"] == "Person" and summary["Labels"][0]["FramesSeen"] >= 5
    assert all("Labels" in f for f in sub.frames)
