"""Celebrity recognition: a catalog of named people's SFace embeddings, built from photos.

``catalog`` is the model and matching, ``loader`` the file format and configuration
(``STREAMPROC_CELEBRITIES``), ``builder`` turns a folder of named photos into a catalog,
``bundled`` says how the shipped catalog was made (the shapes live in streamproc.shapes).
"""

from streamproc.celebrities.catalog import (
    Catalog,
    CatalogError,
    Celebrity,
    CelebrityMatch,
    celebrity_id,
)
from streamproc.celebrities.loader import (
    CATALOG_ENV,
    bundled_catalog_path,
    catalog_path,
    load_catalog,
    save_catalog,
)

__all__ = [
    "CATALOG_ENV",
    "Catalog",
    "CatalogError",
    "Celebrity",
    "CelebrityMatch",
    "bundled_catalog_path",
    "catalog_path",
    "celebrity_id",
    "load_catalog",
    "save_catalog",
]
