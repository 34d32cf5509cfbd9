"""The unmodified AWS CLI against ``streamproc serve``: each call a process, as a user runs it.

The CLI has its own copy of botocore, so this checks the wire format (AWS JSON 1.1, error
shapes, exit codes) with a client this project did not write.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.http_server import ROOT, ServerUrl, aws_env, serve_fixture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

AWS = Path(sys.executable).parent / "aws"
OBAMA_1 = "fileb://tests/data/faces/barack_obama/1.jpg"
OBAMA_2 = "fileb://tests/data/faces/barack_obama/2.jpg"
#: AWS CLI v1's (PyPI's awscli) exit status for any failed command, service errors included
#: (awscli/topics/return-codes.rst). AWS CLI v2, not on PyPI, exits 254 for a service error,
#: as ``streamproc``'s own CLI does.
EXIT_CLI_V1_FAILED = 255

server_url = serve_fixture()


def aws(url: ServerUrl, command: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``aws rekognition COMMAND ...`` against the server (paths relative to the repo root)."""
    if not AWS.exists():
        pytest.fail(f"{AWS} is missing: `make test` installs the test extra (awscli)")
    return subprocess.run(
        [str(AWS), "rekognition", command, "--endpoint-url", url, "--region", "us-east-1",
         "--output", "json", *args],
        capture_output=True, text=True, env=aws_env(), cwd=ROOT, timeout=90, check=False,
    )


def ok(url: ServerUrl, command: str, *args: str) -> dict[str, Any]:
    """The JSON answer of a call that must succeed."""
    done = aws(url, command, *args)
    assert done.returncode == 0, (
        f"aws rekognition {command} exited {done.returncode}\nstderr: {done.stderr}\n"
        f"server log:\n{url.log_tail()}"
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _in_unit_box(box: dict[str, float]) -> bool:
    return (
        set(box) == {"Width", "Height", "Left", "Top"}
        and 0 < box["Width"] <= 1 and 0 < box["Height"] <= 1
        and -0.5 < box["Left"] < 1 and -0.5 < box["Top"] < 1
    )


def test_detect_faces(server_url: ServerUrl) -> None:
    response = ok(server_url, "detect-faces", "--image-bytes", OBAMA_1)
    (face,) = response["FaceDetails"]
    assert _in_unit_box(face["BoundingBox"]), face["BoundingBox"]
    assert face["Confidence"] > 90


def test_collection_lifecycle(server_url: ServerUrl) -> None:
    created = ok(server_url, "create-collection", "--collection-id", "c")
    assert created["StatusCode"] == 200 and created["CollectionArn"].endswith("c")

    described = ok(server_url, "describe-collection", "--collection-id", "c")
    assert described["FaceCount"] == 0 and described["FaceModelVersion"]

    indexed = ok(
        server_url, "index-faces", "--collection-id", "c", "--image-bytes", OBAMA_1,
        "--external-image-id", "barack",
    )
    (record,) = indexed["FaceRecords"]
    face_id = record["Face"]["FaceId"]
    assert record["Face"]["ExternalImageId"] == "barack"
    assert _in_unit_box(record["Face"]["BoundingBox"])

    found = ok(
        server_url, "search-faces-by-image", "--collection-id", "c", "--image-bytes", OBAMA_2,
    )
    best = found["FaceMatches"][0]
    assert best["Face"]["FaceId"] == face_id and best["Face"]["ExternalImageId"] == "barack"
    assert best["Similarity"] >= 80, best
    assert _in_unit_box(found["SearchedFaceBoundingBox"])

    listed = ok(server_url, "list-faces", "--collection-id", "c")
    assert [f["FaceId"] for f in listed["Faces"]] == [face_id]

    deleted = ok(server_url, "delete-faces", "--collection-id", "c", "--face-ids", face_id)
    assert deleted["DeletedFaces"] == [face_id]
    assert ok(server_url, "list-faces", "--collection-id", "c")["Faces"] == []

    assert ok(server_url, "delete-collection", "--collection-id", "c")["StatusCode"] == 200
    assert "c" not in ok(server_url, "list-collections")["CollectionIds"]


def test_missing_collection_is_a_service_error(server_url: ServerUrl) -> None:
    done = aws(server_url, "describe-collection", "--collection-id", "no-such-collection")
    assert done.returncode == EXIT_CLI_V1_FAILED, (done.returncode, done.stderr)
    # The service's error, parsed from the JSON 1.1 error body (not a CLI-side failure).
    assert (
        "An error occurred (ResourceNotFoundException) when calling the DescribeCollection "
        "operation: " in done.stderr
    ), done.stderr
    assert "no-such-collection" in done.stderr  # the server's Message reached the user
