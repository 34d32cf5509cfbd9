"""The Python Client as a drop-in for boto3's: the same code runs against both.

``household(client)`` is written for boto3 (modelled exceptions, ``.response``,
paginators, ``ResponseMetadata``); it runs unchanged with ``streamproc.Client`` and with
boto3 pointed at `streamproc serve`, and both give the same answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streamproc.client import Client
from tests.http_server import ServerUrl, boto3_client, photo, serve_fixture


def household(client: Any) -> dict[str, Any]:
    """Code as a boto3 user writes it."""
    try:
        client.describe_collection(CollectionId="family")
    except client.exceptions.ResourceNotFoundException as err:
        assert err.response["Error"]["Code"] == "ResourceNotFoundException"
        assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        client.create_collection(CollectionId="family")
    for path in ("faces/barack_obama/1.jpg", "faces/barack_obama/2.jpg",
                 "faces/joe_biden/1.jpg", "faces/joe_biden/2.jpg", "faces/lennon/1.jpg"):
        response = client.index_faces(CollectionId="family", Image={"Bytes": photo(path)},
                                      ExternalImageId=path.split("/")[1])
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    pages = list(client.get_paginator("list_faces").paginate(
        CollectionId="family", PaginationConfig={"PageSize": 2}))
    try:
        client.search_faces_by_image(CollectionId="family",
                                     Image={"Bytes": photo("negatives/opencv_building.jpg")})
        no_face = ""
    except client.exceptions.ClientError as err:
        no_face = err.response["Error"]["Code"]
    match = client.search_faces_by_image(
        CollectionId="family", Image={"Bytes": photo("faces/lennon/2.jpg")})["FaceMatches"][0]
    client.delete_collection(CollectionId="family")
    return {
        "pages": [len(p["Faces"]) for p in pages],
        "people": sorted({f["ExternalImageId"] for p in pages for f in p["Faces"]}),
        "no_face": no_face,
        "match": match["Face"]["ExternalImageId"],
        "can_paginate": (client.can_paginate("list_collections"),
                         client.can_paginate("detect_faces")),
    }


server_url = serve_fixture()


def test_same_code_same_answers_with_client_and_boto3(
    tmp_path: Path, server_url: ServerUrl
) -> None:
    expected = {
        "pages": [2, 2, 1],
        "people": ["barack_obama", "joe_biden", "lennon"],
        "no_face": "InvalidParameterException",
        "match": "lennon",
        "can_paginate": (True, False),
    }
    with Client(store=tmp_path / "store") as local:
        assert household(local) == expected
    assert household(boto3_client(server_url)) == expected


def test_client_errors_carry_boto3_fields(tmp_path: Path) -> None:
    with Client(store=tmp_path) as client:
        with pytest.raises(client.exceptions.ResourceNotFoundException) as missing:
            client.list_faces(CollectionId="nope")
        assert missing.value.operation_name == "ListFaces"
        assert len(missing.value.response["ResponseMetadata"]["RequestId"]) == 36
        assert issubclass(client.exceptions.InvalidParameterException,
                          client.exceptions.ClientError)
        with pytest.raises(ValueError, match="cannot be paginated"):
            client.get_paginator("detect_faces")
        with pytest.raises(AttributeError):
            _ = client.exceptions.NoSuchError
