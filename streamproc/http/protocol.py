"""The AWS JSON 1.1 wire protocol, as the real Rekognition endpoint speaks it.

``POST /`` with ``X-Amz-Target: RekognitionService.<Operation>`` and a JSON body whose
blobs (``Image.Bytes``) are base64; answers are JSON with ``Content-Type:
application/x-amz-json-1.1`` and timestamps as epoch seconds; errors are a JSON body
``{"__type": "<Code>", "Message": ..., "message": ...}`` with the error's HTTP status, the
way botocore's JSON parser and the JS SDK read them. Only this module knows the format.
"""

from __future__ import annotations

import json
from typing import Any, Final

from streamproc.errors import RekognitionError
from streamproc.transport.codec import Codec, CodecError

__all__ = [
    "CONTENT_TYPE",
    "TARGET_PREFIX",
    "SerializationException",
    "UnknownOperationException",
    "decode_request",
    "encode_error",
    "encode_response",
    "operation_from_target",
]

CONTENT_TYPE: Final = "application/x-amz-json-1.1"
TARGET_PREFIX: Final = "RekognitionService."
_JSON: Final = Codec("json")


class SerializationException(RekognitionError):
    """The body is not a JSON object (AWS JSON services answer this before validation)."""


class UnknownOperationException(RekognitionError):
    """``X-Amz-Target`` is missing or names no operation this server offers."""


def operation_from_target(target: str | None, known: set[str] | dict[str, Any]) -> str:
    """``"RekognitionService.DetectFaces"`` → ``"DetectFaces"``, if the server offers it."""
    if not target:
        raise UnknownOperationException(
            "missing X-Amz-Target header (expected RekognitionService.<Operation>)"
        )
    prefix, _, name = target.partition(".")
    if prefix + "." != TARGET_PREFIX or name not in known:
        raise UnknownOperationException(f"unknown operation {target[:100]!r}")
    return name


def decode_request(body: bytes) -> dict[str, Any]:
    """The request parameters, blobs as bytes; an empty body is an empty request."""
    if not body.strip():
        return {}
    try:
        return _JSON.decode(body)
    except CodecError as exc:
        raise SerializationException(
            f"the request body is not a valid JSON object: {exc}"
        ) from None


def encode_response(response: dict[str, Any]) -> bytes:
    """JSON with base64 blobs and epoch-seconds timestamps (the codec NATS JSON uses)."""
    return _JSON.encode(response)


def encode_error(error: RekognitionError) -> bytes:
    return json.dumps(
        {"__type": error.code, "Message": error.message, "message": error.message},
        separators=(",", ":"),
    ).encode()
