"""Visits (``/console/visits/``): the timeline of the visit history with snapshots, and
naming visitors.

Naming a visit indexes its snapshot (a context crop IndexFaces accepts) into the stream's
search collection under the person's name, so the running stream recognises that person's
next visit, and records the name in the history. The history remembers the face it
indexed (``indexed_collection``/``indexed_face_id``): correcting a name indexes the
snapshot under the new name and deletes that earlier face, so the wrong name stops
matching. Only visits of streams the user may ``streamproc:ListVisits`` are shown; naming
needs ``streamproc:NameVisit`` on the stream and ``rekognition:IndexFaces`` (and
``DeleteFaces`` for a correction) on the collection.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web
from multidict import MultiDict

from streamproc.console.keys import USER_KEY
from streamproc.console.pages.people import collection_ids, person_names
from streamproc.errors import InvalidParameterException, RekognitionError
from streamproc.history.store import check_visitor_id
from streamproc.store.validation import check_collection_id, check_external_image_id

if TYPE_CHECKING:
    from streamproc.console.app import Console
    from streamproc.history import Visit

PAGE = 24
#: One page scans at most this many visits for ones the user may see (then offers "older").
SCAN = 2000
MAX_NAMED = 100
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?")


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


# -- filters ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """The timeline's query, as the form sent it (kept to rebuild links)."""

    name: str = ""
    stream: str = ""
    unknown: bool = False
    since: str = ""
    until: str = ""
    tz: int = 0  # the browser's getTimezoneOffset() (minutes): dates are its local dates

    def query(self, **extra: str) -> str:
        pairs = {"name": self.name, "stream": self.stream, "unknown": "1" if self.unknown else "",
                 "since": self.since, "until": self.until, "tz": str(self.tz) if self.tz else ""}
        pairs.update(extra)
        return urlencode({k: v for k, v in pairs.items() if v})


def _filters(query: Any) -> Filters:
    try:
        tz = int(query.get("tz", "0") or 0)
    except ValueError:
        tz = 0
    return Filters(
        name=query.get("name", "").strip()[:255], stream=query.get("stream", "").strip()[:255],
        unknown=query.get("unknown", "") in ("1", "on", "true"),
        since=query.get("since", "").strip()[:32], until=query.get("until", "").strip()[:32],
        tz=max(-1440, min(1440, tz)),
    )


def _epoch(value: str, tz_minutes: int, *, end: bool) -> float | None:
    """A date (its start; for ``end`` the next day's start) or a datetime-local, in the
    browser's zone; raises InvalidParameterException for anything else."""
    if not value:
        return None
    try:
        if _DATE.fullmatch(value):
            when = datetime.strptime(value, "%Y-%m-%d")
            if end:
                when += timedelta(days=1)
        elif _DATETIME.fullmatch(value):
            when = datetime.fromisoformat(value)
        else:
            raise ValueError(value)
    except ValueError:
        raise InvalidParameterException(
            f"{value!r} is not a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM)") from None
    return when.replace(tzinfo=UTC).timestamp() + tz_minutes * 60


async def _visible_page(console: Console, request: web.Request, filters: Filters,
                        before: str | None) -> tuple[list[Visit], str | None]:
    """A page of visits the user may list, newest first, and the cursor of the next page.

    The history filters by one stream; a user allowed only some streams gets the others
    skipped here, reading on until the page is full (at most ``SCAN`` visits a page)."""
    assert console.history is not None
    user = request[USER_KEY]
    since = _epoch(filters.since, filters.tz, end=False)
    until = _epoch(filters.until, filters.tz, end=True)
    if filters.stream:
        user.require_stream("streamproc:ListVisits", filters.stream)
    shown: list[Visit] = []
    scanned = 0
    cursor = before
    while True:
        batch: list[Visit] = await asyncio.to_thread(
            console.history.visits, stream=filters.stream or None, name=filters.name or None,
            unknown_only=filters.unknown, since=since, until=until, limit=PAGE + 1,
            before=cursor)
        scanned += len(batch)
        for visit in batch:
            if user.can_stream("streamproc:ListVisits", visit.stream):
                if len(shown) == PAGE:  # one more exists: the page ends at the last shown
                    return shown, shown[-1].cursor
                shown.append(visit)
        if len(batch) <= PAGE:
            return shown, None
        cursor = batch[-1].cursor
        if scanned >= SCAN:  # the user sees few of these visits: offer the rest as "older"
            return shown, cursor


# -- collections a visit can be named into ----------------------------------------------------


async def _naming_collections(console: Console, request: web.Request,
                              streams: set[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The collections to offer, and each shown stream's search collections.

    A stream that searches no collection (or one the console does not know) is named into
    any collection the user may IndexFaces into."""
    user = request[USER_KEY]
    per_stream = {s: list(console.searches.get(s, [])) for s in streams}
    offered: list[str] = []
    for ids in per_stream.values():
        offered += ids
    if not streams or any(not ids for ids in per_stream.values()):
        with suppress(RekognitionError):  # not allowed to list: the streams' own only
            offered += await collection_ids(console, request)
    offered = [c for c in dict.fromkeys(offered)
               if user.can_operation("IndexFaces", {"CollectionId": c})]
    return offered, per_stream


# -- the timeline ----------------------------------------------------------------------------


async def visits_page(console: Console, request: web.Request, *,
                      query: Mapping[str, str] | None = None,
                      results: list[dict[str, Any]] | None = None,
                      problem: str | None = None, status: int = 200) -> web.StreamResponse:
    if query is None:
        query = request.query
    filters = _filters(query)
    before = query.get("before") or None
    visits: list[Visit] = []
    next_cursor = None
    if console.history is not None:
        try:
            visits, next_cursor = await _visible_page(console, request, filters, before)
        except InvalidParameterException as err:
            problem, status = err.message, 400
    user = request[USER_KEY]
    streams = {v.stream for v in visits}
    if filters.stream:
        streams.add(filters.stream)
    can_name = {s for s in streams if user.can_stream("streamproc:NameVisit", s)}
    offered: list[str] = []
    per_stream: dict[str, list[str]] = {}
    names: list[str] = []
    if can_name:
        offered, per_stream = await _naming_collections(console, request, can_name)
        names = await person_names(console, request, offered)
    known_streams = sorted(set(console.searches) | streams)
    if console.live is not None:
        known_streams = sorted(set(known_streams) | {s.id for s in console.live.streams()})
    known_streams = [s for s in known_streams if user.can_stream("streamproc:ListVisits", s)]
    response = console.render(
        request, "visits.html", title="Visits", visits=visits, filters=filters,
        next_query=filters.query(before=next_cursor) if next_cursor else None,
        first_query=filters.query() if before else None, history=console.history is not None,
        streams=known_streams, names=names, collections=offered, per_stream=per_stream,
        can_name=can_name, results=results, problem=problem,
        return_query=urlencode(list(query.items())),
        selectable=True,
    )
    response.set_status(status)
    return response


async def snapshot(console: Console, request: web.Request) -> web.StreamResponse:
    """The visit's snapshot JPEG; the path comes only from VisitHistory (validated ids)."""
    if console.history is None:
        raise web.HTTPNotFound(text="no visit history here")
    try:
        visitor_id = check_visitor_id(request.match_info["visitor_id"])
    except InvalidParameterException:
        raise web.HTTPNotFound(text="no such visit") from None
    visit = await asyncio.to_thread(console.history.visit, visitor_id)
    if visit is None:
        raise web.HTTPNotFound(text="no such visit")
    request[USER_KEY].require_stream("streamproc:ListVisits", visit.stream)
    data = await asyncio.to_thread(console.history.snapshot, visitor_id)
    if data is None:
        raise web.HTTPNotFound(text="this visit has no snapshot")
    return web.Response(body=data, content_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=3600"})


# -- naming ----------------------------------------------------------------------------------


async def _name_one(console: Console, request: web.Request, visitor_id: str, name: str,
                    chosen: str) -> dict[str, Any]:
    """Index one visit's snapshot under ``name`` and record the name; the outcome."""
    assert console.history is not None
    user = request[USER_KEY]
    outcome: dict[str, Any] = {"VisitorId": visitor_id, "Name": name}
    try:
        check_visitor_id(visitor_id)
    except InvalidParameterException as err:
        return outcome | {"VisitorId": visitor_id[:40], "Error": err.message}
    visit = await asyncio.to_thread(console.history.visit, visitor_id)
    if visit is None:
        return outcome | {"Error": "This visit is no longer in the history."}
    outcome["Stream"] = visit.stream
    if not user.can_stream("streamproc:NameVisit", visit.stream):
        return outcome | {"Error": f"AccessDeniedException: you may not name visits of "
                                   f"{visit.stream} (streamproc:NameVisit)."}
    searched = console.searches.get(visit.stream, [])
    if chosen:
        if searched and chosen not in searched:
            return outcome | {"Error": f"{visit.stream} does not search {chosen}; choose one "
                                       f"of {', '.join(searched)}."}
        collection = chosen
    elif len(searched) == 1:
        collection = searched[0]
    elif searched:
        return outcome | {"Error": f"{visit.stream} searches {', '.join(searched)}: choose "
                                   "the collection."}
    else:
        return outcome | {"Error": f"{visit.stream} searches no collection: choose one."}
    outcome["CollectionId"] = collection
    old = (visit.indexed_collection, visit.indexed_face_id)
    if old[1] is not None and old[0] is not None and not user.can_operation(
            "DeleteFaces", {"CollectionId": old[0]}):
        return outcome | {"Error": f"AccessDeniedException: correcting this name deletes the "
                                   f"face indexed as {visit.name} from {old[0]}, which your "
                                   "policy does not allow (rekognition:DeleteFaces)."}
    data = await asyncio.to_thread(console.history.snapshot, visitor_id)
    if data is None:
        return outcome | {"Error": "This visit has no snapshot to index."}
    try:
        indexed = await console.invoke(request, "IndexFaces", {
            "CollectionId": collection, "Image": {"Bytes": data},
            "ExternalImageId": name, "MaxFaces": 1})
    except RekognitionError as err:
        return outcome | {"Error": f"{err.code}: {err.message}"}
    if not indexed.FaceRecords:
        return outcome | {"Error": "No face found in this snapshot: it was not indexed and "
                                   "the visit keeps its name."}
    face = indexed.FaceRecords[0].Face
    outcome["FaceId"] = face.FaceId
    await console.thumbnails.save(collection, data, [(face.FaceId, face.BoundingBox)])
    if old[0] is not None and old[1] is not None and old != (collection, face.FaceId):
        try:
            await console.invoke(request, "DeleteFaces",
                                 {"CollectionId": old[0], "FaceIds": [old[1]]})
            outcome["DeletedFaceId"] = old[1]
        except RekognitionError as err:
            if err.code != "ResourceNotFoundException":  # the collection went: so did it
                outcome["Warning"] = (f"The face indexed under the old name stays in "
                                      f"{old[0]}: {err.code}: {err.message}")
        await console.thumbnails.delete(old[0], [old[1]])
    await asyncio.to_thread(console.history.rename, visitor_id, name,
                            collection_id=collection, face_id=face.FaceId)
    return outcome


async def name_visits(console: Console, request: web.Request) -> web.StreamResponse:
    """POST /console/visits/name: ``visitor`` (one or several), ``name`` (or ``new_name``)
    and ``collection``; one outcome per visit."""
    if console.history is None:
        raise web.HTTPNotFound(text="no visit history here")
    if request.content_type == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="send a JSON object")
        visitors = [str(v) for v in body.get("VisitorIds") or []]
        name = str(body.get("Name") or "").strip()
        chosen = str(body.get("CollectionId") or "").strip()
        back = ""
    else:
        form = await request.post()
        visitors = [str(v) for v in form.getall("visitor", [])]
        name = str(form.get("new_name") or form.get("name") or "").strip()
        chosen = str(form.get("collection") or "").strip()
        back = str(form.get("return") or "")
    problem = None
    try:
        if not visitors:
            raise InvalidParameterException("Select at least one visit.")
        if len(visitors) > MAX_NAMED:
            raise InvalidParameterException(f"Name at most {MAX_NAMED} visits at once.")
        if not name:
            raise InvalidParameterException("Choose a person or type a name.")
        check_external_image_id(name)
        if chosen:
            check_collection_id(chosen)
    except InvalidParameterException as err:
        problem = err.message
    results: list[dict[str, Any]] = []
    if problem is None:
        for visitor_id in dict.fromkeys(visitors):
            results.append(await _name_one(console, request, visitor_id, name, chosen))
    named = sum(1 for r in results if "FaceId" in r)
    status = 400 if problem else 200
    if _wants_json(request):
        return web.json_response({"Error": problem, "Named": named, "Results": results},
                                 status=status)
    # Rendered in place (not redirected) so each visit's outcome is shown with the page,
    # with the timeline the form was on (its query came back in ``return``).
    query = MultiDict(parse_qsl(back[:2000]))
    return await visits_page(console, request, query=query, results=results,
                             problem=problem, status=status)


def add_routes(router: web.UrlDispatcher, console: Console) -> None:
    router.add_get("/console/visits/", partial(visits_page, console))
    router.add_post("/console/visits/name", partial(name_visits, console))
    router.add_get("/console/visits/{visitor_id}/snapshot.jpg", partial(snapshot, console))
