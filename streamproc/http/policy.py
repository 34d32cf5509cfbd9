"""IAM-style identity policies: which user may call which operation on which resource.

Evaluation follows IAM for identity-based policies: an explicit ``Deny`` that matches wins,
otherwise a matching ``Allow`` grants, otherwise the request is denied (implicit deny; no
policy at all denies everything). ``Action`` and ``Resource`` are a string or a list of
strings with the wildcards ``*`` (any run of characters, ``:`` and ``/`` included) and ``?``
(exactly one character). Actions (``rekognition:<Operation>``) compare case-insensitively,
resources case-sensitively, as in IAM.

Only ``Effect``, ``Action``, ``Resource`` and ``Sid`` are understood. Anything else
(``Condition``, ``NotAction``, ``Principal``...) is refused when the policy is loaded rather
than ignored, since ignoring a ``Condition`` would turn a restricted Allow into a broad one.

Resources (:func:`resource_arn`), per the reference's permissions table:

- operations on a collection (CreateCollection, DeleteCollection, DescribeCollection,
  IndexFaces, ListFaces, DeleteFaces, SearchFaces, SearchFacesByImage):
  ``arn:aws:rekognition:<region>:<account>:collection/<CollectionId>``;
- ListCollections: ``arn:aws:rekognition:<region>:<account>:*``;
- image operations without a collection (DetectFaces, CompareFaces, DetectLabels,
  DetectModerationLabels, RecognizeCelebrities, GetCelebrityInfo): ``*``.

  The reference's permissions table lists a collection ARN for DetectFaces and
  CompareFaces too; this is a deliberate difference, since no collection is involved in
  those calls. A policy grants them with ``"Resource": "*"`` (a collection pattern such as
  ``...:collection/*`` does not match ``*``), which is also how IAM treats them today.

- operations added by plugins: the collection ARN when the request names a
  ``CollectionId``, else ``*``.

Note that policies name collections ``arn:aws:rekognition:...`` (as IAM does) while the
``CollectionArn`` in responses follows the reference's examples, ``aws:rekognition:...``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, field_validator

from streamproc.errors import InvalidParameterException

__all__ = [
    "COLLECTION_OPERATIONS",
    "IMAGE_OPERATIONS",
    "Policy",
    "PolicyStatement",
    "action_name",
    "is_allowed",
    "resource_arn",
]

COLLECTION_OPERATIONS = frozenset(
    {
        "CreateCollection",
        "DeleteCollection",
        "DescribeCollection",
        "IndexFaces",
        "ListFaces",
        "DeleteFaces",
        "SearchFaces",
        "SearchFacesByImage",
    }
)
IMAGE_OPERATIONS = frozenset(
    {
        "DetectFaces",
        "CompareFaces",
        "DetectLabels",
        "DetectModerationLabels",
        "RecognizeCelebrities",
        "GetCelebrityInfo",
    }
)
_COLLECTION_ID_RE = re.compile(r"^[a-zA-Z0-9_.\-]{1,255}$")
POLICY_VERSIONS = ("2012-10-17", "2008-10-17")


def _one_or_many(value: Any) -> str:
    """Pick the union branch up front so a mistake reports one error, not one per branch."""
    return "many" if isinstance(value, list) else "one"


StringOrList = Annotated[
    Annotated[str, Tag("one")] | Annotated[list[str], Tag("many")],
    Discriminator(_one_or_many),
]


class PolicyStatement(BaseModel):
    """One statement: Effect on Action(s) over Resource(s)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    Effect: Literal["Allow", "Deny"]
    Action: StringOrList
    Resource: StringOrList
    Sid: str | None = None

    @property
    def actions(self) -> list[str]:
        return [self.Action] if isinstance(self.Action, str) else list(self.Action)

    @property
    def resources(self) -> list[str]:
        return [self.Resource] if isinstance(self.Resource, str) else list(self.Resource)

    def matches(self, action: str, resource: str) -> bool:
        """Whether this statement applies to the action on the resource."""
        return any(_pattern(p, True).match(action) for p in self.actions) and any(
            _pattern(p, False).match(resource) for p in self.resources
        )


class Policy(BaseModel):
    """An identity-based policy document (the IAM JSON grammar, restricted as above)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    Version: str = "2012-10-17"
    Id: str | None = None
    Statement: Annotated[
        Annotated[PolicyStatement, Tag("one")] | Annotated[list[PolicyStatement], Tag("many")],
        Discriminator(_one_or_many),
    ]

    @field_validator("Version")
    @classmethod
    def _known_version(cls, value: str) -> str:
        if value not in POLICY_VERSIONS:
            raise ValueError(f"Version must be one of {', '.join(POLICY_VERSIONS)}")
        return value

    @property
    def statements(self) -> list[PolicyStatement]:
        return [self.Statement] if isinstance(self.Statement, PolicyStatement) else self.Statement


@lru_cache(maxsize=1024)
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM wildcards as an anchored regex: ``*`` any run (``:`` and ``/`` too), ``?`` one."""
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile("".join(parts) + r"\Z", flags)


def action_name(operation: str) -> str:
    """The IAM action for an operation, e.g. ``rekognition:DetectFaces``."""
    return f"rekognition:{operation}"


def is_allowed(policy: Policy | None, action: str, resource: str) -> bool:
    """IAM's decision: a matching Deny wins, then a matching Allow; otherwise deny."""
    if policy is None:
        return False
    allowed = False
    for statement in policy.statements:
        if statement.matches(action, resource):
            if statement.Effect == "Deny":
                return False
            allowed = True
    return allowed


def resource_arn(operation: str, request: Mapping[str, Any], *, region: str, account: str) -> str:
    """The resource an operation acts on, as policies name it (see the module docstring).

    A collection operation whose ``CollectionId`` is missing or not a valid collection id
    raises ``InvalidParameterException`` (the operation would refuse it anyway), so a crafted
    id never reaches policy matching.
    """
    prefix = f"arn:aws:rekognition:{region}:{account}"
    if operation == "ListCollections":
        return f"{prefix}:*"
    if operation in IMAGE_OPERATIONS:
        return "*"
    collection_id = request.get("CollectionId")
    if operation not in COLLECTION_OPERATIONS and collection_id is None:
        return "*"
    if not isinstance(collection_id, str) or not _COLLECTION_ID_RE.match(collection_id):
        raise InvalidParameterException(
            f"{operation}: CollectionId must be 1 to 255 characters of [a-zA-Z0-9_.-]"
        )
    return f"{prefix}:collection/{collection_id}"
