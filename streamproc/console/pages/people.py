"""People (``/console/collections/``): the collections, and per collection the people
(ExternalImageId) with their faces; add photos for a person, delete a face or a person,
create and delete collections.

Every action is the Rekognition operation itself, run as the signed-in user through
``console.invoke`` (policy, limits, metrics of the API). Faces indexed here get a small
thumbnail of the console's own (``streamproc.console.thumbnails``); the collection keeps
vectors only. Forms work as plain HTML posts; ``people.js`` only makes them nicer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.web_request import FileField

from streamproc.console.keys import USER_KEY
from streamproc.errors import (
    AccessDeniedException,
    ImageTooLargeException,
    InvalidParameterException,
    RekognitionError,
)
from streamproc.images import MAX_IMAGE_BYTES
from streamproc.store.validation import (
    check_collection_id,
    check_external_image_id,
    check_face_id,
)

if TYPE_CHECKING:
    from streamproc.console.app import Console

#: Faces per ListFaces page on a collection's page.
PAGE_FACES = 200
#: A name list (datalist) reads at most this many faces of a collection.
NAME_SCAN_FACES = 4096
#: Files of one upload.
MAX_FILES = 50
NO_NAME = "(no name)"


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _collection_id(request: web.Request) -> str:
    """The path's CollectionId, or 404: an id the API would refuse names no collection."""
    collection_id = request.match_info["collection_id"]
    try:
        return check_collection_id(collection_id)
    except InvalidParameterException:
        raise web.HTTPNotFound(text="no such collection") from None


def _collection_url(collection_id: str) -> str:
    return f"/console/collections/{quote(collection_id, safe='')}"


# -- what other pages read ------------------------------------------------------------------


async def collection_ids(console: Console, request: web.Request) -> list[str]:
    """Every collection the user may list (empty when ListCollections is not allowed)."""
    user = request[USER_KEY]
    if not user.can_operation("ListCollections", {}):
        return []
    ids: list[str] = []
    token = None
    while True:
        params: dict[str, Any] = {"MaxResults": 1000}
        if token:
            params["NextToken"] = token
        listed = await console.invoke(request, "ListCollections", params)
        ids += listed.CollectionIds or []
        token = listed.NextToken
        if not token:
            return ids


async def list_faces(
    console: Console, request: web.Request, collection_id: str, *,
    limit: int = NAME_SCAN_FACES, token: str | None = None,
) -> tuple[list[Any], str | None]:
    """Up to ``limit`` faces from ``token`` on, and the token of what is left."""
    faces: list[Any] = []
    while len(faces) < limit:
        params: dict[str, Any] = {"CollectionId": collection_id,
                                  "MaxResults": min(1000, limit - len(faces))}
        if token:
            params["NextToken"] = token
        listed = await console.invoke(request, "ListFaces", params)
        faces += listed.Faces
        token = listed.NextToken
        if not token:
            break
    return faces, token


async def person_names(console: Console, request: web.Request,
                       collections: list[str]) -> list[str]:
    """The ExternalImageIds of these collections the user may list (for a datalist)."""
    user = request[USER_KEY]
    names: set[str] = set()
    for collection_id in collections:
        if not user.can_operation("ListFaces", {"CollectionId": collection_id}):
            continue
        try:
            faces, _ = await list_faces(console, request, collection_id)
        except RekognitionError:
            continue
        names.update(f.ExternalImageId for f in faces if f.ExternalImageId)
    return sorted(names, key=str.casefold)


# -- the collections -------------------------------------------------------------------------


async def collections_page(console: Console, request: web.Request) -> web.StreamResponse:
    from streamproc.console.pages.home import collections_with_counts

    collections, error = await collections_with_counts(console, request)
    user = request[USER_KEY]
    confirm = request.query.get("delete")
    if confirm is not None and confirm not in {c["id"] for c in collections}:
        confirm = None
    return console.render(
        request, "collections.html", title="People", collections=collections,
        collections_error=error, confirm_delete=confirm, message=None, problem=None,
        can_create=user.can("rekognition:CreateCollection", _arn(console, "*")),
    )


def _arn(console: Console, collection_id: str) -> str:
    return f"arn:aws:rekognition:{console.region}:{console.account}:collection/{collection_id}"


async def _collections_result(console: Console, request: web.Request, *,
                              message: str | None = None, problem: str | None = None,
                              status: int = 200) -> web.StreamResponse:
    if _wants_json(request):
        return web.json_response({"Message": message, "Error": problem}, status=status)
    from streamproc.console.pages.home import collections_with_counts

    collections, error = await collections_with_counts(console, request)
    user = request[USER_KEY]
    response = console.render(
        request, "collections.html", title="People", collections=collections,
        collections_error=error, confirm_delete=None, message=message, problem=problem,
        can_create=user.can("rekognition:CreateCollection", _arn(console, "*")),
    )
    response.set_status(status)
    return response


async def create_collection(console: Console, request: web.Request) -> web.StreamResponse:
    form = await request.post()
    collection_id = str(form.get("collection_id", "")).strip()
    try:
        await console.invoke(request, "CreateCollection", {"CollectionId": collection_id})
    except RekognitionError as err:
        return await _collections_result(console, request, problem=f"{err.code}: {err.message}",
                                         status=err.http_status)
    if _wants_json(request):
        return web.json_response({"Message": f"Created {collection_id}."})
    raise web.HTTPSeeOther(_collection_url(collection_id))


async def delete_collection(console: Console, request: web.Request) -> web.StreamResponse:
    """The confirmation step is the GET ``?delete=<id>`` page; this POST needs ``confirm``."""
    collection_id = _collection_id(request)
    form = await request.post()
    if form.get("confirm") != collection_id:
        raise web.HTTPSeeOther(f"/console/collections/?delete={quote(collection_id, safe='')}")
    try:
        await console.invoke(request, "DeleteCollection", {"CollectionId": collection_id})
    except RekognitionError as err:
        return await _collections_result(console, request, problem=f"{err.code}: {err.message}",
                                         status=err.http_status)
    await console.thumbnails.delete_collection(collection_id)
    return await _collections_result(console, request,
                                     message=f"Deleted collection {collection_id}.")


# -- one collection --------------------------------------------------------------------------


@dataclass
class Person:
    name: str | None
    faces: list[Any] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.name if self.name is not None else NO_NAME


def group_people(faces: list[Any]) -> list[Person]:
    """Faces by ExternalImageId, names in order, faces without one last."""
    people: dict[str | None, Person] = {}
    for face in faces:
        people.setdefault(face.ExternalImageId, Person(face.ExternalImageId)).faces.append(face)
    return sorted(people.values(), key=lambda p: (p.name is None, (p.name or "").casefold()))


@dataclass
class FileOutcome:
    """What became of one uploaded file."""

    file: str
    face_ids: list[str] = field(default_factory=list)
    error: str | None = None


async def collection_page(console: Console, request: web.Request, *,
                          outcomes: list[FileOutcome] | None = None,
                          message: str | None = None, problem: str | None = None,
                          status: int = 200) -> web.StreamResponse:
    collection_id = _collection_id(request)
    token = request.query.get("page") or None
    faces, next_token = await list_faces(console, request, collection_id, limit=PAGE_FACES,
                                         token=token)
    thumbs = await console.thumbnails.existing(collection_id)
    user = request[USER_KEY]
    response = console.render(
        request, "collection.html", title=collection_id, collection_id=collection_id,
        people=group_people(faces), thumbs=thumbs, next_token=next_token, page_token=token,
        outcomes=outcomes, message=message, problem=problem,
        can_index=user.can_operation("IndexFaces", {"CollectionId": collection_id}),
        can_delete=user.can_operation("DeleteFaces", {"CollectionId": collection_id}),
        max_files=MAX_FILES,
    )
    response.set_status(status)
    return response


async def _read_upload(request: web.Request) -> tuple[dict[str, str], list[tuple[str, bytes]]]:
    """The form's text fields and its files. aiohttp spools file parts to temporary files
    (the body is at most the API's 16 MB in all: a script posts one file at a time); each
    is read up to the API's 5 MB plus one byte, so a larger one is reported, not loaded."""
    form = await request.post()  # cached: the CSRF middleware may have read it already
    fields: dict[str, str] = {}
    files: list[tuple[str, bytes]] = []
    for key, value in form.items():
        if isinstance(value, str):
            fields.setdefault(key, value)
        elif isinstance(value, FileField) and key == "photos":
            if len(files) >= MAX_FILES:
                raise InvalidParameterException(f"at most {MAX_FILES} files per upload")
            data = value.file.read(MAX_IMAGE_BYTES + 1)
            if value.filename or data:
                files.append((value.filename[:200], data))
    return fields, files


async def add_faces(console: Console, request: web.Request) -> web.StreamResponse:
    """Index each uploaded file for the person; one outcome per file."""
    collection_id = _collection_id(request)
    if request.content_type != "multipart/form-data":
        raise web.HTTPBadRequest(text="send the photos as multipart/form-data")
    fields, files = await _read_upload(request)
    name = fields.get("name", "").strip()
    all_faces = fields.get("all_faces") in ("1", "on", "true")
    outcomes: list[FileOutcome] = []
    problem = None
    status = 400
    try:
        check_external_image_id(name or None)
    except InvalidParameterException as err:
        problem = err.message
    if not request[USER_KEY].can_operation("IndexFaces", {"CollectionId": collection_id}):
        problem = (f"AccessDeniedException: you may not add faces to {collection_id} "
                   "(rekognition:IndexFaces is not allowed by your policy).")
        status = 403
    if not files and problem is None:
        problem = "Choose at least one photo."
    if problem is not None:
        files = []
    for filename, data in files:
        outcome = FileOutcome(filename or "(unnamed file)")
        outcomes.append(outcome)
        if len(data) > MAX_IMAGE_BYTES:
            outcome.error = ImageTooLargeException(
                f"The image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB").message
            continue
        params: dict[str, Any] = {"CollectionId": collection_id, "Image": {"Bytes": data}}
        if name:
            params["ExternalImageId"] = name
        if not all_faces:
            params["MaxFaces"] = 1
        try:
            indexed = await console.invoke(request, "IndexFaces", params)
        except RekognitionError as err:
            outcome.error = f"{err.code}: {err.message}"
            continue
        records = indexed.FaceRecords
        if not records:
            outcome.error = "No face found in this photo."
            continue
        outcome.face_ids = [r.Face.FaceId for r in records]
        await console.thumbnails.save(
            collection_id, data, [(r.Face.FaceId, r.Face.BoundingBox) for r in records])
    if _wants_json(request):
        return web.json_response({
            "Error": problem,
            "Files": [{"File": o.file, "FaceIds": o.face_ids, "Error": o.error}
                      for o in outcomes],
        }, status=status if problem else 200)
    indexed_count = sum(len(o.face_ids) for o in outcomes)
    message = None
    if outcomes:
        message = f"{indexed_count} face{'s' if indexed_count != 1 else ''} indexed" + (
            f" for {name}." if name else ".")
    return await collection_page(console, request, outcomes=outcomes, message=message,
                                 problem=problem, status=status if problem else 200)


async def delete_faces(console: Console, request: web.Request) -> web.StreamResponse:
    """Delete one face (``face_id``) or a person (every ``face_id`` of the form at once)."""
    collection_id = _collection_id(request)
    form = await request.post()
    face_ids = [str(v) for v in form.getall("face_id", [])]
    label = str(form.get("person", "")).strip()
    problem = message = None
    try:
        if form.get("whole_person") == "1":
            # Every face of the person, not only those on this page: listed, then deleted
            # in one DeleteFaces call.
            wanted = None if form.get("no_name") == "1" else label
            faces, _ = await list_faces(console, request, collection_id)
            face_ids = [f.FaceId for f in faces if f.ExternalImageId == wanted]
        for face_id in face_ids:
            check_face_id(face_id)
        if not face_ids:
            raise InvalidParameterException("Choose a face to delete.")
        deleted = await console.invoke(
            request, "DeleteFaces", {"CollectionId": collection_id, "FaceIds": face_ids})
    except AccessDeniedException:
        raise
    except RekognitionError as err:
        problem, status = f"{err.code}: {err.message}", err.http_status
    else:
        gone = list(deleted.DeletedFaces)
        await console.thumbnails.delete(collection_id, gone)
        what = f"{label}: " if label else ""
        message = f"{what}{len(gone)} face{'s' if len(gone) != 1 else ''} deleted."
        status = 200
    if _wants_json(request):
        return web.json_response({"Message": message, "Error": problem}, status=status)
    return await collection_page(console, request, message=message, problem=problem,
                                 status=status)


async def face_thumbnail(console: Console, request: web.Request) -> web.StreamResponse:
    """A face's thumbnail, for users who may ListFaces on its collection."""
    collection_id = _collection_id(request)
    try:
        face_id = check_face_id(request.match_info["face_id"])
    except InvalidParameterException:
        raise web.HTTPNotFound(text="no such face") from None
    request[USER_KEY].require("rekognition:ListFaces", _arn(console, collection_id))
    try:
        data = await console.thumbnails.read(collection_id, face_id)
    except InvalidParameterException:
        data = None
    if data is None:
        raise web.HTTPNotFound(text="no thumbnail for this face")
    return web.Response(body=data, content_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=86400"})


def add_routes(router: web.UrlDispatcher, console: Console) -> None:
    router.add_get("/console/collections/", partial(collections_page, console))
    router.add_post("/console/collections/", partial(create_collection, console))
    router.add_get("/console/collections/{collection_id}", partial(collection_page, console))
    router.add_post("/console/collections/{collection_id}/delete",
                    partial(delete_collection, console))
    router.add_post("/console/collections/{collection_id}/faces",
                    partial(add_faces, console))
    router.add_post("/console/collections/{collection_id}/faces/delete",
                    partial(delete_faces, console))
    router.add_get("/console/collections/{collection_id}/faces/{face_id}.jpg",
                   partial(face_thumbnail, console))
