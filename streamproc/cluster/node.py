"""ClusterNode: what makes a streamproc process a node of a cluster (README, Scaling out).

Started by ``Runtime`` when the deployment has a ``cluster:`` section, and by ``streamproc
serve --cluster-node NAME --nats URL[,URL]``, on the process's NATS connection:

1. the collection log (the JetStream stream, created with ``replicas`` if missing);
2. the node's store, opened as a :class:`.store.ReplicatedStore` and claimed as a replica
   of that log (a store holding collections that follow no log is refused: seed instead);
3. the :class:`.applier.LogApplier`, running for the node's lifetime, which rebuilds an
   empty store from the log (snapshots and the records since) and resumes a restarted one
   where it stopped;
4. the :class:`.compactor.Compactor`, which snapshots collections with many records so
   the log does not grow forever;
5. the store installed as the engine's ``context.store``: every front door of this process
   now writes through the log and reads its replica.

Start-up waits (at most ``startup_catch_up_s``) until the store has applied the log as it
was, so a restarted node answers from caught-up collections from its first frame; past the
bound it starts anyway (reads still catch up per request) and says so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient

from streamproc.engine import Engine
from streamproc.errors import RekognitionError
from streamproc.faces.versions import PIPELINES
from streamproc.store.replica import claim_replica

from .applier import LogApplier
from .collections import ReplicatedCollections
from .compactor import Compactor, CompactorSettings
from .log import DEFAULT_STREAM, CollectionLog, LogSettings
from .snapshots import SnapshotObjects, snapshot_bucket
from .store import ReplicatedStore

__all__ = ["ClusterNode", "NodeSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeSettings:
    """The parts of a deployment's ``cluster:`` section a node's collections need."""

    node: str
    replicas: int = 3
    log_stream: str = DEFAULT_STREAM
    read_wait_s: float = 5.0
    write_timeout_s: float = 15.0
    startup_catch_up_s: float = 60.0
    #: Snapshot a collection after this many records since its last snapshot (at least;
    #: see :mod:`.compactor`); ``compact_check_s`` is how often a node looks.
    snapshot_records: int = 1000
    compact_check_s: float = 60.0

    @property
    def snapshot_bucket(self) -> str:
        """The object store bucket of the log's snapshots."""
        return snapshot_bucket(self.log_stream)


class ClusterNode:
    """The collection log, this node's replica and its applier, wired into ``engine``."""

    def __init__(self, engine: Engine, settings: NodeSettings, nc: NatsClient) -> None:
        self.engine = engine
        self.settings = settings
        self.nc = nc
        self.log: CollectionLog | None = None
        self.store: ReplicatedStore | None = None
        self.applier: LogApplier | None = None
        self.collections: ReplicatedCollections | None = None
        self.compactor: Compactor | None = None

    async def start(self) -> None:
        s = self.settings
        started = time.monotonic()
        self.log = CollectionLog(
            self.nc.jetstream(timeout=5.0),
            LogSettings(stream=s.log_stream, replicas=s.replicas),
        )
        info = await self.log.ensure()
        context = self.engine.context
        self.store = store = await asyncio.to_thread(
            ReplicatedStore,
            context.settings.store,
            region=context.settings.region,
            account_id=context.settings.account_id,
        )
        for stale in store.directory.glob(".snapshot-*.tmp"):  # a snapshot cut short
            stale.unlink(missing_ok=True)
        try:
            await asyncio.to_thread(claim_replica, store, self.log.stream, self.log.identity)
            objects = SnapshotObjects(self.log.js, s.snapshot_bucket, s.replicas)
            await objects.ensure()
            self.applier = LogApplier(store, self.log, face_models=PIPELINES,
                                      snapshots=objects)
            await self.applier.start()
        except BaseException:
            self.store = None
            store.close()
            raise
        self.collections = ReplicatedCollections(
            store, self.log, self.applier, node=s.node,
            write_timeout_s=s.write_timeout_s, read_timeout_s=s.read_wait_s,
        )
        store.attach(self.collections, asyncio.get_running_loop())
        context.use_store(store)
        try:
            last = await self.applier.catch_up(s.startup_catch_up_s)
        except RekognitionError as exc:
            log.warning("node %s: not caught up with the collection log at start-up: %s",
                        s.node, exc.message)
            last = -1
        self.compactor = Compactor(
            store, self.log, self.applier, objects, node=s.node,
            settings=CompactorSettings(min_records=s.snapshot_records,
                                       check_s=s.compact_check_s),
        )
        self.compactor.start()
        log.info(
            "cluster node %s: collection log %s (replicas %d, %d records), store %s applied "
            "up to %d%s in %.1f s",
            s.node, self.log.stream, info.config.num_replicas or 1,
            int(info.state.messages or 0), store.directory, self.applier.applied,
            "" if last >= 0 else " (still catching up)", time.monotonic() - started,
        )

    async def stop(self) -> None:
        """Stop applying (the store stays the engine's, closed with it)."""
        compactor, self.compactor = self.compactor, None
        if compactor is not None:
            await compactor.stop()
        if self.store is not None:
            self.store.detach()
        applier, self.applier = self.applier, None
        if applier is not None:
            await applier.stop()
