"""``streamproc models verify``: is every model installed, intact and runnable?

A model that loads may still fail on its first inference (the shipped YuNet does,
in a DequantizeLinear node), so verification runs one inference on zeros.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict
from rich.table import Table
from rich.text import Text

from .cache import ensure_prepared
from .errors import ModelChecksumError, ModelError, ModelNotInstalledError
from .manifest import Manifest, ModelSpec, load_manifest
from .sessions import get_session
from .shipped import verified_shipped

__all__ = ["VerifyResult", "render_verify_table", "verify"]


class VerifyResult(BaseModel):
    """Outcome of checking one model; `ok` is true only when every step passed."""

    model_config = ConfigDict(frozen=True)

    name: str
    distribution: str
    version: str
    file: str
    shipped_ok: bool = False
    prepared_ok: bool = False
    loads: bool = False
    input_shape: tuple[int | str, ...] = ()
    message: str = ""
    optional: bool = False
    installed: bool = True

    @property
    def ok(self) -> bool:
        """Every step passed, or an optional model is simply not installed."""
        if self.optional and not self.installed:
            return True
        return self.shipped_ok and self.prepared_ok and self.loads


def _check(spec: ModelSpec, manifest: Manifest) -> VerifyResult:
    fields: dict[str, object] = {
        "name": spec.name,
        "distribution": spec.distribution,
        "version": spec.version,
        "file": spec.file,
        "optional": spec.optional,
    }
    try:
        verified_shipped(spec)
        fields["shipped_ok"] = True
        ensure_prepared(spec)
        fields["prepared_ok"] = True
        session = get_session(spec.name, manifest=manifest)
        inp = session.get_inputs()[0]
        fields["input_shape"] = tuple(inp.shape)
        # Symbolic dimensions take the manifest's size (detectors with dynamic H x W
        # fail on 1 x 1), else 1 (batch).
        dims = [
            d if isinstance(d, int) and d > 0 else (m if isinstance(m, int) and m > 0 else 1)
            for d, m in zip(inp.shape, spec.input.shape, strict=False)
        ]
        outputs = session.run(None, {inp.name: np.zeros(dims, np.float32)})
        if not all(np.isfinite(o).all() for o in outputs):
            raise ModelError("inference on a blank input produced non-finite values")
        fields["loads"] = True
        fields["message"] = "ok"
    except ModelNotInstalledError as exc:
        fields["installed"] = False
        fields["message"] = f"optional, not installed: {exc}" if spec.optional else str(exc)
    except ModelChecksumError as exc:
        fields["message"] = str(exc)
    except Exception as exc:  # noqa: BLE001 - a report must cover every failure
        fields["message"] = f"{type(exc).__name__}: {exc}"
    return VerifyResult.model_validate(fields)


def verify(manifest: Manifest | None = None) -> list[VerifyResult]:
    """Check every model in the manifest; never raises for a broken model."""
    m = manifest or load_manifest()
    return [_check(spec, m) for spec in m.models.values()]


def _mark(flag: bool) -> Text:
    return Text("yes", style="green") if flag else Text("no", style="red")


def render_verify_table(results: list[VerifyResult]) -> Table:
    table = Table(title="streamproc models")
    for column in ("model", "distribution", "file", "shipped", "prepared", "runs", "input"):
        table.add_column(column)
    table.add_column("message", overflow="fold")
    for r in results:
        table.add_row(
            r.name,
            f"{r.distribution} {r.version}",
            Text(r.file),
            _mark(r.shipped_ok),
            _mark(r.prepared_ok),
            _mark(r.loads),
            "x".join(str(d) for d in r.input_shape),
            Text(r.message, style="yellow" if r.ok and not r.installed else "" if r.ok else "red"),
        )
    return table
