"""Errors about the visit-history files, as opposed to bad requests.

They derive from the collection store's errors, so whatever already reports an unusable
store (wrong path, downgrade, someone else's database) reports an unusable history too.
"""

from __future__ import annotations

from streamproc.store.errors import ForeignStoreError, StoreError, StoreVersionError

__all__ = ["HistoryError", "ForeignHistoryError", "HistoryVersionError"]


class HistoryError(StoreError):
    """The visit history cannot be opened or used."""


class ForeignHistoryError(ForeignStoreError, HistoryError):
    """The file is not a visit history (not SQLite, or another application's SQLite db)."""


class HistoryVersionError(StoreVersionError, HistoryError):
    """The history was written by a newer streamproc whose schema this version cannot read."""
