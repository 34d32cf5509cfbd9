"""CollectionLog: the JetStream stream every collection write goes through.

One stream (default ``STREAMPROC_COLLECTIONS``, file storage, replicas 3 on a cluster and
1 on a single server) holds one subject per collection (:mod:`.subjects`). Publishing:

- ``Nats-Msg-Id`` is the record id, so a retried publish (lost ack, reconnect, leader
  change) is stored once: JetStream answers the retry with the first copy's sequence.
- ``Nats-Expected-Last-Subject-Sequence`` is the collection subject's last sequence the
  writer decided against, so two writers of one collection cannot both win: the loser gets
  :class:`WrongLastSequence`, catches up and decides again.

Retention: the stream has no age, count or size limit; records go only by rollup
(``Nats-Rollup: sub``, which replaces every earlier record of one collection's subject):

- a DeleteCollection record is a rollup: a deleted collection leaves one small tombstone;
- a Snapshot record (:mod:`.snapshots`, written by :mod:`.compactor`) is a rollup naming an
  object that holds the collection's whole state as of the record before it.

So the log holds, per collection, at most one snapshot and the records since, and a new
node rebuilds every collection from what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    RawStreamMsg,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamInfo,
)

from streamproc.errors import ThrottlingException

from .errors import ClusterError
from .records import Record, encode_record
from .subjects import DEFAULT_PREFIX, collection_from_subject, collection_subject

__all__ = ["DEFAULT_STREAM", "CollectionLog", "LogSettings", "WrongLastSequence"]

log = logging.getLogger(__name__)

DEFAULT_STREAM = "STREAMPROC_COLLECTIONS"
_WRONG_LAST_SEQUENCE = (10071, 10164)  # JSStreamWrongLastSequence(Constant)Err
_NO_MESSAGE = 10037  # JSNoMessageFoundErr
_SUBJECTS_OVERLAP = 10065  # JSStreamSubjectOverlapErr
_TRANSIENT = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionReconnectingError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
    asyncio.TimeoutError,
)


class WrongLastSequence(ClusterError):
    """Another writer appended to the collection since this writer decided."""


@dataclass(frozen=True)
class LogSettings:
    stream: str = DEFAULT_STREAM
    prefix: str = DEFAULT_PREFIX
    replicas: int = 1  # 3 on a cluster
    #: JetStream's duplicate window: a retry within it is recognised by its Nats-Msg-Id.
    duplicate_window_s: float = 120.0
    max_record_bytes: int = 8 * 1024 * 1024
    #: How long one publish or read keeps retrying through reconnects and elections.
    request_timeout_s: float = 15.0
    #: How long one read of the stream (its info, a collection's last record) waits for an
    #: answer before asking again: a request that reaches a stream with no leader (during an
    #: election) is dropped, never answered, so waiting the context's whole timeout for it
    #: would hold a write that long after the new leader is there.
    read_attempt_s: float = 1.0


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, _TRANSIENT):
        return True
    # 503s (no leader yet, cluster not ready), 500s during a leader change
    return isinstance(exc, nats.js.errors.APIError) and exc.code in (500, 503)


class CollectionLog:
    """The stream of collection records, seen through one node's JetStream context."""

    def __init__(self, js: JetStreamContext, settings: LogSettings | None = None) -> None:
        self.js = js
        self.settings = settings or LogSettings()
        self.created: str | None = None  # the stream's creation time: its identity

    @property
    def stream(self) -> str:
        return self.settings.stream

    @property
    def identity(self) -> str:
        if self.created is None:
            raise ClusterError("CollectionLog.ensure() has not been called")
        return self.created

    def subject(self, collection_id: str) -> str:
        return collection_subject(collection_id, self.settings.prefix)

    @property
    def subjects(self) -> str:
        return f"{self.settings.prefix}.*"

    async def _retrying(self, what: str, call, timeout: float | None = None,  # type: ignore[no-untyped-def]
                        attempt_s: float | None = None):
        """``await call()`` until it succeeds, retrying transient errors until the deadline;
        with ``attempt_s``, an attempt unanswered after that long counts as one."""
        deadline = time.monotonic() + (timeout or self.settings.request_timeout_s)
        delay = 0.05
        while True:
            try:
                if attempt_s is None:
                    return await call()
                return await asyncio.wait_for(
                    call(), max(0.05, min(attempt_s, deadline - time.monotonic()))
                )
            except Exception as exc:
                if not _transient(exc):
                    raise
                if time.monotonic() + delay > deadline:
                    raise ThrottlingException(
                        f"the collection log is unavailable ({what}: {type(exc).__name__} "
                        f"{exc}); try again"
                    ) from exc
                if attempt_s is not None and isinstance(exc, asyncio.TimeoutError):
                    log.debug("%s: unanswered after %.2fs; asking again", what, attempt_s)
                    continue  # the attempt's wait was the pause
                log.debug("%s: %r; retrying in %.2fs", what, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def ensure(self) -> StreamInfo:
        """Create the stream if missing (or check the existing one); remember its identity."""
        s = self.settings
        config = StreamConfig(
            name=s.stream,
            subjects=[self.subjects],
            retention=RetentionPolicy.LIMITS,
            discard=DiscardPolicy.OLD,
            storage=StorageType.FILE,
            num_replicas=s.replicas,
            duplicate_window=s.duplicate_window_s,
            max_msg_size=s.max_record_bytes,
            allow_direct=True,
            allow_rollup_hdrs=True,
        )

        async def add() -> StreamInfo:
            try:
                return await self.js.add_stream(config)
            except nats.js.errors.BadRequestError as refused:
                # exists with another configuration (e.g. created by an older node)...
                try:
                    return await self.js.stream_info(s.stream)
                except nats.js.errors.NotFoundError:
                    if refused.err_code == _SUBJECTS_OVERLAP:
                        raise ClusterError(
                            f"cannot create the collection log {s.stream}: another stream "
                            f"of this NATS account already takes its subjects "
                            f"{self.subjects} (one collection log per cluster; give the "
                            "other deployment's log another name and prefix)"
                        ) from refused
                    # ...or refused by a server still rejoining the cluster: try again
                    log.info("creating stream %s refused (%s); retrying", s.stream, refused)
                    raise nats.js.errors.ServiceUnavailableError(
                        description=str(refused)
                    ) from refused

        info = await self._retrying("create the stream", add, timeout=30.0)
        if not info.config.allow_rollup_hdrs:  # created by a node without snapshots
            log.info("stream %s: allowing rollups (snapshots, tombstones)", s.stream)
            info = await self._retrying(
                "allow rollups",
                lambda: self.js.update_stream(info.config.evolve(allow_rollup_hdrs=True)),
                timeout=30.0,
            )
        if list(info.config.subjects or []) != [self.subjects]:
            raise ClusterError(
                f"stream {s.stream} exists with subjects {info.config.subjects}, not "
                f"[{self.subjects}]: another deployment's stream?"
            )
        if info.created is None:
            raise ClusterError(f"stream {s.stream} reports no creation time")
        self.created = info.created.isoformat()
        return info

    async def info(self) -> StreamInfo:
        return await self._retrying("stream info", lambda: self.js.stream_info(self.stream),
                                    attempt_s=self.settings.read_attempt_s)

    async def last_seq(self) -> int:
        """The stream's last sequence (0 when empty)."""
        return int((await self.info()).state.last_seq or 0)

    async def _message(self, what: str, **query: object) -> RawStreamMsg | None:
        """One message of the stream by ``js.get_msg`` query (None: no such message),
        retrying transient errors."""

        async def get() -> RawStreamMsg | None:
            try:
                return await self.js.get_msg(self.stream, **query)  # type: ignore[arg-type]
            except nats.js.errors.NotFoundError:
                return None
            except nats.js.errors.APIError as exc:
                if exc.err_code == _NO_MESSAGE:
                    return None
                raise

        return await self._retrying(  # type: ignore[no-any-return]
            what, get, attempt_s=self.settings.read_attempt_s
        )

    async def last_subject_seq(self, collection_id: str) -> int:
        """The sequence of the collection's last record (0: none ever)."""
        msg = await self._message("last record of a collection",
                                  subject=self.subject(collection_id))
        return int(msg.seq or 0) if msg is not None else 0

    async def subject_counts(self) -> dict[str, int]:
        """How many records each collection has in the log, by collection id."""
        info = await self._retrying(
            "records per collection",
            lambda: self.js.stream_info(self.stream, subjects_filter=f"{self.subjects}"),
            attempt_s=max(self.settings.read_attempt_s, 5.0),
        )
        counts: dict[str, int] = {}
        for subject, n in (info.state.subjects or {}).items():
            with contextlib.suppress(ValueError):  # not ours: say nothing of it
                counts[collection_from_subject(subject, self.settings.prefix)] = int(n)
        return counts

    async def first_record(self, collection_id: str) -> tuple[int, bytes] | None:
        """(sequence, data) of the collection's first record in the log; None: none."""
        msg = await self._message("first record of a collection", seq=1,
                                  subject=self.subject(collection_id), next=True)
        return (int(msg.seq or 0), bytes(msg.data or b"")) if msg is not None else None

    async def records_after(
        self, collection_id: str, after: int, through: int
    ) -> list[tuple[int, bytes]]:
        """(sequence, data) of the collection's records after ``after`` up to ``through``."""
        subject = self.subject(collection_id)
        out: list[tuple[int, bytes]] = []
        seq = after
        while seq < through:
            msg = await self._message("a record of a collection", seq=seq + 1,
                                      subject=subject, next=True)
            if msg is None or int(msg.seq or 0) > through:
                break
            seq = int(msg.seq or 0)
            out.append((seq, bytes(msg.data or b"")))
        return out

    async def holds(self, seq: int) -> bool:
        """Whether the stream still holds sequence ``seq`` (a rollup removes records)."""
        return await self._message("a record by sequence", seq=seq) is not None

    async def publish(
        self,
        record: Record,
        *,
        record_id: str,
        writer: str,
        expected_subject_seq: int,
        rollup: bool = False,
    ) -> int:
        """Append ``record``; returns its stream sequence (the first copy's, for a retry).

        ``rollup``: the record replaces every earlier record of its collection in the log.
        Raises WrongLastSequence when the collection has a newer record than
        ``expected_subject_seq``; ThrottlingException when the log stays unavailable.
        """
        data = encode_record(record, record_id=record_id, writer=writer)
        subject = self.subject(record.collection_id)
        headers = {
            "Nats-Msg-Id": record_id,
            "Nats-Expected-Last-Subject-Sequence": str(expected_subject_seq),
        }
        if rollup:
            headers["Nats-Rollup"] = "sub"

        async def send() -> int:
            try:
                ack = await self.js.publish(
                    subject, data, timeout=2.0, stream=self.stream, headers=dict(headers)
                )
            except nats.js.errors.APIError as exc:
                if exc.err_code in _WRONG_LAST_SEQUENCE:
                    raise WrongLastSequence(str(exc)) from exc
                raise
            if ack.duplicate:
                log.info("record %s was stored before (seq %d): a retry", record_id, ack.seq)
            return int(ack.seq)

        return int(await self._retrying("publish a record", send))

    async def delete(self) -> None:
        """Delete the stream (tests, a deliberate reset)."""
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self.js.delete_stream(self.stream)
