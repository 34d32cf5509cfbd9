"""RecognizeCelebrities and GetCelebrityInfo on real photos with the real models.

The bundled catalog was built from the first one or two photos of each full-named
identity (``streamproc.celebrities.bundled``); every other photo of those people is
held out here, and the first-name-only / surname-only identity sets are strangers.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import streamproc_plugins.celebrities as celebrities_plugin

from streamproc import errors
from streamproc.celebrities import CATALOG_ENV, CatalogError, celebrity_id, load_catalog
from streamproc.celebrities.bundled import BUNDLED_PHOTOS
from streamproc.celebrities.loader import bundled_catalog_path, catalog_to_dict
from streamproc.cli import celebrities as celebrities_cli
from streamproc.cli import operations as operations_cli
from streamproc.engine import Engine
from streamproc.images import decode_image
from streamproc.plugin_manager import create_plugin_manager
from streamproc.runtime.deployment import frame_request_model
from streamproc.runtime.frame_input import FrameInput
from streamproc.shapes import CelebritiesSection
from streamproc.sources import Frame
from tests.conftest import DATA, image
from tests.rekognition_model import assert_valid_response

FOLDER_NAMES = {  # identity folder → the full name its source gives
    "alex_lacamoire": "Alex Lacamoire",
    "barack_obama": "Barack Obama",
    "joe_biden": "Joe Biden",
    "kit_harington": "Kit Harington",
    "rose_leslie": "Rose Leslie",
    "dlib_john_salley": "John Salley",
    "dlib_john_savage": "John Savage",
    "dlib_john_schneider": "John Schneider",
    "dlib_john_shimkus": "John Shimkus",
    "dlib_john_simm": "John Simm",
}
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}


def _photos(folder: str) -> list[str]:
    return sorted(
        str(p.relative_to(DATA))
        for p in (DATA / "faces" / folder).iterdir()
        if p.suffix.lower() in PHOTO_SUFFIXES and p.read_bytes()[:4] != b"RIFF"  # webp in .jpg
    )


def _held_out() -> list[tuple[str, str]]:
    """Photos of catalog people not used to build it, nor near-duplicates of those."""
    manifest = json.loads((DATA / "MANIFEST.json").read_text())
    used = {p for paths in BUNDLED_PHOTOS.values() for p in paths}
    near = {b for a, b, _ in manifest["near_duplicate_pairs"] if a in used}
    near |= {a for a, b, _ in manifest["near_duplicate_pairs"] if b in used}
    return [
        (photo, name)
        for folder, name in FOLDER_NAMES.items()
        for photo in _photos(folder)
        if photo not in used and photo not in near
    ]


def _strangers() -> list[str]:
    manifest = json.loads((DATA / "MANIFEST.json").read_text())
    partial = [
        k for k, v in manifest["identities"].items() if "only" in v["person_label_in_source"]
    ]
    return [p for folder in partial for p in _photos(folder)]


class EngineClient:
    """boto3-style methods over an engine (what ``Client`` is, minus its construction)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        return self.engine.call(operation, params)

    def __getattr__(self, name: str) -> Any:
        ops = {op.method_name: op.name for op in self.engine.operations.values()}
        if name not in ops:
            raise AttributeError(name)
        return lambda **params: self.engine.call(ops[name], params)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """The plugin through its entry point when installed, else registered explicitly."""
    pm = create_plugin_manager()
    if not pm.is_registered(celebrities_plugin):
        pm.register(celebrities_plugin)
    eng = Engine(plugin_manager=pm)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def celebs(engine: Engine) -> EngineClient:
    return EngineClient(engine)


# --- the bundled catalog ---------------------------------------------------------------------


def test_bundled_catalog_is_the_full_named_people_with_stable_ids() -> None:
    catalog = load_catalog(bundled_catalog_path())
    assert {c.name for c in catalog} == set(BUNDLED_PHOTOS)
    assert set(FOLDER_NAMES.values()) | {
        "Amy Adams",
        "Steve Carell",
        "Tom Cruise",
        "Eileen Collins",
    } == set(BUNDLED_PHOTOS)
    for celeb in catalog:
        assert re.fullmatch(r"[0-9A-Za-z]+", celeb.id)
        assert celeb.id == celebrity_id(celeb.name) == celebrity_id(f"  {celeb.name.upper()} ")
        assert celeb.sources == BUNDLED_PHOTOS[celeb.name]
        assert len(celeb.embeddings) == len(celeb.sources) and celeb.urls == ()
    # First-name-only and surname-only labels are not full names: nobody from those sets.
    manifest = json.loads((DATA / "MANIFEST.json").read_text())
    used = {p.split("/")[1] for paths in BUNDLED_PHOTOS.values() for p in paths}
    for key, identity in manifest["identities"].items():
        if "only" in identity["person_label_in_source"]:
            assert key not in used


# --- RecognizeCelebrities --------------------------------------------------------------------


def test_held_out_photos_are_recognised(celebs: EngineClient) -> None:
    held_out = _held_out()
    assert len(held_out) >= 45
    misses, latencies = [], []
    for photo, name in held_out:
        start = time.perf_counter()
        response = celebs.recognize_celebrities(Image=image(photo))
        latencies.append(time.perf_counter() - start)
        assert_valid_response("RecognizeCelebrities", response)
        found = {c["Name"]: c for c in response["CelebrityFaces"]}
        if name not in found or set(found) != {name}:
            misses.append((photo, sorted(found)))
            continue
        celeb = found[name]
        assert celeb["Id"] == celebrity_id(name) and celeb["Urls"] == []
        assert 80 <= celeb["MatchConfidence"] <= 100
        assert set(celeb["Face"]) == {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality"}
    print(
        f"\nheld-out: {len(held_out) - len(misses)}/{len(held_out)} recognised, "
        f"median {1000 * float(np.median(latencies)):.0f} ms"
    )
    assert misses == []


def test_strangers_are_unrecognised(celebs: EngineClient) -> None:
    strangers = _strangers() + [f"faces_single/emotion_{e}.jpg" for e in ("happy", "sad")]
    assert len(strangers) >= 60
    for photo in strangers:
        response = celebs.recognize_celebrities(Image=image(photo))
        assert response["CelebrityFaces"] == [], photo
        assert len(response["UnrecognizedFaces"]) >= 1, photo
    assert_valid_response("RecognizeCelebrities", response)


@pytest.mark.parametrize("photo", ["groups/fr_obama_and_biden.jpg", "groups/fr_two_people.jpg"])
def test_group_photo_gives_both_people(celebs: EngineClient, photo: str) -> None:
    response = celebs.recognize_celebrities(Image=image(photo))
    assert_valid_response("RecognizeCelebrities", response)
    found = {c["Name"]: c for c in response["CelebrityFaces"]}
    assert set(found) == {"Barack Obama", "Joe Biden"}
    assert response["OrientationCorrection"] == "ROTATE_0"
    a, b = sorted((found[n]["Face"]["BoundingBox"] for n in found), key=lambda box: box["Left"])
    assert a["Left"] + a["Width"] <= b["Left"]  # two different faces, side by side


def test_at_most_15_faces_are_looked_at(celebs: EngineClient) -> None:
    response = celebs.recognize_celebrities(Image=image("groups/dlib_bald_guys_collage.jpg"))
    assert_valid_response("RecognizeCelebrities", response)
    assert len(response["CelebrityFaces"]) + len(response["UnrecognizedFaces"]) == 15


def test_no_face_gives_empty_lists(celebs: EngineClient) -> None:
    response = celebs.recognize_celebrities(Image=image("negatives/opencv_building.jpg"))
    assert_valid_response("RecognizeCelebrities", response)
    assert response["CelebrityFaces"] == [] and response["UnrecognizedFaces"] == []


def test_recognize_error_paths(celebs: EngineClient) -> None:
    with pytest.raises(errors.InvalidParameterException, match="Image"):
        celebs.recognize_celebrities()
    with pytest.raises(errors.InvalidParameterException, match="Unknown parameter"):
        celebs.recognize_celebrities(Image=image("faces/joe_biden/2.jpg"), MaxFaces=3)
    with pytest.raises(errors.InvalidImageFormatException):
        celebs.recognize_celebrities(Image={"Bytes": b"not an image at all"})
    with pytest.raises(errors.InvalidS3ObjectException):
        celebs.recognize_celebrities(Image={"S3Object": {"Bucket": "bucket", "Name": "a.jpg"}})


def test_per_frame_handler(engine: Engine) -> None:
    operation = engine.operation("RecognizeCelebrities")
    assert operation.frame_handler is not None
    request = frame_request_model(operation).model_validate({})
    rgb = decode_image((DATA / "groups/fr_two_people.jpg").read_bytes()).rgb
    frame = Frame("door", 0, 0.0, 0.0, rgb.shape[1], rgb.shape[0], rgb)
    needs = operation.frame_needs(request)
    section = operation.frame_handler(
        FrameInput(frame, engine.context.faces, needs), request, engine.context
    )
    assert isinstance(section, CelebritiesSection)
    sections = section.to_wire()
    assert set(sections) == {"CelebrityFaces", "UnrecognizedFaces"}
    assert {c["Name"] for c in sections["CelebrityFaces"]} == {"Barack Obama", "Joe Biden"}
    assert_valid_response("RecognizeCelebrities", sections)


# --- GetCelebrityInfo ------------------------------------------------------------------------


def test_get_celebrity_info_round_trip(celebs: EngineClient) -> None:
    recognised = celebs.recognize_celebrities(Image=image("faces/rose_leslie/2.jpg"))
    celeb = recognised["CelebrityFaces"][0]
    info = celebs.get_celebrity_info(Id=celeb["Id"])
    assert info == {"Name": "Rose Leslie", "Urls": []}
    assert_valid_response("GetCelebrityInfo", info)


def test_get_celebrity_info_errors(celebs: EngineClient) -> None:
    with pytest.raises(errors.ResourceNotFoundException, match="NoSuchId1"):
        celebs.get_celebrity_info(Id="NoSuchId1")
    with pytest.raises(errors.ResourceNotFoundException):
        celebs.get_celebrity_info(Id="")
    with pytest.raises(errors.InvalidParameterException, match="Id"):
        celebs.get_celebrity_info(Id="not-an-id!")
    with pytest.raises(errors.InvalidParameterException, match="Missing required parameter Id"):
        celebs.get_celebrity_info()


# --- building and configuring a catalog ------------------------------------------------------


def _cli(argv: list[str]) -> int:
    """The commands as ``streamproc`` runs them (global flags, Rekognition errors → 254)."""
    parser = argparse.ArgumentParser(prog="streamproc")
    parser.add_argument("--store")
    parser.add_argument("--threads", type=int)
    sub = parser.add_subparsers(dest="command", required=True)
    celebrities_cli.add_commands(sub)
    operations_cli.add_commands(sub)  # recognize-celebrities etc., generated from the registry
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except errors.RekognitionError as exc:
        print(f"An error occurred ({exc.code}): {exc.message}")
        return 254


@pytest.fixture
def cli_client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI commands reach the test engine (the installed Client once the entry point exists)."""
    monkeypatch.setattr(operations_cli, "client_from_args", lambda args: EngineClient(engine))


def _people(root: Path) -> Path:
    (root / "Joe Biden").mkdir(parents=True)
    shutil.copy(DATA / "faces/joe_biden/2.jpg", root / "Joe Biden/a.jpg")
    (root / "Kit Harington").mkdir()
    shutil.copy(DATA / "faces/kit_harington/2.jpg", root / "Kit Harington/a.jpg")
    shutil.copy(DATA / "negatives/opencv_building.jpg", root / "Kit Harington/b.jpg")
    (root / "Kit Harington/urls.txt").write_text("# his page\nhttps://example.org/kit\n\n")
    return root


def test_build_catalog_and_use_it(
    tmp_path: Path,
    celebs: EngineClient,
    cli_client: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "my" / "catalog.json"
    assert (
        _cli(["celebrities", "build", str(_people(tmp_path / "people")), "--output", str(out)]) == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["PhotosRead"] == 3 and summary["CelebritiesInCatalog"] == 2
    assert summary["PhotosWithoutFaces"] == ["Kit Harington/b.jpg"]
    catalog = load_catalog(out)
    kit = catalog.get(celebrity_id("Kit Harington"))
    assert kit is not None and kit.urls == ("https://example.org/kit",)
    assert kit.sources == ("Kit Harington/a.jpg",)

    monkeypatch.setenv(CATALOG_ENV, str(out))
    response = celebs.recognize_celebrities(Image=image("groups/fr_kit_with_rose.jpg"))
    assert_valid_response("RecognizeCelebrities", response)
    assert [(c["Name"], c["Urls"]) for c in response["CelebrityFaces"]] == [
        ("Kit Harington", ["https://example.org/kit"])
    ]
    assert len(response["UnrecognizedFaces"]) == 1  # Rose Leslie is not in this catalog
    biden = celebs.recognize_celebrities(Image=image("faces/joe_biden/1.jpg"))
    assert biden["CelebrityFaces"][0]["Id"] == celebrity_id("Joe Biden")
    with pytest.raises(errors.ResourceNotFoundException):
        celebs.get_celebrity_info(Id=celebrity_id("Barack Obama"))

    # --extend: the bundled catalog plus these people; Kit's entry is replaced.
    extended = tmp_path / "extended.json"
    assert (
        _cli(
            [
                "celebrities",
                "build",
                str(tmp_path / "people"),
                "--output",
                str(extended),
                "--extend",
                str(bundled_catalog_path()),
            ]
        )
        == 0
    )
    capsys.readouterr()
    merged = load_catalog(extended)
    assert len(merged) == len(BUNDLED_PHOTOS)
    assert merged.get(celebrity_id("Kit Harington")).urls == ("https://example.org/kit",)  # type: ignore[union-attr]


def test_build_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["celebrities", "build", str(tmp_path / "missing")]) == 254
    assert "is not a directory" in capsys.readouterr().out
    (tmp_path / "empty" / "Nobody").mkdir(parents=True)
    assert _cli(["celebrities", "build", str(tmp_path / "empty")]) == 254
    assert "no <Full Name>/<photo>" in capsys.readouterr().out


def test_cli_recognize_and_info(cli_client: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["recognize-celebrities", "--image", str(DATA / "faces/joe_biden/2.jpg")]) == 0
    response = json.loads(capsys.readouterr().out)
    assert_valid_response("RecognizeCelebrities", response)
    assert response["CelebrityFaces"][0]["Name"] == "Joe Biden"
    assert _cli(["get-celebrity-info", "--id", celebrity_id("Joe Biden")]) == 0
    assert json.loads(capsys.readouterr().out) == {"Urls": [], "Name": "Joe Biden"}
    assert _cli(["get-celebrity-info", "--id", "Unknown1"]) == 254
    assert "ResourceNotFoundException" in capsys.readouterr().out
    assert _cli(["recognize-celebrities", "--image", "/nonexistent.jpg"]) == 254
    assert "cannot read image file" in capsys.readouterr().out
    assert _cli(["celebrities", "list"]) == 0
    assert len(json.loads(capsys.readouterr().out)["Celebrities"]) == len(BUNDLED_PHOTOS)


def test_bad_catalog_is_a_clear_error(
    tmp_path: Path, celebs: EngineClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.json"
    monkeypatch.setenv(CATALOG_ENV, str(missing))
    with pytest.raises(errors.InternalServerError, match="nope.json"):
        celebs.get_celebrity_info(Id="abc")
    data = catalog_to_dict(load_catalog(bundled_catalog_path()))
    data["Celebrities"][1]["Id"] = "bad id"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(CatalogError, match=r"Celebrities\[1\].*bad id"):
        load_catalog(bad)
    data["Celebrities"][1]["Id"] = data["Celebrities"][0]["Id"]
    bad.write_text(json.dumps(data))
    with pytest.raises(CatalogError, match="is used by both"):
        load_catalog(bad)
    data["FaceModel"] = "other"
    bad.write_text(json.dumps(data))
    with pytest.raises(CatalogError, match="rebuild"):
        load_catalog(bad)


def test_entry_point_registration() -> None:
    """Once pyproject names the plugin, every front door (Client, CLI, NATS) has it."""
    names = {name for name, _ in create_plugin_manager().list_name_plugin()}
    assert "celebrities" in names
    from streamproc.client import Client

    assert {"recognize_celebrities", "get_celebrity_info"} <= set(dir(Client()))
