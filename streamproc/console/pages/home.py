"""Home (``/console/``): the collections with their face counts, the streams with their
status, and the most recent visits: what a household looks at first."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web

from streamproc.console.keys import USER_KEY
from streamproc.console.pages.people import collection_ids
from streamproc.errors import RekognitionError

if TYPE_CHECKING:
    from streamproc.console.app import Console

RECENT_VISITS = 12


async def collections_with_counts(
    console: Console, request: web.Request
) -> tuple[list[dict[str, Any]], str | None]:
    """``[{"id", "faces"}]`` the user may see, or an error message instead."""
    user = request[USER_KEY]
    if not user.can_operation("ListCollections", {}):
        return [], "You may not list collections (rekognition:ListCollections)."
    try:
        ids = await collection_ids(console, request)
    except RekognitionError as err:
        return [], err.message

    async def describe(collection_id: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": collection_id, "faces": None}
        if user.can_operation("DescribeCollection", {"CollectionId": collection_id}):
            try:
                described = await console.invoke(
                    request, "DescribeCollection", {"CollectionId": collection_id}
                )
                entry["faces"] = described.FaceCount
            except RekognitionError:
                pass
        return entry

    return list(await asyncio.gather(*(describe(c) for c in ids))), None


async def home(console: Console, request: web.Request) -> web.StreamResponse:
    user = request[USER_KEY]
    collections, collections_error = await collections_with_counts(console, request)
    streams = []
    if console.live is not None:
        streams = [s for s in console.live.streams()
                   if user.can_stream("streamproc:ViewStreams", s.id)]
    visits: list[Any] = []
    if console.history is not None:
        found = await asyncio.to_thread(console.history.visits, limit=RECENT_VISITS * 4)
        visits = [v for v in found
                  if user.can_stream("streamproc:ListVisits", v.stream)][:RECENT_VISITS]
    return console.render(
        request, "home.html", title="Home", collections=collections,
        collections_error=collections_error, streams=streams, visits=visits,
    )


def add_routes(router: web.UrlDispatcher, console: Console) -> None:
    router.add_get("/console/", partial(home, console))
