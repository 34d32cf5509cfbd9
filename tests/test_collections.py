"""The eight storage operations end to end: real photos, real models, a real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streamproc import errors
from streamproc.client import Client
from tests.conftest import DATA, image
from tests.rekognition_model import assert_valid_response

HELD_OUT = {"clapton", "lennon", "deepface_jack", "dlib_john_simm", "kit_harington"}


def _people() -> dict[str, list[Path]]:
    people: dict[str, list[Path]] = {}
    for path in sorted((DATA / "faces").glob("*/*")):
        if path.read_bytes()[:4] != b"RIFF":  # one WebP: not a Rekognition format
            people.setdefault(path.parent.name, []).append(path)
    return people


@pytest.fixture(scope="module")
def household(tmp_path_factory: pytest.TempPathFactory) -> tuple[Client, dict[str, list[Path]]]:
    """Everyone but the held-out people indexed from their first photo."""
    client = Client(store=tmp_path_factory.mktemp("household-store"))
    client.create_collection(CollectionId="household")
    people = _people()
    for person, photos in people.items():
        if person in HELD_OUT:
            continue
        response = client.index_faces(
            CollectionId="household",
            Image={"Bytes": photos[0].read_bytes()},
            ExternalImageId=person,
            MaxFaces=1,
        )
        assert len(response["FaceRecords"]) == 1, person
    return client, people


def test_every_other_photo_names_the_right_person(
    household: tuple[Client, dict[str, list[Path]]],
) -> None:
    client, people = household
    checked = 0
    for person, photos in people.items():
        for photo in photos[1:]:
            response = client.search_faces_by_image(
                CollectionId="household", Image={"Bytes": photo.read_bytes()}, MaxFaces=5
            )
            assert_valid_response("SearchFacesByImage", response)
            matches = response["FaceMatches"]
            if person in HELD_OUT:
                assert matches == [], f"stranger {photo} matched {matches[0]['Face']}"
            else:
                assert matches, f"{photo}: no match above 80"
                assert matches[0]["Face"]["ExternalImageId"] == person, photo
                assert matches[0]["Similarity"] >= 80
                checked += 1
    assert checked >= 80


def test_search_faces_by_face_id_excludes_itself(
    household: tuple[Client, dict[str, list[Path]]],
) -> None:
    client, people = household
    indexed = client.index_faces(
        CollectionId="household",
        Image={"Bytes": people["barack_obama"][1].read_bytes()},
        ExternalImageId="barack_obama",
    )["FaceRecords"][0]["Face"]
    response = client.search_faces(CollectionId="household", FaceId=indexed["FaceId"])
    assert_valid_response("SearchFaces", response)
    assert response["SearchedFaceId"] == indexed["FaceId"]
    ids = [m["Face"]["FaceId"] for m in response["FaceMatches"]]
    assert indexed["FaceId"] not in ids
    assert {m["Face"]["ExternalImageId"] for m in response["FaceMatches"]} == {"barack_obama"}
    sims = [m["Similarity"] for m in response["FaceMatches"]]
    assert sims == sorted(sims, reverse=True)
    client.delete_faces(CollectionId="household", FaceIds=[indexed["FaceId"]])


def test_threshold_and_max_faces(household: tuple[Client, dict[str, list[Path]]]) -> None:
    client, people = household
    photo = {"Bytes": people["joe_biden"][1].read_bytes()}
    everyone = client.search_faces_by_image(
        CollectionId="household", Image=photo, FaceMatchThreshold=0, MaxFaces=4096
    )["FaceMatches"]
    assert len(everyone) == len(people) - len(HELD_OUT)
    sims = [m["Similarity"] for m in everyone]
    assert sims == sorted(sims, reverse=True)
    assert (
        len(
            client.search_faces_by_image(
                CollectionId="household", Image=photo, FaceMatchThreshold=0, MaxFaces=3
            )["FaceMatches"]
        )
        == 3
    )


def test_reindexing_same_bytes_returns_existing_records(tmp_path: Path) -> None:
    client = Client(store=tmp_path)
    client.create_collection(CollectionId="c")
    first = client.index_faces(
        CollectionId="c",
        Image=image("groups/fr_two_people.jpg"),
        ExternalImageId="two",
        DetectionAttributes=["ALL"],
    )
    assert_valid_response("IndexFaces", first)
    assert len(first["FaceRecords"]) == 2
    assert "AgeRange" in first["FaceRecords"][0]["FaceDetail"]
    again = client.index_faces(
        CollectionId="c", Image=image("groups/fr_two_people.jpg"), ExternalImageId="two"
    )
    ids = lambda r: sorted(f["Face"]["FaceId"] for f in r["FaceRecords"])  # noqa: E731
    assert ids(again) == ids(first)
    assert "AgeRange" not in again["FaceRecords"][0]["FaceDetail"]  # DEFAULT this time
    assert len(client.list_faces(CollectionId="c")["Faces"]) == 2
    other = client.index_faces(
        CollectionId="c", Image=image("groups/fr_two_people.jpg"), ExternalImageId="other"
    )
    assert set(ids(other)).isdisjoint(ids(first))
    assert len({f["Face"]["ImageId"] for f in first["FaceRecords"]}) == 1


def test_pagination_over_hundreds_of_faces(tmp_path: Path) -> None:
    client = Client(store=tmp_path)
    client.create_collection(CollectionId="crowd")
    data = image("groups/dlib_bald_guys_collage.jpg")
    for n in range(10):  # 24 faces each, a new ImageId per ExternalImageId
        client.index_faces(CollectionId="crowd", Image=data, ExternalImageId=f"collage-{n}")
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"CollectionId": "crowd", "MaxResults": 37}
        if token:
            params["NextToken"] = token
        response = client.list_faces(**params)
        assert_valid_response("ListFaces", response)
        pages.append([f["FaceId"] for f in response["Faces"]])
        token = response.get("NextToken")
        if not token:
            break
    flat = [i for p in pages for i in p]
    assert len(flat) == 240 == len(set(flat))
    assert all(len(p) == 37 for p in pages[:-1])
    assert flat == [
        f["FaceId"] for f in client.list_faces(CollectionId="crowd", MaxResults=4096)["Faces"]
    ]
    deleted = client.delete_faces(
        CollectionId="crowd", FaceIds=[*flat[:5], "11111111-2222-3333-4444-555555555555"]
    )
    assert sorted(deleted["DeletedFaces"]) == sorted(flat[:5])  # unknown ids are not an error
    assert len(client.list_faces(CollectionId="crowd", MaxResults=4096)["Faces"]) == 235


def test_collection_lifecycle_and_errors(tmp_path: Path) -> None:
    client = Client(store=tmp_path, region="eu-west-1", account_id="123456789012")
    created = client.create_collection(CollectionId="Door.Cam-1_a")
    assert_valid_response("CreateCollection", created)
    assert created["StatusCode"] == 200
    assert (
        created["CollectionArn"] == "aws:rekognition:eu-west-1:123456789012:collection/Door.Cam-1_a"
    )
    with pytest.raises(errors.ResourceAlreadyExistsException):
        client.create_collection(CollectionId="Door.Cam-1_a")
    client.create_collection(CollectionId="door.cam-1_a")  # ids are case-sensitive
    listed = client.list_collections(MaxResults=1)
    assert_valid_response("ListCollections", listed)
    assert listed["CollectionIds"] == ["Door.Cam-1_a"] and listed["NextToken"]
    rest = client.list_collections(NextToken=listed["NextToken"])
    assert rest["CollectionIds"] == ["door.cam-1_a"] and "NextToken" not in rest
    assert client.delete_collection(CollectionId="door.cam-1_a")["StatusCode"] == 200
    with pytest.raises(errors.ResourceNotFoundException):
        client.delete_collection(CollectionId="door.cam-1_a")


@pytest.mark.parametrize(
    ("operation", "params", "error", "message"),
    [
        (
            "create_collection",
            {"CollectionId": "../escape"},
            errors.InvalidParameterException,
            "CollectionId",
        ),
        (
            "create_collection",
            {"CollectionId": "x" * 256},
            errors.InvalidParameterException,
            "CollectionId",
        ),
        (
            "create_collection",
            {"CollectionId": ""},
            errors.InvalidParameterException,
            "CollectionId",
        ),
        ("list_faces", {"CollectionId": "missing"}, errors.ResourceNotFoundException, "missing"),
        (
            "list_faces",
            {"CollectionId": "known", "NextToken": "garbage"},
            errors.InvalidPaginationTokenException,
            "oken",
        ),
        ("list_collections", {"MaxResults": 5000}, errors.InvalidParameterException, "MaxResults"),
        (
            "index_faces",
            {"CollectionId": "missing", "Image": image("faces/clapton/2.jpg")},
            errors.ResourceNotFoundException,
            "missing",
        ),
        (
            "index_faces",
            {
                "CollectionId": "known",
                "Image": image("faces/clapton/2.jpg"),
                "ExternalImageId": "has space",
            },
            errors.InvalidParameterException,
            "ExternalImageId",
        ),
        (
            "search_faces_by_image",
            {"CollectionId": "known", "Image": image("negatives/opencv_building.jpg")},
            errors.InvalidParameterException,
            "no faces",
        ),
        (
            "search_faces_by_image",
            {"CollectionId": "known", "Image": image("faces/clapton/2.jpg"), "MaxFaces": 0},
            errors.InvalidParameterException,
            "MaxFaces",
        ),
        (
            "search_faces",
            {"CollectionId": "known", "FaceId": "11111111-2222-3333-4444-555555555555"},
            errors.ResourceNotFoundException,
            "11111111",
        ),
        (
            "search_faces",
            {"CollectionId": "known", "FaceId": "not-a-uuid"},
            errors.InvalidParameterException,
            "FaceId",
        ),
        (
            "delete_faces",
            {"CollectionId": "known", "FaceIds": []},
            errors.InvalidParameterException,
            "FaceIds",
        ),
        (
            "delete_faces",
            {"CollectionId": "known", "FaceIds": ["11111111-2222-3333-4444-555555555555"] * 4097},
            errors.InvalidParameterException,
            "FaceIds",
        ),
    ],
)
def test_error_paths(
    tmp_path: Path, operation: str, params: dict[str, Any], error: type[Exception], message: str
) -> None:
    client = Client(store=tmp_path)
    client.create_collection(CollectionId="known")
    with pytest.raises(error, match=message):
        getattr(client, operation)(**params)


def test_image_without_faces_indexes_nothing(tmp_path: Path) -> None:
    client = Client(store=tmp_path)
    client.create_collection(CollectionId="c")
    response = client.index_faces(CollectionId="c", Image=image("negatives/skimage_moon.png"))
    assert response["FaceRecords"] == []
    assert client.list_faces(CollectionId="c")["Faces"] == []


def test_cli_index_a_folder_then_identify_a_new_photo(tmp_path: Path) -> None:
    """The issue's "done when": one command indexes the family, one names the visitor."""
    photos = tmp_path / "photos"
    for person in ("alex_lacamoire", "barack_obama", "deepface_angelina"):
        (photos / person).mkdir(parents=True)
        for src in sorted((DATA / "faces" / person).iterdir())[:2]:
            (photos / person / src.name).write_bytes(src.read_bytes())
    (photos / "barack_obama" / "landscape.jpg").write_bytes(
        (DATA / "negatives/opencv_building.jpg").read_bytes()
    )
    env = {**os.environ, "STREAMPROC_STORE": str(tmp_path / "store")}
    cli = [sys.executable, "-m", "streamproc.cli.main"]

    def run(*args: str) -> dict[str, Any]:
        done = subprocess.run(
            [*cli, *args], capture_output=True, text=True, env=env, timeout=300, check=False
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    run("create-collection", "--collection-id", "household")
    summary = run("index-faces", "--collection-id", "household", "--dir", str(photos))
    assert summary["FacesIndexed"] == 6
    assert summary["People"] == ["alex_lacamoire", "barack_obama", "deepface_angelina"]
    assert summary["ImagesWithoutFaces"] == ["barack_obama/landscape.jpg"]
    visitor = sorted((DATA / "faces/deepface_angelina").iterdir())[2]  # not indexed
    result = run("search-faces-by-image", "--collection-id", "household", "--image", str(visitor))
    assert result["FaceMatches"][0]["Face"]["ExternalImageId"] == "deepface_angelina"
    listed = run("list-faces", "--collection-id", "household", "--max-results", "4")
    assert len(listed["Faces"]) == 4 and listed["NextToken"]
