"""DetectLabels: NanoDet decoding, taxonomy, calibration and merging on synthetic inputs, then
golden outputs of the committed ONNX files and the whole operation on real photos.

The golden outputs let CI check ``models/nanodet.onnx`` and ``models/efficientnet_lite0.onnx``
without TensorFlow or re-converting (a regenerated file has other bytes, same outputs).
"""

from __future__ import annotations

import importlib.util
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import streamproc_plugins.labels as labels_plugin
from PIL import Image

from streamproc import errors
from streamproc.engine import Engine
from streamproc.images import decode_image
from streamproc.inference import get_session, load_manifest
from streamproc.labels import (
    COCO_CLASSES,
    REG_BINS,
    Detection,
    Taxonomy,
    classifier_confidence,
    classifier_labels,
    decode_nanodet,
    default_taxonomy_path,
    detector_confidence,
    detector_labels,
    distribution_distances,
    efficientnet_input,
    grid_centres,
    load_taxonomy,
    merge,
    nanodet_input,
    select,
)
from streamproc.plugin_manager import create_plugin_manager
from streamproc.runtime.deployment import frame_request_model
from streamproc.runtime.frame_input import FrameInput
from streamproc.shapes import LabelsSection
from streamproc.sources import Frame
from streamproc.vision.letterbox import Letterbox
from tests.conftest import DATA, image
from tests.rekognition_model import assert_valid_response

OP = "DetectLabels"
REPO = Path(__file__).resolve().parents[1]
OBJECTS = DATA / "objects"


# --- NanoDet decoding ------------------------------------------------------------------------


def test_grid_centres_are_cell_centres_row_major() -> None:
    centres = grid_centres(32)
    assert centres.shape == (13 * 13, 2)
    assert centres[0].tolist() == [16.0, 16.0]
    assert centres[1].tolist() == [48.0, 16.0]  # next column
    assert centres[13].tolist() == [16.0, 48.0]  # next row


def test_distribution_distances_are_expectations_times_stride() -> None:
    one_hot = np.full((1, 4, REG_BINS), -1e4, np.float32)
    for side, bin_ in enumerate((0, 3, 7, 10)):
        one_hot[0, side, bin_] = 10.0
    assert distribution_distances(one_hot.reshape(1, -1), 8)[0] == pytest.approx([0, 24, 56, 80])
    uniform = np.zeros((2, 4 * REG_BINS), np.float32)
    assert distribution_distances(uniform, 16) == pytest.approx(np.full((2, 4), 5 * 16))


def _outputs(
    cells: list[tuple[int, int, int, float, tuple[int, int, int, int]]],
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Synthetic NanoDet outputs: (stride, cell, class, score, one-hot bins per side)."""
    out = {}
    for stride in (8, 16, 32):
        n = (416 // stride) ** 2
        cls = np.zeros((1, n, 80), np.float32)
        box = np.full((1, n, 4, REG_BINS), -1e4, np.float32)
        box[..., 0] = 0.0
        for s, cell, class_id, score, bins in cells:
            if s == stride:
                cls[0, cell, class_id] = score
                box[0, cell] = -1e4
                for side, b in enumerate(bins):
                    box[0, cell, side, b] = 10.0
        out[stride] = (cls, box.reshape(1, n, 4 * REG_BINS))
    return out


def test_decode_maps_boxes_through_the_letterbox_and_suppresses_overlaps() -> None:
    # Cell (row 2, col 3) of stride 32: centre (112, 80); distances 2/1/2/3 bins of 32 px.
    cell = 2 * 13 + 3
    outputs = _outputs(
        [
            (32, cell, 16, 0.9, (2, 1, 2, 3)),  # dog
            (32, cell + 1, 15, 0.5, (2, 1, 2, 3)),  # cat, 32 px right: IoU 0.6 with the dog
            (16, 0, 0, 0.1, (1, 1, 1, 1)),  # person below the score threshold
        ]
    )
    box = Letterbox(scale=0.5, pad_x=8.0, pad_y=0.0)
    detections = decode_nanodet(outputs, box, image_width=800, image_height=832, iou_threshold=0.5)
    assert [d.name for d in detections] == ["dog"]
    (dog,) = detections
    assert dog.score == pytest.approx(0.9)
    # canvas [48, 48, 176, 176] -> image ((x - 8) / 0.5, y / 0.5)
    assert dog.box == pytest.approx((80.0, 96.0, 336.0, 352.0))
    kept = decode_nanodet(outputs, box, 800, 832, iou_threshold=0.7)
    assert [d.name for d in kept] == ["dog", "cat"]


def test_decode_clips_to_the_image_and_handles_no_detections() -> None:
    outputs = _outputs([(8, 0, 2, 0.8, (10, 10, 2, 2))])
    (car,) = decode_nanodet(outputs, Letterbox(1.0, 0.0, 0.0), 100, 100)
    assert car.box[:2] == (0.0, 0.0)
    assert car.box[2:] == pytest.approx((20.0, 20.0))
    assert decode_nanodet(_outputs([]), Letterbox(1.0, 0.0, 0.0), 100, 100) == []


def test_manifest_classes_are_the_decoder_classes() -> None:
    assert load_manifest().get("nanodet").classes == COCO_CLASSES
    assert len(COCO_CLASSES) == 80


# --- taxonomy --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


def test_every_model_class_maps_to_a_label_whose_parents_exist(taxonomy: Taxonomy) -> None:
    assert default_taxonomy_path() == REPO / "models" / "labels_taxonomy.json"
    assert len(taxonomy.coco) == 80
    assert len(taxonomy.imagenet) == len(taxonomy.imagenet_names) == 1000
    for name in (*taxonomy.coco, *taxonomy.imagenet):
        assert name in taxonomy.parents
        assert name[:1].isupper() or name == "iPod", name
    for name, parents in taxonomy.parents.items():
        assert set(parents) <= set(taxonomy.parents), name
        assert name not in taxonomy.ancestors(name)


@pytest.mark.parametrize(
    ("source", "index", "label", "ancestors"),
    [
        ("imagenet", 281, "Tabby Cat", {"Cat", "Pet", "Mammal", "Animal"}),
        ("imagenet", 235, "German Shepherd Dog", {"Dog", "Canine", "Pet", "Mammal", "Animal"}),
        ("imagenet", 967, "Espresso", {"Coffee", "Beverage", "Coffee Cup", "Cup"}),
        ("imagenet", 985, "Daisy", {"Flower", "Plant"}),
        ("imagenet", 981, "Baseball Player", {"Person"}),
        ("imagenet", 817, "Sports Car", {"Car", "Vehicle", "Transportation"}),
        ("imagenet", 2, "Great White Shark", {"Shark", "Fish", "Animal"}),
        ("coco", 0, "Person", set()),
        ("coco", 15, "Cat", {"Pet", "Mammal", "Animal"}),
        ("coco", 41, "Cup", set()),
        ("coco", 2, "Car", {"Vehicle", "Transportation"}),
    ],
)
def test_labels_and_parents(
    taxonomy: Taxonomy, source: str, index: int, label: str, ancestors: set[str]
) -> None:
    name = getattr(taxonomy, source)[index]
    assert name == label
    assert ancestors <= set(taxonomy.ancestors(name))
    if not ancestors:
        assert taxonomy.ancestors(name) == ()


def test_category_ranges_follow_imagenet_order(taxonomy: Taxonomy) -> None:
    dogs = [i for i, n in enumerate(taxonomy.imagenet) if "Dog" in taxonomy.with_ancestors(n)]
    assert dogs == list(range(151, 269))
    cats = [i for i, n in enumerate(taxonomy.imagenet) if "Cat" in taxonomy.with_ancestors(n)]
    assert cats == list(range(281, 286))


def test_invalid_taxonomies_are_refused() -> None:
    base = {"labels": {"Cat": ["Animal"], "Animal": []}, "coco": ["Cat"], "imagenet": ["Cat"]}
    Taxonomy.from_dict(base)
    with pytest.raises(ValueError, match="unknown parents"):
        Taxonomy.from_dict({**base, "labels": {"Cat": ["Pet"], "Animal": []}})
    with pytest.raises(ValueError, match="cycle"):
        Taxonomy.from_dict({**base, "labels": {"Cat": ["Animal"], "Animal": ["Cat"]}})
    with pytest.raises(ValueError, match="missing from the taxonomy"):
        Taxonomy.from_dict({**base, "coco": ["Dog"]})


def test_committed_taxonomy_is_what_the_rules_generate() -> None:
    path = REPO / "models" / "convert_labels.py"
    spec = importlib.util.spec_from_file_location("convert_labels", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = json.loads((REPO / "models" / "labels_taxonomy.json").read_text())
    rebuilt = module.build_taxonomy(committed["imagenet_names"], list(COCO_CLASSES))
    assert rebuilt == committed


# --- calibration and merging ------------------------------------------------------------------


def test_calibration_is_monotone_with_documented_anchors() -> None:
    scores = np.linspace(0, 1, 101)
    for curve in (detector_confidence, classifier_confidence):
        values = [curve(float(s)) for s in scores]
        assert values == sorted(values)
        assert values[0] >= 0.0 and values[-1] <= 100.0
        assert curve(-1.0) == values[0] and curve(2.0) == values[-1]
    assert detector_confidence(0.35) == pytest.approx(50.0)
    assert classifier_confidence(0.3) == pytest.approx(50.0)
    assert detector_confidence(0.3) < 50 < detector_confidence(0.4)


def test_detector_parents_take_the_max_of_their_children(taxonomy: Taxonomy) -> None:
    detections = [
        Detection(class_id=16, score=0.5, box=(0, 0, 1, 1)),  # dog
        Detection(class_id=15, score=0.7, box=(0, 0, 1, 1)),  # cat
        Detection(class_id=16, score=0.4, box=(0, 0, 1, 1)),  # a second, weaker dog
    ]
    labels = detector_labels(detections, taxonomy)
    assert labels["Dog"] == pytest.approx(detector_confidence(0.5))
    assert labels["Cat"] == pytest.approx(detector_confidence(0.7))
    assert labels["Animal"] == labels["Mammal"] == labels["Pet"] == labels["Cat"]
    assert "Person" not in labels


def test_classifier_sums_the_mass_of_a_labels_classes(taxonomy: Taxonomy) -> None:
    probs = np.zeros(1000)
    probs[[281, 282, 285]] = [0.2, 0.2, 0.2]  # three cat classes, none sure on its own
    probs[967] = 0.004  # below the floor: ignored
    probs[0] = 1 - probs.sum()
    labels = classifier_labels(probs, taxonomy)
    assert labels["Cat"] == pytest.approx(classifier_confidence(0.6))
    assert labels["Tabby Cat"] == pytest.approx(classifier_confidence(0.2))
    assert labels["Animal"] == pytest.approx(classifier_confidence(0.996))  # tench + cats
    assert "Espresso" not in labels


def test_merge_and_select() -> None:
    merged = merge({"Dog": 60.0, "Animal": 60.0}, {"Dog": 80.0, "Cat": 55.0})
    assert merged == {"Dog": 80.0, "Animal": 60.0, "Cat": 55.0}
    assert select(merged, 50) == [("Dog", 80.0), ("Animal", 60.0), ("Cat", 55.0)]
    assert select(merged, 58) == [("Dog", 80.0), ("Animal", 60.0)]
    assert select(merged, 0, max_labels=1) == [("Dog", 80.0)]
    assert select({"B": 70.0, "A": 70.0}, 0) == [("A", 70.0), ("B", 70.0)]  # ties by name


# --- golden outputs of the committed ONNX files -------------------------------------------------

#: Top-5 ImageNet classes (index, probability) with the manifest's preprocessing.
GOLDEN_TOP5 = {
    "objects/cat/skimage_chelsea.png": [
        (282, 0.384), (285, 0.369), (281, 0.162), (287, 0.021), (904, 0.001)],
    "objects/cup/skimage_coffee.png": [
        (967, 0.957), (968, 0.013), (925, 0.007), (960, 0.004), (504, 0.003)],
}  # fmt: skip
#: NanoDet detections with score >= 0.35: (class, score, box in image pixels).
GOLDEN_BOXES = {
    "objects/person/opencv_messi5.jpg": [
        ("person", 0.740, (62.0, 65.2, 458.8, 339.0)),
        ("sports ball", 0.712, (337.3, 288.9, 389.0, 337.6)),
        ("person", 0.468, (0.5, 83.0, 55.6, 195.9)),
        ("person", 0.456, (167.0, 56.1, 209.5, 117.4)),
        ("person", 0.365, (332.4, 124.6, 371.8, 162.6)),
        ("person", 0.364, (175.8, 212.2, 222.3, 259.6)),
    ],
    "objects/dog/darknet_dog.jpg": [
        ("dog", 0.669, (131.1, 194.6, 344.1, 537.5)),
        ("bicycle", 0.599, (110.7, 114.9, 573.8, 473.0)),
        ("car", 0.513, (472.3, 84.2, 703.6, 169.2)),
        ("bench", 0.426, (134.1, 133.9, 257.5, 218.3)),
        ("bicycle", 0.410, (289.4, 132.1, 573.0, 422.3)),
    ],
}


def _rgb(path: str) -> np.ndarray:
    return decode_image((DATA / path).read_bytes()).rgb


@pytest.mark.parametrize("path", sorted(GOLDEN_TOP5))
def test_efficientnet_golden_top5(path: str) -> None:
    spec = load_manifest().get("efficientnet_lite0")
    session = get_session("efficientnet_lite0", 1)
    (logits,) = session.run(None, {spec.input.name: efficientnet_input(_rgb(path), spec.input)})
    z = logits[0].astype(np.float64)
    probs = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    top = np.argsort(-probs)[:5]
    expected = GOLDEN_TOP5[path]
    assert [int(i) for i in top[:3]] == [i for i, _ in expected[:3]]
    assert set(int(i) for i in top) >= {i for i, p in expected if p > 0.01}
    for i, p in expected:
        assert probs[i] == pytest.approx(p, abs=0.02), i


@pytest.mark.parametrize("path", sorted(GOLDEN_BOXES))
def test_nanodet_golden_boxes(path: str) -> None:
    spec = load_manifest().get("nanodet")
    session = get_session("nanodet", 1)
    rgb = _rgb(path)
    x, box = nanodet_input(rgb, spec.input)
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, {spec.input.name: x}), strict=True))
    per_stride = {s: (out[f"cls_{s}"], out[f"box_{s}"]) for s in (8, 16, 32)}
    found = [d for d in decode_nanodet(per_stride, box, rgb.shape[1], rgb.shape[0])]
    expected = GOLDEN_BOXES[path]
    for name, score, corners in expected:
        match = [d for d in found if d.name == name and np.allclose(d.box, corners, atol=4.0)]
        assert match, (name, corners, found)
        assert match[0].score == pytest.approx(score, abs=0.03)
    strong = [d for d in found if d.score >= 0.4]
    assert len(strong) == sum(1 for _, s, _ in expected if s >= 0.4)


# --- the operation on real photos ---------------------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """The plugin as every installation loads it."""
    pm = create_plugin_manager()
    assert pm.is_registered(labels_plugin)  # through its `streamproc` entry point
    engine = Engine(plugin_manager=pm)
    yield engine
    engine.close()


def _names(response: dict[str, Any]) -> set[str]:
    return {label["Name"] for label in response["Labels"]}


def test_object_manifest_lists_the_copied_photos() -> None:
    manifest = json.loads((OBJECTS / "MANIFEST.json").read_text())
    listed = {entry["path"] for entry in manifest["files"]}
    on_disk = {str(p.relative_to(DATA)) for p in OBJECTS.rglob("*.*") if p.suffix != ".json"}
    assert listed == on_disk
    for entry in manifest["files"]:
        assert "RESTRICTED" not in entry["license"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("objects/cat/skimage_chelsea.png", {"Cat", "Pet", "Mammal", "Animal"}),
        ("objects/cup/skimage_coffee.png", {"Cup", "Coffee", "Espresso", "Beverage"}),
        ("objects/dog/darknet_dog.jpg", {"Dog", "Bicycle", "Car", "Animal", "Vehicle"}),
        ("objects/car/dlib_mmod_cars_test_image.jpg", {"Car", "Vehicle", "Transportation"}),
        ("objects/car/opencv_licenseplate_motion.jpg", {"Car", "Vehicle"}),
        ("objects/person/opencv_messi5.jpg", {"Person", "Ball", "Sport"}),
        ("objects/bird/darknet_eagle.jpg", {"Bird", "Animal"}),
        ("objects/fruit/opencv_orange.jpg", {"Orange", "Fruit", "Food"}),
    ],
)
def test_expected_labels_on_object_photos(engine: Engine, path: str, expected: set[str]) -> None:
    response = engine.call(OP, {"Image": image(path)})
    assert_valid_response(OP, response)
    assert expected <= _names(response), response["Labels"]
    assert "Person" not in _names(response) or "person" in path


@pytest.mark.parametrize(
    "path",
    sorted(str(p.relative_to(DATA)) for p in (DATA / "groups").glob("*.jpg"))
    + ["faces_single/dlib_tom_cruise.jpg", "faces_single/emotion_happy.jpg"],
)
def test_person_on_photos_of_people(engine: Engine, path: str) -> None:
    labels = engine.call(OP, {"Image": image(path)})["Labels"]
    person = [label for label in labels if label["Name"] == "Person"]
    assert person and person[0]["Confidence"] >= 60, (path, labels)


@pytest.mark.parametrize(
    "path", ["negatives/skimage_grass.png", "negatives/skimage_brick.png",
             "negatives/opencv_hfs_001_lake.jpg"]
)  # fmt: skip
def test_no_person_on_photos_without_people(engine: Engine, path: str) -> None:
    assert "Person" not in _names(engine.call(OP, {"Image": image(path)}))


def test_labels_are_sorted_and_parents_come_along(engine: Engine) -> None:
    labels = engine.call(OP, {"Image": image("objects/cat/skimage_chelsea.png")})["Labels"]
    confidences = [label["Confidence"] for label in labels]
    assert confidences == sorted(confidences, reverse=True)
    by_name = {label["Name"]: label["Confidence"] for label in labels}
    assert by_name["Animal"] >= by_name["Cat"] >= 90
    assert all(set(label) == {"Name", "Confidence"} for label in labels)


def test_max_labels_and_min_confidence(engine: Engine) -> None:
    photo = image("objects/dog/darknet_dog.jpg")
    everything = engine.call(OP, {"Image": photo, "MinConfidence": 0})["Labels"]
    default = engine.call(OP, {"Image": photo})["Labels"]
    assert len(everything) > len(default) >= 5
    assert min(label["Confidence"] for label in default) >= 50
    assert default == [label for label in everything if label["Confidence"] >= 50]
    top3 = engine.call(OP, {"Image": photo, "MaxLabels": 3})["Labels"]
    assert top3 == default[:3]
    assert engine.call(OP, {"Image": photo, "MaxLabels": 0})["Labels"] == []
    strict = engine.call(OP, {"Image": photo, "MinConfidence": 85})["Labels"]
    assert strict and all(label["Confidence"] >= 85 for label in strict)
    assert engine.call(OP, {"Image": photo, "MinConfidence": 100})["Labels"] == []


def test_orientation_correction(engine: Engine) -> None:
    response = engine.call(OP, {"Image": image("objects/fruit/opencv_orange.jpg")})
    assert response["OrientationCorrection"] == "ROTATE_0"


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        ({"MinConfidence": -1}, errors.InvalidParameterException),
        ({"MinConfidence": 100.5}, errors.InvalidParameterException),
        ({"MaxLabels": -1}, errors.InvalidParameterException),
        ({"MaxLabels": "ten"}, errors.InvalidParameterException),
        ({"Attributes": ["ALL"]}, errors.InvalidParameterException),
        ({"Image": {"Bytes": b"not an image at all"}}, errors.InvalidImageFormatException),
        ({"Image": {"S3Object": {"Bucket": "bucket", "Name": "a.jpg"}}},
         errors.InvalidS3ObjectException),
        ({"Image": None}, errors.InvalidParameterException),
    ],
)  # fmt: skip
def test_errors(engine: Engine, request_: dict[str, Any], error: type[Exception]) -> None:
    request = {"Image": image("objects/fruit/opencv_orange.jpg"), **request_}
    with pytest.raises(error):
        engine.call(OP, request)


def test_tiny_image_is_a_parameter_error(engine: Engine) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (40, 40)).save(buf, format="PNG")
    with pytest.raises(errors.InvalidParameterException, match="minimum"):
        engine.call(OP, {"Image": {"Bytes": buf.getvalue()}})


def test_per_frame_handler(engine: Engine) -> None:
    operation = engine.operation(OP)
    assert operation.method_name == "detect_labels"
    assert operation.cli_name == "detect-labels"
    assert operation.frame_handler is not None
    model = frame_request_model(operation)
    with pytest.raises(ValueError):
        model.model_validate({"MinConfidence": 150})
    request = model.model_validate({"MaxLabels": 5})
    path = "objects/cat/skimage_chelsea.png"
    rgb = _rgb(path)
    frame = Frame("door", 0, 0.0, 0.0, rgb.shape[1], rgb.shape[0], rgb)
    needs = operation.frame_needs(request)
    assert needs == frozenset()  # no face analysis needed
    section = operation.frame_handler(
        FrameInput(frame, engine.context.faces, needs), request, engine.context
    )
    assert isinstance(section, LabelsSection)
    sections = section.to_wire()
    assert list(sections) == ["Labels"]
    whole = engine.call(OP, {"Image": image(path), "MaxLabels": 5})
    assert_valid_response(OP, {**sections, "OrientationCorrection": "ROTATE_0"})
    assert sections == {"Labels": whole["Labels"]}
