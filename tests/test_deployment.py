"""Deployment files: the shipped examples load; every mistake names file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamproc.engine import Engine
from streamproc.runtime.deployment import DeploymentError, load_deployment, parse_deployment

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="module")
def operations() -> dict:
    return Engine().operations


@pytest.mark.parametrize("name", ["door-camera.yaml", "multi-camera.yaml"])
def test_shipped_configs_are_valid(
    name: str, operations: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOOR_CAMERA_HOST", "10.0.0.7")
    deployment = load_deployment(CONFIGS / name, operations=operations)
    assert deployment.streams and deployment.streams[0].id == "front-door"
    if name == "door-camera.yaml":
        assert deployment.streams[0].url == "rtsp://10.0.0.7:554/stream1"
        assert deployment.nats.url == "embedded" and deployment.encoding == "msgpack"


def test_secrets_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_PASSWORD", "s3cret")
    d = parse_deployment(
        {"nats": {"url": "nats://nats:4222", "user": "sp", "password": "${NATS_PASSWORD}"}}
    )
    assert d.nats.password == "s3cret" and d.nats.url == ["nats://nats:4222"]
    monkeypatch.delenv("NATS_PASSWORD")
    with pytest.raises(
        DeploymentError, match=r"nats\.password: environment variable NATS_PASSWORD"
    ):
        parse_deployment({"nats": {"password": "${NATS_PASSWORD}"}})


STREAM = {"id": "door", "url": "rtsp://cam/1", "operations": [{"operation": "DetectFaces"}]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"streams": [{**STREAM, "id": "front door"}]}, r"streams\.0\.id: String should match"),
        ({"streams": [{**STREAM, "fps": 0}]}, r"streams\.0\.fps: Input should be greater"),
        ({"streams": [{k: v for k, v in STREAM.items() if k != "url"}]}, "exactly one source"),
        ({"streams": [STREAM, STREAM]}, "stream ids must be unique: door"),
        ({"streams": [{**STREAM, "camera": 1}]}, r"streams\.0\.camera: Extra inputs"),
        ({"encoding": "xml"}, r"encoding: Input should be 'msgpack' or 'json'"),
        (
            {"streams": [{**STREAM, "operations": [{"operation": "DetectCats"}]}]},
            r"streams\[0\]\.operations\[0\]\.operation: unknown operation 'DetectCats'",
        ),
        (
            {
                "streams": [
                    {
                        **STREAM,
                        "operations": [{"operation": "CreateCollection", "CollectionId": "x"}],
                    }
                ]
            },
            "CreateCollection cannot run per frame",
        ),
        (
            {"streams": [{**STREAM, "operations": [{"operation": "SearchFacesByImage"}]}]},
            r"streams\[0\]\.operations\[0\]\.CollectionId: Field required",
        ),
        (
            {
                "streams": [
                    {**STREAM, "operations": [{"operation": "DetectFaces", "Attributes": ["SOME"]}]}
                ]
            },
            r"operations\[0\]\.Attributes\.0: Input should be 'DEFAULT' or 'ALL'",
        ),
    ],
)
def test_mistakes_name_the_key(data: dict, message: str, operations: dict) -> None:
    with pytest.raises(DeploymentError, match=message) as info:
        parse_deployment(data, source="door.yaml", operations=operations)
    assert str(info.value).startswith("door.yaml: ")


def test_broken_yaml_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("streams: [\n  - id: door\n")
    with pytest.raises(DeploymentError, match="broken.yaml: not valid YAML"):
        load_deployment(broken)
    with pytest.raises(DeploymentError, match="cannot read"):
        load_deployment(tmp_path / "missing.yaml")
