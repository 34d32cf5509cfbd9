"""Who may use the console: sign-in with the auth file's keys, sessions, CSRF, policies.

A real ``ApiServer`` on loopback and a real HTTP client with a cookie jar, as a browser
behaves (the browser tests cover the same through Chromium).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from streamproc.engine import Engine
from streamproc.http.server import ApiServer
from streamproc.settings import Settings
from tests.console_client import browser_session, form_field, sign_in

ADMIN = ("AKIDADMIN", "admin-secret-1")
LIMITED = ("AKIDLIMITED", "limited-secret-2")


def _auth_file(path: Path) -> Path:
    everything = {"Version": "2012-10-17",
                  "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    only_list = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["rekognition:ListCollections",
                                       "rekognition:DescribeCollection"], "Resource": "*"}]}
    path.write_text(json.dumps({"Users": [
        {"UserName": "admin", "AccessKeyId": ADMIN[0], "SecretAccessKey": ADMIN[1],
         "Policy": everything},
        {"UserName": "limited", "AccessKeyId": LIMITED[0], "SecretAccessKey": LIMITED[1],
         "Policy": only_list},
    ]}))
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("console-access")
    engine = Engine(Settings(store=tmp / "store"))
    secured = ApiServer(engine, port=0, auth_file=_auth_file(tmp / "auth.json"))
    open_ = ApiServer(engine, port=0)
    await secured.start()
    await open_.start()
    yield {"auth": secured.url, "open": open_.url}
    await secured.stop()
    await open_.stop()
    engine.close()


@pytest.mark.asyncio(loop_scope="module")
async def test_auth_on_requires_sign_in_and_refuses_a_wrong_secret(servers: dict) -> None:
    url = servers["auth"]
    async with browser_session() as http:
        page = await http.get(f"{url}/console/visits/?stream=x")
        assert page.url.path == "/console/signin"  # redirected, with where to go back
        assert page.url.query["next"] == "/console/visits/?stream=x"
        api = await http.post(f"{url}/console/api/ListCollections", json={},
                              headers={"Accept": "application/json"})
        assert api.status == 401
        wrong = await sign_in(http, url, ADMIN[0], "not-the-secret")
        assert wrong.status == 401
        assert "Wrong access key or secret access key" in await wrong.text()
        unknown = await sign_in(http, url, "AKIDNOBODY", ADMIN[1])
        assert unknown.status == 401
        assert not any(c.key == "streamproc_console" for c in http.cookie_jar)
        right = await sign_in(http, url, *ADMIN, next_url="/console/")
        assert right.status == 200 and right.url.path == "/console/"
        cookie = next(c for c in http.cookie_jar if c.key == "streamproc_console")
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        assert cookie["path"] == "/console/"
        assert "admin" in await right.text()


@pytest.mark.asyncio(loop_scope="module")
async def test_sign_in_needs_its_form_token_and_never_redirects_off_site(servers: dict) -> None:
    url = servers["auth"]
    async with browser_session() as http:
        forged = await http.post(f"{url}/console/signin", data={
            "csrf_token": "guess", "access_key_id": ADMIN[0], "secret_access_key": ADMIN[1]})
        assert forged.status == 403
        away = await sign_in(http, url, *ADMIN, next_url="https://evil.example/")
        assert away.url.host == "127.0.0.1" and away.url.path == "/console/"
        away = await sign_in(http, url, *ADMIN, next_url="//evil.example/console/")
        assert away.url.host == "127.0.0.1"


@pytest.mark.asyncio(loop_scope="module")
async def test_state_changes_need_the_session_csrf_token(servers: dict) -> None:
    url = servers["auth"]
    async with browser_session() as http:
        home = await sign_in(http, url, *ADMIN)
        csrf = form_field(await home.text(), "csrf-token")
        missing = await http.post(f"{url}/console/api/CreateCollection",
                                  json={"CollectionId": "csrf-test"})
        assert missing.status == 403
        wrong = await http.post(f"{url}/console/api/CreateCollection",
                                json={"CollectionId": "csrf-test"},
                                headers={"X-CSRF-Token": csrf[:-2] + "xx"})
        assert wrong.status == 403
        cross = await http.post(f"{url}/console/api/CreateCollection",
                                json={"CollectionId": "csrf-test"},
                                headers={"X-CSRF-Token": csrf,
                                         "Origin": "https://evil.example"})
        assert cross.status == 403
        ok = await http.post(f"{url}/console/api/CreateCollection",
                             json={"CollectionId": "csrf-test"}, headers={"X-CSRF-Token": csrf})
        assert ok.status == 200, await ok.text()
        assert (await ok.json(content_type=None))["StatusCode"] == 200
        # The same API answer and error types as the HTTP API.
        again = await http.post(f"{url}/console/api/CreateCollection",
                                json={"CollectionId": "csrf-test"}, headers={"X-CSRF-Token": csrf})
        assert again.status == 400
        assert (await again.json(content_type=None))["__type"] == "ResourceAlreadyExistsException"
        # Signing out ends the session: the old cookie opens nothing.
        out = await http.post(f"{url}/console/signout", data={"csrf_token": csrf})
        assert out.url.path == "/console/signin"
        after = await http.get(f"{url}/console/")
        assert after.url.path == "/console/signin"


@pytest.mark.asyncio(loop_scope="module")
async def test_the_user_policy_governs_console_calls(servers: dict) -> None:
    url = servers["auth"]
    async with browser_session() as http:
        home = await sign_in(http, url, *LIMITED)
        assert home.status == 200
        csrf = form_field(await home.text(), "csrf-token")
        denied = await http.post(f"{url}/console/api/CreateCollection",
                                 json={"CollectionId": "not-allowed"},
                                 headers={"X-CSRF-Token": csrf})
        assert denied.status == 400
        body = await denied.json(content_type=None)
        assert body["__type"] == "AccessDeniedException"
        assert "limited is not authorized to perform: rekognition:CreateCollection" in \
            body["Message"]
        listed = await http.post(f"{url}/console/api/ListCollections", json={},
                                 headers={"X-CSRF-Token": csrf})
        assert listed.status == 200


@pytest.mark.asyncio(loop_scope="module")
async def test_loopback_without_auth_opens_a_session_withoutsign_in(servers: dict) -> None:
    url = servers["open"]
    async with browser_session() as http:
        home = await http.get(f"{url}/console/")
        assert home.status == 200 and home.url.path == "/console/"
        headers = home.headers
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        csrf = form_field(await home.text(), "csrf-token")
        # Still CSRF-protected: another site must not drive a loopback console.
        forged = await http.post(f"{url}/console/api/CreateCollection",
                                 json={"CollectionId": "open-test"})
        assert forged.status == 403
        ok = await http.post(f"{url}/console/api/CreateCollection",
                             json={"CollectionId": "open-test"}, headers={"X-CSRF-Token": csrf})
        assert ok.status == 200
        signin = await http.get(f"{url}/console/signin")
        assert signin.url.path == "/console/"  # nothing to sign in to
