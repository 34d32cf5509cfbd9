"""One bad frame never stops a camera; a failed start-up leaves nothing running."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from streamproc.engine import Engine
from streamproc.plugin import (
    FrameInput,
    FrameSection,
    Operation,
    OperationContext,
    hookimpl,
)
from streamproc.plugin_manager import create_plugin_manager
from streamproc.runtime.deployment import parse_deployment
from streamproc.runtime.runtime import Runtime
from streamproc.settings import Settings
from streamproc.shapes import DetectFacesRequest, DetectFacesResponse
from streamproc.transport import EmbeddedNatsServer
from tests.test_runtime import Subscriber

ROOT = Path(__file__).resolve().parents[1]
DOOR = ROOT / "examples/clips/door.mp4"


class FlakyFaces:
    """A plugin operation: the real DetectFaces per frame, except that every 40th source
    frame raises (at 2 analysed fps of a 20 fps clip: every fourth analysed frame)."""

    def __init__(self) -> None:
        self.failed: list[int] = []

    def frame(
        self, frame: FrameInput, request: Any, context: OperationContext
    ) -> FrameSection:
        if frame.frame.frame_number % 40 == 0:
            self.failed.append(frame.frame.frame_number)
            raise RuntimeError(f"sensor glitch on frame {frame.frame.frame_number}")
        from streamproc_plugins.detect_faces import detect_faces_in_frame

        return detect_faces_in_frame(frame, DetectFacesRequest.model_validate(
            {"Image": {"Bytes": b"-"}}), context)

    @hookimpl
    def streamproc_register_operations(self, register: Callable[[Operation], None]) -> None:
        register(Operation(
            "FlakyFaces", DetectFacesRequest, DetectFacesResponse,
            lambda request, context: DetectFacesResponse(FaceDetails=[]),
            "DetectFaces that fails on some frames", frame_handler=self.frame,
            frame_needs=lambda request: frozenset({"mesh"}),
        ))


def _engine(*plugins: object, store: Path) -> Engine:
    pm = create_plugin_manager()
    for plugin in plugins:
        pm.register(plugin)
    return Engine(Settings(store=store), plugin_manager=pm)


def _deployment(nats_url: str, store: Path, operation: str, **extra: Any) -> Any:
    return parse_deployment({
        "nats": {"url": nats_url},
        "store": str(store),
        **extra,
        "streams": [{
            "id": "door", "url": str(DOOR), "fps": 2, "realtime": False,
            "operations": [{"operation": operation}],
        }],
    })


async def test_a_failing_frame_handler_is_reported_and_the_stream_goes_on(
    nats_server: EmbeddedNatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = FlakyFaces()
    engine = _engine(flaky, store=tmp_path / "store")
    deployment = _deployment(nats_server.url, tmp_path / "store", "FlakyFaces",
                             http={"enabled": True, "port": 0})
    sub = Subscriber()
    await sub.start(nats_server.url, "door")
    runtime = Runtime(deployment, engine=engine)
    caplog.set_level(logging.ERROR, logger="streamproc.runtime.stream")
    try:
        await asyncio.wait_for(runtime.run(until_done=True, close=False), 120)
        url = f"http://127.0.0.1:{runtime.http_port}/metrics"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            metrics = await response.text()
    finally:
        await runtime.close()
    await sub.wait(lambda: any(s.get("Status") == "STOPPED" for s in sub.status), 10, "STOPPED")
    await sub.close()
    stats = runtime.streams["door"].stats
    assert len(flaky.failed) >= 4 and stats.frame_errors == len(flaky.failed)
    # Every frame was still analysed and published; the failed ones without the section.
    assert len(sub.frames) == stats.analysed >= 15
    failed = {f["InputInformation"]["FrameNumber"]: f for f in sub.frames
              if f["InputInformation"]["FrameNumber"] in flaky.failed}
    assert set(failed) == set(flaky.failed)
    assert all("FaceDetails" not in f for f in failed.values())
    assert sum(1 for f in sub.frames if f.get("FaceDetails")) > 0
    # An error record per failure on the status subject; the state never changed.
    errors = [s for s in sub.status if "Error" in s]
    assert [e["FrameNumber"] for e in errors] == flaky.failed
    assert errors[0]["Error"] == {
        "Stage": "FlakyFaces", "Code": "RuntimeError",
        "Message": f"sensor glitch on frame {flaky.failed[0]}",
    }
    assert all("Status" not in e for e in errors)
    states = [s["Status"] for s in sub.status if "Status" in s]
    assert "OFFLINE" not in states and states[-1] == "STOPPED"
    assert runtime.streams["door"].stats.events > 0  # visits still tracked around the gaps
    # Logged with the traceback, counted in /metrics.
    logged = [r for r in caplog.records if "FlakyFaces failed on frame" in r.getMessage()]
    assert len(logged) == len(flaky.failed) and logged[0].exc_info is not None
    line = 'streamproc_frame_errors_total{stage="FlakyFaces",stream="door"}'
    assert f"{line} {float(len(flaky.failed))}" in metrics
    # The reference's metrics count per-frame operations too.
    failures, successes = len(flaky.failed), stats.analysed - len(flaky.failed)
    errors_line = 'streamproc_server_error_count_total{operation="FlakyFaces"}'
    assert f"{errors_line} {failures:.1f}" in metrics
    assert (f'streamproc_successful_request_count_total{{operation="FlakyFaces"}} '
            f"{successes:.1f}") in metrics


class BrokenObserverPlugin:
    """Offers an observer that raises on every frame."""

    class Observer:
        name = "broken"

        def observe(self, result: Any) -> list[Any]:
            raise ValueError("observer bug")

        def end(self, clock: Any, reason: str) -> list[Any]:
            return []

    @hookimpl
    def streamproc_frame_observers(self, stream_id: str, config: Any,
                                   operations: frozenset[str]) -> list[Any]:
        return [self.Observer()]


async def test_a_failing_observer_does_not_stop_the_others(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    engine = _engine(BrokenObserverPlugin(), store=tmp_path / "store")
    deployment = _deployment(nats_server.url, tmp_path / "store", "DetectFaces")
    sub = Subscriber()
    await sub.start(nats_server.url, "door")
    runtime = Runtime(deployment, engine=engine)
    await asyncio.wait_for(runtime.run(until_done=True), 120)
    await sub.wait(lambda: any(e["EventType"] == "VisitorLeft" for e in sub.events), 10,
                   "the built-in visitor events beside the broken observer")
    await sub.close()
    stats = runtime.streams["door"].stats
    errors = [s for s in sub.status if "Error" in s]
    assert len(errors) == stats.analysed == stats.frame_errors >= 15
    assert errors[0]["Error"]["Stage"] == "observer:broken"
    assert any(e["EventType"] == "VisitorArrived" for e in sub.events)


async def test_failed_start_up_closes_what_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The HTTP port is taken: the embedded NATS server started first must not be left."""
    started: list[EmbeddedNatsServer] = []
    original = EmbeddedNatsServer.start_async

    async def recording_start(self: EmbeddedNatsServer) -> str:
        started.append(self)
        return await original(self)

    monkeypatch.setattr(EmbeddedNatsServer, "start_async", recording_start)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        deployment = _deployment("embedded", tmp_path / "store", "DetectFaces",
                                 http={"enabled": True, "port": port})
        runtime = Runtime(deployment)
        with pytest.raises(OSError):
            await asyncio.wait_for(runtime.run(), 60)
    assert len(started) == 1 and not started[0].running
    assert runtime.publisher is None and runtime.nats_server is None
    assert runtime.http_runner is None
