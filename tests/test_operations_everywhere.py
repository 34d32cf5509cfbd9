"""Every one of the 14 operations reaches every front door: Client, CLI, NATS, frames."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nats
import pytest

from streamproc import errors
from streamproc.client import Client
from streamproc.engine import Engine
from streamproc.transport import EmbeddedNatsServer, RekognitionService, RemoteClient
from tests.conftest import DATA, image

OPERATIONS = {
    "DetectFaces", "CompareFaces", "DetectLabels", "DetectModerationLabels",
    "RecognizeCelebrities", "GetCelebrityInfo", "CreateCollection", "DeleteCollection",
    "ListCollections", "IndexFaces", "ListFaces", "DeleteFaces", "SearchFaces",
    "SearchFacesByImage",
}
PER_FRAME = {"DetectFaces", "DetectLabels", "DetectModerationLabels", "RecognizeCelebrities",
             "SearchFacesByImage"}


def test_all_fourteen_in_client_cli_and_frames(tmp_path: Path) -> None:
    engine = Engine()
    assert set(engine.operations) >= OPERATIONS
    assert {n for n, op in engine.operations.items() if op.frame_handler} >= PER_FRAME
    client = Client(store=tmp_path)
    for name in OPERATIONS:
        operation = engine.operations[name]
        assert operation.method_name in dir(client)
        done = subprocess.run(
            [sys.executable, "-m", "streamproc.cli.main", operation.cli_name, "--help"],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert done.returncode == 0, (operation.cli_name, done.stderr)


async def test_image_operations_answer_over_nats(tmp_path: Path) -> None:
    photo = image("groups/fr_two_people.jpg")
    with EmbeddedNatsServer() as server:
        client = Client(store=tmp_path)
        service = RekognitionService(client.engine)
        nc = await nats.connect(server.url)
        await service.start(nc)
        remote = RemoteClient(nc, timeout=60)
        try:
            labels = await remote.call("DetectLabels", {"Image": photo})
            assert "Person" in [label["Name"] for label in labels["Labels"]]
            moderation = await remote.call("DetectModerationLabels", {"Image": photo})
            assert all(m["Confidence"] < 50 for m in moderation["ModerationLabels"])
            celebrities = await remote.call("RecognizeCelebrities", {"Image": photo})
            names = sorted(c["Name"] for c in celebrities["CelebrityFaces"])
            assert names == ["Barack Obama", "Joe Biden"]
            info = await remote.call("GetCelebrityInfo",
                                     {"Id": celebrities["CelebrityFaces"][0]["Id"]})
            assert info["Name"] in names
            await remote.call("CreateCollection", {"CollectionId": "remote"})
            indexed = await remote.call("IndexFaces", {
                "CollectionId": "remote", "Image": image("faces/barack_obama/4.jpg"),
                "ExternalImageId": "obama"})
            found = await remote.call("SearchFacesByImage", {
                "CollectionId": "remote", "Image": image("faces/barack_obama/5.jpg")})
            assert found["FaceMatches"][0]["Face"]["FaceId"] == (
                indexed["FaceRecords"][0]["Face"]["FaceId"])
            with pytest.raises(errors.ResourceNotFoundException, match="Nobody123"):
                await remote.call("GetCelebrityInfo", {"Id": "Nobody123"})
        finally:
            await service.stop()
            await nc.close()
            client.close()
    assert (DATA / "groups/fr_two_people.jpg").exists()
