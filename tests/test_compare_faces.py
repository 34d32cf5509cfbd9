"""CompareFaces on real photos, and the calibration claim of the README."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from streamproc import errors
from streamproc.client import Client
from streamproc.faces import FaceAnalyzer, similarity
from streamproc.images import decode_image
from tests.conftest import DATA, image
from tests.rekognition_model import assert_valid_response


def test_same_person_matches_different_person_does_not(client: Client) -> None:
    same = client.compare_faces(
        SourceImage=image("faces/barack_obama/4.jpg"), TargetImage=image("faces/barack_obama/5.jpg")
    )
    assert_valid_response("CompareFaces", same)
    assert len(same["FaceMatches"]) == 1 and same["UnmatchedFaces"] == []
    assert same["FaceMatches"][0]["Similarity"] >= 95
    assert same["SourceImageFace"]["Confidence"] > 80
    different = client.compare_faces(
        SourceImage=image("faces/barack_obama/4.jpg"), TargetImage=image("faces/joe_biden/2.jpg")
    )
    assert different["FaceMatches"] == [] and len(different["UnmatchedFaces"]) == 1


def test_group_target_finds_the_right_face(client: Client) -> None:
    for person in ("barack_obama", "joe_biden"):
        response = client.compare_faces(
            SourceImage=image(f"faces/{person}/2.jpg"),
            TargetImage=image("groups/fr_two_people.jpg"),
        )
        assert_valid_response("CompareFaces", response)
        assert len(response["FaceMatches"]) == 1, person
        assert len(response["UnmatchedFaces"]) == 1, person
        match = response["FaceMatches"][0]
        assert set(match["Face"]) == {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality"}
    # The two people stand on opposite sides: their matched boxes differ.
    obama = client.compare_faces(
        SourceImage=image("faces/barack_obama/2.jpg"), TargetImage=image("groups/fr_two_people.jpg")
    )["FaceMatches"][0]["Face"]["BoundingBox"]
    biden = client.compare_faces(
        SourceImage=image("faces/joe_biden/2.jpg"), TargetImage=image("groups/fr_two_people.jpg")
    )["FaceMatches"][0]["Face"]["BoundingBox"]
    assert abs(obama["Left"] - biden["Left"]) > 0.2


def test_threshold_zero_returns_every_face_sorted(client: Client) -> None:
    response = client.compare_faces(
        SourceImage=image("faces/barack_obama/4.jpg"),
        TargetImage=image("groups/dlib_voc_2008_004176.jpg"),
        SimilarityThreshold=0,
    )
    scores = [m["Similarity"] for m in response["FaceMatches"]]
    assert len(scores) >= 7 and response["UnmatchedFaces"] == []
    assert scores == sorted(scores, reverse=True)


def test_target_faces_capped_at_15(client: Client) -> None:
    response = client.compare_faces(
        SourceImage=image("faces/barack_obama/4.jpg"),
        TargetImage=image("groups/dlib_bald_guys_collage.jpg"),
        SimilarityThreshold=0,
    )
    assert len(response["FaceMatches"]) + len(response["UnmatchedFaces"]) <= 15


def test_no_face_in_source_is_invalid_parameter(client: Client) -> None:
    with pytest.raises(errors.InvalidParameterException, match="no face"):
        client.compare_faces(
            SourceImage=image("negatives/opencv_building.jpg"),
            TargetImage=image("faces/barack_obama/4.jpg"),
        )


def test_no_face_in_target_gives_empty_lists(client: Client) -> None:
    response = client.compare_faces(
        SourceImage=image("faces/barack_obama/4.jpg"),
        TargetImage=image("negatives/skimage_moon.png"),
    )
    assert response["FaceMatches"] == [] and response["UnmatchedFaces"] == []
    assert response["TargetImageOrientationCorrection"] == "ROTATE_0"


def test_calibration_on_the_face_sets() -> None:
    """At threshold 80: no different-person pair matches, >= 99 % of same-person pairs do."""
    manifest = json.loads((DATA / "MANIFEST.json").read_text())
    excluded = {frozenset(p[:2]) for p in manifest["near_duplicate_pairs"]}
    analyzer = FaceAnalyzer()
    vectors: dict[str, np.ndarray] = {}
    for path in sorted((DATA / "faces").glob("*/*")):
        data = path.read_bytes()
        if data[:4] == b"RIFF":  # the one WebP: not a Rekognition input format
            continue
        faces = analyzer.analyze(decode_image(data), embeddings=True, max_faces=1).faces
        assert faces, path
        vectors[str(path.relative_to(DATA))] = faces[0].embedding  # type: ignore[assignment]
    same, different = [], []
    for (a, va), (b, vb) in itertools.combinations(vectors.items(), 2):
        if frozenset((a, b)) in excluded:
            continue
        score = similarity(float(np.dot(va, vb)))
        (same if a.split("/")[1] == b.split("/")[1] else different).append(score)
    assert len(same) > 300 and len(different) > 5000
    assert max(different) < 80
    assert np.mean(np.asarray(same) >= 80) >= 0.99
