"""SigV4 verification against requests signed by botocore's own signer."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from streamproc.errors import (
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from streamproc.http.sigv4 import (
    Credential,
    SignedRequest,
    canonical_query,
    canonical_uri,
    parse_authorization,
    verify,
)

AK = "AKIDEXAMPLE0000000001"
SK = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
BODY = b'{"Image": {"Bytes": "aGVsbG8="}, "Attributes": ["ALL"]}'
URL = "http://127.0.0.1:8080/"
SECRETS = {AK: SK}


def sign(
    url: str = URL,
    body: bytes = BODY,
    *,
    service: str = "rekognition",
    key: str = AK,
    secret: str = SK,
    extra_headers: dict[str, str] | None = None,
) -> tuple[SignedRequest, datetime]:
    """A request as an SDK sends it, and the moment botocore signed it."""
    headers = {
        "X-Amz-Target": "RekognitionService.DetectFaces",
        "Content-Type": "application/x-amz-json-1.1",
        **(extra_headers or {}),
    }
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(Credentials(key, secret), service, "us-east-1").add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    sent = dict(prepared.headers.items())
    sent["Host"] = parts.netloc  # what the HTTP client puts on the wire
    raw_body = prepared.body
    assert isinstance(raw_body, bytes)
    signed_at = datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    return (
        SignedRequest(
            method=prepared.method,
            path=parts.path,
            query=parts.query,
            headers=sent,
            body=raw_body,
        ),
        signed_at.replace(tzinfo=UTC),
    )


def check(request: SignedRequest, now: datetime, secrets: dict[str, str] = SECRETS) -> Credential:
    return verify(request, secrets.get, now=now)


def with_header(request: SignedRequest, name: str, value: str | None) -> SignedRequest:
    headers = {k: v for k, v in request.headers.items() if k.lower() != name.lower()}
    if value is not None:
        headers[name] = value
    return dataclasses.replace(request, headers=headers)


def test_valid_request_returns_the_credential() -> None:
    request, now = sign()
    credential = check(request, now)
    assert credential == Credential(
        access_key_id=AK, date=now.strftime("%Y%m%d"), region="us-east-1", service="rekognition"
    )
    assert credential.scope == f"{now:%Y%m%d}/us-east-1/rekognition/aws4_request"


def test_header_names_are_case_insensitive() -> None:
    request, now = sign()
    lowered = dataclasses.replace(
        request, headers={k.lower(): v for k, v in request.headers.items()}
    )
    assert check(lowered, now).access_key_id == AK


def test_clock_within_fifteen_minutes_either_way_is_accepted() -> None:
    request, signed_at = sign()
    check(request, signed_at + timedelta(minutes=14))
    check(request, signed_at - timedelta(minutes=14))


def test_tampered_body_is_refused() -> None:
    request, now = sign()
    tampered = dataclasses.replace(request, body=BODY.replace(b"ALL", b"DEFAULT"))
    with pytest.raises(InvalidSignatureException, match="does not match the signature"):
        check(tampered, now)


def test_tampered_signed_header_is_refused() -> None:
    request, now = sign()
    tampered = with_header(request, "X-Amz-Target", "RekognitionService.DeleteCollection")
    with pytest.raises(InvalidSignatureException, match="does not match the signature"):
        check(tampered, now)


def test_signed_header_values_are_trimmed_and_spaces_collapsed() -> None:
    request, now = sign(extra_headers={"X-Amz-Meta-Camera": "  front   door  "})
    assert "x-amz-meta-camera" in request.headers["Authorization"]
    assert request.headers["X-Amz-Meta-Camera"] == "  front   door  "
    assert check(request, now).access_key_id == AK
    with pytest.raises(InvalidSignatureException, match="does not match"):
        check(with_header(request, "X-Amz-Meta-Camera", "front door 2"), now)


def test_unsigned_header_may_change() -> None:
    request, now = sign()
    assert check(with_header(request, "User-Agent", "something-else/1.0"), now)


def test_wrong_host_port_is_refused() -> None:
    request, now = sign()
    assert request.headers["Host"] == "127.0.0.1:8080"
    moved = with_header(request, "Host", "127.0.0.1:8081")
    with pytest.raises(InvalidSignatureException, match="does not match the signature"):
        check(moved, now)


def test_host_must_be_signed() -> None:
    request, now = sign()
    auth = request.headers["Authorization"].replace("content-type;host;", "content-type;")
    with pytest.raises(InvalidSignatureException, match="'Host' must be a signed header"):
        check(with_header(request, "Authorization", auth), now)


def test_signed_header_missing_from_request_is_refused() -> None:
    request, now = sign()
    with pytest.raises(InvalidSignatureException, match="x-amz-target"):
        check(with_header(request, "X-Amz-Target", None), now)


def test_old_request_is_expired() -> None:
    request, signed_at = sign()
    with pytest.raises(InvalidSignatureException, match="^Signature expired: ") as info:
        check(request, signed_at + timedelta(minutes=20))
    assert signed_at.strftime("%Y%m%dT%H%M%SZ") in info.value.message
    assert "15 min." in info.value.message


def test_request_from_the_future_is_not_yet_current() -> None:
    request, signed_at = sign()
    with pytest.raises(InvalidSignatureException, match="^Signature not yet current: "):
        check(request, signed_at - timedelta(minutes=20))


def test_unknown_access_key_is_unrecognized() -> None:
    request, now = sign(key="AKIDUNKNOWN")
    with pytest.raises(UnrecognizedClientException) as info:
        check(request, now)
    assert info.value.http_status == 400
    assert "AKIDUNKNOWN" not in info.value.message


def test_wrong_secret_is_refused_without_leaking_secrets() -> None:
    request, now = sign(secret="not-the-secret")
    with pytest.raises(InvalidSignatureException) as info:
        check(request, now)
    message = info.value.message
    assert message.startswith("The request signature we calculated does not match")
    signature = request.headers["Authorization"].rsplit("Signature=", 1)[1]
    assert SK not in message and "not-the-secret" not in message
    assert signature not in message and signature[:16] not in message


def test_missing_authorization_header() -> None:
    request, now = sign()
    with pytest.raises(MissingAuthenticationTokenException):
        check(with_header(request, "Authorization", None), now)


def test_scope_for_another_service_is_refused() -> None:
    request, now = sign(service="s3")
    with pytest.raises(InvalidSignatureException, match="scoped to correct service: 'rekognition'"):
        check(request, now)


def test_scope_date_must_match_request_date() -> None:
    request, now = sign()
    auth = request.headers["Authorization"]
    day = now.strftime("%Y%m%d")
    other_day = (now - timedelta(days=1)).strftime("%Y%m%d")
    bad = with_header(request, "Authorization", auth.replace(f"/{day}/", f"/{other_day}/"))
    with pytest.raises(InvalidSignatureException, match="Date in Credential scope"):
        check(bad, now)


def test_request_with_query_string() -> None:
    url = "http://127.0.0.1:8080/some%20path/?b=2&a=hello%20world&c&a=0"
    request, now = sign(url=url)
    assert request.query == "b=2&a=hello%20world&c&a=0"
    assert check(request, now).access_key_id == AK
    changed = dataclasses.replace(request, query="b=3&a=hello%20world&c&a=0")
    with pytest.raises(InvalidSignatureException, match="does not match"):
        check(changed, now)
    moved = dataclasses.replace(request, path="/other%20path/")
    with pytest.raises(InvalidSignatureException, match="does not match"):
        check(moved, now)


def test_canonical_uri_and_query_follow_sigv4() -> None:
    assert canonical_uri("") == "/"
    assert canonical_uri("/") == "/"
    assert canonical_uri("/a%20b/./c/../d/") == "/a%2520b/d/"
    assert canonical_query("") == ""
    assert canonical_query("b=2&a=hello world&c&a=0") == "a=0&a=hello%20world&b=2&c="
    assert canonical_query("k=%7e%2F") == "k=~%2F"


def test_content_sha256_header_must_match_body() -> None:
    request, now = sign(extra_headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    with pytest.raises(InvalidSignatureException, match="x-amz-content-sha256"):
        check(request, now)


def test_matching_content_sha256_header_is_accepted() -> None:
    import hashlib

    digest = hashlib.sha256(BODY).hexdigest()
    request, now = sign(extra_headers={"X-Amz-Content-SHA256": digest})
    assert check(request, now).access_key_id == AK
    with pytest.raises(InvalidSignatureException, match="x-amz-content-sha256"):
        check(dataclasses.replace(request, body=b"{}"), now)


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/rekognition/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/rekognition, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/rekognition/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=xyz",
        "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/rekognition/aws4_request, "
        "SignedHeaders=host;;x-amz-date, Signature=" + "0" * 64,
        "AWS Basic dXNlcjpwYXNz",
    ],
)
def test_malformed_authorization_is_invalid_signature(authorization: str) -> None:
    with pytest.raises(InvalidSignatureException):
        parse_authorization({"Authorization": authorization})


def test_parse_authorization_of_a_botocore_request() -> None:
    request, now = sign()
    credential, signed_headers, signature = parse_authorization(request.headers)
    assert credential.access_key_id == AK and credential.service == "rekognition"
    assert signed_headers == ["content-type", "host", "x-amz-date", "x-amz-target"]
    assert len(signature) == 64
    with pytest.raises(MissingAuthenticationTokenException):
        parse_authorization({"Host": "127.0.0.1:8080"})


def test_missing_date_is_refused() -> None:
    request, now = sign()
    with pytest.raises(InvalidSignatureException, match="X-Amz-Date"):
        check(with_header(request, "X-Amz-Date", None), now)


def test_date_header_instead_of_x_amz_date() -> None:
    """Signed by botocore's own pieces with an HTTP ``Date`` (botocore itself always sets
    X-Amz-Date), so the Date path is checked against an independent signer too."""
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    headers = {
        "Date": "Mon, 06 May 2024 07:08:09 GMT",
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "RekognitionService.DetectFaces",
    }
    request = AWSRequest(method="POST", url=URL, data=BODY, headers=headers)
    request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
    auth = SigV4Auth(Credentials(AK, SK), "rekognition", "us-east-1")
    signature = auth.signature(
        auth.string_to_sign(request, auth.canonical_request(request)), request
    )
    signed_headers = auth.signed_headers(auth.headers_to_sign(request))
    assert "date" in signed_headers.split(";")
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={auth.scope(request)}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    headers["Host"] = "127.0.0.1:8080"
    signed = SignedRequest(method="POST", path="/", query="", headers=headers, body=BODY)
    assert check(signed, when + timedelta(minutes=1)).date == "20240506"
    with pytest.raises(InvalidSignatureException, match="does not match"):
        check(with_header(signed, "Date", "Mon, 06 May 2024 07:08:10 GMT"), when)
