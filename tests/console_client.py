"""A browser-like HTTP client for the console tests that need no real browser.

Cookies kept as a browser keeps them (aiohttp needs ``unsafe=True`` for 127.0.0.1), pages
asked for as HTML, and sign-in through the form with its token, the way a person signs in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import aiohttp

__all__ = ["ConsoleSite", "browser_session", "form_field", "sign_in", "signed_in"]


def browser_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                 headers={"Accept": "text/html"})


def form_field(html: str, name: str) -> str:
    """A hidden field's value or a meta tag's content (``csrf_token``, ``csrf-token``)."""
    found = re.search(rf'name="{name}" (?:value|content)="([^"]*)"', html)
    assert found, f"no {name} in the page"
    return found.group(1)


async def sign_in(http: aiohttp.ClientSession, url: str, key: str, secret: str,
                  next_url: str = "/console/") -> aiohttp.ClientResponse:
    """Post the sign-in form as a browser does; the response after the redirect."""
    form = await (await http.get(f"{url}/console/signin")).text()
    return await http.post(f"{url}/console/signin", data={
        "csrf_token": form_field(form, "csrf_token"), "access_key_id": key,
        "secret_access_key": secret, "next": next_url})


async def signed_in(http: aiohttp.ClientSession, url: str, key: str, secret: str) -> str:
    """Sign in (which must succeed); the session's CSRF token."""
    home = await sign_in(http, url, key, secret)
    assert home.status == 200 and home.url.path == "/console/", home.status
    return form_field(await home.text(), "csrf-token")


@dataclass
class ConsoleSite:
    """A signed-in browser on one console: pages (remembering the CSRF token they carry)
    and operations as the page scripts call them."""

    url: str
    http: aiohttp.ClientSession

    def __post_init__(self) -> None:
        self.csrf = ""

    async def page(self, path: str, status: int = 200) -> str:
        async with self.http.get(self.url + path, headers={"Accept": "text/html"}) as r:
            text = await r.text()
            assert r.status == status, (r.status, text[:500])
        found = re.search(r'name="csrf-token" content="([^"]+)"', text)
        if found:
            self.csrf = found.group(1)
        return text

    async def op(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """``POST /console/api/<operation>``, which must succeed; the AWS JSON answer."""
        async with self.http.post(self.url + f"/console/api/{operation}", json=params,
                                  headers={"X-CSRF-Token": self.csrf}) as r:
            body: dict[str, Any] = await r.json(content_type=None)
            assert r.status == 200, body
            return body
