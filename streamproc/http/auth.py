"""The users of ``--auth FILE``: access keys, their secrets and their identity policies.

The file is JSON::

    {"Users": [{"UserName": "door", "AccessKeyId": "AKIA...", "SecretAccessKey": "...",
                "Policy": {"Version": "2012-10-17", "Statement": [
                  {"Effect": "Allow", "Action": "rekognition:SearchFacesByImage",
                   "Resource": "arn:aws:rekognition:*:*:collection/household"}]}}]}

A user without ``Policy`` may call nothing (IAM's implicit deny). Unknown keys anywhere are
errors, so a typo such as ``"Polcy"`` fails at start-up instead of silently denying (or, for
``Condition``, silently widening) access. Secrets are ``SecretStr``: reprs, logs and the
load errors never show them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    model_validator,
)

from streamproc.errors import AccessDeniedException
from streamproc.http.policy import Policy as IdentityPolicy
from streamproc.http.policy import action_name, is_allowed, resource_arn

__all__ = ["AuthFile", "AuthUser", "Authenticator", "load_auth_file"]

# Tags of the one-or-list unions in policy.py: they show up in validation error locations.
_UNION_TAGS = frozenset({"one", "many"})


class AuthUser(BaseModel):
    """One user: an access key pair and what it may do."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    UserName: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+=,.@\-]+$")
    ]
    # No "/", "," or spaces: the id travels inside the Authorization header's Credential.
    AccessKeyId: Annotated[
        str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")
    ]
    SecretAccessKey: SecretStr = Field(min_length=1)
    Policy: IdentityPolicy | None = None


class AuthFile(BaseModel):
    """The whole ``--auth`` file; user names and access key ids are unique."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    Users: list[AuthUser]

    @model_validator(mode="after")
    def _unique(self) -> AuthFile:
        names: dict[str, int] = {}
        keys: dict[str, int] = {}
        for index, user in enumerate(self.Users):
            # IAM user names are unique regardless of case; access key ids exactly.
            for field, seen, value in (
                ("UserName", names, user.UserName.casefold()),
                ("AccessKeyId", keys, user.AccessKeyId),
            ):
                if value in seen:
                    raise ValueError(
                        f"Users[{index}].{field} duplicates Users[{seen[value]}].{field}"
                    )
                seen[value] = index
        return self


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects with a repeated key are refused: the last one silently winning is a trap."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r} in an object")
        result[key] = value
    return result


def _key_path(loc: tuple[int | str, ...], data: Any) -> str:
    """``Users[0].Policy.Statement[1].Effect`` from a pydantic location, without union tags."""
    path = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            continue
        is_key = isinstance(node, dict) and part in node
        if part in _UNION_TAGS and not is_key:
            continue
        path += f".{part}" if path else part
        node = node[part] if is_key else None
    return path


def _describe(errors: list[Any], data: Any) -> str:
    """One line per problem: where (key path) and what; never the offending value."""
    problems = []
    for error in errors:
        message = str(error["msg"]).removeprefix("Value error, ")
        path = _key_path(tuple(error["loc"]), data)
        problems.append(f"{path}: {message}" if path else message)
    return "; ".join(dict.fromkeys(problems))


def load_auth_file(path: str | os.PathLike[str]) -> AuthFile:
    """Read and validate an auth file; any problem is a ``ValueError`` naming file and key."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ValueError(f"{path}: cannot read the auth file: {reason}") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError as exc:
        raise ValueError(f"{path}: invalid JSON: {exc}") from None
    problems = ""
    try:
        return AuthFile.model_validate(data)
    except ValidationError as exc:
        # Built from locations and messages only: pydantic's own text quotes input values,
        # which may be secrets.
        problems = _describe(exc.errors(include_url=False, include_input=False), data)
    raise ValueError(f"{path}: invalid auth file: {problems}")


class Authenticator:
    """Access-key lookups for signature checks, and policy checks per operation."""

    def __init__(self, auth: AuthFile) -> None:
        self._by_key: dict[str, AuthUser] = {user.AccessKeyId: user for user in auth.Users}

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Authenticator:
        """An authenticator for the users of an ``--auth`` file (see :func:`load_auth_file`)."""
        return cls(load_auth_file(path))

    def __len__(self) -> int:
        return len(self._by_key)

    def user_for_key(self, access_key_id: str) -> AuthUser | None:
        """The user owning an access key id, or ``None`` when it is unknown."""
        return self._by_key.get(access_key_id)

    def secret_for(self, access_key_id: str) -> str | None:
        """The secret for :func:`streamproc.http.sigv4.verify`; ``None`` when unknown."""
        user = self._by_key.get(access_key_id)
        return None if user is None else user.SecretAccessKey.get_secret_value()

    def authorize(
        self,
        user: AuthUser,
        operation: str,
        request: Mapping[str, Any],
        region: str,
        account: str,
    ) -> None:
        """Raise ``AccessDeniedException`` unless the user's policy allows the operation."""
        arn = resource_arn(operation, request, region=region, account=account)
        action = action_name(operation)
        if not is_allowed(user.Policy, action, arn):
            raise AccessDeniedException(
                f"User: {user.UserName} is not authorized to perform: {action} on resource: {arn}"
            )
