"""The web console at ``/console/``: served by the same aiohttp server as the API.

Server-rendered pages (Jinja2, autoescaped) with small ES modules; no build step. Every
request under ``/console/`` except the static files and the sign-in page belongs to a
session (``sessions.py``): with an auth file the user signs in with an access key and its
secret and the user's policy governs every page and call (``access.py``); with auth off
(loopback only, see ``streamproc.http.server.check_bind``) a session is opened without
sign-in. State-changing requests need the session's CSRF token and a same-origin
``Origin`` (when the browser sends one).

The console calls Rekognition operations through :meth:`RekognitionHttpApi.answer`, the
very path of the HTTP API: same policy, rate limits, worker pool, metrics and answers.
Pages are modules under ``streamproc.console.pages``; each adds its routes.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web

from streamproc.console.access import ConsoleUser
from streamproc.console.keys import SESSION_KEY, USER_KEY
from streamproc.console.sessions import COOKIE_NAME, Session, SessionStore
from streamproc.console.thumbnails import Thumbnails
from streamproc.errors import AccessDeniedException, RekognitionError
from streamproc.http.api import RekognitionHttpApi
from streamproc.http.protocol import decode_request

__all__ = ["Console", "PREFIX"]

log = logging.getLogger(__name__)

PREFIX = "/console"
STATIC_DIR = Path(__file__).parent / "static"
TEMPLATE_DIR = Path(__file__).parent / "templates"
SIGNIN_COOKIE = "streamproc_console_signin"
CSRF_HEADER = "X-CSRF-Token"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PUBLIC = (f"{PREFIX}/static/", f"{PREFIX}/signin")

#: Served with every console page: nothing from other origins, no inline script.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Console:
    """The console's routes and what its pages read from.

    ``history`` (visits), ``live`` (the streams' state and latest frames) and
    ``metrics_history`` are None where there is nothing of the kind (``streamproc serve``
    runs no streams); pages then say so instead of failing.
    """

    def __init__(
        self,
        api: RekognitionHttpApi,
        *,
        history: Any | None = None,  # streamproc.history.VisitHistory
        live: Any | None = None,  # streamproc.runtime.live.LiveStreams
        metrics_history: Any | None = None,  # streamproc.metrics_history.MetricsHistory
        searches: dict[str, list[str]] | None = None,  # stream id -> its search collections
        data_dir: Path | None = None,  # the console's own files (face thumbnails)
        thumbnails: bool = True,  # keep face thumbnails of faces indexed through the console
    ) -> None:
        self.api = api
        self.engine = api.engine
        self.history = history
        self.live = live
        self.metrics_history = metrics_history
        self.searches = dict(searches or {})
        settings = self.engine.context.settings
        self.data_dir = data_dir if data_dir is not None else settings.store / "console"
        self.thumbnails = Thumbnails(self.data_dir / "thumbnails", enabled=thumbnails)
        self.region = settings.region
        self.account = settings.account_id
        self.sessions = SessionStore()
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
            autoescape=jinja2.select_autoescape(default=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals["prefix"] = PREFIX
        self.templates.filters["isotime"] = _isotime
        self.templates.filters["localtime"] = _readable_time

    @property
    def auth(self) -> bool:
        return self.api.authenticator is not None

    # -- mounting -------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        from streamproc.console import pages

        app.middlewares.append(self._middleware)
        app.router.add_get(PREFIX, self._to_home)
        app.router.add_static(f"{PREFIX}/static/", STATIC_DIR, append_version=True)
        app.router.add_get(f"{PREFIX}/signin", self._signin_page)
        app.router.add_post(f"{PREFIX}/signin", self._signin)
        app.router.add_post(f"{PREFIX}/signout", self._signout)
        app.router.add_post(f"{PREFIX}/api/{{operation}}", self._operation)
        for page in pages.ALL:
            page.add_routes(app.router, self)

    async def _to_home(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"{PREFIX}/")

    # -- sessions, sign-in and CSRF -------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            return await handler(request)
        if path.startswith(_PUBLIC) or path == PREFIX:
            return _secure(await handler(request))
        session = self.sessions.get(request.cookies.get(COOKIE_NAME))
        new_cookie = None
        if session is None:
            if self.auth:
                return self._unauthenticated(request)
            session = self.sessions.create("local", "")  # auth off: loopback, no sign-in
            new_cookie = session.id
        if request.method in _UNSAFE:
            self._check_csrf(request, session, await _form_token(request))
        request[SESSION_KEY] = session
        request[USER_KEY] = self.user_for(session)
        try:
            response = await handler(request)
        except AccessDeniedException as err:
            response = self.error_response(request, err)
        except RekognitionError as err:
            response = self.error_response(request, err)
        if new_cookie is not None:
            _set_session_cookie(response, new_cookie, secure=request.secure)
        return _secure(response)

    def _unauthenticated(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET" and _wants_html(request):
            target = request.path_qs
            raise web.HTTPSeeOther(f"{PREFIX}/signin?next={quote(target, safe='')}")
        return web.json_response(
            {"__type": "UnauthenticatedException", "Message": "sign in to the console first"},
            status=401,
        )

    def _check_csrf(self, request: web.Request, session: Session, form_token: str | None) -> None:
        origin = request.headers.get("Origin")
        if origin is not None and not _same_origin(origin, request):
            raise web.HTTPForbidden(text="cross-origin request refused")
        token = request.headers.get(CSRF_HEADER) or form_token
        if not session.csrf_ok(token):
            raise web.HTTPForbidden(text="missing or wrong CSRF token: reload the page")

    def user_for(self, session: Session) -> ConsoleUser:
        auth_user = None
        if self.api.authenticator is not None:
            auth_user = self.api.authenticator.user_for_key(session.access_key_id)
            if auth_user is None:  # the key left the auth file
                raise web.HTTPSeeOther(f"{PREFIX}/signin")
        return ConsoleUser(session.user_name, session.access_key_id, auth_user,
                           self.region, self.account)

    async def _signin_page(self, request: web.Request) -> web.StreamResponse:
        if not self.auth:
            raise web.HTTPFound(f"{PREFIX}/")
        nonce = secrets.token_urlsafe(24)
        response = self.render(request, "signin.html", title="Sign in", csrf_token=nonce,
                               next=_safe_next(request.query.get("next")), error=None)
        response.set_cookie(SIGNIN_COOKIE, nonce, path=f"{PREFIX}/signin", httponly=True,
                            samesite="Strict", max_age=3600)
        return response

    async def _signin(self, request: web.Request) -> web.StreamResponse:
        if not self.auth:
            raise web.HTTPFound(f"{PREFIX}/")
        form = await request.post()
        nonce = request.cookies.get(SIGNIN_COOKIE, "")
        sent = str(form.get("csrf_token", ""))
        origin = request.headers.get("Origin")
        if (not nonce or not hmac.compare_digest(nonce.encode(), sent.encode("utf-8", "replace"))
                or (origin is not None and not _same_origin(origin, request))):
            raise web.HTTPForbidden(text="sign-in form expired: reload the page")
        key = str(form.get("access_key_id", "")).strip()
        secret = str(form.get("secret_access_key", ""))
        next_url = _safe_next(str(form.get("next", "")))
        assert self.api.authenticator is not None
        expected = self.api.authenticator.secret_for(key)
        # Compare even for an unknown key, so timing does not tell which keys exist.
        ok = hmac.compare_digest(
            (expected or secrets.token_urlsafe(32)).encode(), secret.encode("utf-8", "replace")
        ) and expected is not None
        if not ok:
            log.info("console sign-in refused for access key %s", key[:32] or "(empty)")
            response = self.render(request, "signin.html", title="Sign in", csrf_token=nonce,
                                   next=next_url,
                                   error="Wrong access key or secret access key.")
            response.set_status(401)
            return response
        user = self.api.authenticator.user_for_key(key)
        assert user is not None
        session = self.sessions.create(user.UserName, key)
        log.info("console: %s signed in", user.UserName)
        response = web.HTTPSeeOther(next_url)
        _set_session_cookie(response, session.id, secure=request.secure)
        response.del_cookie(SIGNIN_COOKIE, path=f"{PREFIX}/signin")
        raise response

    async def _signout(self, request: web.Request) -> web.StreamResponse:
        session: Session = request[SESSION_KEY]
        self.sessions.delete(session.id)
        response = web.HTTPSeeOther(f"{PREFIX}/signin" if self.auth else f"{PREFIX}/")
        response.del_cookie(COOKIE_NAME, path=f"{PREFIX}/")
        raise response

    # -- the Rekognition operations, for the pages' scripts --------------------------------

    async def _operation(self, request: web.Request) -> web.StreamResponse:
        """``POST /console/api/<Operation>``: the AWS JSON request body, the AWS JSON answer,
        as the signed-in user (same policy, limits and metrics as the API)."""
        operation = request.match_info["operation"]
        if operation not in self.engine.operations:
            return web.json_response(
                {"__type": "UnknownOperationException",
                 "Message": f"unknown operation {operation[:100]!r}"},
                status=400,
            )
        try:
            params = decode_request(await request.read())
        except RekognitionError as err:
            return self.error_response(request, err, as_json=True)
        return await self.call(request, operation, params)

    async def call(
        self, request: web.Request, operation: str, params: dict[str, Any]
    ) -> web.Response:
        """Run an operation as the request's user; the AWS JSON answer (or error)."""
        user: ConsoleUser = request[USER_KEY]
        return await self.api.answer(operation, params, key=user.access_key_id,
                                     user=user.auth_user)

    async def invoke(self, request: web.Request, operation: str, params: dict[str, Any]) -> Any:
        """Run an operation as the request's user; the typed response (raises its error)."""
        user: ConsoleUser = request[USER_KEY]
        return await self.api.invoke(operation, params, key=user.access_key_id,
                                     user=user.auth_user)

    # -- rendering ------------------------------------------------------------------------

    def render(self, request: web.Request, template: str, **context: Any) -> web.Response:
        session: Session | None = request.get(SESSION_KEY)
        context.setdefault("csrf_token", session.csrf_token if session else "")
        context.setdefault("user", request.get(USER_KEY))
        context.setdefault("auth", self.auth)
        context.setdefault("nav", request.path)
        html = self.templates.get_template(template).render(**context)
        return web.Response(text=html, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    def error_response(
        self, request: web.Request, err: RekognitionError, *, as_json: bool | None = None
    ) -> web.Response:
        if as_json is None:
            as_json = not _wants_html(request) or request.path.startswith(f"{PREFIX}/api/")
        if as_json:
            return web.json_response(
                {"__type": err.code, "Message": err.message}, status=err.http_status
            )
        response = self.render(request, "error.html", title=err.code, error=err)
        response.set_status(err.http_status)
        return response


def _isotime(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _readable_time(epoch: float | None) -> str:
    """UTC on the server; console.js rewrites each ``<time>`` to the browser's zone."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


def _same_origin(origin: str, request: web.Request) -> bool:
    parts = urlsplit(origin)
    return parts.netloc == request.host and parts.scheme in ("http", "https")


def _safe_next(target: str | None) -> str:
    """Only a path inside the console: never an open redirect to another site."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") \
            and "\\" not in target:
        return target
    return f"{PREFIX}/"


async def _form_token(request: web.Request) -> str | None:
    content_type = request.content_type
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data") \
            and CSRF_HEADER not in request.headers:
        form = await request.post()  # cached by aiohttp for the handler
        token = form.get("csrf_token")
        return token if isinstance(token, str) else None
    return None


def _set_session_cookie(response: web.StreamResponse, session_id: str, *, secure: bool) -> None:
    """HttpOnly (no script reads it), SameSite=Strict (no other site sends it), Secure
    behind TLS."""
    response.set_cookie(COOKIE_NAME, session_id, path=f"{PREFIX}/", httponly=True,
                        samesite="Strict", secure=secure)


def _secure(response: web.StreamResponse) -> web.StreamResponse:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def json_script(value: Any) -> str:
    """JSON safe inside an HTML attribute or a ``<script type=application/json>``."""
    return (json.dumps(value, separators=(",", ":"))
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
