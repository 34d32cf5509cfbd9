"""AWS Signature Version 4 verification, with the standard library only.

Why a pure module: the checks depend only on the request as received, the clock and the
secret store, so they are tested against botocore's own signer without a server, and any
front door (the aiohttp server today) hands over a :class:`SignedRequest` and calls
:func:`verify`.

What :func:`verify` checks, cheap structural checks before any HMAC:

1. an ``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``
   header (absent: ``MissingAuthenticationTokenException``; malformed:
   ``InvalidSignatureException``);
2. the credential scope names the expected service and the date of ``X-Amz-Date``
   (or ``Date``), and that time lies within ``max_skew`` of now;
3. ``host`` is signed, every signed header is present, and ``X-Amz-Content-SHA256``, when
   sent, is the SHA-256 of the body (so ``UNSIGNED-PAYLOAD`` is refused: the body is
   always covered by the signature);
4. the access key is known (else ``UnrecognizedClientException``), and the signature
   recomputed from the signed headers, path, query and body hash matches
   (``hmac.compare_digest``).

Any region in the scope is accepted (clients pick theirs freely against a self-hosted
server); it is part of the derived key, and the returned :class:`Credential` carries it.
Not supported: presigned URLs (query-string authentication), SigV4a, session tokens (an
``X-Amz-Security-Token`` header is only one more signed header). Messages follow AWS's
wording and never contain a secret, a derived key, a signature or a header value.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from streamproc.errors import (
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

__all__ = [
    "ALGORITHM",
    "Credential",
    "SignedRequest",
    "canonical_query",
    "canonical_uri",
    "parse_authorization",
    "verify",
]

ALGORITHM = "AWS4-HMAC-SHA256"
_TERMINATOR = "aws4_request"
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_AMZ_DATE_RE = re.compile(r"^\d{8}T\d{6}Z$")
_SCOPE_DATE_RE = re.compile(r"^\d{8}$")
_SIGNATURE_RE = re.compile(r"^[0-9a-f]{64}$")
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9a-z]+$")
_AUTH_FIELDS = ("Credential", "SignedHeaders", "Signature")

SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."


@dataclass(frozen=True)
class SignedRequest:
    """A request as received, independent of the HTTP framework.

    ``path`` and ``query`` are raw, as sent on the request line (with aiohttp:
    ``request.rel_url.raw_path`` and ``request.rel_url.raw_query_string``). Repeated
    headers should be joined with ``","`` (or given as a multi-dict whose ``items()``
    yields each); names are compared case-insensitively.
    """

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Credential:
    """The ``Credential=`` part of the Authorization header: who signed, and the scope."""

    access_key_id: str
    date: str
    region: str
    service: str

    @property
    def scope(self) -> str:
        """The credential scope as it appears in the string to sign."""
        return f"{self.date}/{self.region}/{self.service}/{_TERMINATOR}"


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-cased names; repeats (or names differing in case) joined with "," as HTTP does."""
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    return lowered


def _malformed(detail: str) -> InvalidSignatureException:
    return InvalidSignatureException(f"Authorization header is malformed: {detail}")


def _parse_credential(value: str) -> Credential:
    parts = value.split("/")
    if len(parts) != 5 or not all(parts) or parts[4] != _TERMINATOR:
        raise _malformed(
            "Credential must have the form "
            "<AccessKeyId>/<YYYYMMDD>/<region>/<service>/aws4_request."
        )
    access_key_id, date, region, service, _ = parts
    if not _SCOPE_DATE_RE.match(date):
        raise _malformed("the date in the Credential scope must be YYYYMMDD.")
    return Credential(access_key_id=access_key_id, date=date, region=region, service=service)


def _parse_signed_headers(value: str) -> list[str]:
    names = [name.lower() for name in value.split(";")]
    if not all(_HEADER_NAME_RE.match(name) for name in names):
        raise _malformed("SignedHeaders must be header names separated by ';'.")
    if len(set(names)) != len(names):
        raise _malformed("SignedHeaders names a header twice.")
    return names


def parse_authorization(headers: Mapping[str, str]) -> tuple[Credential, list[str], str]:
    """The credential, the signed header names (lower-case, as signed) and the signature.

    Raises ``MissingAuthenticationTokenException`` without an Authorization header and
    ``InvalidSignatureException`` when it is not a well-formed SigV4 header.
    """
    value = _lower_headers(headers).get("authorization", "").strip()
    if not value:
        raise MissingAuthenticationTokenException("Missing Authentication Token")
    algorithm, _, rest = value.partition(" ")
    if algorithm != ALGORITHM:
        raise InvalidSignatureException(
            f"Unsupported Authorization scheme; only {ALGORITHM} (Signature Version 4) is accepted."
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, field_value = part.strip().partition("=")
        if not sep or name not in _AUTH_FIELDS:
            raise _malformed("expected Credential=..., SignedHeaders=..., Signature=....")
        if name in fields:
            raise _malformed(f"'{name}' is given twice.")
        fields[name] = field_value.strip()
    missing = [name for name in _AUTH_FIELDS if not fields.get(name)]
    if missing:
        raise InvalidSignatureException(
            " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
        )
    credential = _parse_credential(fields["Credential"])
    signed_headers = _parse_signed_headers(fields["SignedHeaders"])
    signature = fields["Signature"].lower()
    if not _SIGNATURE_RE.match(signature):
        raise _malformed("Signature must be 64 hexadecimal digits.")
    return credential, signed_headers, signature


def _request_time(headers: Mapping[str, str]) -> tuple[datetime, str]:
    """The signing time and its ISO-8601 basic form, from X-Amz-Date or else Date."""
    amz_date = headers.get("x-amz-date")
    if amz_date is not None:
        amz_date = amz_date.strip()
        try:
            if not _AMZ_DATE_RE.match(amz_date):
                raise ValueError(amz_date)
            when = datetime.strptime(amz_date, _AMZ_DATE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise InvalidSignatureException(
                "X-Amz-Date must be in the ISO-8601 basic format YYYYMMDD'T'HHMMSS'Z'."
            ) from None
        return when, amz_date
    http_date = headers.get("date")
    if http_date is None:
        raise InvalidSignatureException(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    try:
        when = parsedate_to_datetime(http_date.strip())
    except (TypeError, ValueError):
        raise InvalidSignatureException("The Date header is not a valid HTTP date.") from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when, when.strftime(_AMZ_DATE_FORMAT)


def _check_skew(when: datetime, now: datetime | None, max_skew: timedelta) -> None:
    """Refuse replays of old requests (and clocks far ahead), worded as AWS does."""
    current = datetime.now(UTC) if now is None else now
    current = current.replace(tzinfo=UTC) if current.tzinfo is None else current.astimezone(UTC)
    minutes = f"{max_skew.total_seconds() / 60:g} min."

    def fmt(moment: datetime) -> str:
        return moment.strftime(_AMZ_DATE_FORMAT)

    if when < current - max_skew:
        raise InvalidSignatureException(
            f"Signature expired: {fmt(when)} is now earlier than {fmt(current - max_skew)} "
            f"({fmt(current)} - {minutes})"
        )
    if when > current + max_skew:
        raise InvalidSignatureException(
            f"Signature not yet current: {fmt(when)} is still later than "
            f"{fmt(current + max_skew)} ({fmt(current)} + {minutes})"
        )


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 dot-segment removal, also collapsing empty segments as AWS services do."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
        else:
            segments.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and segments else ""
    return first + "/".join(segments) + last


def canonical_uri(path: str) -> str:
    """The canonical URI of a raw path: normalised, then URI-encoded once more.

    All services but S3 encode the already-encoded path a second time (``%20`` → ``%2520``),
    which is what botocore and the other SDKs sign.
    """
    return quote(_remove_dot_segments(path) if path else "/", safe="/~") or "/"


def _uri_encode(text: str) -> str:
    """SigV4's URI encoding: everything but A-Z a-z 0-9 - _ . ~ as %XY (space as %20)."""
    return quote(text, safe="-_.~")


def canonical_query(query: str) -> str:
    """The canonical query string: each name and value URI-encoded, sorted, ``name=value``."""
    pairs: list[tuple[str, str]] = []
    for item in query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((_uri_encode(unquote(name)), _uri_encode(unquote(value))))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _canonical_request(
    request: SignedRequest,
    headers: Mapping[str, str],
    signed_headers: list[str],
    payload_hash: str,
) -> str:
    canonical_headers = "".join(
        f"{name}:{' '.join(headers[name].split())}\n" for name in signed_headers
    )
    return "\n".join(
        [
            request.method,
            canonical_uri(request.path),
            canonical_query(request.query),
            canonical_headers,
            ";".join(signed_headers),
            payload_hash,
        ]
    )


def _utf8(text: str) -> bytes:
    """UTF-8 bytes; undecodable bytes a server kept as surrogates go back as they came."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _signing_key(secret: str, credential: Credential) -> bytes:
    key = _utf8("AWS4" + secret)
    for part in (credential.date, credential.region, credential.service, _TERMINATOR):
        key = hmac.new(key, _utf8(part), hashlib.sha256).digest()
    return key


def verify(
    request: SignedRequest,
    secret_for: Callable[[str], str | None],
    *,
    now: datetime | None = None,
    max_skew: timedelta = timedelta(minutes=15),
    service: str = "rekognition",
) -> Credential:
    """Check the request's SigV4 signature; return who signed it, or raise.

    ``secret_for`` maps an access key id to its secret (``None`` when unknown). Raises
    ``MissingAuthenticationTokenException``, ``UnrecognizedClientException`` or
    ``InvalidSignatureException`` (all HTTP 400, as AWS JSON services answer).
    """
    headers = _lower_headers(request.headers)
    credential, signed_headers, signature = parse_authorization(headers)
    if credential.service != service:
        raise InvalidSignatureException(
            f"Credential should be scoped to correct service: '{service}'."
        )
    when, amz_date = _request_time(headers)
    if credential.date != amz_date[:8]:
        raise InvalidSignatureException(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{credential.date}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    _check_skew(when, now, max_skew)
    if "host" not in signed_headers:
        raise InvalidSignatureException("'Host' must be a signed header.")
    for name in signed_headers:
        if name not in headers:
            raise InvalidSignatureException(f"Signed header '{name}' is not in the request.")
    payload_hash = hashlib.sha256(request.body).hexdigest()
    claimed_hash = headers.get("x-amz-content-sha256")
    if claimed_hash is not None and claimed_hash.strip() != payload_hash:
        raise InvalidSignatureException(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )
    secret = secret_for(credential.access_key_id)
    if secret is None:
        raise UnrecognizedClientException(INVALID_TOKEN)
    canonical = _canonical_request(request, headers, signed_headers, payload_hash)
    string_to_sign = "\n".join(
        [
            ALGORITHM,
            amz_date,
            credential.scope,
            hashlib.sha256(_utf8(canonical)).hexdigest(),
        ]
    )
    expected = hmac.new(
        _signing_key(secret, credential), _utf8(string_to_sign), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise InvalidSignatureException(SIGNATURE_MISMATCH)
    return credential
