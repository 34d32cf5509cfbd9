"""Video files (anything PyAV demuxes: mp4, avi, mkv, gif, raw .h264) as a source."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import av
import av.error

from streamproc.sources.base import SourceState
from streamproc.sources.threaded import ThreadedSource

__all__ = ["FileSource", "path_from_url"]

log = logging.getLogger(__name__)

_DEFAULT_FPS = 25.0


def path_from_url(url: str) -> Path:
    """``file:///x/y.mp4`` or a plain path -> Path."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(unquote(parts.netloc + parts.path))
    return Path(url)


class FileSource(ThreadedSource):
    """Frames of a video file, optionally looped and/or paced in real time.

    ``realtime=True`` sleeps until each frame's pts, so a file behaves like a camera (and, like
    a camera, drops frames a slow consumer did not take: ``drop_stale`` defaults to
    ``realtime``). Without it the file is decoded as fast as the consumer reads. With ``loop``
    the pts keeps increasing across passes. Open and decode errors end the iterator with an
    OFFLINE status carrying the reason; they are never raised to the reader.
    """

    scheme = ("file", "")
    live = False

    def __init__(
        self,
        stream_id: str,
        url: str | Path,
        *,
        loop: bool = False,
        realtime: bool = False,
        drop_stale: bool | None = None,
        decoder_threads: int = 0,
        queue_size: int = 4,
    ) -> None:
        super().__init__(
            stream_id,
            str(url),
            drop_stale=realtime if drop_stale is None else drop_stale,
            queue_size=queue_size,
        )
        self.path = path_from_url(str(url))
        self.loop = loop
        self.realtime = realtime
        self.decoder_threads = decoder_threads
        self.passes = 0
        self.decode_errors = 0
        self._wall_origin: float | None = None

    def _run(self) -> None:
        self._set_status(SourceState.CONNECTING)
        offset = 0.0  # pts of this pass's first frame in the looped timeline
        wall_origin: float | None = None  # monotonic time at which pts 0 is due (realtime)
        while True:
            try:
                end_pts = self._play_once(offset, wall_origin)
            except av.error.FFmpegError as exc:
                reason = f"cannot read {self.path}: {exc}"
                log.warning("file source %s: %s", self.stream_id, reason)
                self._set_status(SourceState.OFFLINE, reason)
                return
            self.passes += 1
            if end_pts is None:
                self._set_status(SourceState.OFFLINE, f"{self.path} has no decodable frames")
                return
            if not self.loop:
                return
            offset, wall_origin = end_pts, self._wall_origin

    def _play_once(self, offset: float, wall_origin: float | None) -> float | None:
        """Decode one pass; returns the pts just after its last frame (None if no frames)."""
        self._wall_origin = wall_origin
        # Reopened on every pass: gif and raw h264 demuxers cannot always seek back.
        with av.open(str(self.path)) as container:
            if not container.streams.video:
                raise av.error.InvalidDataError(1094995529, "no video stream", str(self.path))
            stream = container.streams.video[0]
            ctx = stream.codec_context
            if self.decoder_threads == 1:
                ctx.thread_count = 1
            else:
                ctx.thread_type = "AUTO"
                ctx.thread_count = self.decoder_threads
            rate = float(stream.average_rate or stream.guessed_rate or _DEFAULT_FPS)
            frame_duration = 1.0 / rate if rate > 0 else 1.0 / _DEFAULT_FPS
            if self.passes == 0:
                self._set_status(SourceState.ONLINE)
            first: float | None = None
            pts = offset
            index = 0
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError as exc:
                    self.decode_errors += 1
                    log.debug("file source %s: skipping bad packet: %s", self.stream_id, exc)
                    continue
                for av_frame in frames:
                    t = av_frame.time
                    if t is None:
                        t = index * frame_duration
                    if first is None:
                        first = t
                    pts = offset + max(0.0, t - first)
                    index += 1
                    if self.realtime:
                        self._pace(pts)
                    self._deliver(av_frame, pts)
            if first is None:
                return None
            return pts + frame_duration

    def _pace(self, pts: float) -> None:
        now = time.monotonic()
        if self._wall_origin is None:
            self._wall_origin = now - pts
        self._sleep(self._wall_origin + pts - now)
