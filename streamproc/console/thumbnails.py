"""The console's own small face thumbnails, so the people pages can show who each face is.

Rekognition keeps no image bytes and neither does the API: a collection holds vectors and
metadata only. The console keeps, for the faces indexed *through it* (people uploads and
named visits), a small JPEG crop of the face box with a margin, under
``<data_dir>/thumbnails/<CollectionId>/<FaceId>.jpg``. Paths are made only from ids that
pass the store's own validation (and never ``.`` or ``..``), so no request can name a file
elsewhere. Writes are atomic (temp file, rename); decoding, cropping and encoding run in a
thread, never on the event loop. ``enabled=False`` keeps nothing (and serves nothing).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import secrets
import shutil
from collections.abc import Iterable, Sequence
from contextlib import suppress
from pathlib import Path

from PIL import Image

from streamproc.errors import InvalidParameterException, RekognitionError
from streamproc.images import decode_image
from streamproc.shapes import BoundingBox
from streamproc.store.validation import check_collection_id, check_face_id

__all__ = ["Thumbnails", "SIDE", "MARGIN"]

log = logging.getLogger(__name__)

#: Pixels of the longer side of a thumbnail.
SIDE = 160
#: Added around the face box on each side, as a fraction of the box (hair, chin, ears).
MARGIN = 0.25
QUALITY = 80


def _collection_dir_name(collection_id: str) -> str:
    """A CollectionId may be ``.`` or ``..`` by the API's pattern: never a folder name."""
    check_collection_id(collection_id)
    if collection_id in (".", ".."):
        raise InvalidParameterException(f"CollectionId {collection_id!r} has no thumbnails")
    return collection_id


def crop(image_bytes: bytes, box: BoundingBox, side: int = SIDE) -> bytes:
    """The face box with ``MARGIN`` around it, at most ``side`` px, as JPEG (a thread's work:
    the image is decoded as the engine decodes it, EXIF orientation applied, so the box
    Rekognition returned fits)."""
    rgb = decode_image(image_bytes).rgb
    h, w = rgb.shape[:2]
    left = (box.Left - box.Width * MARGIN) * w
    top = (box.Top - box.Height * MARGIN) * h
    right = (box.Left + box.Width * (1 + MARGIN)) * w
    bottom = (box.Top + box.Height * (1 + MARGIN)) * h
    x0, y0 = max(0, int(left)), max(0, int(top))
    x1, y1 = min(w, int(round(right))), min(h, int(round(bottom)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise InvalidParameterException("the face box lies outside the image")
    face = Image.fromarray(rgb[y0:y1, x0:x1])
    face.thumbnail((side, side))
    out = io.BytesIO()
    face.save(out, format="JPEG", quality=QUALITY)
    return out.getvalue()


class Thumbnails:
    """Face thumbnails under ``directory`` (the console's ``data_dir / "thumbnails"``)."""

    def __init__(self, directory: Path, *, enabled: bool = True) -> None:
        self.directory = directory
        self.enabled = enabled

    def path(self, collection_id: str, face_id: str) -> Path:
        """Raises InvalidParameterException for an id the store would refuse."""
        folder = _collection_dir_name(collection_id)
        return self.directory / folder / f"{check_face_id(face_id)}.jpg"

    def _collection_dir(self, collection_id: str) -> Path:
        return self.directory / _collection_dir_name(collection_id)

    # -- writing (in a thread) -------------------------------------------------------------

    def _write(self, target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = target.parent / f".{target.stem}.{secrets.token_hex(4)}.tmp"
        try:
            with temp.open("xb") as fh:
                fh.write(data)
            os.replace(temp, target)
        except BaseException:
            with suppress(OSError):
                temp.unlink()
            raise

    def _save(self, collection_id: str, image: bytes,
              faces: Sequence[tuple[str, BoundingBox]]) -> int:
        saved = 0
        for face_id, box in faces:
            try:
                target = self.path(collection_id, face_id)
                self._write(target, crop(image, box))
                saved += 1
            except (RekognitionError, OSError, ValueError) as exc:
                # A missing thumbnail shows a placeholder; it never fails the indexing.
                log.warning("console: no thumbnail for face %s: %s", face_id, exc)
        return saved

    async def save(self, collection_id: str, image: bytes,
                   faces: Sequence[tuple[str, BoundingBox]]) -> int:
        """Crop and keep each ``(FaceId, BoundingBox)`` of ``image``; returns how many."""
        if not self.enabled or not faces:
            return 0
        return await asyncio.to_thread(self._save, collection_id, image, list(faces))

    # -- reading and deleting ----------------------------------------------------------------

    def _read(self, collection_id: str, face_id: str) -> bytes | None:
        try:
            return self.path(collection_id, face_id).read_bytes()
        except FileNotFoundError:
            return None

    async def read(self, collection_id: str, face_id: str) -> bytes | None:
        """The thumbnail, or None (none kept, or thumbnails off)."""
        if not self.enabled:
            return None
        return await asyncio.to_thread(self._read, collection_id, face_id)

    def _delete(self, collection_id: str, face_ids: list[str]) -> None:
        for face_id in face_ids:
            with suppress(FileNotFoundError, InvalidParameterException):
                self.path(collection_id, face_id).unlink()

    async def delete(self, collection_id: str, face_ids: Iterable[str]) -> None:
        """Delete the thumbnails of these faces (also when thumbnails are now off: a face
        deleted from the collection must not leave its picture behind)."""
        await asyncio.to_thread(self._delete, collection_id, list(face_ids))

    def _delete_collection(self, collection_id: str) -> None:
        try:
            folder = self._collection_dir(collection_id)
        except InvalidParameterException:
            return
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)

    async def delete_collection(self, collection_id: str) -> None:
        await asyncio.to_thread(self._delete_collection, collection_id)

    def _existing(self, collection_id: str) -> set[str]:
        try:
            folder = self._collection_dir(collection_id)
            return {p.stem for p in folder.glob("*.jpg")}
        except (InvalidParameterException, OSError):
            return set()

    async def existing(self, collection_id: str) -> set[str]:
        """The FaceIds of the collection that have a thumbnail."""
        if not self.enabled:
            return set()
        return await asyncio.to_thread(self._existing, collection_id)
