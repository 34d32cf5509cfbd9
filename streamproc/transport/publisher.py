"""Publish analysis results on NATS: ``streamproc.<stream>.frames|status|events``.

Two delivery modes, chosen by whether a JetStream stream name is configured:

* **Plain NATS** (``stream=None``): fire-and-forget, at most once. While the connection is
  down, nats-py buffers publishes in memory up to ``pending_size`` bytes and flushes them on
  reconnect; beyond that, publishes are dropped (counted, logged), never raised, so a NATS
  outage cannot stall a camera pipeline. Messages written just before a server dies, and
  messages to subscribers that have not re-subscribed yet, are lost.
* **JetStream** (``stream="STREAMPROC"``): the stream (file storage, capturing
  ``streamproc.>``) is created or updated on connect, and every publish waits for the server's
  acknowledgement, retrying on timeouts and outages for up to ``retry_for`` seconds. Each
  message carries a ``Nats-Msg-Id`` so a retry of a message the server did store is
  de-duplicated: at least once on the wire, exactly once in the stream, across restarts.
  ``publish`` then blocks during an outage: run it in a task where that matters. Concurrent
  publishes that are retried may land out of order; awaited one by one they keep their order.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Final, Self

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.client import Server
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, PubAck, StorageType, StreamConfig

from streamproc.shapes import Shape
from streamproc.transport.codec import Codec, CodecError, codec_for

__all__ = [
    "SUBJECT_ROOT",
    "Publisher",
    "PublisherStats",
    "events_subject",
    "frames_subject",
    "status_subject",
    "validate_stream_id",
]

log = logging.getLogger(__name__)

SUBJECT_ROOT: Final = "streamproc"
_STREAM_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]+")
_MIB: Final = 1024 * 1024
# JetStream publishes retry on these: the server is away, restarting, or JetStream not ready.
_RETRYABLE: Final = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.ConnectionReconnectingError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
)


def validate_stream_id(stream_id: str) -> str:
    """A stream id becomes one subject token: letters, digits, ``_`` and ``-`` only."""
    if not isinstance(stream_id, str) or not _STREAM_ID_RE.fullmatch(stream_id):
        raise ValueError(f"invalid stream id {stream_id!r}: use only A-Z, a-z, 0-9, '_' and '-'")
    return stream_id


def frames_subject(stream_id: str) -> str:
    """Subject of per-frame results: ``streamproc.<stream>.frames``."""
    return f"{SUBJECT_ROOT}.{validate_stream_id(stream_id)}.frames"


def status_subject(stream_id: str) -> str:
    """Subject of connection status changes: ``streamproc.<stream>.status``."""
    return f"{SUBJECT_ROOT}.{validate_stream_id(stream_id)}.status"


def events_subject(stream_id: str) -> str:
    """Subject of visitor / label events: ``streamproc.<stream>.events``."""
    return f"{SUBJECT_ROOT}.{validate_stream_id(stream_id)}.events"


def _subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching (``*`` one token, ``>`` the rest)."""
    want, got = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(got) > i
        if i >= len(got) or (token != "*" and token != got[i]):
            return False
    return len(want) == len(got)


@dataclass
class PublisherStats:
    """Counters for status pages and tests."""

    published: int = 0
    dropped: int = 0
    retries: int = 0
    disconnects: int = 0
    reconnects: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Publisher:
    """Owns one nats-py connection that publishes results, surviving server restarts."""

    def __init__(
        self,
        servers: str | Sequence[str] = "nats://127.0.0.1:4222",
        *,
        codec: Codec | str = "msgpack",
        name: str = "streamproc-publisher",
        pending_size: int = 16 * _MIB,
        reconnect_wait: float = 0.1,
        max_reconnect_wait: float = 5.0,
        connect_timeout: float = 5.0,
        stream: str | None = None,
        stream_subjects: Sequence[str] = (f"{SUBJECT_ROOT}.>",),
        stream_max_age: float | None = 7 * 24 * 3600.0,
        stream_max_bytes: int | None = 1024 * _MIB,
        publish_timeout: float = 2.0,
        retry_for: float = 300.0,
        connect_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        self.codec = codec_for(codec)
        self.name = name
        self.pending_size = pending_size
        self.reconnect_wait = reconnect_wait
        self.max_reconnect_wait = max_reconnect_wait
        self.connect_timeout = connect_timeout
        self.stream = stream
        self.stream_subjects = tuple(stream_subjects)
        self.stream_max_age = stream_max_age
        self.stream_max_bytes = stream_max_bytes
        self.publish_timeout = publish_timeout
        self.retry_for = retry_for
        #: Extra ``nats.connect`` options: credentials, TLS context, user/password.
        self.connect_options = dict(connect_options or {})
        self.last_error: Exception | None = None  # for start-up diagnostics
        self.stats = PublisherStats()
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._disconnected_at: float | None = None
        self._closing = False

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def nc(self) -> NatsClient:
        if self._nc is None:
            raise RuntimeError("Publisher is not connected; call connect() first")
        return self._nc

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def connect(self) -> None:
        """Connect (the first connection must succeed) and, with JetStream, ensure the stream."""
        if self._nc is not None:
            return
        self._closing = False
        self._nc = await nats.connect(
            self.servers,
            name=self.name,
            connect_timeout=self.connect_timeout,
            max_reconnect_attempts=-1,
            reconnect_time_wait=self.reconnect_wait,
            reconnect_to_server_handler=self._next_server,
            pending_size=self.pending_size,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            closed_cb=self._on_closed,
            lame_duck_mode_cb=self._on_lame_duck,
            **self.connect_options,
        )
        if self.stream is not None:
            self._js = self._nc.jetstream(timeout=self.publish_timeout)
            try:
                await self._ensure_stream()
            except BaseException:
                await self.close()
                raise
        log.info(
            "publishing %s to %s%s",
            self.codec.name,
            self._nc.connected_url.netloc if self._nc.connected_url else self.servers,
            f" through JetStream stream {self.stream}" if self.stream else "",
        )

    async def close(self) -> None:
        """Flush what is buffered (briefly) and close the connection."""
        nc, self._nc, self._js = self._nc, None, None
        self._closing = True
        if nc is None or nc.is_closed:
            return
        try:
            if nc.is_connected:
                await nc.flush(timeout=2)
        except Exception as exc:
            log.warning("could not flush NATS publishes before closing: %s", exc)
        try:
            await nc.close()
        except Exception as exc:  # nats-py may raise closing a connection that is reconnecting
            log.debug("error while closing the NATS connection: %r", exc)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- publishing ---------------------------------------------------------------------------

    async def publish(
        self,
        subject: str,
        payload: Mapping[str, Any] | Shape,
        headers: Mapping[str, str] | None = None,
    ) -> PubAck | None:
        """Encode ``payload`` with the codec and publish it; the PubAck with JetStream.

        Plain NATS never raises for an outage (see the module docstring); JetStream raises
        the last nats error once ``retry_for`` seconds of retries are spent.
        """
        if isinstance(payload, Shape):
            payload = payload.to_wire()  # the wire dict is made here, at the edge
        data = self.codec.encode(payload)
        hdrs = {"Content-Type": self.codec.content_type, **(headers or {})}
        nc = self.nc
        if len(data) > nc.max_payload:
            raise CodecError(
                f"{subject}: {len(data)} bytes is over the server's max_payload of "
                f"{nc.max_payload} bytes"
            )
        if self._js is None:
            await self._publish_plain(nc, subject, data, hdrs)
            return None
        return await self._publish_js(self._js, subject, data, hdrs)

    async def _publish_plain(
        self, nc: NatsClient, subject: str, data: bytes, headers: dict[str, str]
    ) -> None:
        try:
            await nc.publish(subject, data, headers=headers)
        except nats.errors.OutboundBufferLimitError:
            self.stats.dropped += 1
            if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                log.warning(
                    "NATS is unreachable and the %d-byte buffer is full: dropped %d messages",
                    self.pending_size,
                    self.stats.dropped,
                )
            return
        self.stats.published += 1

    async def _publish_js(
        self, js: JetStreamContext, subject: str, data: bytes, headers: dict[str, str]
    ) -> PubAck:
        if not any(_subject_matches(p, subject) for p in self.stream_subjects):
            raise ValueError(f"{subject} is not captured by stream {self.stream}")
        headers["Nats-Msg-Id"] = uuid.uuid4().hex  # same id on every retry: de-duplicated
        deadline = time.monotonic() + self.retry_for
        delay = 0.05
        while True:
            try:
                ack = await js.publish(
                    subject, data, timeout=self.publish_timeout, headers=dict(headers)
                )
            except _RETRYABLE as exc:
                if time.monotonic() + delay > deadline:
                    self.stats.errors += 1
                    log.error("giving up publishing to %s after %.0f s", subject, self.retry_for)
                    raise
                self.stats.retries += 1
                log.debug("retrying JetStream publish to %s: %r", subject, exc)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.max_reconnect_wait)
                continue
            self.stats.published += 1
            return ack

    async def _ensure_stream(self) -> None:
        """Create the stream, or bring an existing one's limits to this configuration."""
        assert self._js is not None and self.stream is not None
        dedup = max(120.0, self.retry_for)
        if self.stream_max_age:
            dedup = min(dedup, self.stream_max_age)
        config = StreamConfig(
            name=self.stream,
            subjects=list(self.stream_subjects),
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=self.stream_max_age,
            max_bytes=self.stream_max_bytes if self.stream_max_bytes else -1,
            duplicate_window=dedup,
        )
        try:
            await self._js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await self._js.add_stream(config)
            log.info("created JetStream stream %s on %s", self.stream, self.stream_subjects)
            return
        except (nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError) as exc:
            raise RuntimeError(
                "JetStream is not enabled on the NATS server (start it with -js)"
            ) from exc
        try:
            await self._js.update_stream(config)
        except nats.js.errors.BadRequestError as exc:
            log.warning("keeping stream %s as it is; cannot update it: %s", self.stream, exc)

    # -- connection callbacks (log, never raise) ----------------------------------------------

    def _next_server(
        self, servers: list[Server], info: dict[str, Any]
    ) -> tuple[Server | None, float]:
        """Reconnect to the least-failed server after an exponential, jittered wait."""
        server = min(servers, key=lambda s: s.reconnects)
        wait = min(self.max_reconnect_wait, self.reconnect_wait * 2 ** min(server.reconnects, 20))
        return server, wait * random.uniform(0.8, 1.2)

    async def _on_disconnected(self) -> None:
        if self._closing:  # nats-py reports its own close as a disconnect too
            return
        self.stats.disconnects += 1
        self._disconnected_at = time.monotonic()
        mode = "JetStream publishes wait and retry" if self.stream else "buffering publishes"
        log.warning("disconnected from NATS; %s (up to %d bytes)", mode, self.pending_size)

    async def _on_reconnected(self) -> None:
        self.stats.reconnects += 1
        down = time.monotonic() - self._disconnected_at if self._disconnected_at else 0.0
        self._disconnected_at = None
        url = self._nc.connected_url.netloc if self._nc and self._nc.connected_url else "?"
        log.info("reconnected to NATS at %s after %.1f s", url, down)

    async def _on_error(self, exc: Exception) -> None:
        # Keep the server's own reason (e.g. an authorization violation) over the socket
        # reset that follows it: that is what a start-up error should name.
        if self.last_error is None or not isinstance(exc, OSError):
            self.last_error = exc
        if self._disconnected_at is not None and isinstance(exc, OSError | asyncio.TimeoutError):
            log.debug("NATS reconnect attempt failed: %s", exc)  # expected during an outage
            return
        if isinstance(exc, nats.errors.UnexpectedEOF | nats.errors.StaleConnectionError):
            log.info("NATS connection lost: %r", exc)  # the disconnect callback follows
            return
        log.warning("NATS error: %r", exc)

    async def _on_closed(self) -> None:
        log.info("NATS connection closed")

    async def _on_lame_duck(self) -> None:
        log.warning("NATS server entering lame duck mode; will reconnect elsewhere")
