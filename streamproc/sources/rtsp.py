"""RTSP/RTSPS cameras through PyAV (FFmpeg), reconnecting forever with capped backoff."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping

import av
import av.error

from streamproc.sources.base import SourceState
from streamproc.sources.threaded import ThreadedSource

__all__ = ["Backoff", "RtspSource"]

log = logging.getLogger(__name__)


class Backoff:
    """Capped exponential backoff with jitter: ``initial * 2**n`` up to ``maximum``, each
    delay scaled by a random factor in ``[1 - jitter, 1]`` so cameras behind one failed
    switch do not all reconnect in the same instant."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0, jitter: float = 0.5) -> None:
        if not (0 < initial <= maximum) or not 0 <= jitter < 1:
            raise ValueError("need 0 < initial <= maximum and 0 <= jitter < 1")
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter

    def delay(self, attempt: int) -> float:
        base = min(self.maximum, self.initial * 2 ** min(attempt, 32))
        return base * (1.0 - self.jitter * random.random())


class RtspSource(ThreadedSource):
    """A live RTSP stream: TCP transport, low-latency open, bounded open and read waits.

    The iterator runs until close(): a refused connection, a silent server (read timeout),
    an end of stream (the camera closed the connection) or a decoder error each produce an
    OFFLINE event with the reason, a log line, and a new attempt after a backoff delay that
    resets once frames flow again. FFmpeg's timeouts fire at roughly twice the configured
    value. Frames a slow consumer did not take are dropped (see LatestFrame).
    """

    scheme = ("rtsp", "rtsps")
    live = True

    def __init__(
        self,
        stream_id: str,
        url: str,
        *,
        open_timeout: float = 5.0,
        read_timeout: float = 5.0,
        transport: str = "tcp",
        backoff: Backoff | None = None,
        decoder_threads: int = 1,
        options: Mapping[str, str] | None = None,
        drop_stale: bool = True,
        queue_size: int = 4,
    ) -> None:
        super().__init__(stream_id, url, drop_stale=drop_stale, queue_size=queue_size)
        self.open_timeout = open_timeout
        self.read_timeout = read_timeout
        self.backoff = backoff or Backoff()
        self.decoder_threads = decoder_threads
        self.options: dict[str, str] = {
            "rtsp_transport": transport,
            "probesize": "32",  # SDP gives the parameters: opens in ~0.1 s instead of ~1.2 s
            "analyzeduration": "0",
            **(options or {}),
        }
        self.connections = 0  # successful (frame-producing) connections
        self.failures = 0
        self.decode_errors = 0

    def _join_timeout(self) -> float:
        return 2.5 * max(self.open_timeout, self.read_timeout) + 1.0

    def _run(self) -> None:
        attempt = 0
        while not self.stopping:
            self._set_status(SourceState.CONNECTING, attempt=attempt)
            reason, produced = self._session(attempt)
            if produced:
                attempt = 0
            self.failures += 1
            delay = self.backoff.delay(attempt)
            log.warning(
                "stream %s offline: %s; retry %d in %.2fs",
                self.stream_id,
                reason,
                attempt + 1,
                delay,
            )
            self._set_status(SourceState.OFFLINE, reason, attempt=attempt, retry_in=delay)
            attempt += 1
            self._sleep(delay)

    def _session(self, attempt: int) -> tuple[str, bool]:
        """One connection, from open to failure: (reason it ended, whether frames came)."""
        started = time.monotonic()
        try:
            container = av.open(
                self.url,
                options=self.options,
                timeout=(self.open_timeout, self.read_timeout),
            )
        except (av.error.FFmpegError, OSError) as exc:
            # An interrupted open surfaces as ExitError or as InvalidDataError (a silent
            # server): the elapsed time tells a timeout apart from a real refusal.
            if time.monotonic() - started >= 0.9 * self.open_timeout:
                return f"no answer within the open timeout ({self.open_timeout:g}s)", False
            return f"cannot open: {_describe(exc)}", False
        produced = False
        try:
            if not container.streams.video:
                return "no video track in the stream", False
            stream = container.streams.video[0]
            ctx = stream.codec_context
            if self.decoder_threads == 1:
                ctx.thread_count = 1
            else:  # frame threading would add ~2 frames of latency on a live stream
                ctx.thread_type = "SLICE"
                ctx.thread_count = self.decoder_threads
            rate = float(stream.average_rate or stream.guessed_rate or 25.0)
            last_pts = -1.0 / rate
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError as exc:
                    self.decode_errors += 1
                    log.debug("stream %s: bad packet: %s", self.stream_id, exc)
                    continue
                for av_frame in frames:
                    pts = av_frame.time if av_frame.time is not None else last_pts + 1.0 / rate
                    last_pts = pts
                    if not produced:
                        produced = True
                        self.connections += 1
                        log.info(
                            "stream %s online (%dx%d)",
                            self.stream_id,
                            av_frame.width,
                            av_frame.height,
                        )
                        self._set_status(SourceState.ONLINE, attempt=attempt)
                    self._deliver(av_frame, pts)
            return "end of stream (the server closed the connection)", produced
        except av.error.ExitError:
            return f"no data within the read timeout ({self.read_timeout:g}s)", produced
        except (av.error.FFmpegError, OSError) as exc:
            return f"read failed: {_describe(exc)}", produced
        finally:
            container.close()


def _describe(exc: BaseException) -> str:
    errno = getattr(exc, "errno", None)
    strerror = getattr(exc, "strerror", None) or str(exc)
    return f"{type(exc).__name__}: {strerror}" + (f" (errno {errno})" if errno else "")
