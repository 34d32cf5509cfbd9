"""The WHIP HTTP endpoint (draft-ietf-wish-whip): routes publishers' offers to the
:class:`~streamproc.sources.whip.WhipSource` registered for each stream.

One :class:`WhipServer` (an aiohttp application, standalone or mounted on the service's own
``web.Application``) serves any number of WHIP streams::

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
- **Streams started on demand** (a cluster, README "Scaling out"): a stream given to
  :meth:`WhipServer.expect` has no source until a publisher arrives. A POST for it is
  authorised against the stream's token first, then ``claim(stream_id)`` is awaited, which
  starts the stream on this node (its source registers) or raises :class:`WhipError` (409
  naming the node that runs it, 503 when that cannot be decided now).
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
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from aiohttp import web
from aiortc import RTCIceServer

from streamproc.sources.whip import (
    MAX_OFFER_BYTES,
    SDP_TYPE,
    WhipError,
    WhipSource,
    bearer_accepted,
    token_digest,
)

__all__ = ["WhipServer"]

log = logging.getLogger(__name__)


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
        self._expected: dict[str, bytes | None] = {}  # on-demand streams: token digests
        self.claim: Callable[[str], Awaitable[None]] | None = None
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

    def expect(self, stream_id: str, token: str | None) -> None:
        """A stream whose source starts only when a publisher arrives (see ``claim``)."""
        self._expected[stream_id] = token_digest(token)

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
        return self._unauthorized()

    def _unauthorized(self) -> web.Response:
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
        if source is None and stream_id in self._expected and self.claim is not None:
            if not bearer_accepted(self._expected[stream_id],
                                   request.headers.get("Authorization")):
                return self._unauthorized()
            try:
                await self.claim(stream_id)
            except WhipError as exc:
                return self._error(exc.status, exc.message)
            source = self._sources.get(stream_id)
            if source is None:
                return self._error(503, f"stream {stream_id!r} did not start here; try again")
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
