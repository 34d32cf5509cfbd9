"""Where the catalog comes from and how it is stored: one JSON file, read once per process.

``STREAMPROC_CELEBRITIES`` names the catalog to use; without it the bundled one
(``models/celebrities.json`` in the repository, ``streamproc/celebrities/celebrities.json``
in a wheel) is used. JSON keeps the file diffable and hand-editable (Urls, Names).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from streamproc.celebrities.catalog import FACE_MODEL, Catalog, CatalogError, Celebrity
from streamproc.settings import CATALOG_ENV, Settings

__all__ = [
    "CATALOG_ENV",
    "FORMAT_VERSION",
    "bundled_catalog_path",
    "catalog_path",
    "load_catalog",
    "save_catalog",
    "catalog_to_dict",
    "catalog_from_dict",
]

FORMAT_VERSION = 1
#: Embeddings are stored with 6 decimals: far below SFace's own noise, half the file size.
_DECIMALS = 6
#: An embedding list in indented JSON (a quote inside a string value is escaped, so a
#: Name cannot contain this).
_EMBEDDING_LIST = re.compile(r'("Embedding": )(\[[^\]]*\])')


def bundled_catalog_path() -> Path:
    """The wheel's copy first, then the repository's ``models/celebrities.json``."""
    candidates = (
        Path(__file__).parent / "celebrities.json",
        Path(__file__).resolve().parents[2] / "models" / "celebrities.json",
    )
    for path in candidates:
        if path.is_file():
            return path
    return candidates[-1]


def catalog_path() -> Path:
    """The configured catalog: ``$STREAMPROC_CELEBRITIES`` or the bundled file."""
    configured = Settings.default("celebrities")
    return Path(configured) if configured is not None else bundled_catalog_path()


def catalog_to_dict(catalog: Catalog) -> dict[str, Any]:
    return {
        "FormatVersion": FORMAT_VERSION,
        "FaceModel": FACE_MODEL,
        "Celebrities": [
            {
                "Id": c.id,
                "Name": c.name,
                "Urls": list(c.urls),
                "Faces": [
                    {
                        **({"Source": src} if src else {}),
                        "Embedding": [round(float(v), _DECIMALS) for v in vec],
                    }
                    for vec, src in zip(
                        c.embeddings, c.sources or [""] * len(c.embeddings), strict=True
                    )
                ],
            }
            for c in catalog
        ],
    }


def catalog_from_dict(data: Any, *, source: str = "catalog") -> Catalog:
    """Validate a parsed catalog file; every problem is a CatalogError naming ``source``."""
    if not isinstance(data, dict) or not isinstance(data.get("Celebrities"), list):
        raise CatalogError(f"{source}: expected an object with a Celebrities list")
    if data.get("FormatVersion") != FORMAT_VERSION:
        raise CatalogError(
            f"{source}: FormatVersion {data.get('FormatVersion')!r} is not {FORMAT_VERSION}"
        )
    if data.get("FaceModel") != FACE_MODEL:
        raise CatalogError(
            f"{source}: embeddings from FaceModel {data.get('FaceModel')!r}, this streamproc "
            f"uses {FACE_MODEL}: rebuild it with `streamproc celebrities build`"
        )
    people = []
    for i, entry in enumerate(data["Celebrities"]):
        where = f"{source}: Celebrities[{i}]"
        try:
            faces = entry["Faces"]
            urls = entry.get("Urls", [])
            if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
                raise CatalogError(f"{where}.Urls: expected a list of strings")
            people.append(
                Celebrity(
                    id=str(entry["Id"]),
                    name=str(entry["Name"]),
                    urls=tuple(urls),
                    embeddings=np.array([f["Embedding"] for f in faces], dtype=np.float32),
                    sources=tuple(str(f.get("Source", "")) for f in faces),
                )
            )
        except CatalogError as exc:
            raise CatalogError(f"{where}: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise CatalogError(f"{where}: malformed entry ({type(exc).__name__}: {exc})") from None
    return Catalog(people, source=source)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and validate a catalog file (default: the configured one)."""
    path = Path(path) if path is not None else catalog_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(
            f"cannot read the celebrity catalog {path}: {exc.strerror} (set {CATALOG_ENV} "
            "to a file made by `streamproc celebrities build`)"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path}: not valid JSON: {exc}") from None
    return catalog_from_dict(data, source=str(path))


def _dumps(data: dict[str, Any]) -> str:
    """Indented JSON with each embedding on one line: readable diffs, no 128-line vectors."""
    text = json.dumps(data, indent=1, ensure_ascii=False)
    return _EMBEDDING_LIST.sub(lambda m: m.group(1) + re.sub(r"\s+", "", m.group(2)), text) + "\n"


def save_catalog(catalog: Catalog, path: str | Path) -> Path:
    """Write atomically, so a running service never reads a half-written catalog."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(_dumps(catalog_to_dict(catalog)), encoding="utf-8")
    tmp.replace(path)
    return path
