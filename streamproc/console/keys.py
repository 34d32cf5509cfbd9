"""Typed keys of what the console's middleware puts on each request."""

from __future__ import annotations

from aiohttp import web

from streamproc.console.access import ConsoleUser
from streamproc.console.sessions import Session

__all__ = ["SESSION_KEY", "USER_KEY"]

#: The browser's session (sessions.py).
SESSION_KEY = web.RequestKey("console_session", Session)
#: Who is signed in, and what their policy allows (access.py).
USER_KEY = web.RequestKey("console_user", ConsoleUser)
