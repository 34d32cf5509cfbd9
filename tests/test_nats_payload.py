"""A valid image near the API's 5 MB limit travels over NATS in both codecs.

The embedded nats-server allows 8 MiB messages (its default is 1 MiB), so a 4.9 MB JPEG
fits even as base64 in JSON.
"""

from __future__ import annotations

import io

import nats
import numpy as np
import pytest
from PIL import Image

from streamproc.client import Client
from streamproc.images import MAX_IMAGE_BYTES
from streamproc.transport import EmbeddedNatsServer
from streamproc.transport.service import RekognitionService, RemoteClient
from tests.conftest import DATA


def big_photo() -> bytes:
    """A real photo upscaled, with sensor-like noise, encoded to 4.7-5.0 MB."""
    rgb = np.asarray(Image.open(DATA / "faces/barack_obama/1.jpg").convert("RGB"))
    scale = 3700 / max(rgb.shape[:2])
    big = Image.fromarray(rgb).resize(
        (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), Image.Resampling.BICUBIC)
    noise = np.random.default_rng(0).normal(0, 9, (big.height, big.width, 3))
    noisy = Image.fromarray(np.clip(np.asarray(big) + noise, 0, 255).astype(np.uint8))
    for quality in range(96, 60, -2):
        buf = io.BytesIO()
        noisy.save(buf, format="JPEG", quality=quality)
        if buf.tell() <= 0.98 * MAX_IMAGE_BYTES:
            return buf.getvalue()
    raise AssertionError("could not make a photo under the limit")


@pytest.mark.parametrize("codec", ["msgpack", "json"])
async def test_a_near_limit_image_through_nats(client: Client, codec: str) -> None:
    data = big_photo()
    assert 4_500_000 <= len(data) <= MAX_IMAGE_BYTES
    async with EmbeddedNatsServer() as server:
        nc = await nats.connect(server.url)
        assert nc.max_payload == 8 * 1024 * 1024
        service = RekognitionService(client.engine)
        await service.start(nc)
        try:
            response = await RemoteClient(nc, codec, timeout=60).call(
                "DetectFaces", {"Image": {"Bytes": data}})
        finally:
            await service.stop()
            await nc.close()
    assert len(response["FaceDetails"]) == 1
