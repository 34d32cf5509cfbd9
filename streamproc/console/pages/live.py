"""Live (``/console/live/``): each camera's status and rates, and a camera's latest frame with
the faces its analysis found, kept up to date by server-sent events.

Frames are encoded only while someone watches (``streamproc.runtime.live``); stream ids come
only from the configured streams, and every route needs ``streamproc:ViewStreams`` on the
stream.
"""

from __future__ import annotations

import contextlib
import json
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web

from streamproc.console.app import PREFIX, SECURITY_HEADERS
from streamproc.console.keys import USER_KEY
from streamproc.errors import AccessDeniedException, RekognitionError, ResourceNotFoundException

if TYPE_CHECKING:
    from streamproc.console.app import Console
    from streamproc.runtime.live import LiveFrame, LiveUpdate, StreamState

VIEW = "streamproc:ViewStreams"
#: A comment line this often keeps proxies and browsers from closing a quiet event stream.
KEEPALIVE_S = 15.0


class _Refused(Exception):
    """The request names a stream the user may not view (403) or that does not exist (404)."""

    def __init__(self, error: RekognitionError, status: int) -> None:
        self.error, self.status = error, status


def _stream_id(console: Console, request: web.Request) -> str:
    """The requested stream, if the user may view it and it is configured."""
    stream_id = request.match_info["stream"]
    user = request[USER_KEY]
    if not user.can_stream(VIEW, stream_id):
        try:
            user.require_stream(VIEW, stream_id)
        except AccessDeniedException as err:
            raise _Refused(err, 403) from None
    if console.live is None or console.live.stream(stream_id) is None:
        raise _Refused(ResourceNotFoundException(f"No camera named {stream_id[:128]!r} here."),
                       404)
    return stream_id


def _refused(console: Console, request: web.Request, refused: _Refused) -> web.Response:
    response = console.error_response(request, refused.error)
    response.set_status(refused.status)
    return response


def state_json(state: StreamState) -> dict[str, Any]:
    return {"status": state.status, "reason": state.reason, "since": state.since,
            "fps": round(state.fps, 2), "frames": state.frames,
            "latency_ms": round(state.latency_ms, 1) if state.latency_ms is not None else None,
            "node": state.node}


def frame_json(frame: LiveFrame) -> dict[str, Any]:
    return {
        "frame": frame.frame_number, "width": frame.width, "height": frame.height,
        "time": frame.capture_time, "searched": frame.searched,
        "faces": [
            {"box": {"Left": f.box.Left, "Top": f.box.Top, "Width": f.box.Width,
                     "Height": f.box.Height},
             "name": f.name, "similarity": f.similarity}
            for f in frame.faces
        ],
    }


def _event(update: LiveUpdate) -> bytes:
    data: dict[str, Any] = {"type": "frame" if update.frame is not None else "status"}
    if update.frame is not None:
        data.update(frame_json(update.frame))
    data.update(state_json(update.state))
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


# -- pages ----------------------------------------------------------------------------------


async def index(console: Console, request: web.Request) -> web.StreamResponse:
    user = request[USER_KEY]
    streams = []
    if console.live is not None:
        streams = [s for s in console.live.streams() if user.can_stream(VIEW, s.id)]
    return console.render(request, "live_index.html", title="Live", streams=streams,
                          running=console.live is not None)


async def page(console: Console, request: web.Request) -> web.StreamResponse:
    try:
        stream_id = _stream_id(console, request)
    except _Refused as refused:
        return _refused(console, request, refused)
    assert console.live is not None
    state = console.live.stream(stream_id)
    return console.render(request, "live.html", title=f"Live: {stream_id}", stream=state)


async def events(console: Console, request: web.Request) -> web.StreamResponse:
    """Server-sent events: one per new frame and per status change, a comment line after
    :data:`KEEPALIVE_S` of quiet; ends when the client goes or the server stops."""
    try:
        stream_id = _stream_id(console, request)
    except _Refused as refused:
        return _refused(console, request, refused)
    assert console.live is not None
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no", **SECURITY_HEADERS,
    })
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):  # the client went away mid-write
        await response.write(b"retry: 3000\n\n")
        async with contextlib.aclosing(console.live.watch(stream_id, idle=KEEPALIVE_S)) as feed:
            async for update in feed:
                if request.transport is None or request.transport.is_closing():
                    break
                await response.write(b": keep-alive\n\n" if update is None else _event(update))
    return response


async def frame_jpg(console: Console, request: web.Request) -> web.StreamResponse:
    try:
        stream_id = _stream_id(console, request)
    except _Refused as refused:
        return _refused(console, request, refused)
    assert console.live is not None
    number = request.query.get("n", "")
    frame = console.live.frame(stream_id, int(number) if number.isdigit() else None)
    if frame is None:
        return web.Response(
            status=404, text="No frame yet: a camera's frames are kept only while its live "
            "page is open, from the next analysed frame on.",
            headers={"Cache-Control": "no-store"},
        )
    return web.Response(body=frame.jpeg, content_type="image/jpeg",
                        headers={"Cache-Control": "no-store",
                                 "X-Frame-Number": str(frame.frame_number)})


def add_routes(router: web.UrlDispatcher, console: Console) -> None:
    base = f"{PREFIX}/live"
    router.add_get(f"{base}/", partial(index, console))
    router.add_get(f"{base}/{{stream}}", partial(page, console))
    router.add_get(f"{base}/{{stream}}/events", partial(events, console))
    router.add_get(f"{base}/{{stream}}/frame.jpg", partial(frame_jpg, console))
