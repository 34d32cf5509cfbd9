"""Metrics (``/console/metrics/``): the reference's metrics per operation and each stream's
fps and latency over the last hour, 6 hours or day, from the process's own history
(``streamproc.metrics_history``), with the running totals as tables under the graphs."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from aiohttp import web

from streamproc.console.keys import USER_KEY
from streamproc.errors import (
    AccessDeniedException,
    InvalidParameterException,
    ResourceNotFoundException,
)

if TYPE_CHECKING:
    from streamproc.console.app import Console

ACTION = "streamproc:ViewMetrics"
#: The range selector's choices, in minutes.
RANGES = ((60, "1 hour"), (360, "6 hours"), (1440, "24 hours"))
DEFAULT_MINUTES = 60


def _minutes(request: web.Request) -> int:
    raw = request.query.get("minutes", str(DEFAULT_MINUTES))
    try:
        minutes = int(raw)
    except ValueError:
        raise InvalidParameterException("minutes must be a whole number") from None
    if not 1 <= minutes <= 1440:
        raise InvalidParameterException("minutes must be between 1 and 1440")
    return minutes


def _refused(console: Console, request: web.Request) -> web.StreamResponse | None:
    """Without ``streamproc:ViewMetrics``: 403 (a console page, not an API answer), with
    IAM's message, as a page or as JSON."""
    try:
        request[USER_KEY].require(ACTION)
    except AccessDeniedException as err:
        response = console.error_response(request, err)
        response.set_status(403)
        return response
    return None


async def metrics_page(console: Console, request: web.Request) -> web.StreamResponse:
    if (refused := _refused(console, request)) is not None:
        return refused
    minutes = _minutes(request)
    history = console.metrics_history
    totals = None
    if history is not None:
        history.sample()
        totals = history.totals()
    return console.render(request, "metrics.html", title="Metrics", totals=totals,
                          ranges=RANGES, minutes=minutes)


async def metrics_series(console: Console, request: web.Request) -> web.StreamResponse:
    """The graphs' data: ``MetricsHistory.series`` as JSON."""
    if (refused := _refused(console, request)) is not None:
        return refused
    minutes = _minutes(request)
    if console.metrics_history is None:
        raise ResourceNotFoundException("this process keeps no metrics history")
    return web.json_response(console.metrics_history.series(minutes),
                             headers={"Cache-Control": "no-store"})


def add_routes(router: web.UrlDispatcher, console: Console) -> None:
    router.add_get("/console/metrics/", partial(metrics_page, console))
    router.add_get("/console/metrics/series", partial(metrics_series, console))
