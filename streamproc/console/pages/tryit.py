"""Try it (``/console/try/``): the reference console's exercises. Upload an image (two for
CompareFaces), run the operation as the signed-in user through ``/console/api/`` (the
API's policy, limits and metrics), and see the answer drawn on the image beside its JSON.
The page only renders the form; ``static/tryit.js`` calls and draws."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from aiohttp import web

from streamproc.console.keys import USER_KEY

if TYPE_CHECKING:
    from streamproc.console.app import Console

#: The exercises, in the reference console's order: operation → what it shows.
OPERATIONS = {
    "DetectFaces": "Faces with their boxes, landmarks and attributes",
    "CompareFaces": "The largest face of a source image, looked for in a target image",
    "DetectLabels": "Objects and scenes, with boxes where they have instances",
    "DetectModerationLabels": "Unsafe or suggestive content",
    "RecognizeCelebrities": "Well-known people, by name",
}
DEFAULT_OPERATION = "DetectFaces"


async def tryit(console: Console, request: web.Request) -> web.StreamResponse:
    operation = request.match_info.get("operation", DEFAULT_OPERATION)
    if operation not in OPERATIONS:
        raise web.HTTPNotFound(text=f"no try-it page for {operation[:100]!r}")
    user = request[USER_KEY]
    allowed = {op: user.can_operation(op, {}) for op in OPERATIONS}
    return console.render(request, "tryit.html", title=f"Try {operation}",
                          operations=OPERATIONS, selected=operation, allowed=allowed)


def add_routes(router: web.UrlDispatcher, console: Console) -> None:
    handler = partial(tryit, console)
    router.add_get("/console/try/", handler)
    router.add_get("/console/try/{operation}", handler)
