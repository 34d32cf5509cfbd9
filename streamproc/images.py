"""Turn a Rekognition ``Image`` into a validated RGB array.

All limits of the reference are enforced here, before any model sees a pixel:
5 MB of bytes (15 MB for an image read from a bucket), JPEG or PNG by content (not by
name), 80 px per side, and a pixel cap that stops decompression bombs before the pixels
are decoded.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps

from streamproc.buckets import MAX_S3_IMAGE_BYTES, Buckets
from streamproc.errors import (
    ImageTooLargeException,
    InvalidImageFormatException,
    InvalidParameterException,
)
from streamproc.shapes import Image

__all__ = [
    "MAX_IMAGE_BYTES",
    "MAX_S3_IMAGE_BYTES",
    "MIN_IMAGE_SIDE",
    "MAX_IMAGE_PIXELS",
    "DecodedImage",
    "decode_image",
    "load_image",
    "sniff_format",
]

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MIN_IMAGE_SIDE = 80
#: 50 megapixels: well above any camera frame, far below what a bomb expands to.
MAX_IMAGE_PIXELS = 50_000_000
EXIF_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class DecodedImage:
    """An upright RGB image and whether EXIF already said how to make it upright."""

    rgb: np.ndarray  # H x W x 3, uint8
    format: str  # "JPEG" | "PNG" | "RAW" (frames from a stream)
    exif_oriented: bool  # EXIF carried an orientation: OrientationCorrection is null
    #: Of the encoded file, so the same image is recognised whichever way it came (IndexFaces);
    #: None for raw frames.
    sha256: str | None = None

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @classmethod
    def from_array(cls, rgb: np.ndarray) -> DecodedImage:
        """Wrap an already decoded frame (e.g. from a camera) without re-encoding it."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise InvalidParameterException("a frame must be an H x W x 3 uint8 RGB array")
        return cls(rgb=np.ascontiguousarray(rgb), format="RAW", exif_oriented=False)


def sniff_format(data: bytes) -> str | None:
    """The format named by the file's magic bytes; the file name is never trusted."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    return None


def load_image(image: Image, buckets: Buckets | None = None) -> DecodedImage:
    """Resolve an ``Image`` parameter (bytes, or an S3 reference read from ``buckets``)."""
    if image.Bytes is not None and image.S3Object is not None:
        raise InvalidParameterException("Image must have either Bytes or S3Object, not both")
    if image.S3Object is not None:
        data = (buckets or Buckets()).fetch(image.S3Object, max_bytes=MAX_S3_IMAGE_BYTES)
        return decode_image(data, max_bytes=MAX_S3_IMAGE_BYTES)
    if image.Bytes is None:
        raise InvalidParameterException("Image must have Bytes or S3Object")
    return decode_image(image.Bytes)


def decode_image(data: bytes, *, max_bytes: int = MAX_IMAGE_BYTES) -> DecodedImage:
    """Validate and decode JPEG/PNG bytes, applying the EXIF orientation of JPEGs.

    ``max_bytes`` is the reference's limit for where the bytes came from: 5 MB in the
    request, 15 MB from a bucket.
    """
    if len(data) > max_bytes:
        source = {MAX_IMAGE_BYTES: "image bytes", MAX_S3_IMAGE_BYTES: "images in S3"}.get(
            max_bytes, "this image"
        )
        raise ImageTooLargeException(
            f"Image is {len(data)} bytes; the limit for {source} is {max_bytes} "
            f"({max_bytes / 2**20:g} MB)"
        )
    fmt = sniff_format(data)
    if fmt is None:
        raise InvalidImageFormatException(
            "Image format is not supported: only JPEG and PNG are accepted "
            f"(the data starts with {data[:8]!r})"
        )
    try:
        with warnings.catch_warnings():
            # Our own pixel cap below is stricter and gives a Rekognition error.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            pil = PILImage.open(io.BytesIO(data), formats=[fmt])
    except PILImage.DecompressionBombError as exc:
        raise ImageTooLargeException(f"Image has too many pixels: {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImageFormatException(f"Image could not be read as {fmt}: {exc}") from exc
    width, height = pil.size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageTooLargeException(
            f"Image is {width}x{height} = {width * height} pixels; the limit is "
            f"{MAX_IMAGE_PIXELS} pixels"
        )
    if min(width, height) < MIN_IMAGE_SIDE:
        raise InvalidParameterException(
            f"Image is {width}x{height} pixels; the minimum is {MIN_IMAGE_SIDE} pixels "
            "for both height and width"
        )
    exif_oriented = False
    try:
        pil.load()
        if fmt == "JPEG":
            orientation = pil.getexif().get(EXIF_ORIENTATION_TAG)
            if orientation is not None:
                exif_oriented = True
                pil = ImageOps.exif_transpose(pil)  # type: ignore[assignment]
        rgb = np.asarray(pil.convert("RGB"))  # after exif_transpose: a plain Image
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImageFormatException(
            f"Image data is corrupt or truncated ({fmt}): {exc}"
        ) from exc
    return DecodedImage(
        rgb=np.ascontiguousarray(rgb),
        format=fmt,
        exif_oriented=exif_oriented,
        sha256=hashlib.sha256(data).hexdigest(),
    )
