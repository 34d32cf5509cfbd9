"""A real nats-server cluster on loopback for tests (shared by the cluster test modules).

``NatsCluster`` runs N nats-server processes (JetStream, routes between them) in a directory;
``running_cluster`` starts all of them and stops them after. A test module declares its own
module-scoped fixture from it::

    @pytest.fixture(scope="module")
    def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
        with running_cluster(tmp_path_factory.mktemp("nats-cluster")) as c:
            yield c
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from streamproc.transport.nats_server import _die_with_parent_preexec, locate_nats_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NatsCluster:
    """Three nats-server processes with routes between them, JetStream in ``root``."""

    def __init__(self, root: Path, size: int = 3) -> None:
        self.root = root
        self.binary = locate_nats_server()
        self.ports = [free_port() for _ in range(size)]
        self.cluster_ports = [free_port() for _ in range(size)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size

    @property
    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{p}" for p in self.ports]

    def _config(self, i: int) -> Path:
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.cluster_ports)
        path = self.root / f"n{i}.conf"
        path.write_text(
            f"server_name: n{i}\nlisten: 127.0.0.1:{self.ports[i]}\n"
            f'jetstream {{ store_dir: "{self.root / f"js{i}"}" }}\n'
            f"cluster {{ name: streamproc-test, listen: 127.0.0.1:{self.cluster_ports[i]}, "
            f"routes: [{routes}] }}\n"
        )
        return path

    def start(self, i: int) -> None:
        log = open(self.root / f"n{i}.log", "ab")  # noqa: SIM115 - the child keeps it
        self.procs[i] = subprocess.Popen(
            [str(self.binary), "-c", str(self._config(i))],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent_preexec(os.getpid()) if sys.platform == "linux" else None,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.ports[i]), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            self.procs[i] = None

    def stop(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.kill(i)
                self.procs[i] = None


@contextlib.contextmanager
def running_cluster(root: Path, size: int = 3) -> Iterator[NatsCluster]:
    """All ``size`` servers started; stopped (terminated, killed if they linger) after."""
    c = NatsCluster(root, size)
    try:
        for i in range(size):
            c.start(i)
        yield c
    finally:
        c.stop()
