"""Camera leases: each stream runs on exactly one node at a time (issue 13, item 2).

A lease is a key ``streams.<stream id>`` in a JetStream KV bucket (default
``STREAMPROC_LEASES``, replicas as the cluster's log) whose value names the holder node and
its process incarnation:

- **acquire**: ``kv.create`` (the key must be absent: a race between nodes has one winner,
  decided by the bucket's stream leader);
- **renew**: ``kv.update(key, value, last=revision)`` every ``renew_every`` seconds: it fails
  once the key expired or another node holds it, and the holder then stops the stream;
- **expiry**: the bucket's TTL (``max_age``, ``ttl`` below): the server removes a key
  ``ttl`` seconds after its last write. The server decides expiry on its own clock
  against its own timestamp, so nodes never compare wall clocks, and a node that is dead,
  paused or cut off loses its leases without doing anything (a stored deadline checked by
  the others would need the nodes' clocks to agree, and a sweeper to delete it);
- **release**: a graceful shutdown deletes each key it still holds (``last=revision``), so
  another node takes the stream on its next poll instead of after the TTL.

Fencing (:meth:`LeaseManager.valid`): a node publishes for a stream only before its local
deadline, ``ttl - margin`` after it *sent* the last renewal that succeeded (monotonic
clock). The server stamped that write after it was sent, so the key lives at least until
``sent + ttl``: the local deadline ends ``margin`` earlier than any other node can create
the key. A node paused (SIGSTOP, a long GC or swap stall) past its deadline finds it
expired when it resumes and publishes nothing; its next renewal fails and it stops the
stream. ``margin`` covers clock differences between the NATS servers (a new stream leader
expires keys on its own clock) and the time from the check to the socket write.

Who takes a free stream (spread without a coordinator): a node that finds a stream free
(no key) waits before trying to create it, by the stream's rendezvous score for the node (a
hash of the stream id and the node name in [0, 1)): ``grace * score / 2`` while it holds
fewer streams than its share, ``grace * (1 + score) / 2`` once it holds its share. A node
below its share therefore always comes first, and among equals the live node with the
lowest score, so free streams spread over the live nodes; when that node is gone the next
one takes the stream at most ``grace`` later.

Rebalancing (after a rolling restart one node holds every camera): each node keeps a
membership key ``nodes.<deployment>.<node>`` (``<deployment>``: a hash of the stream ids, so
only nodes running the same deployment count each other) alive like a lease. A node's share
is ``ceil(streams / members)``. Every ``ttl``, a node holding more than its share gives
back one lease it has held for at least ``bound``: the one whose score is worst for it. It
stops the stream first (the fence refuses its publishes at once), deletes the key, and
leaves that stream alone for ``bound``, so a node below its share takes it within its
grace. One stream moves at a time, each with the handover's short gap.

A holder whose renewals all failed (an election of the bucket's stream leader can take
longer than its fencing deadline) stops the stream; if the key still holds its own value
when NATS answers again, nobody else can have taken it, and it takes the lease back at once
(``update`` with the key's revision) instead of waiting for it to expire.

Streams on demand (WHIP: the camera pushes to one node): never polled for nor rebalanced;
:meth:`LeaseManager.claim` takes the lease at once when a publisher arrives at a node (or
says which node holds it), and the holder gives it back once the publisher has been gone
for ``bound`` (:class:`~streamproc.runtime.leased.LeasedStreams`).

The bound: a dead holder's last renewal expires within ``ttl``; another node sees the key
gone within one ``poll`` and creates it within ``grace``: ``ttl + poll + grace`` =
0.65 ``lease_s``, leaving 0.35 ``lease_s`` for the server's expiry timer and the source's
start before the first frame (see :meth:`LeaseTiming.of`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from .errors import ClusterError

__all__ = ["DEFAULT_BUCKET", "Lease", "LeaseManager", "LeaseTiming", "lease_key"]

log = logging.getLogger(__name__)

DEFAULT_BUCKET = "STREAMPROC_LEASES"
_WRONG_LAST_SEQUENCE = (10071, 10164)
_STREAM_EXISTS = 10058  # JSStreamNameExistErr: same name, another configuration
_TRANSIENT = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionClosedError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
    asyncio.TimeoutError,
)


def lease_key(stream_id: str) -> str:
    """The KV key of a stream's lease (stream ids are ``[A-Za-z0-9_-]``: valid key tokens)."""
    return f"streams.{stream_id}"


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, _TRANSIENT):
        return True
    return isinstance(exc, nats.js.errors.APIError) and exc.code in (500, 503)


def _score(stream_id: str, node: str) -> float:
    """This node's place in the queue for a free stream, in [0, 1) (rendezvous hashing)."""
    digest = hashlib.blake2b(f"{stream_id}\0{node}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class LeaseTiming:
    """Every interval of the lease protocol, derived from the bound ``lease_s``."""

    bound: float  # a dead node's streams run again elsewhere within this (the goal)
    ttl: float  # the bucket's TTL: a key expires this long after its last write
    renew_every: float  # the holder rewrites each key this often
    poll: float  # a node looks for free streams this often
    grace: float  # the longest a node waits before taking a free stream (by score)
    margin: float  # the local fencing deadline ends this much before the key can expire

    @classmethod
    def of(cls, lease_s: float) -> LeaseTiming:
        """ttl 0.5, poll 0.05 (at most 1 s), grace 0.1 of the bound: 0.35 of it is left
        for the server's expiry timer and the source's start; the holder renews four
        times per ttl, so three renewals in a row may fail (an election, a reconnect) before
        it stops; its fencing deadline ends 0.15 ttl before the key can expire."""
        ttl = 0.5 * lease_s
        return cls(
            bound=lease_s,
            ttl=ttl,
            renew_every=ttl / 4,
            poll=min(1.0, 0.05 * lease_s),
            grace=0.1 * lease_s,
            margin=0.15 * ttl,
        )


@dataclass
class Lease:
    """A lease this node holds."""

    stream_id: str
    revision: int
    sent: float  # monotonic time the last successful write was sent
    valid_until: float  # local fencing deadline: sent + ttl - margin
    acquired: float = field(default_factory=time.monotonic)


class LeaseManager:
    """One node's leases: acquires free streams, renews held ones, releases on close.

    ``on_acquired(stream_id)`` is awaited after a lease is won (start the stream);
    ``on_lost(stream_id, why)`` after one is lost (stop the stream: its publishes are already
    refused by :meth:`valid`). Both run in the manager's task, one at a time.
    """

    def __init__(
        self,
        js: JetStreamContext,
        node: str,
        streams: Iterable[str],
        timing: LeaseTiming,
        *,
        on_acquired: Callable[[str], Awaitable[None]],
        on_lost: Callable[[str, str], Awaitable[None]],
        bucket: str = DEFAULT_BUCKET,
        replicas: int = 1,
        on_demand: Iterable[str] = (),
        on_holder: Callable[[str, str | None], None] | None = None,
    ) -> None:
        self.js = js
        self.node = node
        self.incarnation = uuid.uuid4().hex  # this process: a restarted node is another one
        self.on_demand = frozenset(on_demand)  # taken by claim() only
        #: Told which other node holds a stream this node polls for (None: nobody), on change.
        self.on_holder = on_holder
        self.holders: dict[str, str | None] = {}
        self.streams = [s for s in streams if s not in self.on_demand]  # polled for
        self.timing = timing
        self.bucket = bucket
        self.replicas = replicas
        self.on_acquired = on_acquired
        self.on_lost = on_lost
        self.held: dict[str, Lease] = {}
        self._free_since: dict[str, float] = {}  # first poll that found the stream free
        self._paused: dict[str, float] = {}  # streams this node leaves alone until then
        self._kv: KeyValue | None = None
        self._task: asyncio.Task[None] | None = None
        self._value = json.dumps({"node": node, "incarnation": self.incarnation}).encode()
        deployment = hashlib.blake2b("\0".join(sorted(self.streams)
                                               + sorted(self.on_demand)).encode(),
                                     digest_size=6).hexdigest()
        self._member_key = f"nodes.{deployment}.{node}"
        self._members_filter = f"$KV.{bucket}.nodes.{deployment}.*"
        self._member_written = -float("inf")
        self._balanced_at = time.monotonic()
        self.members: int | None = None  # live nodes of this deployment (None: not known)
        self.rebalanced = 0  # leases this node gave back to even the spread

    # -- fencing ------------------------------------------------------------------------------

    def valid(self, stream_id: str, lease: Lease | None = None) -> bool:
        """May this node publish for the stream now (under ``lease``, when given: the one a
        runner started with)? Cheap: a dict and the monotonic clock."""
        held = self.held.get(stream_id)
        if held is None or (lease is not None and held is not lease):
            return False
        return time.monotonic() < held.valid_until

    # -- lifecycle ----------------------------------------------------------------------------

    async def ensure(self) -> KeyValue:
        """Create the bucket (or fit an existing one's TTL to this deployment's bound)."""
        config = KeyValueConfig(
            bucket=self.bucket,
            description="streamproc camera leases (README, Scaling out)",
            history=1,
            ttl=self.timing.ttl,
            replicas=self.replicas,
            storage=StorageType.FILE,
        )
        deadline = time.monotonic() + 30.0
        delay = 0.05
        while True:
            try:
                self._kv = await self._create_or_fit(config)
                return self._kv
            except Exception as exc:
                if not _transient(exc) or time.monotonic() + delay > deadline:
                    raise ClusterError(f"cannot create the lease bucket {self.bucket}: "
                                       f"{type(exc).__name__}: {exc}") from exc
                await asyncio.sleep(delay)
                delay = min(2 * delay, 1.0)

    async def _create_or_fit(self, config: KeyValueConfig) -> KeyValue:
        try:
            return await self.js.create_key_value(config)
        except nats.js.errors.BadRequestError as refused:
            if refused.err_code != _STREAM_EXISTS:
                raise nats.js.errors.ServiceUnavailableError(  # e.g. a server rejoining
                    description=str(refused)
                ) from refused
        stream = f"KV_{self.bucket}"
        info = await self.js.stream_info(stream)
        if info.config.max_age != self.timing.ttl:
            log.warning("lease bucket %s: TTL %.3gs -> %.3gs (this deployment's lease_s)",
                        self.bucket, info.config.max_age or 0, self.timing.ttl)
            info.config.max_age = self.timing.ttl
            info.config.duplicate_window = min(self.timing.ttl, 120.0)
            await self.js.update_stream(info.config)
        return await self.js.key_value(self.bucket)

    async def start(self) -> None:
        if self._kv is None:
            await self.ensure()
        self._task = asyncio.create_task(self._loop(), name="leases")

    async def stop(self) -> None:
        """Stop acquiring and renewing (leases stay held until released or expired)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def release(self, stream_id: str) -> None:
        """Give a held lease back now (graceful stop): delete the key if it is still ours."""
        lease = self.held.pop(stream_id, None)
        if lease is None or self._kv is None:
            return
        try:
            await self._kv.delete(lease_key(stream_id), last=lease.revision)
            log.info("%s: lease released by %s", stream_id, self.node)
        except Exception as exc:  # expired or taken meanwhile, or NATS is gone: it expires
            log.info("%s: lease not released (%s: %s); it expires within %.1fs", stream_id,
                     type(exc).__name__, exc, self.timing.ttl)

    # -- the loop -----------------------------------------------------------------------------

    async def _loop(self) -> None:
        t = self.timing
        while True:
            started = time.monotonic()
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lease round failed")
            await asyncio.sleep(max(0.0, t.poll - (time.monotonic() - started)))

    async def _round(self) -> None:
        now = time.monotonic()
        due = [s for s, lease in self.held.items() if now - lease.sent >= self.timing.renew_every]
        free = [s for s in self.streams
                if s not in self.held and self._paused.get(s, 0.0) <= now]
        member = now - self._member_written >= self.timing.renew_every
        await asyncio.gather(*(self._renew(s) for s in due), *(self._try(s) for s in free),
                             *([self._membership()] if member else []))
        for stream_id, lease in list(self.held.items()):  # renewals failed for too long
            if time.monotonic() >= lease.valid_until:
                await self._lose(stream_id, "its lease ran out before a renewal succeeded")
        if time.monotonic() - self._balanced_at >= self.timing.ttl:
            self._balanced_at = time.monotonic()
            await self._rebalance()

    # -- membership and rebalancing -----------------------------------------------------------

    def share(self) -> int:
        """How many polled streams this node should hold (all while membership is unknown)."""
        if not self.members:
            return len(self.streams)
        return -(-len(self.streams) // self.members)

    def _polled_held(self) -> int:
        return sum(1 for s in self.held if s not in self.on_demand)

    async def _membership(self) -> None:
        """Keep this node's membership key alive and count the live members."""
        assert self._kv is not None
        sent = time.monotonic()
        try:
            await self._kv.put(self._member_key, self._value)
            info = await self.js.stream_info(f"KV_{self.bucket}",
                                             subjects_filter=self._members_filter)
        except Exception as exc:
            log.debug("membership: %r", exc)
            return
        self._member_written = sent
        self.members = max(1, len(info.state.subjects or {}))

    async def _rebalance(self) -> None:
        """Give back one lease if this node holds more than its share."""
        if self._polled_held() <= self.share():
            return
        now = time.monotonic()
        settled = [s for s, lease in self.held.items()
                   if now - lease.acquired >= self.timing.bound and s not in self.on_demand]
        if not settled:
            return
        stream_id = max(settled, key=lambda s: _score(s, self.node))
        log.info("%s: %s holds %d streams, its share is %d of %d streams over %d nodes: "
                 "handing this one over", stream_id, self.node, self._polled_held(), self.share(),
                 len(self.streams), self.members)
        lease = self.held.pop(stream_id)  # the fence refuses its publishes from now on
        self.rebalanced += 1
        self.pause(stream_id)
        try:
            await self.on_lost(stream_id, "handed over to even the spread")
        except Exception:
            log.exception("%s: stopping the stream failed", stream_id)
        assert self._kv is not None
        try:
            await self._kv.delete(lease_key(stream_id), last=lease.revision)
        except Exception as exc:
            log.info("%s: lease not deleted (%s); it expires within %.1fs", stream_id, exc,
                     self.timing.ttl)

    async def _renew(self, stream_id: str) -> None:
        lease = self.held.get(stream_id)
        assert self._kv is not None
        if lease is None:
            return
        sent = time.monotonic()
        try:
            revision = await self._kv.update(lease_key(stream_id), self._value, last=lease.revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            await self._check_holder(stream_id, lease)
            return
        except Exception as exc:
            if not _transient(exc):
                log.exception("%s: renewing the lease failed", stream_id)
            else:
                log.debug("%s: renewing the lease: %r", stream_id, exc)
            return  # retried next round; lost once valid_until passes
        if self.held.get(stream_id) is lease:
            lease.revision = revision
            lease.sent = sent
            lease.valid_until = sent + self.timing.ttl - self.timing.margin

    async def _check_holder(self, stream_id: str, lease: Lease) -> None:
        """The key moved on: our own renewal that timed out yet landed, or lost."""
        assert self._kv is not None
        try:
            entry = await self._kv.get(lease_key(stream_id))
        except nats.js.errors.KeyNotFoundError:
            await self._lose(stream_id, "its lease expired")
            return
        except Exception:
            return  # try again next round
        if entry.value == self._value and entry.revision is not None:
            lease.revision = entry.revision  # ours: renew again at once, deadline unchanged
            lease.sent = 0.0
            return
        holder = json.loads(entry.value or b"{}").get("node", "?")
        await self._lose(stream_id, f"node {holder} holds its lease")

    async def _lose(self, stream_id: str, why: str) -> None:
        if self.held.pop(stream_id, None) is None:
            return
        log.warning("%s: lease lost by %s (%s): stopping the stream", stream_id, self.node, why)
        try:
            await self.on_lost(stream_id, why)
        except Exception:
            log.exception("%s: stopping the stream failed", stream_id)

    async def _try(self, stream_id: str) -> None:
        """Take the stream if it is free and this node's turn in the queue has come."""
        assert self._kv is not None
        key = lease_key(stream_id)
        try:
            entry = await self._kv.get(key)
        except nats.js.errors.KeyNotFoundError:  # absent, deleted or expired
            entry = None
        except Exception as exc:
            log.debug("%s: reading the lease: %r", stream_id, exc)
            return
        if entry is not None:
            self._free_since.pop(stream_id, None)  # held by someone (maybe a stale view)
            if entry.value == self._value and entry.revision is not None:
                await self._take_back(stream_id, entry.revision)
            else:
                self._seen_holder(stream_id, json.loads(entry.value or b"{}").get("node"))
            return
        self._seen_holder(stream_id, None)
        now = time.monotonic()
        since = self._free_since.setdefault(stream_id, now)
        score = _score(stream_id, self.node)
        turn = score / 2 if self._polled_held() < self.share() else (1 + score) / 2
        if now - since < self.timing.grace * turn:
            return
        sent = time.monotonic()
        try:
            revision = await self._kv.create(key, self._value)
        except nats.js.errors.KeyWrongLastSequenceError:
            self._free_since.pop(stream_id, None)  # another node was first
            return
        except Exception as exc:
            log.debug("%s: creating the lease: %r", stream_id, exc)
            return
        self._free_since.pop(stream_id, None)
        log.info("%s: lease acquired by %s", stream_id, self.node)
        await self._hold(stream_id, revision, sent)

    async def claim(self, stream_id: str) -> str | None:
        """Take an on-demand stream's lease now (a publisher arrived here): None once this
        node holds it (and runs the stream), else why not (the node holding it). Raises
        ClusterError when NATS cannot decide now."""
        if stream_id in self.held:
            return None
        if self._kv is None:
            raise ClusterError("the lease bucket is not open yet")
        key = lease_key(stream_id)
        try:
            try:
                entry = await self._kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                entry = None
            if entry is not None:
                if entry.value == self._value and entry.revision is not None:
                    await self._take_back(stream_id, entry.revision)
                    if stream_id not in self.held:
                        raise ClusterError(f"taking back the lease of {stream_id} failed")
                    return None
                return json.loads(entry.value or b"{}").get("node", "another node")
            sent = time.monotonic()
            try:
                revision = await self._kv.create(key, self._value)
            except nats.js.errors.KeyWrongLastSequenceError:
                return await self._holder(key)
        except (TimeoutError, nats.errors.Error) as exc:
            raise ClusterError(f"cannot take the lease of {stream_id}: {exc!r}") from exc
        log.info("%s: lease acquired by %s (a publisher arrived)", stream_id, self.node)
        await self._hold(stream_id, revision, sent)
        if stream_id not in self.held:
            raise ClusterError(f"{stream_id} failed to start on {self.node}")
        return None

    async def _holder(self, key: str) -> str:
        assert self._kv is not None
        try:
            entry = await self._kv.get(key)
        except Exception:
            return "another node"
        return str(json.loads(entry.value or b"{}").get("node", "another node"))

    def _seen_holder(self, stream_id: str, node: object) -> None:
        holder = node if isinstance(node, str) else None
        if self.holders.get(stream_id) != holder:
            self.holders[stream_id] = holder
            if self.on_holder is not None:
                self.on_holder(stream_id, holder)

    async def _take_back(self, stream_id: str, revision: int) -> None:
        """The key still holds this node's own lease (lost here when renewals failed, yet
        never expired): nobody else can have it, so renew it and run the stream again."""
        assert self._kv is not None
        sent = time.monotonic()
        try:
            revision = await self._kv.update(lease_key(stream_id), self._value, last=revision)
        except Exception as exc:
            log.debug("%s: taking the lease back: %r", stream_id, exc)
            return
        log.info("%s: lease taken back by %s (it never expired)", stream_id, self.node)
        await self._hold(stream_id, revision, sent)

    async def _hold(self, stream_id: str, revision: int, sent: float) -> None:
        self.held[stream_id] = Lease(stream_id, revision, sent,
                                     sent + self.timing.ttl - self.timing.margin)
        try:
            await self.on_acquired(stream_id)
        except Exception:
            log.exception("%s: starting the stream failed: releasing its lease", stream_id)
            await self.release(stream_id)
            self.pause(stream_id)

    def pause(self, stream_id: str, seconds: float | None = None) -> None:
        """Leave the stream to other nodes for a while (it failed to start or ended here)."""
        self._paused[stream_id] = time.monotonic() + (
            seconds if seconds is not None else self.timing.bound
        )
