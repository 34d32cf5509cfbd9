"""The console in a real browser, against ``streamproc run`` watching a real RTSP camera.

One deployment for the module: a looped clip of a person no collection knows, served by
GStreamer's RTSP server, searched against the ``household`` collection at 5 fps, with the
HTTP API and the console behind an auth file. The tests follow what a user does, in order:
sign in (a wrong secret is refused), see the camera online, watch the live frame update, see
the unknown visit with its snapshot, name the visitor, see the next visit announced by that
name, add photos of a person, and try DetectFaces on a photo. Screenshots of every page land
in ``test-artifacts/console/``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamproc.client import Client
from tests.console_browser import (
    BrowserPage,
    RunningService,
    start_run,
    stop_run,
)
from tests.fixtures_streaming import RtspTestServer, rtsp_server_available

DATA = Path(__file__).parent / "data"
CLIP = DATA / "visits" / "elon.mp4"  # 3.5 s of a face, 1 s of black: one visit per loop
ADMIN = ("AKIDCONSOLEADMIN", "console-admin-secret")
VISITOR_NAME = "elon"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    if not rtsp_server_available():
        pytest.fail("GStreamer RTSP server missing: run .ci/system-deps.sh (make test does)")
    tmp = tmp_path_factory.mktemp("console-browser")
    store = tmp / "store"
    client = Client(store=store)
    client.create_collection(CollectionId="household")
    client.close()
    auth = tmp / "auth.json"
    auth.write_text(json.dumps({"Users": [{
        "UserName": "admin", "AccessKeyId": ADMIN[0], "SecretAccessKey": ADMIN[1],
        "Policy": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["rekognition:*", "streamproc:*"],
             "Resource": "*"}]}}]}))
    camera = RtspTestServer(clip=CLIP, name="door")
    camera.start()
    deployment = tmp / "deployment.yaml"
    deployment.write_text(json.dumps({
        "store": str(store),
        "http": {"enabled": True, "port": 0, "auth": str(auth)},
        "streams": [{
            "id": "front-door", "url": camera.url, "fps": 5,
            "operations": [{"operation": "SearchFacesByImage", "CollectionId": "household",
                            "FaceMatchThreshold": 80}],
            # The clip's second of black ends each visit, so every loop is a new visit.
            "events": {"left_after_s": 0.6},
        }],
    }))
    running = start_run(deployment, tmp / "streamproc.log")
    yield running
    try:
        stop_run(running)
    finally:
        camera.stop()


def sign_in(page: BrowserPage, url: str) -> None:
    page.page.goto(f"{url}/console/")
    page.page.fill("#access_key_id", ADMIN[0])
    page.page.fill("#secret_access_key", ADMIN[1])
    page.page.click("form[action='/console/signin'] button[type=submit]")
    page.page.wait_for_url(re.compile(r".*/console/$"))


def test_sign_in_refuses_a_wrong_secret(service: RunningService, page: BrowserPage) -> None:
    page.allow_error(r"status of 401")  # the refused sign-in answers 401, as it should
    page.page.goto(f"{service.url}/console/")
    assert page.page.url.startswith(f"{service.url}/console/signin")
    page.screenshot("signin")
    page.page.fill("#access_key_id", ADMIN[0])
    page.page.fill("#secret_access_key", "not-the-secret")
    page.page.click("form[action='/console/signin'] button[type=submit]")
    alert = page.page.get_by_role("alert")
    assert "Wrong access key or secret access key" in alert.inner_text()
    page.screenshot("signin-refused")
    sign_in(page, service.url)
    assert page.page.locator("header .account").inner_text().startswith("admin")


def test_home_shows_the_camera_online_and_the_collection(
    service: RunningService, page: BrowserPage
) -> None:
    sign_in(page, service.url)
    deadline = time.monotonic() + 30
    while True:
        status = page.page.locator("#streams [data-stream='front-door'] .status").inner_text()
        if status == "online" or time.monotonic() > deadline:
            break
        page.page.wait_for_timeout(500)
        page.page.reload()
    assert status == "online", service.log_tail()
    assert page.page.locator("#collections").get_by_role("link", name="household").count() == 1
    page.screenshot("home")


def _wait(predicate: Any, timeout: float, what: str, service: RunningService) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}\n{service.log_tail()}")


def test_live_view_updates_with_face_boxes(service: RunningService, page: BrowserPage) -> None:
    sign_in(page, service.url)
    page.page.goto(f"{service.url}/console/live/front-door")
    img = page.page.locator("#live-img")

    def frame_number() -> int:
        src = img.get_attribute("src") or ""
        found = re.search(r"[?&]n=(\d+)", src)
        return int(found.group(1)) if found else -1

    first = _wait(lambda: frame_number() >= 0 and frame_number(), 20, "a live frame", service)
    later = _wait(lambda: frame_number() > first and frame_number(), 10, "a newer frame",
                  service)
    assert later > first
    # The stranger's face is boxed on some frame of the loop (the clip has a black second).
    _wait(lambda: page.page.locator("#live-overlay .box").count() > 0, 10, "a face box",
          service)
    assert img.evaluate("i => i.naturalWidth") == 640
    assert page.page.locator("#live-status").inner_text() == "online"
    page.screenshot("live")


def test_unknown_visit_is_named_and_the_next_visit_is_recognised(
    service: RunningService, page: BrowserPage
) -> None:
    """The product's promise: a stranger's visit appears with its snapshot; the user names
    them in the console; the camera's next visit of that person is announced by name."""
    sign_in(page, service.url)
    p = page.page

    def unknown_visit_with_snapshot() -> bool:
        p.goto(f"{service.url}/console/visits/?unknown=1")
        cards = p.locator(".visit.unknown:has(img)")
        return cards.count() > 0

    _wait(unknown_visit_with_snapshot, 30, "an unknown visit with a snapshot", service)
    card = p.locator(".visit.unknown:has(img)").first
    snapshot = card.locator("img")
    snapshot.scroll_into_view_if_needed()
    p.wait_for_function("i => i.complete && i.naturalWidth >= 80", arg=snapshot.element_handle())
    page.screenshot("visits-unknown")
    named_at = time.time()
    card.locator("input.pick").check()
    p.fill("#n-name", VISITOR_NAME)
    p.click("#n-submit")
    result = p.locator("#results li.ok")
    result.wait_for()
    assert f"named {VISITOR_NAME}" in result.inner_text()
    assert "indexed in household" in result.inner_text()
    page.screenshot("visits-named")

    # The next loop of the clip is a new visit, recognised by the service itself.
    def recognised_visit() -> bool:
        p.goto(f"{service.url}/console/visits/?name={VISITOR_NAME}")
        for visit in p.locator(".visit").all():
            who = visit.locator(".who").inner_text()
            stamp = visit.locator("time").get_attribute("datetime") or ""
            if who.strip() == VISITOR_NAME and "named by you" not in who \
                    and _epoch(stamp) >= named_at - 1:
                return True
        return False

    _wait(recognised_visit, 40, f"a later visit recognised as {VISITOR_NAME}", service)
    page.screenshot("visits-recognised")
    p.goto(f"{service.url}/console/")
    assert VISITOR_NAME in p.locator(".visits").first.inner_text()


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp() if iso else 0.0


def test_upload_photos_for_a_person(service: RunningService, page: BrowserPage) -> None:
    sign_in(page, service.url)
    p = page.page
    p.goto(f"{service.url}/console/collections/household")
    photos = [DATA / "faces" / "joe_biden" / name for name in ("1.jpg", "2.jpg")]
    assert all(photo.exists() for photo in photos)
    p.fill("#u-name", "joe")
    p.set_input_files("#u-photos", [str(photo) for photo in photos])
    p.click("#upload-form button[type=submit]")
    outcomes = p.locator("#u-progress li.ok")
    _wait(lambda: outcomes.count() == 2, 30, "two indexed photos", service)
    assert all("1 face indexed" in text for text in outcomes.all_inner_texts())
    p.goto(f"{service.url}/console/collections/household")
    person = p.locator(".person[data-person='joe']")
    assert person.locator(".face").count() == 2
    thumbnails = person.locator(".face img")
    assert thumbnails.count() == 2
    for i in range(2):
        p.wait_for_function("i => i.complete && i.naturalWidth > 0",
                            arg=thumbnails.nth(i).element_handle())
    page.screenshot("collection")


def test_try_it_detect_faces_draws_the_boxes(service: RunningService, page: BrowserPage) -> None:
    sign_in(page, service.url)
    p = page.page
    p.goto(f"{service.url}/console/try/DetectFaces")
    p.set_input_files("#image", str(DATA / "faces" / "joe_biden" / "2.jpg"))
    p.click("#run")
    p.wait_for_selector("#tryit[data-state='done']")
    assert p.locator("#result svg .box").count() == 1
    assert p.locator("#result svg .landmark").count() > 0
    assert '"FaceDetails"' in p.locator("#response").inner_text()
    page.screenshot("try-detect-faces")


def test_metrics_page_graphs_the_operations(service: RunningService, page: BrowserPage) -> None:
    sign_in(page, service.url)
    p = page.page
    p.goto(f"{service.url}/console/metrics/")
    # The stream's per-frame searches count as SearchFacesByImage requests.
    totals = p.locator("#operations-totals")
    _wait(lambda: "SearchFacesByImage" in totals.inner_text(), 20, "the search totals",
          service)
    p.wait_for_selector("#operation-charts canvas")
    p.wait_for_selector("#stream-charts canvas")
    page.screenshot("metrics")


def test_pages_fit_a_phone(service: RunningService, page: BrowserPage) -> None:
    sign_in(page, service.url)
    p = page.page
    p.set_viewport_size({"width": 390, "height": 844})
    for name, path in (("home", "/console/"), ("live", "/console/live/front-door"),
                       ("visits", "/console/visits/"),
                       ("collection", "/console/collections/household"),
                       ("try", "/console/try/"), ("metrics", "/console/metrics/")):
        p.goto(f"{service.url}{path}")
        overflow = p.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{path} is {overflow} px wider than a phone"
        page.screenshot(f"phone-{name}")
