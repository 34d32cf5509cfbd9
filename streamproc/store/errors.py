"""Errors about the store file itself, as opposed to Rekognition request errors.

A store that cannot be opened is an operator problem (wrong path, downgrade, someone
else's database), not a bad request, so these do not derive from RekognitionError.
"""

from __future__ import annotations

__all__ = ["StoreError", "ForeignStoreError", "ReplicaStoreError", "StoreVersionError"]


class StoreError(Exception):
    """The collection store cannot be opened or used."""


class ForeignStoreError(StoreError):
    """The file is not a streamproc store (not SQLite, or another application's SQLite db)."""


class StoreVersionError(StoreError):
    """The store was written by a newer streamproc whose schema this version cannot read."""


class ReplicaStoreError(StoreError):
    """A plain write to a store that replicates a collection log: write through the log."""
