"""examples/visitor_notifier.py, run as a user runs it, prints revisions as updates."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from streamproc.runtime.events import VisitorArrived, VisitorIdentified, VisitorLeft
from streamproc.shapes import BoundingBox
from streamproc.transport import EmbeddedNatsServer
from streamproc.transport.publisher import Publisher, events_subject

ROOT = Path(__file__).resolve().parents[1]
JPEG = b"\xff\xd8\xff\xe0snapshot"


def _events() -> list[object]:
    base = {"StreamName": "front-door", "VisitorId": "c0ffee00" * 4, "Timestamp": 1.0}
    return [
        VisitorArrived(**base, FrameNumber=1, FrameOffsetInSeconds=0.2,
                       BoundingBox=BoundingBox(Width=0.1, Height=0.2, Left=0.4, Top=0.3)),
        VisitorIdentified(**base, FrameNumber=5, FrameOffsetInSeconds=1.0, Matched=False,
                          FramesVoted=4, Snapshot=JPEG),
        VisitorIdentified(**base, FrameNumber=9, FrameOffsetInSeconds=1.8, Matched=True,
                          ExternalImageId="alice", FaceId="f" * 36, Similarity=97.2,
                          FramesVoted=3, Revision=1, PreviousMatched=False, Snapshot=JPEG + b"2"),
        VisitorLeft(**base, FrameNumber=30, FrameOffsetInSeconds=6.0, Matched=True,
                    ExternalImageId="alice", DurationSeconds=5.0, FramesSeen=25),
    ]


async def test_notifier_prints_revisions_as_updates(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "examples/visitor_notifier.py"), nats_server.url,
        "--snapshots", str(tmp_path), stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        ready = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert b"listening" in ready
        async with Publisher([nats_server.url]) as publisher:
            for event in _events():
                await publisher.publish(events_subject("front-door"), event)  # type: ignore[arg-type]
        lines = [
            (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().strip()
            for _ in range(4)
        ]
    finally:
        proc.terminate()
        await proc.wait()
    assert lines[0].startswith("Someone arrived at front-door")
    assert lines[1].startswith("An unknown visitor is at front-door")
    assert lines[2].startswith("Update: the visitor at front-door is alice, not unknown")
    assert lines[3].startswith("alice left front-door after 5.0 s")
    visitor = "c0ffee00" * 4
    assert (tmp_path / f"{visitor}.jpg").read_bytes() == JPEG
    assert (tmp_path / f"{visitor}-1.jpg").read_bytes() == JPEG + b"2"
