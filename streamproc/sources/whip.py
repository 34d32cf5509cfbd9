"""WebRTC cameras and browsers publishing over WHIP (draft-ietf-wish-whip), received by aiortc.

One :class:`WhipServer` (an aiohttp application, standalone or mounted on the service's own
``web.Application``) serves any number of :class:`WhipSource` streams::

    server = WhipServer()
    await server.start("0.0.0.0", 8080)          # or server.add_routes(app) before app start
    source = WhipSource("door", server, token="s3cret")
    async for frame in source:                    # publisher: POST http://host:8080/whip/door
        ...

Protocol, as implemented:

- ``POST /whip/<stream_id>`` with ``Content-Type: application/sdp`` and an SDP offer answers
  ``201 Created``, the SDP answer (``application/sdp``) and ``Location:
  /whip/<stream_id>/<session_id>``. ICE candidates are gathered before answering
  (non-trickle), so the answer is complete.
- ``DELETE`` on the Location ends the session (200).
- ``PATCH`` (trickle ICE, ICE restart) answers 405: a publisher that loses its connection
  posts a new offer instead.
- Errors: unknown stream 404; missing or wrong ``Authorization: Bearer <token>`` 401 with
  ``WWW-Authenticate: Bearer`` (tokens are per stream and compared in constant time, the
  session URL needs the same token); content type other than ``application/sdp`` 415; an
  offer without video or that cannot be negotiated 400; offer larger than 64 KiB 413.
- **One publisher per stream: a second POST while a session is active answers 409
  Conflict.** Taking over would let anyone holding the token silently cut off the running
  camera, and two cameras fighting for one stream id would flap forever; a 409 makes the
  misconfiguration visible. The cost: a publisher that crashed without DELETE blocks its
  stream until the old session is noticed dead, which ``frame_timeout`` (default 10 s
  without a frame) bounds; ICE consent expiry alone would take about 30 s.
- ``OPTIONS`` answers CORS preflights (204); every response carries
  ``Access-Control-Allow-Origin`` and ``Access-Control-Expose-Headers: Location`` so browser
  publishers can read the session URL.

ICE: by default no STUN server is used (aiortc's default would query Google's, which stalls
every answer on a host without internet access); pass ``ice_servers`` to the server when it
sits behind NAT. aioice never offers 127.0.0.1 as a candidate, on purpose. On a host whose
only interface is loopback (a sandbox, a network-less container) nothing is gathered and
connections stay "new"; for such a host (tests, local demos only) patch the gatherer before
the first connection::

    import aioice.ice
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

and, for a browser publisher on that host, start Chromium with
``--allow-loopback-in-peer-connection``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import av.video.frame
from aiohttp import web
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from streamproc.sources.base import LatestFrame, Source, SourceState, StatusEvent
from streamproc.sources.frame import Frame

__all__ = ["WhipError", "WhipServer", "WhipSource"]

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


class WhipServer:
    """The WHIP HTTP endpoint: routes publishers' offers to the registered WhipSources.

    Use :meth:`add_routes` to serve WHIP from the service's own aiohttp application (the
    sessions are then closed on the application's shutdown), or :meth:`start`/:meth:`stop`
    to run it alone. Stream ids are single path segments.
    """

    def __init__(
        self,
        *,
        prefix: str = "/whip",
        ice_servers: Sequence[RTCIceServer] = (),
        allow_origin: str = "*",
    ) -> None:
        self.prefix = "/" + prefix.strip("/")
        self.ice_servers = list(ice_servers)
        self.allow_origin = allow_origin
        self._sources: dict[str, WhipSource] = {}
        self._runner: web.AppRunner | None = None
        self.host: str | None = None
        self.port: int | None = None

    # -- serving ------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        """Mount the WHIP routes on ``app`` (before it starts)."""
        endpoint = self.prefix + "/{stream_id}"
        session = endpoint + "/{session_id}"
        app.router.add_route("POST", endpoint, self._handle_post)
        app.router.add_route("OPTIONS", endpoint, self._handle_options)
        app.router.add_route("DELETE", session, self._handle_delete)
        app.router.add_route("PATCH", session, self._handle_patch)
        app.router.add_route("OPTIONS", session, self._handle_options)
        app.on_shutdown.append(self._on_shutdown)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve WHIP alone on ``host:port`` (port 0 picks a free one, see :attr:`port`)."""
        if self._runner is not None:
            raise RuntimeError("WHIP server already started")
        app = web.Application()
        self.add_routes(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.host = host
        self.port = cast("tuple[str, int]", runner.addresses[0])[1]
        log.info("WHIP server listening on http://%s:%d%s/", host, self.port, self.prefix)

    async def stop(self) -> None:
        """End every session and stop serving; the sources stay registered (and OFFLINE)."""
        await self.close_sessions("WHIP server stopped")
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def close_sessions(self, reason: str = "WHIP server stopped") -> None:
        """End all publisher sessions (the sources then wait for new publishers)."""
        await asyncio.gather(*(s._end_active(reason) for s in list(self._sources.values())))

    def url(self, stream_id: str) -> str:
        """The endpoint URL a publisher POSTs to (standalone server only)."""
        if self.port is None:
            raise RuntimeError("WHIP server not started")
        host = self.host if self.host not in (None, "", "0.0.0.0", "::") else "127.0.0.1"
        return f"http://{host}:{self.port}{self.path(stream_id)}"

    def path(self, stream_id: str) -> str:
        return f"{self.prefix}/{stream_id}"

    # -- sources ------------------------------------------------------------------------------

    @property
    def stream_ids(self) -> list[str]:
        return sorted(self._sources)

    def source_factory(self, stream_id: str, url: str = "", **options: Any) -> WhipSource:
        """A :data:`SourceFactory` for ``register_source("whip", server.source_factory)``.

        The URL carries nothing (tokens do not belong in URLs, which end up in logs); pass
        ``token=`` and the WhipSource options as keyword arguments.
        """
        token = options.pop("token", None)
        return WhipSource(stream_id, self, token, **options)

    def _register(self, source: WhipSource) -> None:
        if "/" in source.stream_id or not source.stream_id:
            raise ValueError(f"WHIP stream id must be one path segment: {source.stream_id!r}")
        if source.stream_id in self._sources:
            raise ValueError(f"a WHIP source is already registered for {source.stream_id!r}")
        self._sources[source.stream_id] = source

    def _unregister(self, source: WhipSource) -> None:
        if self._sources.get(source.stream_id) is source:
            del self._sources[source.stream_id]

    # -- HTTP ---------------------------------------------------------------------------------

    def _cors(self) -> dict[str, str]:
        return {
            "Access-Control-Allow-Origin": self.allow_origin,
            "Access-Control-Expose-Headers": "Location, Accept-Post",
        }

    def _error(self, status: int, message: str, **headers: str) -> web.Response:
        return web.Response(status=status, text=message + "\n", headers={**self._cors(), **headers})

    def _authorize(self, request: web.Request, source: WhipSource) -> web.Response | None:
        if source._accepts(request.headers.get("Authorization")):
            return None
        return self._error(
            401, "missing or wrong bearer token", **{"WWW-Authenticate": 'Bearer realm="whip"'}
        )

    async def _handle_options(self, request: web.Request) -> web.Response:
        headers = {
            **self._cors(),
            "Access-Control-Allow-Methods": "POST, DELETE, PATCH, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
            "Access-Control-Max-Age": "86400",
        }
        if "session_id" not in request.match_info:
            headers["Accept-Post"] = SDP_TYPE
        return web.Response(status=204, headers=headers)

    async def _handle_post(self, request: web.Request) -> web.Response:
        stream_id = request.match_info["stream_id"]
        source = self._sources.get(stream_id)
        if source is None:
            return self._error(404, f"no WHIP stream {stream_id!r}")
        if (refused := self._authorize(request, source)) is not None:
            return refused
        if request.content_type != SDP_TYPE:
            return self._error(
                415, f"expected Content-Type: {SDP_TYPE}", **{"Accept-Post": SDP_TYPE}
            )
        if (request.content_length or 0) > MAX_OFFER_BYTES:
            return self._error(413, "SDP offer too large")
        body = await request.content.read(MAX_OFFER_BYTES + 1)
        if len(body) > MAX_OFFER_BYTES:
            return self._error(413, "SDP offer too large")
        try:
            offer = body.decode("utf-8")
            session_id, answer = await source._open_session(offer, request.remote)
        except UnicodeDecodeError:
            return self._error(400, "SDP offer is not UTF-8")
        except WhipError as exc:
            return self._error(exc.status, exc.message)
        return web.Response(
            status=201,
            body=answer.encode("utf-8"),
            headers={
                **self._cors(),
                "Content-Type": SDP_TYPE,
                "Location": f"{self.path(stream_id)}/{session_id}",
            },
        )

    async def _handle_delete(self, request: web.Request) -> web.Response:
        stream_id = request.match_info["stream_id"]
        source = self._sources.get(stream_id)
        if source is None:
            return self._error(404, f"no WHIP stream {stream_id!r}")
        if (refused := self._authorize(request, source)) is not None:
            return refused
        if not await source._end_session(request.match_info["session_id"]):
            return self._error(404, "no such session")
        return web.Response(status=200, headers=self._cors())

    async def _handle_patch(self, request: web.Request) -> web.Response:
        return self._error(
            405, "trickle ICE and ICE restarts are not supported", Allow="DELETE, OPTIONS"
        )

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.close_sessions("HTTP server shutting down")


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
        if token is not None and not token:
            raise ValueError("empty WHIP token: pass None to disable authentication")
        self.server = server
        self.frame_timeout = frame_timeout
        self._token_digest = _digest(token) if token is not None else None
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
        if self._token_digest is None:
            return True
        given = _bearer(authorization)
        return given is not None and hmac.compare_digest(_digest(given), self._token_digest)

    async def _open_session(self, offer_sdp: str, remote: str | None) -> tuple[str, str]:
        """Negotiate a publisher's offer: (session id, SDP answer with all candidates)."""
        if self._closed:
            raise WhipError(404, f"no WHIP stream {self.stream_id!r}")
        if self._session is not None:
            raise WhipError(409, f"stream {self.stream_id!r} already has a publisher")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=list(self.server.ice_servers)))
        session = _Session(secrets.token_urlsafe(16), pc)
        self._session = session  # reserved before the first await: a racing POST gets 409
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
