"""Console sign-in sessions: who is signed in, and the CSRF token of each session.

A session is a random 256-bit id in an ``HttpOnly``, ``SameSite=Strict`` cookie scoped to
``/console/``; the server keeps the sessions in memory (a restart signs everyone out,
which is what a small self-hosted service wants: nothing secret lands on disk). Each
session carries its own CSRF token, which every state-changing request must echo in the
``X-CSRF-Token`` header or a ``csrf_token`` form field; both comparisons are constant-time.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

__all__ = ["COOKIE_NAME", "Session", "SessionStore"]

COOKIE_NAME = "streamproc_console"


@dataclass
class Session:
    """One signed-in browser. ``access_key_id`` is empty when auth is off (loopback)."""

    id: str
    user_name: str
    access_key_id: str
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    created_at: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(
            token.encode("utf-8", "replace"), self.csrf_token.encode()
        )


class SessionStore:
    """Sessions by id, expiring after ``idle_s`` unused or ``max_age_s`` in all."""

    def __init__(
        self, *, idle_s: float = 8 * 3600, max_age_s: float = 7 * 86400, max_sessions: int = 1000
    ) -> None:
        self.idle_s = idle_s
        self.max_age_s = max_age_s
        self.max_sessions = max_sessions
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user_name: str, access_key_id: str) -> Session:
        session = Session(secrets.token_urlsafe(32), user_name, access_key_id)
        with self._lock:
            self._expire(time.time())
            if len(self._sessions) >= self.max_sessions:  # drop the least recently used
                oldest = min(self._sessions.values(), key=lambda s: s.last_seen)
                del self._sessions[oldest.id]
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (constant-time compare against each), or None."""
        if not session_id:
            return None
        now = time.time()
        with self._lock:
            found = None
            for sid, session in self._sessions.items():
                if hmac.compare_digest(sid.encode(), session_id.encode("utf-8", "replace")):
                    found = session
            if found is None or self._expired(found, now):
                return None
            found.last_seen = now
            return found

    def delete(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def delete_user(self, access_key_id: str) -> None:
        with self._lock:
            for sid in [s.id for s in self._sessions.values()
                        if s.access_key_id == access_key_id]:
                del self._sessions[sid]

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_seen > self.idle_s or now - session.created_at > self.max_age_s

    def _expire(self, now: float) -> None:
        for sid in [s.id for s in self._sessions.values() if self._expired(s, now)]:
            del self._sessions[sid]
