"""Image.S3Object: directory buckets and a real S3 server (moto) on loopback, through the client.

Real photos are copied into temporary bucket directories and uploaded to a moto server
started for this module; every error is checked for its Rekognition class, for naming
the requested object, and for revealing neither server paths nor credentials.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamproc import errors
from streamproc.buckets import MAX_S3_IMAGE_BYTES, Buckets, load_buckets
from streamproc.client import Client
from streamproc.images import load_image
from streamproc.operations import OperationContext
from streamproc.runtime.deployment import DeploymentError, parse_deployment
from streamproc.runtime.runtime import Runtime
from streamproc.settings import Settings
from streamproc.shapes import Image, S3Object
from tests.conftest import DATA

OBAMA = DATA / "faces/barack_obama/4.jpg"
BIDEN = DATA / "faces/joe_biden/1.jpg"
ACCESS_KEY = "AKIASTREAMPROCTEST01"
SECRET_KEY = "s3cr3t-streamproc-never-shown"
REAL_BUCKET = "real-photos"


def s3(bucket: str, name: str, version: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"Bucket": bucket, "Name": name}
    if version is not None:
        obj["Version"] = version
    return {"S3Object": obj}


def assert_discreet(exc: pytest.ExceptionInfo[BaseException], *secrets: str) -> None:
    """The message names no server detail: credentials, directories, endpoints."""
    message = str(exc.value)
    for secret in (ACCESS_KEY, SECRET_KEY, *secrets):
        assert secret not in message, f"{secret!r} leaked into {message!r}"


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<root>/photos`` is the bucket; ``<root>/secret.jpg`` lies just outside it."""
    root = tmp_path_factory.mktemp("buckets")
    people = root / "photos" / "people"
    people.mkdir(parents=True)
    shutil.copy(OBAMA, people / "obama.jpg")
    shutil.copy(BIDEN, people / "biden.jpg")
    shutil.copy(OBAMA, root / "secret.jpg")
    (root / "outside").mkdir()
    shutil.copy(OBAMA, root / "outside" / "obama.jpg")
    return root


@pytest.fixture(scope="module")
def bucket(root: Path) -> Path:
    return root / "photos"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A real S3-protocol server (moto) in a subprocess on a free loopback port."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"moto server did not start: {err[-2000:]}")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


@pytest.fixture(scope="module")
def versions(moto_endpoint: str) -> dict[str, str]:
    """A versioned bucket with two versions of people/portrait.jpg: Obama, then Biden."""
    import boto3

    s3_admin = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    s3_admin.create_bucket(Bucket=REAL_BUCKET)
    s3_admin.put_bucket_versioning(
        Bucket=REAL_BUCKET, VersioningConfiguration={"Status": "Enabled"}
    )
    key = "people/portrait.jpg"
    v1 = s3_admin.put_object(Bucket=REAL_BUCKET, Key=key, Body=OBAMA.read_bytes())["VersionId"]
    v2 = s3_admin.put_object(Bucket=REAL_BUCKET, Key=key, Body=BIDEN.read_bytes())["VersionId"]
    s3_admin.put_object(Bucket=REAL_BUCKET, Key="albums/2024/obama.jpg", Body=OBAMA.read_bytes())
    s3_admin.close()
    assert v1 != v2
    return {"obama": v1, "biden": v2}


def _s3_config(endpoint: str, **extra: Any) -> dict[str, Any]:
    return {
        "endpoint_url": endpoint,
        "bucket": REAL_BUCKET,
        "region": "us-east-1",
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
        **extra,
    }


@pytest.fixture(scope="module")
def bucket_config(bucket: Path, moto_endpoint: str, versions: dict[str, str]) -> dict[str, Any]:
    return {
        "photos": {"path": str(bucket)},
        "minio": _s3_config(moto_endpoint),
        "albums": _s3_config(moto_endpoint, prefix="albums/2024/"),
        "ghost": _s3_config(moto_endpoint, bucket="no-such-bucket"),
        "down": _s3_config(f"http://127.0.0.1:{_free_port()}"),
    }


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, bucket_config: dict[str, Any]
) -> Iterator[Client]:
    """One client with directory and S3 buckets (and so one set of models) for the module."""
    client = Client(store=tmp_path_factory.mktemp("store"), buckets=bucket_config)
    yield client
    client.close()


@pytest.fixture(scope="module")
def buckets(client: Client) -> Buckets:
    return client.engine.context.buckets


# -- directory buckets through the client --------------------------------------------


def test_detect_faces_from_a_directory_bucket_matches_bytes(client: Client) -> None:
    from_bucket = client.detect_faces(Image=s3("photos", "people/obama.jpg"))
    from_bytes = client.detect_faces(Image={"Bytes": OBAMA.read_bytes()})
    assert len(from_bucket["FaceDetails"]) == 1
    assert from_bucket["FaceDetails"] == from_bytes["FaceDetails"]


def test_index_and_search_faces_from_s3_objects(client: Client) -> None:
    client.create_collection(CollectionId="s3-people")
    obama = client.index_faces(CollectionId="s3-people", Image=s3("photos", "people/obama.jpg"))
    biden = client.index_faces(CollectionId="s3-people", Image=s3("photos", "people/biden.jpg"))
    assert len(obama["FaceRecords"]) == 1 and len(biden["FaceRecords"]) == 1
    obama_face, biden_face = obama["FaceRecords"][0]["Face"], biden["FaceRecords"][0]["Face"]
    # Two objects are two images (identified by their bytes, not by the empty Bytes field).
    assert obama_face["ImageId"] != biden_face["ImageId"]
    again = client.index_faces(CollectionId="s3-people", Image={"Bytes": OBAMA.read_bytes()})
    assert again["FaceRecords"][0]["Face"]["FaceId"] == obama_face["FaceId"]  # same bytes
    found = client.search_faces_by_image(
        CollectionId="s3-people", Image=s3("photos", "people/obama.jpg")
    )
    assert [m["Face"]["FaceId"] for m in found["FaceMatches"]] == [obama_face["FaceId"]]


def test_compare_faces_with_both_images_from_buckets(client: Client, versions: dict) -> None:
    response = client.compare_faces(
        SourceImage=s3("photos", "people/obama.jpg"),
        TargetImage=s3("minio", "people/portrait.jpg", versions["obama"]),
    )
    assert len(response["FaceMatches"]) == 1
    assert response["FaceMatches"][0]["Similarity"] > 99


def test_bucket_images_may_exceed_the_5_mb_of_bytes(client: Client, bucket: Path) -> None:
    padded = OBAMA.read_bytes() + b"\0" * (6 * 1024 * 1024)  # JPEG readers stop at EOI
    (bucket / "padded.jpg").write_bytes(padded)
    response = client.detect_faces(Image=s3("photos", "padded.jpg"))
    assert len(response["FaceDetails"]) == 1
    with pytest.raises(errors.ImageTooLargeException, match="5 MB"):
        client.detect_faces(Image={"Bytes": padded})


@pytest.mark.parametrize(
    "key",
    [
        "../secret.jpg",
        "/etc/passwd",
        "a/../../x",
        "people/../../secret.jpg",
        "..",
        "..\\secret.jpg",
        "people\\..\\..\\secret.jpg",
        "people/obama.jpg\0.png",
    ],
)
def test_keys_cannot_leave_the_bucket(client: Client, root: Path, key: str) -> None:
    with pytest.raises(errors.InvalidS3ObjectException, match="outside the bucket") as exc:
        client.detect_faces(Image=s3("photos", key))
    assert_discreet(exc, str(root))


def test_symlinks_leading_out_are_refused_and_inside_followed(
    client: Client, bucket: Path, root: Path
) -> None:
    (bucket / "leak.jpg").symlink_to(root / "secret.jpg")
    (bucket / "elsewhere").symlink_to(root / "outside", target_is_directory=True)
    (bucket / "null.jpg").symlink_to("/dev/null")
    (bucket / "alias.jpg").symlink_to("people/obama.jpg")
    for key in ("leak.jpg", "elsewhere/obama.jpg", "null.jpg"):
        with pytest.raises(errors.InvalidS3ObjectException, match="outside the bucket") as exc:
            client.detect_faces(Image=s3("photos", key))
        assert_discreet(exc, str(root))
    assert len(client.detect_faces(Image=s3("photos", "alias.jpg"))["FaceDetails"]) == 1


def test_only_regular_files_are_objects(client: Client, bucket: Path, root: Path) -> None:
    os.mkfifo(bucket / "pipe.jpg")  # opening it for reading must not wait for a writer
    (bucket / "loop.jpg").symlink_to("loop.jpg")
    for key in ("people", "people/", ".", "pipe.jpg", "loop.jpg", "people/nobody.jpg"):
        with pytest.raises(errors.InvalidS3ObjectException, match="not found") as exc:
            client.detect_faces(Image=s3("photos", key))
        assert f"s3://photos/{key}" in str(exc.value)
        assert_discreet(exc, str(root))


def test_unconfigured_bucket_and_missing_fields(client: Client) -> None:
    with pytest.raises(errors.InvalidS3ObjectException, match="'nothere' is not configured"):
        client.detect_faces(Image=s3("nothere", "people/obama.jpg"))
    with pytest.raises(errors.InvalidS3ObjectException, match="needs both Bucket and Name"):
        client.detect_faces(Image={"S3Object": {"Bucket": "photos"}})


def test_a_directory_bucket_has_no_versions(client: Client) -> None:
    with pytest.raises(errors.InvalidS3ObjectException, match="keeps no versions"):
        client.detect_faces(Image=s3("photos", "people/obama.jpg", "v1"))


def test_oversized_files_are_refused_without_reading_them(
    client: Client, buckets: Buckets, bucket: Path
) -> None:
    for name, size in (("big.jpg", MAX_S3_IMAGE_BYTES + 1), ("huge.jpg", 2 * 1024**3)):
        with open(bucket / name, "wb") as f:
            f.truncate(size)  # sparse: nothing is written
        started = time.monotonic()
        with pytest.raises(errors.ImageTooLargeException, match=r"15 MB") as exc:
            client.detect_faces(Image=s3("photos", name))
        assert time.monotonic() - started < 1.0
        assert f"{size} bytes" in str(exc.value)
    with open(bucket / "exact.jpg", "wb") as f:
        f.truncate(MAX_S3_IMAGE_BYTES)
    assert len(buckets.fetch(S3Object(Bucket="photos", Name="exact.jpg"))) == MAX_S3_IMAGE_BYTES
    with pytest.raises(errors.InvalidImageFormatException):  # within the limit: decoded
        client.detect_faces(Image=s3("photos", "exact.jpg"))


def test_a_missing_bucket_directory_is_not_revealed(tmp_path: Path) -> None:
    gone = load_buckets({"photos": {"path": str(tmp_path / "gone")}})
    with pytest.raises(errors.InvalidS3ObjectException, match="not available") as exc:
        gone.fetch(S3Object(Bucket="photos", Name="a.jpg"))
    assert_discreet(exc, str(tmp_path))


# -- S3 endpoints (moto) ------------------------------------------------------------------


def test_s3_fetch_by_key_and_by_version(buckets: Buckets, versions: dict[str, str]) -> None:
    latest = buckets.fetch(S3Object(Bucket="minio", Name="people/portrait.jpg"))
    assert latest == BIDEN.read_bytes()
    first = S3Object(Bucket="minio", Name="people/portrait.jpg", Version=versions["obama"])
    assert buckets.fetch(first) == OBAMA.read_bytes()
    second = S3Object(Bucket="minio", Name="people/portrait.jpg", Version=versions["biden"])
    assert buckets.fetch(second) == BIDEN.read_bytes()
    assert buckets.fetch(S3Object(Bucket="albums", Name="obama.jpg")) == OBAMA.read_bytes()


def test_detect_faces_from_an_s3_version(client: Client, versions: dict[str, str]) -> None:
    old = client.detect_faces(Image=s3("minio", "people/portrait.jpg", versions["obama"]))
    assert (
        old["FaceDetails"]
        == client.detect_faces(Image={"Bytes": OBAMA.read_bytes()})["FaceDetails"]
    )
    new = client.detect_faces(Image=s3("minio", "people/portrait.jpg"))
    assert (
        new["FaceDetails"]
        == client.detect_faces(Image={"Bytes": BIDEN.read_bytes()})["FaceDetails"]
    )


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (s3("minio", "people/nobody.jpg"), r"s3://minio/people/nobody.jpg not found"),
        (
            s3("minio", "people/portrait.jpg", "no-such-version"),
            r"s3://minio/people/portrait.jpg \(version no-such-version\) not found",
        ),
        (s3("albums", "people/portrait.jpg"), "not found"),  # the prefix is applied
        (s3("ghost", "a.jpg"), r"s3://ghost/a.jpg not found"),
        (s3("down", "a.jpg"), "S3 endpoint of bucket 'down' failed"),
    ],
)
def test_s3_errors_name_the_object_and_never_credentials(
    client: Client, moto_endpoint: str, image: dict[str, Any], message: str
) -> None:
    with pytest.raises(errors.InvalidS3ObjectException, match=message) as exc:
        client.detect_faces(Image=image)
    assert_discreet(exc, moto_endpoint, REAL_BUCKET, "127.0.0.1")


def test_s3_size_limit_is_enforced_while_reading(buckets: Buckets) -> None:
    with pytest.raises(errors.ImageTooLargeException, match="s3://minio/people/portrait.jpg"):
        buckets.fetch(S3Object(Bucket="minio", Name="people/portrait.jpg"), max_bytes=1000)


def test_credentials_stay_out_of_settings_and_config_errors(bucket_config: dict) -> None:
    settings = Settings(buckets=bucket_config)
    assert SECRET_KEY not in repr(settings) and SECRET_KEY not in str(settings.model_dump())
    bad = {"minio": {**bucket_config["minio"], "region": 5}}
    with pytest.raises(ValueError) as exc:
        Settings(buckets=bad)
    assert_discreet(exc)
    with pytest.raises(DeploymentError) as dexc:
        parse_deployment({"buckets": {"minio": {"secret_access_key": SECRET_KEY}}})
    assert "path (a directory) or endpoint_url" in str(dexc.value)
    assert_discreet(dexc)


def test_without_boto3_an_s3_bucket_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, moto_endpoint: str
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 raises ImportError
    lone = load_buckets({"minio": _s3_config(moto_endpoint)})
    with pytest.raises(errors.InvalidS3ObjectException, match=r"streamproc\[s3\]"):
        lone.fetch(S3Object(Bucket="minio", Name="a.jpg"))


# -- configuration --------------------------------------------------------------------------


def test_without_buckets_s3_is_not_configured(bucket: Path) -> None:
    image = Image.model_validate(s3("photos", "people/obama.jpg"))
    for buckets in (None, Buckets(), load_buckets({})):
        with pytest.raises(errors.InvalidS3ObjectException, match="S3 is not configured") as e:
            load_image(image, buckets)
        assert "STREAMPROC_BUCKETS" in str(e.value) and "buckets:" in str(e.value)


def test_buckets_from_the_environment(monkeypatch: pytest.MonkeyPatch, bucket: Path) -> None:
    monkeypatch.setenv("STREAMPROC_BUCKETS", f'{{"photos": {{"path": "{bucket}"}}}}')
    context = OperationContext(Settings())
    try:
        data = context.buckets.fetch(S3Object(Bucket="photos", Name="people/obama.jpg"))
        assert data == OBAMA.read_bytes()
    finally:
        context.close()
    monkeypatch.setenv("STREAMPROC_BUCKETS", "{photos")
    with pytest.raises(ValueError, match="STREAMPROC_BUCKETS is not valid JSON"):
        Settings()
    monkeypatch.setenv("STREAMPROC_BUCKETS", '{"photos": {"bucket": "x"}}')
    with pytest.raises(ValueError, match="path .* or endpoint_url"):
        Settings()


def test_deployment_buckets_reach_the_runtime(bucket: Path, tmp_path: Path) -> None:
    deployment = parse_deployment(
        {"store": str(tmp_path / "store"), "buckets": {"photos": {"path": str(bucket)}}}
    )
    runtime = Runtime(deployment)
    try:
        fetched = runtime.engine.context.buckets.fetch(
            S3Object(Bucket="photos", Name="people/biden.jpg")
        )
        assert fetched == BIDEN.read_bytes()
    finally:
        asyncio.run(runtime.close())
        runtime.engine.close()
    with pytest.raises(DeploymentError, match=r"buckets\.photos\.directory\.versioned"):
        parse_deployment({"buckets": {"photos": {"path": "/srv", "versioned": True}}})
