"""IAM-style policy evaluation, resource ARNs, the --auth file and authorization."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamproc.errors import AccessDeniedException, InvalidParameterException
from streamproc.http.auth import Authenticator, AuthFile, load_auth_file
from streamproc.http.policy import Policy, is_allowed, resource_arn

REGION = "us-east-1"
ACCOUNT = "123456789012"
HOUSEHOLD = f"arn:aws:rekognition:{REGION}:{ACCOUNT}:collection/household"


def policy(*statements: dict[str, Any]) -> Policy:
    return Policy.model_validate({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str], resource: str | list[str] = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def deny(action: str | list[str], resource: str | list[str] = "*") -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource}


def test_no_policy_and_no_matching_statement_deny() -> None:
    assert not is_allowed(None, "rekognition:DetectFaces", "*")
    assert not is_allowed(policy(), "rekognition:DetectFaces", "*")
    only_labels = policy(allow("rekognition:DetectLabels"))
    assert not is_allowed(only_labels, "rekognition:DetectFaces", "*")
    assert is_allowed(only_labels, "rekognition:DetectLabels", "*")


def test_explicit_deny_wins_over_allow_in_any_order() -> None:
    everything = allow("rekognition:*")
    no_delete = deny("rekognition:DeleteCollection", HOUSEHOLD)
    for statements in ((everything, no_delete), (no_delete, everything)):
        p = policy(*statements)
        assert not is_allowed(p, "rekognition:DeleteCollection", HOUSEHOLD)
        assert is_allowed(p, "rekognition:DeleteCollection", HOUSEHOLD.replace("household", "x"))
        assert is_allowed(p, "rekognition:IndexFaces", HOUSEHOLD)


def test_star_wildcard_spans_colons_and_slashes() -> None:
    p = policy(allow("rekognition:Search*", "arn:aws:rekognition:*"))
    assert is_allowed(p, "rekognition:SearchFacesByImage", HOUSEHOLD)
    assert is_allowed(p, "rekognition:SearchFaces", HOUSEHOLD)
    assert not is_allowed(p, "rekognition:IndexFaces", HOUSEHOLD)
    assert not is_allowed(p, "rekognition:SearchFaces", "*")
    assert is_allowed(policy(allow("*")), "rekognition:CreateCollection", HOUSEHOLD)
    any_collection = policy(allow("rekognition:*", "arn:aws:rekognition:*:*:collection/*"))
    assert is_allowed(any_collection, "rekognition:ListFaces", HOUSEHOLD)
    assert not is_allowed(any_collection, "rekognition:DetectFaces", "*")


def test_question_mark_matches_exactly_one_character() -> None:
    p = policy(allow("rekognition:ListFaces", "arn:aws:rekognition:*:*:collection/cam?"))
    assert is_allowed(p, "rekognition:ListFaces", HOUSEHOLD.replace("household", "cam1"))
    assert not is_allowed(p, "rekognition:ListFaces", HOUSEHOLD.replace("household", "cam"))
    assert not is_allowed(p, "rekognition:ListFaces", HOUSEHOLD.replace("household", "cam12"))


def test_other_characters_are_literal() -> None:
    p = policy(allow("rekognition:ListFaces", "arn:aws:rekognition:*:*:collection/a.c[d]"))
    assert is_allowed(p, "rekognition:ListFaces", HOUSEHOLD.replace("household", "a.c[d]"))
    assert not is_allowed(p, "rekognition:ListFaces", HOUSEHOLD.replace("household", "abcd"))


def test_actions_are_case_insensitive_resources_case_sensitive() -> None:
    p = policy(allow("rekognition:detectfaces"), allow("REKOGNITION:LISTFACES", HOUSEHOLD))
    assert is_allowed(p, "rekognition:DetectFaces", "*")
    assert is_allowed(p, "rekognition:ListFaces", HOUSEHOLD)
    assert not is_allowed(p, "rekognition:ListFaces", HOUSEHOLD.replace("household", "Household"))


def test_list_forms_and_single_statement() -> None:
    p = policy(
        allow(
            ["rekognition:DetectFaces", "rekognition:SearchFacesByImage"],
            ["*", HOUSEHOLD],
        )
    )
    assert is_allowed(p, "rekognition:DetectFaces", "*")
    assert is_allowed(p, "rekognition:SearchFacesByImage", HOUSEHOLD)
    assert not is_allowed(p, "rekognition:IndexFaces", HOUSEHOLD)
    single = Policy.model_validate({"Statement": allow("rekognition:DetectFaces")})
    assert single.Version == "2012-10-17"
    assert is_allowed(single, "rekognition:DetectFaces", "*")
    assert not is_allowed(single, "rekognition:CompareFaces", "*")


@pytest.mark.parametrize(
    ("operation", "request_", "expected"),
    [
        ("CreateCollection", {"CollectionId": "household"}, HOUSEHOLD),
        ("DeleteCollection", {"CollectionId": "household"}, HOUSEHOLD),
        ("DescribeCollection", {"CollectionId": "household"}, HOUSEHOLD),
        ("IndexFaces", {"CollectionId": "household", "Image": {}}, HOUSEHOLD),
        ("ListFaces", {"CollectionId": "household"}, HOUSEHOLD),
        ("DeleteFaces", {"CollectionId": "household", "FaceIds": []}, HOUSEHOLD),
        ("SearchFaces", {"CollectionId": "household", "FaceId": "x"}, HOUSEHOLD),
        ("SearchFacesByImage", {"CollectionId": "household"}, HOUSEHOLD),
        ("ListCollections", {}, f"arn:aws:rekognition:{REGION}:{ACCOUNT}:*"),
        ("DetectFaces", {"Image": {}}, "*"),
        ("CompareFaces", {"SourceImage": {}, "TargetImage": {}}, "*"),
        ("DetectLabels", {"Image": {}}, "*"),
        ("DetectModerationLabels", {"Image": {}}, "*"),
        ("RecognizeCelebrities", {"Image": {}}, "*"),
        ("GetCelebrityInfo", {"Id": "1"}, "*"),
        ("DetectFaces", {"Image": {}, "CollectionId": "household"}, "*"),
        ("SomePluginOperation", {"CollectionId": "household"}, HOUSEHOLD),
        ("SomePluginOperation", {}, "*"),
    ],
)
def test_resource_arn_per_operation(
    operation: str, request_: dict[str, Any], expected: str
) -> None:
    assert resource_arn(operation, request_, region=REGION, account=ACCOUNT) == expected


@pytest.mark.parametrize("collection_id", [None, 5, "", "house*", "a/b", "x" * 256])
def test_collection_operations_need_a_valid_collection_id(collection_id: Any) -> None:
    request = {} if collection_id is None else {"CollectionId": collection_id}
    with pytest.raises(InvalidParameterException, match="CollectionId"):
        resource_arn("IndexFaces", request, region=REGION, account=ACCOUNT)


def test_policy_refuses_elements_it_does_not_understand() -> None:
    with pytest.raises(ValueError, match="Condition"):
        Policy.model_validate(
            {"Statement": {**allow("rekognition:*"), "Condition": {"Bool": {"x": "true"}}}}
        )
    with pytest.raises(ValueError, match="Version"):
        Policy.model_validate({"Version": "2012-10-18", "Statement": []})


# --- the --auth file and the Authenticator ---------------------------------------------

SECRET = "s3cr3t-Value-never-shown"
DOOR = {
    "UserName": "door",
    "AccessKeyId": "AKIADOOR",
    "SecretAccessKey": SECRET,
    "Policy": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "rekognition:SearchFacesByImage",
                "Resource": "arn:aws:rekognition:*:*:collection/household",
            }
        ],
    },
}


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "auth.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_authenticator_lookups_and_secret_hiding(tmp_path: Path) -> None:
    auth = Authenticator.from_file(write(tmp_path, {"Users": [DOOR]}))
    user = auth.user_for_key("AKIADOOR")
    assert user is not None and user.UserName == "door"
    assert auth.user_for_key("AKIAOTHER") is None
    assert auth.secret_for("AKIADOOR") == SECRET
    assert auth.secret_for("AKIAOTHER") is None
    assert SECRET not in repr(user) and SECRET not in str(user)


def test_authorize_allows_and_denies_with_aws_message() -> None:
    auth = Authenticator(AuthFile.model_validate({"Users": [DOOR]}))
    user = auth.user_for_key("AKIADOOR")
    assert user is not None
    auth.authorize(user, "SearchFacesByImage", {"CollectionId": "household"}, REGION, ACCOUNT)
    with pytest.raises(AccessDeniedException) as info:
        auth.authorize(user, "SearchFacesByImage", {"CollectionId": "staff"}, REGION, ACCOUNT)
    assert info.value.message == (
        "User: door is not authorized to perform: rekognition:SearchFacesByImage "
        f"on resource: arn:aws:rekognition:{REGION}:{ACCOUNT}:collection/staff"
    )
    with pytest.raises(AccessDeniedException, match="rekognition:DetectFaces on resource: \\*$"):
        auth.authorize(user, "DetectFaces", {"Image": {}}, REGION, ACCOUNT)


def test_user_without_policy_may_do_nothing() -> None:
    no_policy = {k: v for k, v in DOOR.items() if k != "Policy"}
    auth = Authenticator(AuthFile.model_validate({"Users": [no_policy]}))
    user = auth.user_for_key("AKIADOOR")
    assert user is not None and user.Policy is None
    with pytest.raises(AccessDeniedException):
        auth.authorize(user, "ListCollections", {}, REGION, ACCOUNT)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ("{not json", "invalid JSON at line 1 column 2"),
        (
            {"Users": [{**DOOR, "Policy": {"Statement": [{**allow("x"), "Effect": "Maybe"}]}}]},
            "Users[0].Policy.Statement[0].Effect",
        ),
        (
            {"Users": [{**DOOR, "Policy": {"Statement": {**allow("x"), "Effect": "Maybe"}}}]},
            "Users[0].Policy.Statement.Effect",
        ),
        (
            {"Users": [{**DOOR, "Policy": {"Statement": [{**allow("x"), "Action": 5}]}}]},
            "Users[0].Policy.Statement[0].Action",
        ),
        ({"Users": [{**DOOR, "Polcy": {}}]}, "Users[0].Polcy"),
        (
            {"Users": [{k: v for k, v in DOOR.items() if k != "SecretAccessKey"}]},
            "Users[0].SecretAccessKey: Field required",
        ),
        (
            {"Users": [DOOR, {**DOOR, "UserName": "other"}]},
            "Users[1].AccessKeyId duplicates Users[0].AccessKeyId",
        ),
        (
            {"Users": [DOOR, {**DOOR, "AccessKeyId": "AKIA2", "UserName": "DOOR"}]},
            "Users[1].UserName duplicates Users[0].UserName",
        ),
        ({"Users": [{**DOOR, "AccessKeyId": "AKIA/1"}]}, "Users[0].AccessKeyId"),
        ('{"Users": [], "Users": []}', "duplicate key 'Users'"),
    ],
)
def test_bad_auth_files_name_the_file_and_key(tmp_path: Path, data: Any, where: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ValueError) as info:
        load_auth_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert where in message
    assert SECRET not in message


def test_bad_secret_type_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, {"Users": [{**DOOR, "SecretAccessKey": 987654321987}]})
    with pytest.raises(ValueError, match="Users\\[0\\].SecretAccessKey") as info:
        load_auth_file(path)
    assert "987654321987" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_missing_auth_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the auth file"):
        load_auth_file(tmp_path / "absent.json")
