"""What a console user may do: the same IAM-style policy as the API, with ``streamproc:``
actions for the pages that call no Rekognition operation.

The console calls Rekognition operations on the user's behalf, so those are governed by
the usual ``rekognition:<Operation>`` actions and resources (``streamproc.http.policy``).
The pages of its own have these actions (README, "The web console"):

========================  =====================================================  ==============
action                    what it allows                                         resource
========================  =====================================================  ==============
``streamproc:ViewStreams``   the streams' status on the home page, the live view   stream ARN
``streamproc:ListVisits``    the visit history and its snapshots                   stream ARN
``streamproc:NameVisit``     naming a visit (IndexFaces on the collection as well)  stream ARN
``streamproc:ViewMetrics``   the metrics page                                      ``*``
========================  =====================================================  ==============

A stream's ARN is ``arn:aws:rekognition:<region>:<account>:streamprocessor/<stream id>``,
as Rekognition names its stream processors. With auth off (loopback), everything is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streamproc.errors import AccessDeniedException
from streamproc.http.policy import action_name, is_allowed, resource_arn

__all__ = ["CONSOLE_ACTIONS", "ConsoleUser", "stream_arn"]

CONSOLE_ACTIONS = {
    "streamproc:ViewStreams": "the streams' status and the live view",
    "streamproc:ListVisits": "the visit history and its snapshots",
    "streamproc:NameVisit": "naming a visitor (with rekognition:IndexFaces on the collection)",
    "streamproc:ViewMetrics": "the metrics page",
}


def stream_arn(stream_id: str, *, region: str, account: str) -> str:
    return f"arn:aws:rekognition:{region}:{account}:streamprocessor/{stream_id}"


@dataclass(frozen=True)
class ConsoleUser:
    """The signed-in user; ``auth_user`` is None when auth is off (everything allowed)."""

    name: str
    access_key_id: str
    auth_user: Any | None  # streamproc.http.auth.AuthUser
    region: str
    account: str

    def can(self, action: str, resource: str = "*") -> bool:
        if self.auth_user is None:
            return True
        if action not in CONSOLE_ACTIONS and not action.startswith("rekognition:"):
            raise ValueError(f"unknown console action {action}")
        return is_allowed(self.auth_user.Policy, action, resource)

    def can_operation(self, operation: str, request: Mapping[str, Any]) -> bool:
        arn = resource_arn(operation, request, region=self.region, account=self.account)
        return self.can(action_name(operation), arn)

    def can_stream(self, action: str, stream_id: str) -> bool:
        return self.can(action, stream_arn(stream_id, region=self.region, account=self.account))

    def require(self, action: str, resource: str = "*") -> None:
        """Raise ``AccessDeniedException`` (with IAM's message) unless allowed."""
        if not self.can(action, resource):
            raise AccessDeniedException(
                f"User: {self.name} is not authorized to perform: {action} on resource: "
                f"{resource}"
            )

    def require_stream(self, action: str, stream_id: str) -> None:
        self.require(action, stream_arn(stream_id, region=self.region, account=self.account))
