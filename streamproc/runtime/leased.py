"""With ``cluster:``, a node runs a stream only while it holds the stream's lease.

Every node has the same deployment; :class:`LeasedStreams` asks the
:class:`~streamproc.cluster.leases.LeaseManager` for the streams' leases, starts a
:class:`~streamproc.runtime.stream.StreamRunner` when one is won (fenced by the lease:
it publishes nothing once the lease's local deadline passed), stops it (closing its
source) when the lease is lost, and on a graceful stop ends every runner and then hands its
leases back at once. A runner that ends by itself (its source ended or failed) gives its
lease back and this node leaves the stream to the others for ``lease_s``.

WHIP streams (the camera pushes to a node) are leased on demand: the node a publisher
POSTs to claims the lease then (:meth:`LeasedStreams.claim`, called by the WHIP endpoint
after the stream's token checked out) and runs the stream; a publisher at another node
meanwhile gets 409 naming the node that runs it. Once the publisher has been gone for
``lease_s`` the node stops the stream and gives the lease back, so the camera can publish
to any node again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from nats.aio.client import Client as NatsClient

from streamproc.cluster.errors import ClusterError
from streamproc.cluster.leases import LeaseManager, LeaseTiming
from streamproc.runtime.deployment import ClusterConfig
from streamproc.runtime.stream import StreamRunner
from streamproc.sources.whip import WhipError

__all__ = ["LeasedStreams"]

log = logging.getLogger(__name__)

#: Makes the runner of a stream id, given its fence (the runtime's sources and sinks).
RunnerFactory = Callable[[str, Callable[[], bool]], StreamRunner]


class LeasedStreams:
    def __init__(
        self,
        nc: NatsClient,
        cluster: ClusterConfig,
        stream_ids: list[str],
        make_runner: RunnerFactory,
        runners: dict[str, StreamRunner],
        on_demand: list[str] | None = None,
        on_holder: Callable[[str, str | None], None] | None = None,
    ) -> None:
        self.timing = LeaseTiming.of(cluster.lease_s)
        self.on_demand = set(on_demand or ())
        # A lease request must not outlive a renewal period (the next one is due then).
        js = nc.jetstream(timeout=max(0.2, min(2.0, self.timing.renew_every)))
        self.leases = LeaseManager(
            js, cluster.node, stream_ids, self.timing,
            on_acquired=self._acquired, on_lost=self._lost,
            bucket=cluster.lease_bucket, replicas=cluster.replicas,
            on_demand=self.on_demand, on_holder=on_holder,
        )
        self.make_runner = make_runner
        self.runners = runners  # the runtime's: the streams running on this node now
        self.tasks: dict[str, asyncio.Task[str]] = {}
        self._stopping: set[asyncio.Task[Any]] = set()  # runners of lost leases, ending
        self._idle_task: asyncio.Task[None] | None = None
        self._claiming: dict[str, asyncio.Lock] = {}
        self._closed = False

    async def ensure(self) -> None:
        await self.leases.ensure()

    async def start(self) -> None:
        await self.leases.start()
        if self.on_demand:
            self._idle_task = asyncio.create_task(self._give_back_idle(), name="whip-idle")

    async def claim(self, stream_id: str) -> None:
        """A publisher arrived here for an on-demand stream: run it here (its lease taken
        now), or WhipError 409 naming the node that runs it (503: NATS cannot decide now).
        Claims of one stream run one at a time (two POSTs at once start one runner)."""
        async with self._claiming.setdefault(stream_id, asyncio.Lock()):
            if stream_id in self.tasks:
                return
            await self._claim(stream_id)

    async def _claim(self, stream_id: str) -> None:
        try:
            holder = await self.leases.claim(stream_id)
        except ClusterError as exc:
            raise WhipError(503, f"cannot start stream {stream_id!r} here now ({exc}); "
                                 "try again") from exc
        if holder is not None:
            raise WhipError(
                409, f"stream {stream_id!r} runs on node {holder}: publish to that node, or "
                     f"here once its publisher has been gone for {self.timing.bound:g}s"
            )

    async def _give_back_idle(self) -> None:
        """Stop on-demand streams whose publisher has been gone ``lease_s``; give back their
        leases so the camera may publish to any node."""
        while True:
            await asyncio.sleep(self.timing.poll)
            for stream_id in [s for s in self.tasks if s in self.on_demand]:
                try:
                    await self._give_back_if_idle(stream_id)
                except Exception:
                    log.exception("%s: giving back an idle stream failed", stream_id)

    async def _give_back_if_idle(self, stream_id: str) -> None:
        async with self._claiming.setdefault(stream_id, asyncio.Lock()):
            runner = self.runners.get(stream_id)
            idle_since = getattr(runner.source, "idle_since", None) if runner else None
            if idle_since is None or time.monotonic() - idle_since < self.timing.bound:
                return
            task = self.tasks.pop(stream_id, None)
            if task is None:
                return  # ended or lost meanwhile
            log.info("%s: no publisher for %.0fs: stopping it and giving its lease back",
                     stream_id, time.monotonic() - idle_since)
            self.runners.pop(stream_id, None)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await self.leases.release(stream_id)

    async def _acquired(self, stream_id: str) -> None:
        lease = self.leases.held[stream_id]
        # Fenced by this lease, not the stream's: a runner still ending after its lease was
        # lost never publishes under a lease taken later (by this node, again).
        runner = self.make_runner(stream_id, lambda: self.leases.valid(stream_id, lease))
        self.runners[stream_id] = runner
        task = asyncio.create_task(runner.run(), name=f"stream:{stream_id}")
        self.tasks[stream_id] = task
        task.add_done_callback(lambda t: self._ended(stream_id, t))

    def _ended(self, stream_id: str, task: asyncio.Task[str]) -> None:
        self._stopping.discard(task)
        if self.tasks.get(stream_id) is not task:
            return  # stopped by us (lease lost or closing)
        del self.tasks[stream_id]
        self.runners.pop(stream_id, None)
        if task.cancelled() or self._closed:
            return
        exc = task.exception()
        reason = f"failed: {exc!r}" if exc else task.result()
        log.warning("%s: the stream ended on this node (%s): its lease is given back",
                    stream_id, reason)
        self.leases.pause(stream_id)
        self._soon(self.leases.release(stream_id))

    def _soon(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _lost(self, stream_id: str, why: str) -> None:
        """Stop the stream without waiting (the fence already refuses its publishes)."""
        task = self.tasks.pop(stream_id, None)
        self.runners.pop(stream_id, None)
        if task is not None:
            task.cancel()  # the runner's finally closes the source
            self._stopping.add(task)

    async def close(self) -> None:
        """Graceful stop: end every runner (its last STOPPED status still under the lease),
        then delete the leases so other nodes take the streams on their next poll."""
        if self._closed:
            return
        self._closed = True
        if self._idle_task is not None:
            self._idle_task.cancel()
            await asyncio.gather(self._idle_task, return_exceptions=True)
        await self.leases.stop()
        tasks = dict(self.tasks)
        for task in tasks.values():
            task.cancel()
        results = await asyncio.gather(*tasks.values(), return_exceptions=True)
        for (stream_id, _), result in zip(tasks.items(), results, strict=True):
            if isinstance(result, Exception):
                log.error("stream:%s ended with %s: %s", stream_id, type(result).__name__,
                          result)
        self.tasks.clear()
        await asyncio.gather(*(self.leases.release(s) for s in list(self.leases.held)))
        if self._stopping:
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._stopping, return_exceptions=True)
