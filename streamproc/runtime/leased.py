"""With ``cluster:``, a node runs a stream only while it holds the stream's lease.

Every node has the same deployment; :class:`LeasedStreams` asks the
:class:`~streamproc.cluster.leases.LeaseManager` for the streams' leases, starts a
:class:`~streamproc.runtime.stream.StreamRunner` when one is won (fenced by the lease:
it publishes nothing once the lease's local deadline passed), stops it (closing its
source) when the lease is lost, and on a graceful stop ends every runner and then hands its
leases back at once. A runner that ends by itself (its source ended or failed) gives its
lease back and this node leaves the stream to the others for ``lease_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from nats.aio.client import Client as NatsClient

from streamproc.cluster.leases import LeaseManager, LeaseTiming
from streamproc.runtime.deployment import ClusterConfig
from streamproc.runtime.stream import StreamRunner

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
    ) -> None:
        self.timing = LeaseTiming.of(cluster.lease_s)
        # A lease request must not outlive a renewal period (the next one is due then).
        js = nc.jetstream(timeout=max(0.2, min(2.0, self.timing.renew_every)))
        self.leases = LeaseManager(
            js, cluster.node, stream_ids, self.timing,
            on_acquired=self._acquired, on_lost=self._lost,
            bucket=cluster.lease_bucket, replicas=cluster.replicas,
        )
        self.make_runner = make_runner
        self.runners = runners  # the runtime's: the streams running on this node now
        self.tasks: dict[str, asyncio.Task[str]] = {}
        self._stopping: set[asyncio.Task[Any]] = set()  # runners of lost leases, ending
        self._closed = False

    async def ensure(self) -> None:
        await self.leases.ensure()

    async def start(self) -> None:
        await self.leases.start()

    async def _acquired(self, stream_id: str) -> None:
        runner = self.make_runner(stream_id, lambda: self.leases.valid(stream_id))
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
