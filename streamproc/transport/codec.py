"""Wire codecs for NATS payloads: the only place that knows msgpack from JSON.

msgpack (the default) carries image bytes as they are; JSON carries them as base64 strings,
as the Rekognition JSON API does. Decoding JSON turns the ``Bytes`` of every Image-like object
back into bytes, so the engine sees the same request whichever codec the caller chose.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal

import msgpack
import numpy as np

__all__ = [
    "CONTENT_TYPES",
    "Codec",
    "CodecError",
    "CodecName",
    "codec_for",
    "detect_codec",
]

log = logging.getLogger(__name__)

CodecName = Literal["msgpack", "json"]

CONTENT_TYPES: Final[dict[str, str]] = {
    "msgpack": "application/msgpack",
    "json": "application/json",
}
# Accepted spellings of the Content-Type header, mapped to a codec name.
_CONTENT_TYPE_ALIASES: Final[dict[str, str]] = {
    "application/msgpack": "msgpack",
    "application/x-msgpack": "msgpack",
    "application/vnd.msgpack": "msgpack",
    "application/json": "json",
    "text/json": "json",
}
_BLOB_KEY: Final = "Bytes"


class CodecError(ValueError):
    """A payload could not be encoded or decoded (malformed body, unsupported value)."""


def _plain(value: Any) -> Any:
    """Values msgpack/json cannot take natively: numpy scalars and arrays, bytes-likes."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, datetime):
        return value.timestamp()  # epoch seconds, as the Rekognition JSON protocol sends
    raise TypeError(f"cannot encode {type(value).__name__}")


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return _plain(value)  # json calls us again if this returns bytes (numpy.bytes_)


def _decode_blobs(obj: Any, path: str = "") -> Any:
    """Base64-decode the ``Bytes`` of Image-like objects (``Image``, ``SourceImage``, ...)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            where = f"{path}.{key}" if path else key
            if key == _BLOB_KEY and isinstance(value, str):
                try:
                    obj[key] = base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise CodecError(f"{where} is not valid base64: {exc}") from None
            else:
                _decode_blobs(value, where)
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            _decode_blobs(item, f"{path}[{i}]")
    return obj


class Codec:
    """Encode dicts to bytes and back in one wire format (``"msgpack"`` or ``"json"``)."""

    __slots__ = ("name", "content_type")

    def __init__(self, name: CodecName | str = "msgpack") -> None:
        if name not in CONTENT_TYPES:
            raise ValueError(f"unknown codec {name!r}; choose from {', '.join(CONTENT_TYPES)}")
        self.name: str = name
        self.content_type: str = CONTENT_TYPES[name]

    def __repr__(self) -> str:
        return f"Codec({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Codec) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def encode(self, obj: Mapping[str, Any]) -> bytes:
        """Serialise ``obj``; bytes become base64 in JSON; numpy values become Python ones."""
        try:
            if self.name == "msgpack":
                return msgpack.packb(obj, use_bin_type=True, default=_plain)
            return json.dumps(obj, default=_json_default, separators=(",", ":")).encode()
        except (TypeError, ValueError, OverflowError) as exc:
            raise CodecError(f"cannot encode as {self.name}: {exc}") from exc

    def decode(self, data: bytes | bytearray | memoryview) -> dict[str, Any]:
        """Parse a payload into a dict; JSON blobs (``...Bytes``) come back as bytes."""
        try:
            if self.name == "msgpack":
                obj = msgpack.unpackb(data, raw=False)
            else:
                obj = _decode_blobs(json.loads(bytes(data)))
        except CodecError:
            raise
        except Exception as exc:  # msgpack raises a family of unrelated exception types
            raise CodecError(f"malformed {self.name} payload: {exc}") from None
        if not isinstance(obj, dict):
            raise CodecError(f"{self.name} payload must be an object, got {type(obj).__name__}")
        return obj


_CODECS: Final[dict[str, Codec]] = {name: Codec(name) for name in CONTENT_TYPES}


def codec_for(value: Codec | str) -> Codec:
    """A codec from a codec, a codec name or a Content-Type (``application/json; ...``)."""
    if isinstance(value, Codec):
        return value
    if value in _CODECS:
        return _CODECS[value]
    media = value.split(";", 1)[0].strip().lower()
    if media in _CONTENT_TYPE_ALIASES:
        return _CODECS[_CONTENT_TYPE_ALIASES[media]]
    raise ValueError(f"unknown codec or content type {value!r}")


def detect_codec(data: bytes, headers: Mapping[str, str] | None = None) -> Codec:
    """The codec of an incoming message: its Content-Type header, else sniffed from the body.

    A JSON object starts with ``{`` (after optional whitespace); a msgpack map never does
    (0x7b would be the integer 123), so the sniff is unambiguous for valid requests.
    """
    if headers:
        for key, value in headers.items():
            if key.lower() == "content-type":
                try:
                    return codec_for(value)
                except ValueError:
                    log.debug("unknown Content-Type %r; sniffing the body", value)
                break
    if data.lstrip()[:1] == b"{":
        return _CODECS["json"]
    return _CODECS["msgpack"]
