"""Opaque pagination tokens for keyset pagination.

A token carries the last key a page ended on, plus what it paginates (which listing,
which collection), signed with a per-store secret so that a forged, truncated or
foreign token is rejected as InvalidPaginationTokenException rather than silently
skipping rows. Tokens stay valid while rows are added or deleted: they name a position,
not an offset.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

from streamproc.errors import InvalidPaginationTokenException

__all__ = ["TokenCodec", "MAX_TOKEN_LENGTH"]

MAX_TOKEN_LENGTH = 255
_MAC_BYTES = 12


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenCodec:
    """Encodes/decodes (scope, last key) pairs; ``scope`` ties a token to one listing."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, scope: str, after: int) -> str:
        body = json.dumps([scope, after], separators=(",", ":")).encode()
        token = f"{_b64(body)}.{_b64(self._mac(body))}"
        assert len(token) <= MAX_TOKEN_LENGTH
        return token

    def decode(self, scope: str, token: object) -> int:
        """The key to continue after; raises InvalidPaginationTokenException if not ours."""
        bad = InvalidPaginationTokenException("Invalid pagination token")
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
            raise bad
        try:
            body_text, mac_text = token.split(".")
            body, mac = _unb64(body_text), _unb64(mac_text)
        except (ValueError, binascii.Error):
            raise bad from None
        if not hmac.compare_digest(mac, self._mac(body)):
            raise bad
        try:
            token_scope, after = json.loads(body)
        except (ValueError, TypeError):
            raise bad from None
        if token_scope != scope or not isinstance(after, int) or isinstance(after, bool):
            raise bad
        return after
