"""The unmodified AWS SDK for JavaScript v3 against ``streamproc serve``, every operation once.

tests/js/all_operations.mjs makes the calls (a Node.js process, as a user's app would) and
prints one JSON line per call; the assertions on what came back are here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.http_server import ROOT, ServerUrl, aws_env, serve_fixture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

JS = ROOT / "tests" / "js"
OPERATIONS = {
    "DetectFaces", "CompareFaces", "DetectLabels", "DetectModerationLabels",
    "RecognizeCelebrities", "GetCelebrityInfo", "CreateCollection", "DeleteCollection",
    "ListCollections", "DescribeCollection", "IndexFaces", "ListFaces", "DeleteFaces",
    "SearchFaces", "SearchFacesByImage",
}

server_url = serve_fixture()


class ScriptRun:
    """The script's output lines, or why there are none (a failure of each test, not an error)."""

    def __init__(self, lines: list[dict[str, Any]] | None = None, problem: str = "") -> None:
        self._lines = lines
        self.problem = problem

    @property
    def lines(self) -> list[dict[str, Any]]:
        if self._lines is None:
            pytest.fail(self.problem, pytrace=False)
        return self._lines


def _prerequisite_problem() -> str:
    """Why the script cannot run here; checked before a server is started for nothing."""
    if shutil.which("node") is None:
        return "node is not on PATH: install Node.js 20 or later"
    if not (JS / "node_modules" / "@aws-sdk" / "client-rekognition").is_dir():
        return (
            "tests/js/node_modules is missing: `make test` installs it "
            "(npm ci --prefix tests/js --no-audit --no-fund)"
        )
    return ""


@pytest.fixture(scope="module")
def script(request: pytest.FixtureRequest) -> ScriptRun:
    """Runs all_operations.mjs once against the module's server; each test checks a part."""
    if problem := _prerequisite_problem():
        return ScriptRun(problem=problem)
    server_url: ServerUrl = request.getfixturevalue("server_url")
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, str(JS / "all_operations.mjs"), server_url, str(ROOT / "tests" / "data")],
        capture_output=True, text=True, env=aws_env(), cwd=ROOT, timeout=150, check=False,
    )
    if done.returncode != 0:
        return ScriptRun(problem=(
            f"all_operations.mjs exited {done.returncode}\nstdout:\n{done.stdout}\n"
            f"stderr:\n{done.stderr}\nserver log:\n{server_url.log_tail()}"
        ))
    parsed = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    if not parsed or parsed[-1] != {"done": True}:
        return ScriptRun(problem=f"all_operations.mjs did not finish:\n{done.stdout}")
    return ScriptRun(parsed[:-1])


def one(lines: list[dict[str, Any]], operation: str) -> dict[str, Any]:
    """The single successful call of ``operation``."""
    (line,) = [x for x in lines if x["operation"] == operation and "error" not in x]
    return line


def test_every_operation_answered(script: ScriptRun) -> None:
    lines = script.lines
    assert {line["operation"] for line in lines} == OPERATIONS
    for line in lines:
        if "error" not in line:
            assert line["httpStatusCode"] == 200, line
        assert line["requestId"], f"no x-amzn-RequestId for the SDK: {line}"


def test_detect_and_compare_faces(script: ScriptRun) -> None:
    lines = script.lines
    detected = one(lines, "DetectFaces")
    assert detected["faceCount"] == 1 and detected["confidence"] > 90
    box = detected["boundingBox"]
    assert 0 < box["Width"] <= 1 and 0 < box["Height"] <= 1, box
    assert detected["landmarks"] >= 5

    compared = one(lines, "CompareFaces")
    assert compared["matches"] == 1 and compared["unmatched"] == 0
    assert compared["similarity"] >= 80, compared


def test_labels_and_moderation(script: ScriptRun) -> None:
    lines = script.lines
    labels = one(lines, "DetectLabels")
    assert "Person" in labels["labels"], labels

    moderation = one(lines, "DetectModerationLabels")
    assert moderation["labels"] == [], moderation  # a press photo of a face


def test_celebrities(script: ScriptRun) -> None:
    lines = script.lines
    recognized = one(lines, "RecognizeCelebrities")
    assert [c["Name"] for c in recognized["celebrities"]] == ["Barack Obama"], recognized
    assert recognized["celebrities"][0]["MatchConfidence"] >= 80

    info = one(lines, "GetCelebrityInfo")
    assert info["name"] == "Barack Obama" and isinstance(info["urls"], list), info


def test_collection_operations(script: ScriptRun) -> None:
    lines = script.lines
    created = one(lines, "CreateCollection")
    collection = created["collectionId"]
    assert created["statusCode"] == 200 and created["arn"].endswith(f"collection/{collection}")
    listed = one(lines, "ListCollections")
    assert collection in listed["collectionIds"]
    assert len(listed["faceModelVersions"]) == len(listed["collectionIds"])

    indexed = [x for x in lines if x["operation"] == "IndexFaces"]
    assert [(x["faceRecords"], x["externalImageId"]) for x in indexed] == [
        (1, "barack"), (1, "barack"), (1, "joe")
    ]
    obama_1, obama_2, biden = (x["faceId"] for x in indexed)

    described = one(lines, "DescribeCollection")
    assert described["faceCount"] == 3 and described["arn"] == created["arn"], described
    assert described["creationTimestamp"], "the SDK could not read CreationTimestamp"
    created_at = datetime.fromisoformat(described["creationTimestamp"])
    assert abs(datetime.now(UTC) - created_at) < timedelta(hours=1), described

    faces = one(lines, "ListFaces")
    assert sorted(faces["faceIds"]) == sorted([obama_1, obama_2, biden])
    assert sorted(faces["externalImageIds"]) == ["barack", "barack", "joe"]

    searched = one(lines, "SearchFaces")
    assert searched["searchedFaceId"] == obama_1
    assert [m["FaceId"] for m in searched["matches"]] == [obama_2], searched  # not itself
    assert searched["matches"][0]["Similarity"] >= 80

    by_image = one(lines, "SearchFacesByImage")
    best = by_image["matches"][0]
    assert best["ExternalImageId"] == "barack" and best["Similarity"] >= 80, by_image
    assert "joe" not in {m["ExternalImageId"] for m in by_image["matches"]}

    deleted = one(lines, "DeleteFaces")
    assert deleted["deletedFaces"] == [biden]
    assert one(lines, "DeleteCollection")["statusCode"] == 200


def test_missing_collection_rejects_with_the_aws_error(script: ScriptRun) -> None:
    lines = script.lines
    (error,) = [x for x in lines if "error" in x]
    assert error["operation"] == "DescribeCollection"
    assert error["error"] == "ResourceNotFoundException"
    assert error["httpStatusCode"] == 400 and error["fault"] == "client", error
    assert error["message"] and error["message"] != "UnknownError", error
