"""The runtime against NATS servers it does not own: credentials, and JetStream durability."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import pytest

from streamproc.runtime.deployment import parse_deployment
from streamproc.runtime.runtime import NatsUnavailableError, Runtime
from streamproc.transport import EmbeddedNatsServer

ROOT = Path(__file__).resolve().parents[1]
STREAM = {"id": "door", "url": str(ROOT / "examples/clips/door.mp4"), "fps": 2,
          "realtime": False, "operations": [{"operation": "DetectFaces"}]}


async def test_credentials_from_the_deployment(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with EmbeddedNatsServer(extra_args=["--user", "streamproc", "--pass", "s3cret"]) as server:
        monkeypatch.setenv("NATS_PASSWORD", "s3cret")
        deployment = parse_deployment({
            "nats": {"url": server.url, "user": "streamproc", "password": "${NATS_PASSWORD}",
                     "jetstream": {"stream": "RESULTS"}},
            "store": str(tmp_path / "store"), "service": False, "streams": [STREAM],
        })
        runtime = Runtime(deployment)
        await asyncio.wait_for(runtime.run(until_done=True), 120)
        analysed = runtime.streams["door"].stats.analysed
        # Every record and status message is in the JetStream stream: nothing was lost.
        nc = await nats.connect(server.url, user="streamproc", password="s3cret")
        info = await nc.jetstream().stream_info("RESULTS")
        frames = await nc.jetstream().subscribe("streamproc.door.frames", ordered_consumer=True)
        got = 0
        while got < analysed:
            await frames.next_msg(timeout=5)
            got += 1
        await nc.close()
        assert analysed >= 15 and info.state.messages >= analysed

        wrong = parse_deployment({
            "nats": {"url": server.url, "user": "streamproc", "password": "nope"},
            "store": str(tmp_path / "store"), "streams": [STREAM],
        })
        with pytest.raises(NatsUnavailableError, match="(?i)authorization violation"):
            await asyncio.wait_for(Runtime(wrong).run(until_done=True), 60)
