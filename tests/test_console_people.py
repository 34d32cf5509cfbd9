"""The console's people pages: collections with counts, create and delete (confirmed),
a person's photos uploaded in one multipart post (each file's outcome), thumbnails the
console keeps, deleting a face and a person, permissions, and traversal attempts.

Real models (one engine for the module), the console on a real aiohttp server, an HTTP
client with a cookie jar as a browser.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from streamproc.console import Console
from streamproc.engine import Engine
from streamproc.errors import ResourceNotFoundException
from streamproc.http.api import MAX_BODY_BYTES
from streamproc.http.server import build_api
from streamproc.runtime.metrics import RuntimeMetrics
from streamproc.settings import Settings
from tests.console_client import ConsoleSite, signed_in

DATA = Path(__file__).resolve().parent / "data"
JACK = [DATA / "faces" / "deepface_jack" / f"{i}.jpg" for i in (1, 2)]
ELON = DATA / "faces" / "deepface_elon" / "1.jpg"
PLANE = DATA / "negatives" / "opencv_aero1.jpg"

ADMIN = ("AKIDPEOPLEADMIN", "people-admin-secret")
LOOKER = ("AKIDPEOPLELOOKER", "people-looker-secret")  # may list, not IndexFaces


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    eng = Engine(Settings(store=tmp_path_factory.mktemp("people") / "store"))
    yield eng
    eng.close()


@dataclass
class Site(ConsoleSite):
    console: Console
    collection: str

    async def form(self, path: str, fields: list[tuple[str, str]],
                   status: int = 200) -> str:
        async with self.http.post(self.url + path, data=[("csrf_token", self.csrf), *fields],
                                  headers={"Accept": "text/html"}) as r:
            text = await r.text()
            assert r.status == status, (r.status, text[:800])
            return text

    async def upload(self, name: str, files: list[Path], status: int = 200,
                     all_faces: bool = False) -> str:
        """The plain HTML form: one multipart post with every file."""
        form = aiohttp.FormData()
        form.add_field("csrf_token", self.csrf)
        form.add_field("name", name)
        if all_faces:
            form.add_field("all_faces", "1")
        for path in files:
            form.add_field("photos", path.read_bytes(), filename=path.name,
                           content_type="image/jpeg")
        async with self.http.post(self.url + f"/console/collections/{self.collection}/faces",
                                  data=form, headers={"Accept": "text/html"}) as r:
            text = await r.text()
            assert r.status == status, (r.status, text[:800])
            return text

    async def faces(self) -> list[dict[str, Any]]:
        body = await self.op("ListFaces", {"CollectionId": self.collection})
        return list(body["Faces"])


def _auth_file(path: Path) -> Path:
    everything = {"Version": "2012-10-17",
                  "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    looker = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["rekognition:List*", "rekognition:DescribeCollection"],
         "Resource": "*"}]}
    path.write_text(json.dumps({"Users": [
        {"UserName": "admin", "AccessKeyId": ADMIN[0], "SecretAccessKey": ADMIN[1],
         "Policy": everything},
        {"UserName": "looker", "AccessKeyId": LOOKER[0], "SecretAccessKey": LOOKER[1],
         "Policy": looker},
    ]}))
    return path


@pytest_asyncio.fixture
async def site(engine: Engine, tmp_path: Path,
               request: pytest.FixtureRequest) -> AsyncIterator[Site]:
    """A fresh collection per test; ``param``: the access key to sign in with (auth on)."""
    key = getattr(request, "param", None)
    collection = "people-" + re.sub(r"[^a-z0-9]+", "-", request.node.name)[-40:].strip("-")
    engine.call("CreateCollection", {"CollectionId": collection})
    api = build_api(engine, RuntimeMetrics(),
                    auth_file=_auth_file(tmp_path / "auth.json") if key else None)
    console = Console(api, data_dir=tmp_path / "console")
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    api.add_routes(app)
    console.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{list(runner.addresses)[0][1]}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        if key is not None:
            await signed_in(http, url, *key)
        site = Site(url, http, console, collection)
        await site.page(f"/console/collections/{collection}")
        yield site
    await runner.cleanup()
    api.close()
    with contextlib.suppress(ResourceNotFoundException):  # the test deleted it
        engine.call("DeleteCollection", {"CollectionId": collection})


async def test_upload_two_photos_of_one_person(site: Site) -> None:
    html = await site.upload("jack", JACK)
    assert "2 faces indexed for jack." in html
    assert "1.jpg: 1 face indexed" in html and "2.jpg: 1 face indexed" in html
    faces = await site.faces()
    assert len(faces) == 2 and {f["ExternalImageId"] for f in faces} == {"jack"}
    page = await site.page(f"/console/collections/{site.collection}")
    assert 'data-person="jack"' in page and "2 faces" in page
    for face in faces:
        src = f"/console/collections/{site.collection}/faces/{face['FaceId']}.jpg"
        assert src in page
        async with site.http.get(site.url + src) as r:
            assert r.status == 200 and r.content_type == "image/jpeg"
            thumb = await r.read()
        assert thumb.startswith(b"\xff\xd8\xff") and 1000 < len(thumb) < 40_000
    on_disk = site.console.data_dir / "thumbnails" / site.collection
    assert {p.name for p in on_disk.iterdir()} == {f"{f['FaceId']}.jpg" for f in faces}

    # Each file's outcome: a photo without a face, a file that is no image.
    form = aiohttp.FormData()
    form.add_field("csrf_token", site.csrf)
    form.add_field("name", "jack")
    form.add_field("photos", PLANE.read_bytes(), filename="plane.jpg", content_type="image/jpeg")
    form.add_field("photos", b"not an image at all", filename="notes.txt",
                   content_type="text/plain")
    async with site.http.post(site.url + f"/console/collections/{site.collection}/faces",
                              data=form, headers={"Accept": "application/json"}) as r:
        result = await r.json()
    assert [f["File"] for f in result["Files"]] == ["plane.jpg", "notes.txt"]
    assert result["Files"][0]["Error"] == "No face found in this photo."
    assert result["Files"][1]["Error"].startswith("InvalidImageFormatException")
    assert len(await site.faces()) == 2


async def test_delete_a_face_then_a_person(site: Site) -> None:
    await site.upload("jack", JACK)
    await site.upload("elon", [ELON])
    faces = await site.faces()
    jack = [f["FaceId"] for f in faces if f["ExternalImageId"] == "jack"]
    html = await site.form(f"/console/collections/{site.collection}/faces/delete",
                           [("face_id", jack[0]), ("person", "jack")])
    assert "jack: 1 face deleted." in html and jack[0] not in html and jack[1] in html
    thumbs = site.console.data_dir / "thumbnails" / site.collection
    assert not (thumbs / f"{jack[0]}.jpg").exists() and (thumbs / f"{jack[1]}.jpg").exists()
    html = await site.form(f"/console/collections/{site.collection}/faces/delete",
                           [("whole_person", "1"), ("person", "elon")])
    assert "elon: 1 face deleted." in html and 'data-person="elon"' not in html
    assert [f["FaceId"] for f in await site.faces()] == [jack[1]]
    await site.form(f"/console/collections/{site.collection}/faces/delete",
                    [("face_id", "../../etc/passwd")], status=400)


async def test_faces_without_a_name_and_all_faces_of_a_photo(site: Site) -> None:
    group = next((DATA / "groups").glob("*.jpg"))
    html = await site.upload("", [group], all_faces=True)
    faces = await site.faces()
    assert len(faces) >= 2 and all(f.get("ExternalImageId") is None for f in faces)
    assert f"{len(faces)} faces indexed." in html and 'data-person="(no name)"' in html


async def test_collections_create_and_delete_with_confirmation(site: Site) -> None:
    await site.upload("jack", JACK[:1])
    page = await site.page("/console/collections/")
    assert f'data-collection="{site.collection}"' in page and "1 face<" in page
    async with site.http.post(site.url + "/console/collections/", data={
            "csrf_token": site.csrf, "collection_id": "made-here"},
            allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"] == "/console/collections/made-here"
    assert "bad id!" in await site.form("/console/collections/", [("collection_id", "bad id!")],
                                        status=400)
    # Deleting asks first; the post without the confirmation goes back to the question.
    async with site.http.post(site.url + "/console/collections/made-here/delete",
                              data={"csrf_token": site.csrf}, allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"].endswith("?delete=made-here")
    question = await site.page("/console/collections/?delete=made-here")
    assert "Delete collection made-here?" in question
    done = await site.form("/console/collections/made-here/delete",
                           [("confirm", "made-here")])
    assert "Deleted collection made-here." in done and 'data-collection="made-here"' not in done
    # Deleting a collection takes its thumbnails with it.
    thumbs = site.console.data_dir / "thumbnails" / site.collection
    assert any(thumbs.iterdir())
    await site.form(f"/console/collections/{site.collection}/delete",
                    [("confirm", site.collection)])
    assert not thumbs.exists()


async def test_a_server_without_visit_history_says_so(site: Site) -> None:
    html = await site.page("/console/visits/")
    assert "keeps no visit history" in html
    async with site.http.get(site.url + f"/console/visits/{'0' * 32}/snapshot.jpg") as r:
        assert r.status == 404


async def test_thumbnails_can_be_turned_off(engine: Engine, tmp_path: Path) -> None:
    api = build_api(engine, RuntimeMetrics())
    console = Console(api, data_dir=tmp_path, thumbnails=False)
    face = "0f6a2b4c-1111-4222-8333-444455556666"
    from streamproc.shapes import BoundingBox

    box = BoundingBox(Width=0.5, Height=0.5, Left=0.25, Top=0.25)
    assert await console.thumbnails.save("c", JACK[0].read_bytes(), [(face, box)]) == 0
    assert not (tmp_path / "thumbnails").exists()
    assert await console.thumbnails.read("c", face) is None
    api.close()


@pytest.mark.parametrize("site", [LOOKER], indirect=True)
async def test_a_user_without_index_faces_is_told(site: Site) -> None:
    page = await site.page(f"/console/collections/{site.collection}")
    assert "does not allow rekognition:IndexFaces" in page
    html = await site.upload("jack", JACK[:1], status=403)
    assert "AccessDeniedException" in html and "rekognition:IndexFaces" in html
    assert await site.faces() == []
    html = await site.form("/console/collections/", [("collection_id", "nope")], status=400)
    assert "AccessDeniedException" in html and "CreateCollection" in html


@pytest.mark.parametrize("path", [
    "/console/collections/..%2F..%2Fetc/faces/0f6a2b4c-1111-4222-8333-444455556666.jpg",
    "/console/collections/%2e%2e/faces/0f6a2b4c-1111-4222-8333-444455556666.jpg",
    "/console/collections/x/faces/..%2F..%2F..%2Fpasswd.jpg",
    "/console/collections/x/faces/%2e%2e.jpg",
    "/console/collections/..%2Fthumbnails",
    "/console/collections/a%00b",
])
async def test_traversal_in_collection_and_face_ids_never_reaches_a_file(
        site: Site, path: str) -> None:
    # A file a traversal would aim at, next to where the thumbnails live.
    (site.console.data_dir).mkdir(parents=True, exist_ok=True)
    (site.console.data_dir / "secret.jpg").write_bytes(b"\xff\xd8\xffSECRET")
    async with site.http.get(site.url + path) as r:
        body = await r.read()
        assert r.status in (400, 404), (path, r.status)
        assert b"SECRET" not in body
