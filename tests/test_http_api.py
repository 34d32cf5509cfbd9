"""The HTTP API with unmodified boto3, in a `streamproc serve` process of its own.

Every operation on real photos, errors as AWS sends them (boto3's modelled exceptions),
Double Take's call sequence, the reference's metrics, and a fuzz of the endpoint: every
malformed request gets a typed 4xx and the server keeps answering.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.http_server import ServerUrl, boto3_client, photo, serve_fixture
from tests.rekognition_model import assert_valid_response

server_url = serve_fixture()


@pytest.fixture(scope="module")
def rek(server_url: ServerUrl) -> Any:
    return boto3_client(server_url)


def _check(operation: str, response: dict) -> dict:
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    meta = response["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 200 and len(meta["RequestId"]) == 36
    if operation != "DescribeCollection":  # not in the reference's 2017 model checker
        assert_valid_response(operation, json.loads(json.dumps(body, default=str)))
    return body


def test_every_operation_with_boto3(rek: Any) -> None:
    obama1, obama2 = photo("faces/barack_obama/1.jpg"), photo("faces/barack_obama/2.jpg")
    biden = photo("faces/joe_biden/2.jpg")
    faces = _check("DetectFaces", rek.detect_faces(Image={"Bytes": obama1}, Attributes=["ALL"]))
    assert len(faces["FaceDetails"]) == 1 and faces["FaceDetails"][0]["AgeRange"]["Low"] > 0
    compared = _check("CompareFaces", rek.compare_faces(
        SourceImage={"Bytes": obama1}, TargetImage={"Bytes": obama2}))
    assert compared["FaceMatches"][0]["Similarity"] >= 80
    labels = _check("DetectLabels", rek.detect_labels(Image={"Bytes": obama1}, MaxLabels=10))
    assert "Person" in {label["Name"] for label in labels["Labels"]}
    moderation = _check("DetectModerationLabels",
                        rek.detect_moderation_labels(Image={"Bytes": obama1}))
    assert all(label["Confidence"] < 50 for label in moderation["ModerationLabels"])
    celebs = _check("RecognizeCelebrities", rek.recognize_celebrities(Image={"Bytes": biden}))
    assert celebs["CelebrityFaces"][0]["Name"] == "Joe Biden"
    info = _check("GetCelebrityInfo", rek.get_celebrity_info(Id=celebs["CelebrityFaces"][0]["Id"]))
    assert info["Name"] == "Joe Biden"

    created = _check("CreateCollection", rek.create_collection(CollectionId="household"))
    assert created["CollectionArn"].endswith(":collection/household")
    described = _check("DescribeCollection", rek.describe_collection(CollectionId="household"))
    assert described["FaceCount"] == 0 and abs(
        described["CreationTimestamp"].timestamp() - time.time()) < 120
    indexed = _check("IndexFaces", rek.index_faces(
        CollectionId="household", Image={"Bytes": obama1}, ExternalImageId="barack"))
    face_id = indexed["FaceRecords"][0]["Face"]["FaceId"]
    _check("IndexFaces", rek.index_faces(
        CollectionId="household", Image={"Bytes": biden}, ExternalImageId="joe"))
    assert rek.describe_collection(CollectionId="household")["FaceCount"] == 2
    listed = _check("ListFaces", rek.list_faces(CollectionId="household"))
    assert {f["ExternalImageId"] for f in listed["Faces"]} == {"barack", "joe"}
    by_image = _check("SearchFacesByImage", rek.search_faces_by_image(
        CollectionId="household", Image={"Bytes": obama2}))
    assert by_image["FaceMatches"][0]["Face"]["ExternalImageId"] == "barack"
    by_id = _check("SearchFaces", rek.search_faces(CollectionId="household", FaceId=face_id))
    assert all(m["Face"]["FaceId"] != face_id for m in by_id["FaceMatches"])
    collections = _check("ListCollections", rek.list_collections())
    assert "household" in collections["CollectionIds"]
    deleted = _check("DeleteFaces", rek.delete_faces(CollectionId="household", FaceIds=[face_id]))
    assert deleted["DeletedFaces"] == [face_id]
    _check("DeleteCollection", rek.delete_collection(CollectionId="household"))


def test_errors_are_boto3_modelled_exceptions(rek: Any) -> None:
    with pytest.raises(rek.exceptions.ResourceNotFoundException) as missing:
        rek.describe_collection(CollectionId="nope")
    error = missing.value.response
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert "nope" in error["Error"]["Message"]
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert len(error["ResponseMetadata"]["RequestId"]) == 36
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.detect_faces(Image={"Bytes": photo("faces/barack_obama/1.jpg")}, Attributes=["SOME"])
    with pytest.raises(rek.exceptions.InvalidImageFormatException):
        rek.detect_faces(Image={"Bytes": b"GIF89a not a jpeg"})


def test_double_take_sequence(rek: Any) -> None:
    """Double Take's calls: DescribeCollection → CreateCollection on ResourceNotFound →
    IndexFaces → SearchFacesByImage (and its "no faces" error) → DeleteFaces."""
    collection = "double-take"
    try:
        rek.describe_collection(CollectionId=collection)
    except rek.exceptions.ResourceNotFoundException:
        rek.create_collection(CollectionId=collection)
    assert rek.describe_collection(CollectionId=collection)["FaceCount"] == 0
    trained = rek.index_faces(
        CollectionId=collection, Image={"Bytes": photo("faces/joe_biden/1.jpg")}
    )
    face_ids = [r["Face"]["FaceId"] for r in trained["FaceRecords"]]
    assert len(face_ids) == 1
    found = rek.search_faces_by_image(
        CollectionId=collection, Image={"Bytes": photo("faces/joe_biden/2.jpg")},
        FaceMatchThreshold=0,
    )
    assert found["FaceMatches"][0]["Face"]["FaceId"] == face_ids[0]
    assert found["SearchedFaceBoundingBox"]["Width"] > 0
    with pytest.raises(rek.exceptions.InvalidParameterException) as no_face:
        rek.search_faces_by_image(
            CollectionId=collection, Image={"Bytes": photo("negatives/opencv_building.jpg")})
    message = no_face.value.response["Error"]["Message"]
    assert message == "There are no faces in the image. Should be at least 1."
    assert rek.delete_faces(CollectionId=collection, FaceIds=face_ids)["DeletedFaces"] == face_ids


def _post(url: str, body: bytes, target: str | None, content_type: str | None = None
          ) -> tuple[int, dict]:
    headers = {"Content-Type": content_type or "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        assert err.headers["x-amzn-RequestId"]
        return err.code, json.loads(err.read())


def test_fuzzed_requests_get_typed_client_errors(server_url: ServerUrl) -> None:
    url = server_url
    target = "RekognitionService."
    cases: list[tuple[bytes, str | None]] = [
        (b"{not json", target + "DetectFaces"),
        (b"[1, 2, 3]", target + "DetectFaces"),
        (b'"just a string"', target + "DetectFaces"),
        (b"{}", target + "NoSuchOperation"),
        (b"{}", None),
        (b"{}", "WrongService.DetectFaces"),
        (b'{"Image": {"Bytes": "%%% not base64 %%%"}}', target + "DetectFaces"),
        (b'{"Image": {"Bytes": 12}}', target + "DetectFaces"),
        (b'{"Image": {}}', target + "DetectFaces"),
        (b'{"MaxResults": -5}', target + "ListCollections"),
        (b'{"MaxResults": 1e308}', target + "ListCollections"),
        (b'{"MaxResults": 99999999999999999999999999}', target + "ListCollections"),
        (b'{"CollectionId": "../../etc"}', target + "DescribeCollection"),
        (b'{"CollectionId": ""}', target + "CreateCollection"),
        (b'{"Id": {"nested": [1]}}', target + "GetCelebrityInfo"),
        (b'{"SourceImage": {"Bytes": "/9j/4AAQ"}, "TargetImage": null}', target + "CompareFaces"),
        (b"\xff\xfe\x00binary", target + "DetectLabels"),
        (b'{"Image": {"Bytes": "/9j/4AAQSkZJRgABAQ"}}', target + "DetectFaces"),  # truncated
    ]
    rng = random.Random(1)
    valid = json.dumps({"CollectionId": "fuzz", "MaxResults": 5}).encode()
    for _ in range(20):  # random truncations and byte flips of a valid body
        body = bytearray(valid[: rng.randrange(len(valid))])
        if body:
            body[rng.randrange(len(body))] = rng.randrange(256)
        cases.append((bytes(body), target + rng.choice(["ListFaces", "DescribeCollection"])))
    for body, tgt in cases:
        status, error = _post(url, body, tgt)
        assert 400 <= status < 500, (body, tgt, status, error)
        assert error["__type"] and error["Message"] == error["message"], (body, error)
    # Still answering after all that.
    status, response = _post(url, b"{}", target + "ListCollections")
    assert status == 200 and "CollectionIds" in response


def test_huge_body_is_a_typed_error(server_url: ServerUrl) -> None:
    url = server_url
    status, error = _post(url, b'{"Image": {"Bytes": "' + b"A" * (17 * 1024 * 1024) + b'"}}',
                          "RekognitionService.DetectFaces")
    assert status == 400 and error["__type"] == "ImageTooLargeException"


def test_reference_metrics_on_metrics_endpoint(rek: Any, server_url: ServerUrl) -> None:
    url = server_url
    rek.detect_faces(Image={"Bytes": photo("groups/fr_obama_and_biden.jpg")})
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.list_faces(CollectionId="missing")
    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    values = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines() if line and not line.startswith("#")
    }
    assert values['streamproc_successful_request_count_total{operation="DetectFaces"}'] >= 1
    assert values['streamproc_detected_face_count_total{operation="DetectFaces"}'] >= 2
    assert values['streamproc_user_error_count_total{operation="ListFaces"}'] >= 1
    assert values['streamproc_response_time_seconds_count{operation="DetectFaces"}'] >= 1
    assert 'streamproc_detected_label_count_total' in text
    assert 'streamproc_server_error_count_total' in text
    assert 'streamproc_throttled_count_total' in text


def test_non_loopback_without_auth_refuses_to_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streamproc.cli.main", "serve", "--host", "0.0.0.0",
         "--port", "0", "--store", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "refusing to serve on 0.0.0.0 without --auth" in result.stderr


async def test_streamproc_run_serves_the_same_api(tmp_path: Path) -> None:
    """One process for cameras and the API: a deployment with HTTP enabled answers boto3,
    and its NATS service counts in the same /metrics."""
    import asyncio

    import nats

    from streamproc.runtime.deployment import parse_deployment
    from streamproc.runtime.runtime import Runtime
    from streamproc.transport.service import RemoteClient

    deployment = parse_deployment({"store": str(tmp_path / "store"),
                                   "http": {"enabled": True, "port": 0}})
    runtime = Runtime(deployment)
    await runtime.start()
    try:
        url = f"http://127.0.0.1:{runtime.http_port}"
        rek = boto3_client(url)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: rek.create_collection(CollectionId="door"))
        described = await loop.run_in_executor(
            None, lambda: rek.describe_collection(CollectionId="door"))
        assert described["FaceCount"] == 0
        nc = await nats.connect(runtime.nats_url)
        listed = await RemoteClient(nc).call("ListCollections", {})
        await nc.close()
        assert listed["CollectionIds"] == ["door"]
        text = await loop.run_in_executor(
            None, lambda: urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode())
    finally:
        await runtime.close()
    assert 'streamproc_successful_request_count_total{operation="CreateCollection"} 1.0' in text
    assert 'streamproc_successful_request_count_total{operation="ListCollections"} 1.0' in text


def test_store_before_serve_and_s3_buckets(tmp_path: Path) -> None:
    """`streamproc --store DIR serve --buckets FILE`: the store given before the command, and
    Image.S3Object from a directory bucket (keys never leave it)."""
    import shutil

    from tests.http_server import STREAMPROC, stop_server

    bucket = tmp_path / "photos"
    (bucket / "people").mkdir(parents=True)
    shutil.copy(Path(__file__).parent / "data/faces/joe_biden/2.jpg", bucket / "people/joe.jpg")
    (tmp_path / "secret.jpg").write_bytes(photo("faces/joe_biden/1.jpg"))
    buckets = tmp_path / "buckets.json"
    buckets.write_text(json.dumps({"photos": {"path": str(bucket)}}))
    store = tmp_path / "store"
    out = (tmp_path / "out").open("wb")
    proc = subprocess.Popen([*STREAMPROC, "--store", str(store), "serve", "--port", "0",
                             "--buckets", str(buckets)], stdout=out, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while "API at" not in (text := (tmp_path / "out").read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, text
            time.sleep(0.1)
        rek = boto3_client(text.split("API at ", 1)[1].split()[0])
        faces = rek.detect_faces(Image={"S3Object": {"Bucket": "photos", "Name": "people/joe.jpg"}})
        assert len(faces["FaceDetails"]) == 1
        for key in ("../secret.jpg", "people/../../secret.jpg", str(tmp_path / "secret.jpg")):
            with pytest.raises(rek.exceptions.InvalidS3ObjectException):
                rek.detect_faces(Image={"S3Object": {"Bucket": "photos", "Name": key}})
        rek.create_collection(CollectionId="before")
    finally:
        stop_server(proc)  # type: ignore[arg-type]
        out.close()
    assert list(store.iterdir())  # the store given before `serve` holds the collection
