"""The AWS JSON 1.1 wire protocol, as the real Rekognition endpoint speaks it.

``POST /`` with ``X-Amz-Target: RekognitionService.<Operation>`` and a JSON body whose
blobs (``Image.Bytes``) are base64; answers are JSON with ``Content-Type:
application/x-amz-json-1.1`` and timestamps as epoch seconds; errors are a JSON body
``{"__type": "<Code>", "Message": ..., "message": ...}`` with the error's HTTP status, the
way botocore's JSON parser and the JS SDK read them. Only this module knows the format.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any, Final

import numpy as np

from streamproc.errors import RekognitionError

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
_BLOB_KEY: Final = "Bytes"


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


def _decode_blobs(obj: Any, path: str) -> Any:
    if isinstance(obj, dict):
        for key, value in obj.items():
            where = f"{path}.{key}" if path else key
            if key == _BLOB_KEY and isinstance(value, str):
                try:
                    obj[key] = base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    raise SerializationException(f"{where} is not valid base64") from None
            else:
                _decode_blobs(value, where)
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            _decode_blobs(item, f"{path}[{i}]")
    return obj


def decode_request(body: bytes) -> dict[str, Any]:
    """The request parameters, blobs as bytes; an empty body is an empty request."""
    if not body.strip():
        return {}
    try:
        params = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SerializationException(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(params, dict):
        raise SerializationException("the request body must be a JSON object")
    return _decode_blobs(params, "")  # type: ignore[no-any-return]


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime):
        return value.timestamp()  # the JSON protocol's timestamps: epoch seconds
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode_response(response: dict[str, Any]) -> bytes:
    return json.dumps(response, default=_default, separators=(",", ":")).encode()


def encode_error(error: RekognitionError) -> bytes:
    return json.dumps(
        {"__type": error.code, "Message": error.message, "message": error.message},
        separators=(",", ":"),
    ).encode()
