"""`streamproc serve --auth FILE`: SigV4 keys and IAM-style policies enforced for boto3.

A real server process, real boto3 clients signing with botocore: the right key is served,
a wrong secret, an unknown key, an unsigned request and a denied action get the errors AWS
JSON services send, and no secret ever reaches the log.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore import UNSIGNED
from botocore.exceptions import ClientError

from tests.http_server import ServerUrl, boto3_client, photo, start_server, stop_server

DOOR_SECRET = "door-secret-0123456789abcdefghij"
ADMIN_SECRET = "admin-secret-0123456789abcdefghi"
AUTH = {
    "Users": [
        {"UserName": "admin", "AccessKeyId": "AKIAADMIN0000000001",
         "SecretAccessKey": ADMIN_SECRET,
         "Policy": {"Version": "2012-10-17", "Statement": [
             {"Effect": "Allow", "Action": "rekognition:*", "Resource": "*"}]}},
        {"UserName": "door", "AccessKeyId": "AKIADOOR00000000001",
         "SecretAccessKey": DOOR_SECRET,
         "Policy": {"Version": "2012-10-17", "Statement": [
             {"Effect": "Allow", "Action": ["rekognition:SearchFacesByImage"],
              "Resource": ["arn:aws:rekognition:*:*:collection/house?old"]},
             {"Effect": "Allow", "Action": "rekognition:detectfaces", "Resource": "*"},
             {"Effect": "Deny", "Action": "rekognition:DetectFaces", "Resource": "*"}]}},
    ]
}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerUrl, Path]]:
    tmp = tmp_path_factory.mktemp("auth")
    auth = tmp / "auth.json"
    auth.write_text(json.dumps(AUTH))
    (tmp / "store").mkdir()
    url = start_server(tmp / "store", tmp, "--auth", str(auth))
    yield url, url.stderr_path
    stop_server(url.process)


client = boto3_client


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_keys_and_policies_are_enforced(secured: tuple[ServerUrl, Path]) -> None:
    url, log = secured
    admin = client(url, "AKIAADMIN0000000001", ADMIN_SECRET)
    admin.create_collection(CollectionId="household")
    admin.create_collection(CollectionId="garage")
    admin.index_faces(CollectionId="household", Image={"Bytes": photo("faces/joe_biden/2.jpg")},
                      ExternalImageId="joe")
    door = client(url, "AKIADOOR00000000001", DOOR_SECRET)
    found = door.search_faces_by_image(
        CollectionId="household", Image={"Bytes": photo("faces/joe_biden/1.jpg")})
    assert found["FaceMatches"][0]["Face"]["ExternalImageId"] == "joe"
    # Allowed on household only: another collection is denied, as IAM says it.
    with pytest.raises(ClientError) as denied:
        door.search_faces_by_image(
            CollectionId="garage", Image={"Bytes": photo("faces/joe_biden/1.jpg")})
    assert code(denied) == "AccessDeniedException"
    message = denied.value.response["Error"]["Message"]
    assert message == ("User: door is not authorized to perform: rekognition:SearchFacesByImage "
                       "on resource: arn:aws:rekognition:us-east-1:000000000000:collection/garage")
    # An explicit Deny wins over the Allow; an action never allowed is denied.
    for call in (lambda: door.detect_faces(Image={"Bytes": photo("faces/joe_biden/1.jpg")}),
                 lambda: door.delete_collection(CollectionId="household")):
        with pytest.raises(ClientError) as refused:
            call()
        assert code(refused) == "AccessDeniedException"
    assert admin.describe_collection(CollectionId="household")["FaceCount"] == 1
    text = log.read_text()
    assert DOOR_SECRET not in text and ADMIN_SECRET not in text


def test_bad_credentials_get_aws_errors(secured: tuple[ServerUrl, Path]) -> None:
    url, log = secured
    with pytest.raises(ClientError) as wrong_secret:
        client(url, "AKIADOOR00000000001", "not-the-secret").list_collections()
    assert code(wrong_secret) == "InvalidSignatureException"
    assert wrong_secret.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as unknown:
        client(url, "AKIANOBODY000000000", "whatever").list_collections()
    assert code(unknown) == "UnrecognizedClientException"
    with pytest.raises(ClientError) as unsigned:
        client(url, "x", "y", signature_version=UNSIGNED).list_collections()
    assert code(unsigned) == "MissingAuthenticationTokenException"
    # A signed request replayed with a different body fails its signature.
    request = urllib.request.Request(
        url, data=b"{}", method="POST",
        headers={"X-Amz-Target": "RekognitionService.ListCollections",
                 "Content-Type": "application/x-amz-json-1.1",
                 "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAADMIN0000000001/20260101/"
                 "us-east-1/rekognition/aws4_request, SignedHeaders=host;x-amz-date, "
                 "Signature=" + "0" * 64,
                 "X-Amz-Date": "20260101T000000Z"})
    with pytest.raises(urllib.error.HTTPError) as old:
        urllib.request.urlopen(request, timeout=10)
    assert old.value.code == 400
    assert json.loads(old.value.read())["__type"] == "InvalidSignatureException"
    text = log.read_text()
    assert ADMIN_SECRET not in text and "0" * 64 not in text


def test_rate_limit_per_key_and_operation(secured: tuple[ServerUrl, Path]) -> None:
    """Collection management allows 5 requests/s per key: a burst of 16 at once is partly
    refused with ProvisionedThroughputExceededException; another key's bucket is untouched."""
    from concurrent.futures import ThreadPoolExecutor

    url, _ = secured
    admin = client(url, "AKIAADMIN0000000001", ADMIN_SECRET)

    def call(_: int) -> str:
        try:
            admin.list_collections()
            return "ok"
        except ClientError as err:
            return str(err.response["Error"]["Code"])

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(call, range(16)))
    assert "ok" in codes and "ProvisionedThroughputExceededException" in codes
    assert set(codes) == {"ok", "ProvisionedThroughputExceededException"}
    # The door key has its own bucket (and only SearchFacesByImage/DetectFaces rights).
    door = client(url, "AKIADOOR00000000001", DOOR_SECRET)
    found = door.search_faces_by_image(
        CollectionId="household", Image={"Bytes": photo("faces/joe_biden/1.jpg")})
    assert found["ResponseMetadata"]["HTTPStatusCode"] == 200
