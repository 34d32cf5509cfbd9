"""Pretrained models from PyPI wheels, prepared once and run with onnxruntime.

``models/manifest.toml`` pins every model file by sha256; :func:`get_session`
prepares (dequantizes / converts) a model on first use, caches the result on
disk and hands out a shared CPU session. Nothing is ever downloaded.
"""

from __future__ import annotations

from .cache import CACHE_ENV, cache_dir, cached_path, ensure_prepared, model_path
from .dequantize import dequantize_array, dequantize_int8bq
from .errors import ModelChecksumError, ModelError, ModelNotInstalledError
from .keras_h5 import EMOTION_CLASSES, keras_h5_to_onnx
from .manifest import (
    InputSpec,
    Manifest,
    ModelSpec,
    Recipe,
    TensorSpec,
    default_manifest_path,
    load_manifest,
)
from .prepare import RECIPES, prepare_bytes, serialize_model
from .sessions import THREADS_ENV, clear_sessions, get_session, resolve_threads
from .shipped import locate_shipped, sha256_file, verified_shipped
from .verify import VerifyResult, render_verify_table, verify

__all__ = [
    "CACHE_ENV",
    "EMOTION_CLASSES",
    "RECIPES",
    "THREADS_ENV",
    "InputSpec",
    "Manifest",
    "ModelChecksumError",
    "ModelError",
    "ModelNotInstalledError",
    "ModelSpec",
    "Recipe",
    "TensorSpec",
    "VerifyResult",
    "cache_dir",
    "cached_path",
    "clear_sessions",
    "default_manifest_path",
    "dequantize_array",
    "dequantize_int8bq",
    "ensure_prepared",
    "get_session",
    "keras_h5_to_onnx",
    "load_manifest",
    "locate_shipped",
    "model_path",
    "prepare_bytes",
    "render_verify_table",
    "resolve_threads",
    "serialize_model",
    "sha256_file",
    "verified_shipped",
    "verify",
]
