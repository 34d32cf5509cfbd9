"""Preparation recipes: shipped file -> bytes of an ONNX file onnxruntime runs.

Each recipe is a pure function of the shipped file, and serialization is
deterministic, so the result can be pinned in the manifest by its sha256.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import onnx

from .dequantize import dequantize_int8bq
from .keras_h5 import keras_h5_to_onnx
from .manifest import Recipe

__all__ = ["RECIPES", "prepare_bytes", "serialize_model"]


def serialize_model(model: onnx.ModelProto) -> bytes:
    return model.SerializeToString(deterministic=True)


def _copy(path: Path) -> bytes:
    return path.read_bytes()


def _dequantize(path: Path) -> bytes:
    return serialize_model(dequantize_int8bq(onnx.load(str(path))))


def _keras(path: Path) -> bytes:
    return serialize_model(keras_h5_to_onnx(path))


RECIPES: dict[Recipe, Callable[[Path], bytes]] = {
    "copy": _copy,
    "dequantize_int8bq": _dequantize,
    "keras_h5_to_onnx": _keras,
}


def prepare_bytes(recipe: Recipe, shipped: Path) -> bytes:
    return RECIPES[recipe](shipped)
