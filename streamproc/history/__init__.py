"""The visit history a console shows: every VisitorArrived / Identified / Left kept as one
row per visit in its own SQLite file, with the visit's snapshot as a JPEG file.

:class:`VisitHistory` stores and queries; :class:`HistorySink` feeds it from the runner's
event sinks without blocking the event loop.
"""

from .errors import ForeignHistoryError, HistoryError, HistoryVersionError
from .schema import APPLICATION_ID, DB_FILENAME, SCHEMA_VERSION, SNAPSHOT_DIRNAME
from .sink import HistorySink
from .store import (
    DEFAULT_MAX_BYTES,
    DEFAULT_RETENTION_DAYS,
    MAX_PAGE,
    Visit,
    VisitHistory,
    check_event,
    check_visitor_id,
)

__all__ = [
    "APPLICATION_ID",
    "DB_FILENAME",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_RETENTION_DAYS",
    "ForeignHistoryError",
    "HistoryError",
    "HistorySink",
    "HistoryVersionError",
    "MAX_PAGE",
    "SCHEMA_VERSION",
    "SNAPSHOT_DIRNAME",
    "Visit",
    "VisitHistory",
    "check_event",
    "check_visitor_id",
]
