"""The console's visit history: timeline and filters, snapshots, naming unknown visitors so
that the service recognises them, correcting a name, permissions and traversal attempts.

Real models (one engine for the module), a real VisitHistory filled by recording visitor
events whose snapshots are context crops of real photos (as a stream makes them), the
console on a real aiohttp server, and an HTTP client with a cookie jar as a browser.
"""

from __future__ import annotations

import json
import re
import time
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
from streamproc.history import VisitHistory
from streamproc.http.api import MAX_BODY_BYTES
from streamproc.http.server import build_api
from streamproc.images import decode_image
from streamproc.runtime.events import VisitorArrived, VisitorIdentified, VisitorLeft
from streamproc.runtime.metrics import RuntimeMetrics
from streamproc.runtime.snapshots import face_snapshot
from streamproc.settings import Settings
from streamproc.shapes import BoundingBox
from tests.console_client import ConsoleSite, signed_in

DATA = Path(__file__).resolve().parent / "data" / "faces"
JACK = [DATA / "deepface_jack" / f"{i}.jpg" for i in (1, 2, 3)]
ELON = DATA / "deepface_elon" / "1.jpg"
T0 = float(int(time.time()) - 2 * 86400)

ADMIN = ("AKIDVISITADMIN", "visit-admin-secret")
VIEWER = ("AKIDVISITVIEWER", "visit-viewer-secret")  # lists visits of "front" only, no IndexFaces


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    eng = Engine(Settings(store=tmp_path_factory.mktemp("visits") / "store"))
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def snapshots(engine: Engine) -> dict[str, bytes]:
    """A stream's kind of snapshot (the face at 3x its box) of each photo."""
    out = {}
    for path in [*JACK, ELON]:
        data = path.read_bytes()
        box = engine.call("DetectFaces", {"Image": {"Bytes": data}})["FaceDetails"][0]
        rgb = decode_image(data).rgb
        out[f"{path.parent.name}/{path.name}"] = face_snapshot(
            rgb, BoundingBox.model_validate(box["BoundingBox"]))
    return out


def vid(n: int) -> str:
    return f"{n:032x}"


def visit_events(n: int, t: float, stream: str, snapshot: bytes,
                 name: str | None = None) -> list[Any]:
    box = BoundingBox(Width=0.3, Height=0.4, Left=0.3, Top=0.2)
    common = {"StreamName": stream, "VisitorId": vid(n)}
    return [
        VisitorArrived(Timestamp=t, FrameNumber=1, FrameOffsetInSeconds=0.0, BoundingBox=box,
                       **common),
        VisitorIdentified(Timestamp=t + 1, FrameNumber=5, FrameOffsetInSeconds=1.0,
                          Matched=name is not None, ExternalImageId=name,
                          FaceId="0f6a2b4c-1111-4222-8333-444455556666" if name else None,
                          Similarity=99.0 if name else None, FramesVoted=3,
                          Snapshot=snapshot, **common),
        VisitorLeft(Timestamp=t + 6, FrameNumber=30, FrameOffsetInSeconds=6.0,
                    Matched=name is not None, ExternalImageId=name, DurationSeconds=6.0,
                    FramesSeen=25, **common),
    ]


@dataclass
class Site(ConsoleSite):
    history: VisitHistory
    console: Console

    async def name(self, visitors: list[str], name: str, collection: str = "",
                   status: int = 200) -> dict[str, Any]:
        """The page script's way: JSON in, JSON out."""
        async with self.http.post(
            self.url + "/console/visits/name",
            json={"VisitorIds": visitors, "Name": name, "CollectionId": collection},
            headers={"X-CSRF-Token": self.csrf, "Accept": "application/json"},
        ) as r:
            assert r.status == status, await r.text()
            result: dict[str, Any] = await r.json()
            return result



def _auth_file(path: Path) -> Path:
    everything = {"Version": "2012-10-17",
                  "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    viewer = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["streamproc:ListVisits", "streamproc:NameVisit"],
         "Resource": "arn:aws:rekognition:*:*:streamprocessor/front"},
        {"Effect": "Allow", "Action": ["rekognition:ListCollections", "rekognition:ListFaces"],
         "Resource": "*"}]}
    path.write_text(json.dumps({"Users": [
        {"UserName": "admin", "AccessKeyId": ADMIN[0], "SecretAccessKey": ADMIN[1],
         "Policy": everything},
        {"UserName": "viewer", "AccessKeyId": VIEWER[0], "SecretAccessKey": VIEWER[1],
         "Policy": viewer},
    ]}))
    return path


async def _serve(engine: Engine, tmp_path: Path, auth: bool,
                 searches: dict[str, list[str]]) -> tuple[web.AppRunner, str, Console,
                                                          VisitHistory]:
    history = VisitHistory(tmp_path / "history")
    api = build_api(engine, RuntimeMetrics(),
                    auth_file=_auth_file(tmp_path / "auth.json") if auth else None)
    console = Console(api, history=history, searches=searches, data_dir=tmp_path / "console")
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    api.add_routes(app)
    console.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = list(runner.addresses)[0][1]
    return runner, f"http://127.0.0.1:{port}", console, history



@pytest_asyncio.fixture
async def site(engine: Engine, snapshots: dict[str, bytes], tmp_path: Path,
               request: pytest.FixtureRequest) -> AsyncIterator[Site]:
    """Visits: 1, 2 unknown jack at the front door (day 0), 3 elon matched at the garden
    (day 1), 4 unknown elon at the front (day 1, still there)."""
    auth = getattr(request, "param", None)
    collection = f"household-{request.node.name.split('[')[0][-20:].replace('_', '-')}"
    engine.call("CreateCollection", {"CollectionId": collection})
    runner, url, console, history = await _serve(
        engine, tmp_path, auth is not None,
        {"front": [collection], "garden": [collection, "elsewhere"]})
    history.record(visit_events(1, T0, "front", snapshots["deepface_jack/1.jpg"]))
    history.record(visit_events(2, T0 + 60, "front", snapshots["deepface_jack/2.jpg"]))
    history.record(visit_events(3, T0 + 86400, "garden", snapshots["deepface_elon/1.jpg"],
                                "elon"))
    history.record(visit_events(4, T0 + 86460, "front", snapshots["deepface_elon/1.jpg"])[:2])
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        if auth is not None:
            await signed_in(http, url, *auth)
        s = Site(url, http, history, console)
        s.collection = collection  # type: ignore[attr-defined]
        yield s
    await runner.cleanup()
    console.api.close()
    history.close()
    engine.call("DeleteCollection", {"CollectionId": collection})


def _shown(html: str) -> list[str]:
    """The visitor ids of the timeline, in order."""
    return re.findall(r'<li class="visit[^"]*" data-visitor="([0-9a-f]{32})"', html)


async def test_timeline_filters_and_paging(site: Site) -> None:
    html = await site.page("/console/visits/")
    assert _shown(html) == [vid(4), vid(3), vid(2), vid(1)]  # newest first
    assert f'/console/visits/{vid(1)}/snapshot.jpg' in html and "still here" in html
    assert ">elon<" in html and "6 s" in html and 'name="visitor"' in html
    assert _shown(await site.page("/console/visits/?unknown=1")) == [vid(4), vid(2), vid(1)]
    assert _shown(await site.page("/console/visits/?name=elon")) == [vid(3)]
    assert _shown(await site.page("/console/visits/?stream=front")) == [vid(4), vid(2), vid(1)]
    day0 = time.strftime("%Y-%m-%d", time.gmtime(T0))
    day1 = time.strftime("%Y-%m-%d", time.gmtime(T0 + 86400))
    assert _shown(await site.page(f"/console/visits/?until={day0}")) == [vid(2), vid(1)]
    assert _shown(await site.page(f"/console/visits/?since={day1}")) == [vid(4), vid(3)]
    # The browser's zone: a date there starts tz minutes later in UTC.
    at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(T0 + 30))
    assert _shown(await site.page(f"/console/visits/?since={at}")) == [vid(4), vid(3), vid(2)]
    assert _shown(await site.page(f"/console/visits/?since={at}&tz=-60")) == [
        vid(4), vid(3), vid(2), vid(1)]
    await site.page("/console/visits/?since=yesterday", status=400)
    # Paging with the history's cursor.
    for n in range(10, 40):
        site.history.record(visit_events(n, T0 - 1000 - n, "front",
                                         b"\xff\xd8\xff" + b"0" * 10))
    first = await site.page("/console/visits/")
    assert len(_shown(first)) == 24
    older = re.search(r'href="(/console/visits/\?before=[^"]+)" rel="next"', first)
    assert older is not None
    second = _shown(await site.page(older.group(1).replace("&amp;", "&")))
    assert len(second) == 10 and not set(second) & set(_shown(first))


async def test_snapshot_is_served(site: Site, snapshots: dict[str, bytes]) -> None:
    async with site.http.get(site.url + f"/console/visits/{vid(1)}/snapshot.jpg") as r:
        assert r.status == 200 and r.content_type == "image/jpeg"
        assert await r.read() == snapshots["deepface_jack/1.jpg"]
    async with site.http.get(site.url + f"/console/visits/{vid(99)}/snapshot.jpg") as r:
        assert r.status == 404


async def test_naming_indexes_the_faces_and_the_service_recognises_them(
        site: Site, snapshots: dict[str, bytes]) -> None:
    collection: str = site.collection  # type: ignore[attr-defined]
    await site.page("/console/visits/")
    result = await site.name([vid(1), vid(2)], "jack")
    assert result["Named"] == 2, result
    face_ids = {r["FaceId"] for r in result["Results"]}
    assert len(face_ids) == 2 and {r["CollectionId"] for r in result["Results"]} == {collection}
    listed = await site.op("ListFaces", {"CollectionId": collection})
    assert {f["FaceId"]: f["ExternalImageId"] for f in listed["Faces"]} == dict.fromkeys(
        face_ids, "jack")
    html = await site.page("/console/visits/?name=jack")
    assert _shown(html) == [vid(2), vid(1)] and "named by you" in html
    assert vid(1) not in _shown(await site.page("/console/visits/?unknown=1"))
    # What the stream's search does next time: another photo of him matches that name.
    found = await site.op("SearchFacesByImage", {
        "CollectionId": collection, "Image": {"Bytes": _b64(JACK[2].read_bytes())}})
    assert found["FaceMatches"] and found["FaceMatches"][0]["Face"]["ExternalImageId"] == "jack"
    # The console kept thumbnails of the faces it indexed.
    for face_id in face_ids:
        async with site.http.get(
                site.url + f"/console/collections/{collection}/faces/{face_id}.jpg") as r:
            assert r.status == 200 and (await r.read()).startswith(b"\xff\xd8\xff")

    # A correction: visit 2 was someone else. Its face moves to the new name.
    old = site.history.visit(vid(2))
    assert old is not None and old.indexed_face_id in face_ids
    corrected = await site.name([vid(2)], "not_jack")
    (outcome,) = corrected["Results"]
    assert outcome["DeletedFaceId"] == old.indexed_face_id
    assert outcome["FaceId"] != old.indexed_face_id
    listed = await site.op("ListFaces", {"CollectionId": collection})
    names = sorted(f["ExternalImageId"] for f in listed["Faces"])
    assert names == ["jack", "not_jack"]
    visit = site.history.visit(vid(2))
    assert visit is not None and visit.name == "not_jack"
    assert visit.indexed_face_id == outcome["FaceId"]
    async with site.http.get(site.url + f"/console/collections/{collection}/faces/"
                             f"{old.indexed_face_id}.jpg") as r:
        assert r.status == 404  # its thumbnail went with it


async def test_naming_as_a_plain_form_and_collection_choice(site: Site) -> None:
    """Without JavaScript: a form post renders the page with each visit's outcome; a
    stream that searches two collections needs the user's choice."""
    await site.page("/console/visits/")
    async with site.http.post(site.url + "/console/visits/name", data=[
            ("csrf_token", site.csrf), ("visitor", vid(3)), ("visitor", vid(4)),
            ("name", "elon"), ("return", "stream=front")],
            headers={"Accept": "text/html"}) as r:
        html = await r.text()
        assert r.status == 200
    assert "garden searches" in html and "choose" in html  # visit 3: two collections
    assert "face " in html and " indexed in " in html  # visit 4: the front's only one
    assert _shown(html) == [vid(4), vid(2), vid(1)]  # back on the timeline it came from
    result = await site.name([vid(3)], "elon", "nowhere")
    assert "does not search nowhere" in result["Results"][0]["Error"]
    result = await site.name(["../../etc/passwd"], "elon")
    assert "32 lower-case" in result["Results"][0]["Error"]
    result = await site.name([vid(1)], "two words", status=400)
    assert "ExternalImageId" in result["Error"]


async def test_no_face_in_a_snapshot_is_reported(site: Site) -> None:
    blank = (DATA.parent / "negatives" / "opencv_aero1.jpg").read_bytes()  # an aeroplane
    site.history.record(visit_events(50, T0 + 5, "front", blank))
    await site.page("/console/visits/")
    (outcome,) = (await site.name([vid(50)], "ghost"))["Results"]
    assert "No face found" in outcome["Error"]
    visit = site.history.visit(vid(50))
    assert visit is not None and visit.unknown


@pytest.mark.parametrize("site", [VIEWER], indirect=True)
async def test_a_user_sees_and_names_only_what_the_policy_allows(site: Site) -> None:
    html = await site.page("/console/visits/")
    assert _shown(html) == [vid(4), vid(2), vid(1)]  # not the garden's visit
    async with site.http.get(site.url + f"/console/visits/{vid(3)}/snapshot.jpg") as r:
        assert r.status == 400 and "AccessDenied" in await r.text()  # Rekognition's status
    assert "streamproc:ListVisits" in await site.page("/console/visits/?stream=garden",
                                                      status=400)
    (outcome,) = (await site.name([vid(1)], "jack"))["Results"]
    assert outcome["Error"].startswith("AccessDeniedException") and "IndexFaces" in outcome[
        "Error"]
    (outcome,) = (await site.name([vid(3)], "jack"))["Results"]
    assert "streamproc:NameVisit" in outcome["Error"]
    visit = site.history.visit(vid(1))
    assert visit is not None and visit.unknown


@pytest.mark.parametrize("path", [
    "/console/visits/..%2F..%2Fvisits.sqlite3/snapshot.jpg",
    "/console/visits/%2e%2e/snapshot.jpg",
    "/console/visits/../history/visits.sqlite3",
    f"/console/visits/{'0' * 31}%2F/snapshot.jpg",
    f"/console/visits/{'A' * 32}/snapshot.jpg",
])
async def test_traversal_in_visitor_ids_never_reaches_a_file(site: Site, path: str) -> None:
    async with site.http.get(site.url + path) as r:
        body = await r.read()
        assert r.status in (400, 404), (path, r.status)
        assert b"SQLite" not in body and not body.startswith(b"\xff\xd8")


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()
