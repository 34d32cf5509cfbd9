"""WebRTC cameras and browsers publishing over WHIP, received by aiortc: the source.

A :class:`WhipSource` registers with a :class:`~streamproc.http.whip.WhipServer` (the HTTP
endpoint, which answers the publishers' offers and hands each session to its source) and
yields the frames of whoever publishes to ``/whip/<stream_id>`` with the stream's token.

ICE (no STUN by default, loopback-only hosts): see :mod:`streamproc.http.whip`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import av.video.frame
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from streamproc.sources.base import LatestFrame, Source, SourceState, StatusEvent
from streamproc.sources.frame import Frame

if TYPE_CHECKING:
    from streamproc.http.whip import WhipServer

__all__ = [
    "MAX_OFFER_BYTES",
    "SDP_TYPE",
    "WhipError",
    "WhipSource",
    "bearer_accepted",
    "token_digest",
]

log = logging.getLogger(__name__)

SDP_TYPE = "application/sdp"
MAX_OFFER_BYTES = 64 * 1024
class WhipError(Exception):
    """A request the WHIP endpoint refuses; carries the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(eq=False)
class _Session:
    """One publisher's peer connection and the tasks serving it."""

    id: str
    pc: RTCPeerConnection
    started: float = field(default_factory=time.monotonic)
    last_activity: float = field(default_factory=time.monotonic)
    online: bool = False
    ended: bool = False
    frames: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _digest(token: str) -> bytes:
    # Hashing first makes the comparison constant-time in the token's length too.
    return hashlib.sha256(token.encode("utf-8")).digest()


def token_digest(token: str | None) -> bytes | None:
    """What a stream's token is checked against (None: the stream takes no token)."""
    if token is not None and not token:
        raise ValueError("empty WHIP token: pass None to disable authentication")
    return _digest(token) if token is not None else None


def bearer_accepted(digest: bytes | None, authorization: str | None) -> bool:
    """Whether an ``Authorization`` header carries the token of ``digest`` (constant time)."""
    if digest is None:
        return True
    given = _bearer(authorization)
    return given is not None and hmac.compare_digest(_digest(given), digest)


class WhipSource(Source):
    """Frames from whoever publishes to ``/whip/<stream_id>`` with the stream's token.

    Status: CONNECTING ("waiting for publisher") until the first publisher posts, CONNECTING
    again while its connection is negotiated, ONLINE from the first decoded frame, OFFLINE
    with the reason when the session ends (DELETE, peer connection failed or closed, no
    frame for ``frame_timeout`` seconds). While OFFLINE the source waits for the next
    publisher (``retry_in`` is None: the camera has to come back on its own). The iterator
    ends only on :meth:`close`. ``token=None`` turns authentication off for this stream.

    Frames go through a :class:`LatestFrame`: a slow reader gets the newest frame and skips
    are counted. aiortc's track is always drained at the publisher's rate, so nothing queues
    up in the receiver either. ``pts`` restarts near 0 with each session (aiortc maps RTP
    timestamps from the first packet, wrap-around handled); ``frame_number`` never repeats.
    """

    scheme = ("whip",)
    live = True

    def __init__(
        self,
        stream_id: str,
        server: WhipServer,
        token: str | None,
        *,
        frame_timeout: float = 10.0,
    ) -> None:
        super().__init__(stream_id, server.path(stream_id))
        self.server = server
        self.frame_timeout = frame_timeout
        self._token_digest = token_digest(token)
        #: Since when no publisher session is active (monotonic; None while one is).
        self.idle_since: float | None = time.monotonic()
        self._latest = LatestFrame()
        self._session: _Session | None = None
        self._next_number = 0
        self._attempt = 0
        self._closed = False
        self._iterating = False
        self.sessions = 0  # publisher sessions accepted
        self.frames_received = 0  # frames decoded, delivered or skipped
        server._register(self)
        self._set_status(SourceState.CONNECTING, "waiting for publisher")

    # -- Source -------------------------------------------------------------------------------

    @property
    def frames_skipped(self) -> int:
        return self._latest.skipped

    @property
    def session_id(self) -> str | None:
        """The active publisher session, if any."""
        return self._session.id if self._session is not None else None

    async def __aiter__(self) -> AsyncIterator[Frame]:
        if self._iterating:
            raise RuntimeError(f"source {self.stream_id!r} already has a reader")
        self._iterating = True
        while True:
            frame = await self._latest.get()
            if frame is None:
                return
            yield frame

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.server._unregister(self)
        await self._end_active("closed")
        self._latest.close()
        self._set_status(SourceState.STOPPED, "closed")

    # -- sessions (called by WhipServer on the event loop) -------------------------------------

    def _accepts(self, authorization: str | None) -> bool:
        return bearer_accepted(self._token_digest, authorization)

    async def _open_session(self, offer_sdp: str, remote: str | None) -> tuple[str, str]:
        """Negotiate a publisher's offer: (session id, SDP answer with all candidates)."""
        if self._closed:
            raise WhipError(404, f"no WHIP stream {self.stream_id!r}")
        if self._session is not None:
            raise WhipError(409, f"stream {self.stream_id!r} already has a publisher")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=list(self.server.ice_servers)))
        session = _Session(secrets.token_urlsafe(16), pc)
        self._session = session  # reserved before the first await: a racing POST gets 409
        self.idle_since = None
        self.sessions += 1
        log.info(
            "stream %s: publisher %s connecting (session %s)", self.stream_id, remote, session.id
        )
        self._set_status(SourceState.CONNECTING, f"publisher {remote} negotiating")

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            # Only the first video track is read; audio is declined in the answer below.
            if track.kind == "video" and not any(t.get_name() == "video" for t in session.tasks):
                self._spawn(session, self._read_track(session, track), "video")

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            state = pc.connectionState
            log.debug("stream %s session %s: %s", self.stream_id, session.id, state)
            if state in ("failed", "closed"):
                await self._end(session, f"peer connection {state}")

        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            transceivers = pc.getTransceivers()
            if not any(t.kind == "video" for t in transceivers):
                raise WhipError(400, "the offer has no video")
            for transceiver in transceivers:
                if transceiver.kind != "video":
                    transceiver.direction = "inactive"  # never decode audio nobody reads
            await pc.setLocalDescription(await pc.createAnswer())
        except WhipError as exc:
            await self._end(session, f"offer rejected: {exc.message}")
            raise
        except Exception as exc:  # malformed SDP, no common codec, ...
            reason = f"cannot negotiate the offer: {exc}"
            await self._end(session, reason)
            raise WhipError(400, reason) from exc
        if session.ended or pc.localDescription is None:  # closed while negotiating
            raise WhipError(404, f"no WHIP stream {self.stream_id!r}")
        session.last_activity = time.monotonic()
        self._spawn(session, self._watchdog(session), "watchdog")
        return session.id, pc.localDescription.sdp

    async def _end_session(self, session_id: str) -> bool:
        """DELETE: end the session if ``session_id`` is the active one."""
        session = self._session
        if session is None or not hmac.compare_digest(session.id.encode(), session_id.encode()):
            return False
        await self._end(session, "publisher ended the session (DELETE)")
        return True

    async def _end_active(self, reason: str) -> None:
        if self._session is not None:
            await self._end(self._session, reason)

    async def _end(self, session: _Session, reason: str) -> None:
        """Tear a session down once (whoever notices first), then report OFFLINE."""
        if session.ended:
            return
        session.ended = True
        if self._session is session:
            self._session = None
            self.idle_since = time.monotonic()
        current = asyncio.current_task()
        for task in session.tasks:
            if task is not current:
                task.cancel()
        await session.pc.close()
        log.info(
            "stream %s: session %s ended after %d frames: %s",
            self.stream_id,
            session.id,
            session.frames,
            reason,
        )
        if not self._closed:
            if not session.online:
                self._attempt += 1
            self._set_status(SourceState.OFFLINE, reason)

    # -- frames -------------------------------------------------------------------------------

    def _spawn(self, session: _Session, coro: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        session.tasks.add(task)
        task.add_done_callback(session.tasks.discard)

    async def _read_track(self, session: _Session, track: MediaStreamTrack) -> None:
        while True:
            try:
                av_frame = await track.recv()
            except MediaStreamError:
                await self._end(session, "publisher's video track ended")
                return
            if not isinstance(av_frame, av.video.frame.VideoFrame):
                continue
            session.last_activity = time.monotonic()
            if session.ended:
                return
            self._deliver(session, av_frame)  # RGB conversion happens in the worker

    def _deliver(self, session: _Session, av_frame: av.video.frame.VideoFrame) -> None:
        if av_frame.pts is not None and av_frame.time_base is not None:
            pts = float(av_frame.pts * av_frame.time_base)
        else:
            pts = time.monotonic() - session.started
        frame = Frame(
            stream_id=self.stream_id,
            frame_number=self._next_number,
            pts=pts,
            capture_time=time.time(),
            width=av_frame.width,
            height=av_frame.height,
            decoded=av_frame,
        )
        self._next_number += 1
        self.frames_received += 1
        session.frames += 1
        if not session.online:
            session.online = True
            log.info(
                "stream %s online (%dx%d) %.3fs after the offer",
                self.stream_id,
                frame.width,
                frame.height,
                time.monotonic() - session.started,
            )
            self._set_status(SourceState.ONLINE)
            self._attempt = 0
        self._latest.put(frame)

    async def _watchdog(self, session: _Session) -> None:
        """End a session that never sends video or stops sending it (crashed publisher)."""
        while not session.ended:
            idle = time.monotonic() - session.last_activity
            if idle >= self.frame_timeout:
                what = "no frame" if session.online else "no video"
                await self._end(session, f"{what} from the publisher for {self.frame_timeout:g}s")
                return
            await asyncio.sleep(self.frame_timeout - idle)

    def _set_status(self, state: SourceState, reason: str | None = None) -> None:
        attempt = self._attempt if state is not SourceState.ONLINE else 0
        self._emit_status(StatusEvent(self.stream_id, state, reason, time.time(), attempt))
