"""Errors of the replicated collections (not Rekognition errors: those are raised as such)."""

from __future__ import annotations

__all__ = ["ClusterError", "RecordError", "UnknownRecordVersion"]


class ClusterError(RuntimeError):
    """The collection log cannot be used (stream missing or misconfigured, NATS down)."""


class RecordError(ClusterError):
    """A record of the collection log cannot be decoded or applied by this node."""


class UnknownRecordVersion(RecordError):
    """A record written by a newer streamproc (or a face model this node does not know)."""
