"""The model manifest: which wheel file backs each model, pinned by sha256.

The manifest is the single source of truth for model provenance, licence and
input conventions; code reads preprocessing facts from it instead of repeating
them. The wheel carries a copy next to this module; an editable checkout reads
``models/manifest.toml`` at the repository root.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "REPO_DISTRIBUTION",
    "InputSpec",
    "Manifest",
    "ModelSpec",
    "Recipe",
    "TensorSpec",
    "default_manifest_path",
    "load_manifest",
]

Recipe = Literal["copy", "dequantize_int8bq", "keras_h5_to_onnx"]

_SHA256 = r"^[0-9a-f]{64}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TensorSpec(_Frozen):
    """A graph input or output; a string dimension is symbolic (batch)."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"


class InputSpec(TensorSpec):
    """The graph input and how pixels must be turned into it: ``(x - mean) * scale``."""

    layout: Literal["NCHW", "NHWC"]
    color: Literal["RGB", "BGR", "GRAY"]
    mean: tuple[float, ...]
    scale: float
    normalization: str
    crop: str


class ModelSpec(_Frozen):
    """One model: where its shipped file is, how it is prepared, how it is fed."""

    name: str
    distribution: str
    version: str
    file: str = Field(description="path as importlib.metadata.files(distribution) lists it")
    sha256: str = Field(pattern=_SHA256)
    prepared_sha256: str = Field(pattern=_SHA256)
    recipe: Recipe
    license: str
    license_source: str
    purpose: str
    notes: str = ""
    input: InputSpec
    outputs: tuple[TensorSpec, ...]
    classes: tuple[str, ...] = ()
    bin_values: tuple[float, ...] = ()
    optional: bool = Field(
        default=False,
        description="an optional extra: a missing wheel is reported by verify, not a failure",
    )
    path: Path | None = Field(
        default=None,
        description="explicit shipped file, bypassing the distribution lookup (tests, audits)",
    )


class Manifest(_Frozen):
    """All models, keyed by name."""

    schema_version: int
    models: dict[str, ModelSpec]
    source: Path | None = None

    def get(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models))
            raise KeyError(f"unknown model {name!r}; the manifest lists {known}") from None

    def with_model(self, spec: ModelSpec) -> Manifest:
        """A copy with one model replaced, e.g. pointed at another file."""
        return self.model_copy(update={"models": {**self.models, spec.name: spec}})


#: ``distribution = "repo"``: a model converted from an npm package by a script under
#: ``models/`` and committed there (``file`` is relative to the manifest).
REPO_DISTRIBUTION = "repo"


def default_manifest_path() -> Path:
    """The wheel's copy first, then the repository's ``models/manifest.toml``."""
    candidates = [
        Path(__file__).parent / "manifest.toml",
        Path(__file__).resolve().parents[2] / "models" / "manifest.toml",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        "model manifest not found; looked at " + ", ".join(str(c) for c in candidates)
    )


def _parse(path: Path) -> Manifest:
    with path.open("rb") as f:
        data = tomllib.load(f)
    models = {}
    for name, body in data.get("models", {}).items():
        if body.get("distribution") == REPO_DISTRIBUTION and "path" not in body:
            # Converted once by a script under models/ and committed next to the manifest
            # (the wheel carries both side by side): resolve the file from here.
            body = {**body, "path": path.parent / body["file"]}
        models[name] = ModelSpec.model_validate({"name": name, **body})
    return Manifest(schema_version=data["schema_version"], models=models, source=path)


@lru_cache(maxsize=8)
def _load_cached(path: Path) -> Manifest:
    return _parse(path)


def load_manifest(path: str | Path | None = None) -> Manifest:
    """Parse and validate a manifest (the default one unless `path` is given)."""
    resolved = Path(path) if path is not None else default_manifest_path()
    return _load_cached(resolved.resolve())
