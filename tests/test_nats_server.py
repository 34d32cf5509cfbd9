"""The embedded nats-server: real binary, real nats-py client, real process deaths."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nats
import pytest
from nats.js.api import StorageType, StreamConfig

from streamproc.transport import EmbeddedNatsServer, locate_nats_server, nats_server_version


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_binary_comes_from_the_wheel_not_path() -> None:
    binary = locate_nats_server()
    assert Path(sys.prefix) in binary.parents or "site-packages" in str(binary)
    assert nats_server_version(binary) >= (2, 10, 0)


async def test_pub_sub_round_trip_and_jetstream(nats_server: EmbeddedNatsServer) -> None:
    assert nats_server.url.startswith("nats://127.0.0.1:")
    nc = await nats.connect(nats_server.url)
    try:
        sub = await nc.subscribe("streamproc.test.>")
        await nc.publish("streamproc.test.hello", b"frame-42")
        msg = await sub.next_msg(timeout=2)
        assert (msg.subject, msg.data) == ("streamproc.test.hello", b"frame-42")

        js = nc.jetstream()
        await js.add_stream(
            StreamConfig(name="EVENTS", subjects=["events.>"], storage=StorageType.FILE)
        )
        ack = await js.publish("events.cam1", b"face")
        assert ack.stream == "EVENTS" and ack.seq == 1
        stored = await js.get_msg("EVENTS", 1)
        assert stored.data == b"face"
    finally:
        await nc.close()


async def test_async_context_manager_cleans_up() -> None:
    async with EmbeddedNatsServer() as server:
        pid = server.pid
        store = server.store_dir
        assert pid is not None and store is not None and store.exists()
        nc = await nats.connect(server.url)
        await nc.close()
    assert not _alive(pid)
    assert not store.exists()


async def test_restart_on_same_port_client_reconnects_and_store_survives() -> None:
    with EmbeddedNatsServer() as server:
        url, port = server.url, server.port
        reconnected = asyncio.Event()

        async def on_reconnect() -> None:
            reconnected.set()

        nc = await nats.connect(
            url, reconnect_time_wait=0.1, max_reconnect_attempts=-1, reconnected_cb=on_reconnect
        )
        try:
            js = nc.jetstream()
            await js.add_stream(StreamConfig(name="KEEP", subjects=["keep.>"]))
            await js.publish("keep.a", b"before restart")

            t0 = time.monotonic()
            await asyncio.to_thread(server.restart)
            assert (server.url, server.port) == (url, port)
            await asyncio.wait_for(reconnected.wait(), timeout=5)
            print(f"nats client reconnected {time.monotonic() - t0:.3f}s after restart began")

            stored = await js.get_msg("KEEP", 1)
            assert stored.data == b"before restart"
            sub = await nc.subscribe("after")
            await nc.publish("after", b"ok")
            assert (await sub.next_msg(timeout=2)).data == b"ok"
        finally:
            await nc.close()


def test_kill_9_of_parent_takes_the_server_down(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from streamproc.transport import EmbeddedNatsServer
        server = EmbeddedNatsServer()
        server.start()
        print(server.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.strip().isdigit(), f"child printed {line!r}"
        server_pid = int(line)
        assert _alive(server_pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(5)
        deadline = time.monotonic() + 5
        while _alive(server_pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(server_pid), "nats-server outlived its kill -9'd parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_start_failure_is_reported(tmp_path: Path) -> None:
    with EmbeddedNatsServer() as first:
        clash = EmbeddedNatsServer(port=first.port, start_timeout=5)
        with pytest.raises(Exception, match="nats-server"):
            clash.start()
        clash.stop()
