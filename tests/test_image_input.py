"""Image input limits and errors, with real (malformed) files, through the client."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from streamproc import errors
from streamproc.client import Client
from tests.conftest import DATA, image

PHOTO = "faces/barack_obama/4.jpg"


def _jpeg(pil: Image.Image, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=92, **kwargs)
    return buf.getvalue()


def test_truncated_jpeg_is_invalid_image_format(client: Client) -> None:
    data = (DATA / PHOTO).read_bytes()
    with pytest.raises(errors.InvalidImageFormatException, match="truncated|corrupt"):
        client.detect_faces(Image={"Bytes": data[: len(data) // 2]})


def test_gif_is_rejected_by_content(client: Client, tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.open(DATA / PHOTO).save(buf, format="GIF")
    with pytest.raises(errors.InvalidImageFormatException, match="JPEG and PNG"):
        client.detect_faces(Image={"Bytes": buf.getvalue()})


def test_webp_photo_is_rejected(client: Client) -> None:
    webp = next(p for p in (DATA / "faces").glob("*/*") if p.read_bytes()[:4] == b"RIFF")
    with pytest.raises(errors.InvalidImageFormatException):
        client.detect_faces(Image={"Bytes": webp.read_bytes()})


def test_png_named_jpg_is_accepted_by_content(client: Client) -> None:
    buf = io.BytesIO()
    Image.open(DATA / PHOTO).save(buf, format="PNG")
    response = client.detect_faces(Image={"Bytes": buf.getvalue()})
    assert len(response["FaceDetails"]) == 1


def test_six_megabyte_file_is_too_large(client: Client) -> None:
    pil = Image.open(DATA / PHOTO).convert("RGB")
    buf = io.BytesIO()
    pil.resize((pil.width * 6, pil.height * 6)).save(buf, format="PNG")
    data = buf.getvalue()
    assert len(data) > 5 * 1024 * 1024
    with pytest.raises(errors.ImageTooLargeException, match="5 MB"):
        client.detect_faces(Image={"Bytes": data})


def test_small_image_is_invalid_parameter(client: Client) -> None:
    small = _jpeg(Image.open(DATA / PHOTO).convert("RGB").resize((40, 40)))
    with pytest.raises(errors.InvalidParameterException, match="40x40.*minimum is 80"):
        client.detect_faces(Image={"Bytes": small})


def test_decompression_bomb_is_refused_before_decoding(client: Client) -> None:
    buf = io.BytesIO()
    Image.new("L", (12000, 9000)).save(buf, format="PNG")  # compresses to a few kB
    assert len(buf.getvalue()) < 200_000
    with pytest.raises(errors.ImageTooLargeException, match="pixels"):
        client.detect_faces(Image={"Bytes": buf.getvalue()})


def test_s3_object_says_s3_is_not_configured(client: Client) -> None:
    with pytest.raises(errors.InvalidS3ObjectException, match="S3 is not configured"):
        client.detect_faces(Image={"S3Object": {"Bucket": "photos", "Name": "a.jpg"}})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "Missing required parameter Image"),
        ({"Image": {}}, "Image must have Bytes or S3Object"),
        ({"Image": {"Bytes": b""}}, "Image.Bytes"),
        ({"Image": image(PHOTO), "Attributes": ["EVERYTHING"]}, "Attributes.0"),
        ({"Image": image(PHOTO), "Attributes": "ALL"}, "Attributes"),
        ({"Image": image(PHOTO), "MaxFaces": 3}, "Unknown parameter MaxFaces"),
        ({"Image": "photo.jpg"}, "Image"),
    ],
)
def test_wrong_parameters_are_invalid_parameter(
    client: Client, params: dict[str, object], message: str
) -> None:
    with pytest.raises(errors.InvalidParameterException, match=message):
        client.detect_faces(**params)


@pytest.mark.parametrize("threshold", [-1, 101, "high"])
def test_similarity_threshold_range(client: Client, threshold: object) -> None:
    with pytest.raises(errors.InvalidParameterException, match="SimilarityThreshold"):
        client.compare_faces(
            SourceImage=image(PHOTO), TargetImage=image(PHOTO), SimilarityThreshold=threshold
        )


def test_error_names_and_status_codes() -> None:
    assert errors.InvalidParameterException("x").to_dict() == {
        "Code": "InvalidParameterException",
        "Message": "x",
        "HTTPStatusCode": 400,
    }
    assert errors.ThrottlingException.http_status == 500
    assert errors.InternalServerError.http_status == 500
    assert isinstance(
        errors.error_from_name("ResourceNotFoundException", "m"), errors.ResourceNotFoundException
    )


# --- orientation -----------------------------------------------------------------------------


def _centre(face: dict) -> tuple[float, float]:
    box = face["BoundingBox"]
    return box["Left"] + box["Width"] / 2, box["Top"] + box["Height"] / 2


def test_exif_orientation_is_applied_and_correction_is_null(client: Client) -> None:
    pil = Image.open(DATA / "faces_single/emotion_happy.jpg").convert("RGB")
    upright = client.detect_faces(Image={"Bytes": _jpeg(pil)})
    assert upright["OrientationCorrection"] == "ROTATE_0"
    # Store the pixels turned 90° clockwise with EXIF orientation 8 ("rotate 270 CW to view"),
    # as a camera held sideways does: the response describes the corrected (upright) image.
    exif = Image.Exif()
    exif[0x0112] = 8
    sideways = _jpeg(pil.transpose(Image.Transpose.ROTATE_270), exif=exif.tobytes())
    response = client.detect_faces(Image={"Bytes": sideways})
    assert "OrientationCorrection" not in response  # null: EXIF carried the orientation
    assert len(response["FaceDetails"]) == 1
    assert _centre(response["FaceDetails"][0]) == pytest.approx(
        _centre(upright["FaceDetails"][0]), abs=0.03
    )


@pytest.mark.parametrize(
    ("transpose", "expected"),
    [
        (Image.Transpose.ROTATE_90, "ROTATE_90"),
        (Image.Transpose.ROTATE_270, "ROTATE_270"),
        (Image.Transpose.ROTATE_180, "ROTATE_180"),
    ],
)
def test_rotation_without_exif_is_detected(
    client: Client, transpose: Image.Transpose, expected: str
) -> None:
    pil = Image.open(DATA / "faces_single/emotion_happy.jpg").convert("RGB")
    upright = client.detect_faces(Image={"Bytes": _jpeg(pil)})["FaceDetails"][0]
    rotated = client.detect_faces(Image={"Bytes": _jpeg(pil.transpose(transpose))})
    assert rotated["OrientationCorrection"] == expected
    face = rotated["FaceDetails"][0]
    # Boxes are in the image as given (before correction): the face centre moved with it.
    ux, uy = _centre(upright)
    rx, ry = _centre(face)
    expected_centre = {
        "ROTATE_90": (uy, 1 - ux),  # PIL ROTATE_90 turns counter-clockwise
        "ROTATE_270": (1 - uy, ux),
        "ROTATE_180": (1 - ux, 1 - uy),
    }[expected]
    assert (rx, ry) == pytest.approx(expected_centre, abs=0.03)
