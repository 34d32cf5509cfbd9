"""Wire codecs: round trips, image blobs as base64 in JSON, numpy values, sniffing."""

from __future__ import annotations

import base64
import json

import msgpack
import numpy as np
import pytest

from streamproc.transport.codec import Codec, CodecError, codec_for, detect_codec
from tests.conftest import DATA

PHOTO = (DATA / "faces" / "barack_obama" / "4.jpg").read_bytes()
NESTED = {
    "Image": {"Bytes": b"\x00\x01\xfe\xff"},
    "Attributes": ["ALL"],
    "MaxFaces": 3,
    "Threshold": 80.5,
    "Flag": True,
    "Nothing": None,
    "Deep": {"List": [{"A": 1}, {"B": [1.5, "x"]}]},
}


@pytest.mark.parametrize("name", ["msgpack", "json"])
def test_round_trip_bytes_and_nested(name: str) -> None:
    codec = Codec(name)
    assert codec.decode(codec.encode(NESTED)) == NESTED
    request = {"SourceImage": {"Bytes": PHOTO}, "TargetImage": {"Bytes": PHOTO[:100]}}
    assert codec.decode(codec.encode(request)) == request


def test_msgpack_carries_bytes_natively() -> None:
    encoded = Codec("msgpack").encode({"Image": {"Bytes": PHOTO}})
    assert len(encoded) < len(PHOTO) + 32  # no base64 inflation
    assert msgpack.unpackb(encoded, raw=False)["Image"]["Bytes"] == PHOTO


def test_json_carries_image_bytes_as_base64() -> None:
    encoded = Codec("json").encode({"Image": {"Bytes": PHOTO}})
    assert json.loads(encoded)["Image"]["Bytes"] == base64.b64encode(PHOTO).decode()
    # A request written by any JSON client, as for the Rekognition JSON API.
    raw = json.dumps(
        {
            "Image": {"Bytes": base64.b64encode(b"abc").decode()},
            "SourceImage": {"Bytes": base64.b64encode(b"src").decode()},
            "TargetImage": {"Bytes": base64.b64encode(b"tgt").decode()},
            "Other": {"Nested": {"Image": {"Bytes": base64.b64encode(b"deep").decode()}}},
            "Name": "Bytes are only decoded under the Bytes key",
        }
    ).encode()
    decoded = Codec("json").decode(raw)
    assert decoded["Image"]["Bytes"] == b"abc"
    assert decoded["SourceImage"]["Bytes"] == b"src"
    assert decoded["TargetImage"]["Bytes"] == b"tgt"
    assert decoded["Other"]["Nested"]["Image"]["Bytes"] == b"deep"
    assert decoded["Name"].startswith("Bytes are")


def test_json_bad_base64_is_a_codec_error() -> None:
    with pytest.raises(CodecError, match=r"Image\.Bytes is not valid base64"):
        Codec("json").decode(b'{"Image": {"Bytes": "not base64!"}}')


@pytest.mark.parametrize("name", ["msgpack", "json"])
def test_numpy_values_encode_as_plain_numbers(name: str) -> None:
    codec = Codec(name)
    record = {
        "Confidence": np.float32(99.25),
        "Similarity": np.float64(80.5),
        "Count": np.int64(7),
        "Small": np.uint8(3),
        "Smile": np.bool_(True),
        "Box": np.array([0.25, 0.5], dtype=np.float32),
    }
    decoded = codec.decode(codec.encode(record))
    assert decoded == {
        "Confidence": 99.25,
        "Similarity": 80.5,
        "Count": 7,
        "Small": 3,
        "Smile": True,
        "Box": [0.25, 0.5],
    }
    assert type(decoded["Confidence"]) is float and type(decoded["Count"]) is int


@pytest.mark.parametrize("name", ["msgpack", "json"])
@pytest.mark.parametrize("data", [b"", b"\xc1", b"[1, 2]", b"\x93\x01\x02\x03", b"{", b"\x81\xa1a"])
def test_malformed_or_non_object_payloads_raise_codec_error(name: str, data: bytes) -> None:
    with pytest.raises(CodecError):
        Codec(name).decode(data)


def test_unencodable_value_is_a_codec_error() -> None:
    with pytest.raises(CodecError):
        Codec("msgpack").encode({"x": object()})
    with pytest.raises(CodecError):
        Codec("json").encode({"x": object()})


def test_names_content_types_and_detection() -> None:
    assert Codec().name == "msgpack"
    assert Codec("msgpack").content_type == "application/msgpack"
    assert Codec("json").content_type == "application/json"
    with pytest.raises(ValueError, match="unknown codec"):
        Codec("xml")
    assert codec_for("json") == Codec("json")
    assert codec_for("application/json; charset=utf-8").name == "json"
    assert codec_for(Codec("msgpack")).name == "msgpack"

    packed = Codec("msgpack").encode({"Image": {"Bytes": b"x"}})
    assert detect_codec(b'  {"a": 1}').name == "json"
    assert detect_codec(packed).name == "msgpack"
    assert detect_codec(packed, {"Content-Type": "application/msgpack"}).name == "msgpack"
    assert detect_codec(b"{}", {"content-type": "application/msgpack"}).name == "msgpack"
    assert detect_codec(packed, {"Content-Type": "text/plain"}).name == "msgpack"  # sniffed
