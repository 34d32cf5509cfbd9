"""The command line as a user runs it: a real subprocess, real files, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA

STREAMPROC = [sys.executable, "-m", "streamproc.cli.main"]


def run(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STREAMPROC_STORE": str(store)}
    return subprocess.run(
        [*STREAMPROC, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_detect_faces_prints_rekognition_json(tmp_path: Path) -> None:
    result = run(
        "detect-faces",
        "--image",
        str(DATA / "faces/barack_obama/4.jpg"),
        "--attributes",
        "ALL",
        store=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    (face,) = response["FaceDetails"]
    assert face["Gender"]["Value"] == "Male" and len(face["Landmarks"]) == 25  # ALL: the mesh


def test_compare_faces_with_threshold(tmp_path: Path) -> None:
    result = run(
        "compare-faces",
        "--source-image",
        str(DATA / "faces/joe_biden/2.jpg"),
        "--target-image",
        str(DATA / "groups/fr_two_people.jpg"),
        "--similarity-threshold",
        "90",
        store=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert len(response["FaceMatches"]) == 1 and len(response["UnmatchedFaces"]) == 1


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["detect-faces", "--image", "/nonexistent.jpg"], "InvalidParameterException"),
        (["detect-faces", "--image", str(DATA / "MANIFEST.json")], "InvalidImageFormatException"),
        (
            ["detect-faces", "--image", str(DATA / "faces/clapton/2.jpg"), "--attributes", "SOME"],
            "InvalidParameterException",
        ),
    ],
)
def test_errors_go_to_stderr_with_nonzero_exit(tmp_path: Path, args: list[str], error: str) -> None:
    result = run(*args, store=tmp_path)
    assert result.returncode == 254
    assert result.stdout == ""
    assert f"An error occurred ({error})" in result.stderr


def test_models_verify_prints_a_table(tmp_path: Path) -> None:
    result = run("models", "verify", store=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("yunet", "sface", "age", "gender", "emotion"):
        assert name in result.stdout
