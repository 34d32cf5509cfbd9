"""A real RTSP server for tests: GStreamer's gst-rtsp-server serving one H.264 MP4 file.

Run with Debian's /usr/bin/python3 (python3-gi does not import inside a venv):

    /usr/bin/python3 tests/servers/rtsp_server.py FILE --port 8554 --name cam

The file is parsed once and re-payloaded, never re-encoded (appsrc ! h264parse !
rtph264pay), paced at its own frame rate, and looped by shifting timestamps, so RTP timestamps
keep increasing across loops. Each client gets its own pipeline starting at the first frame. Prints
"READY <port>" on stdout once listening; exits on SIGTERM/SIGINT and when its parent dies.
"""

from __future__ import annotations

import argparse
import ctypes
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """A test server must never outlive the pytest process that started it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class ClipFactory(GstRtspServer.RTSPMediaFactory):
    """Each client gets its own appsrc fed from the clip's parsed H.264 access units.

    Seek-based looping (segment seeks on the media pipeline) deadlocked the server's main
    loop when a client tore down while the seek ran; feeding cached buffers with shifted
    timestamps needs no seek at all and keeps RTP timestamps increasing across loops.
    """

    def __init__(self, clip: Clip, loop: bool) -> None:
        super().__init__()
        self.clip = clip
        self.loop_clip = loop
        self.set_launch(
            # No in-band SPS/PPS (they travel in the SDP): config-interval=-1 inserts them
            # before *every* IDR slice, which splits multi-slice key frames in two for
            # FFmpeg's RTSP client and corrupts every frame of the GOP.
            "( appsrc name=src format=time is-live=false "
            "! h264parse ! rtph264pay name=pay0 pt=96 config-interval=0 )"
        )
        self.set_shared(False)
        self.connect("media-configure", self._on_media_configure)

    def _on_media_configure(
        self, _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia
    ) -> None:
        appsrc = media.get_element().get_by_name("src")
        appsrc.set_property("caps", self.clip.caps)
        position = [0]  # buffers pushed so far, across loops

        def on_need_data(src: Gst.Element, _length: int) -> None:
            index = position[0]
            passes, i = divmod(index, len(self.clip.buffers))
            if passes and not self.loop_clip:
                src.emit("end-of-stream")
                return
            # Not .copy(): through GObject introspection that is a new reference to the same
            # buffer, and shifting it would corrupt the cache for the next client.
            buf = self.clip.buffers[i].copy_deep()
            shift = passes * self.clip.duration
            pts, dts = self.clip.timestamps[i]
            buf.pts = pts + shift if pts != Gst.CLOCK_TIME_NONE else pts
            buf.dts = dts + shift if dts != Gst.CLOCK_TIME_NONE else dts
            position[0] = index + 1
            src.emit("push-buffer", buf)

        appsrc.connect("need-data", on_need_data)


class Clip:
    """The clip's H.264 access units and caps, parsed once at start-up."""

    def __init__(self, path: str) -> None:
        pipeline = Gst.parse_launch(
            "filesrc name=file ! qtdemux ! h264parse ! video/x-h264,stream-format=avc,"
            "alignment=au ! appsink name=sink sync=false"
        )
        pipeline.get_by_name("file").set_property("location", path)
        sink = pipeline.get_by_name("sink")
        pipeline.set_state(Gst.State.PLAYING)
        self.buffers: list[Gst.Buffer] = []
        self.caps: Gst.Caps | None = None
        while True:
            sample = sink.emit("pull-sample")
            if sample is None:
                break
            self.caps = sample.get_caps()
            # A deep copy: the sample's buffer may be recycled once the sample is released.
            self.buffers.append(sample.get_buffer().copy_deep())
        pipeline.set_state(Gst.State.NULL)
        self.timestamps = [(b.pts, b.dts) for b in self.buffers]
        if not self.buffers or self.caps is None:
            raise SystemExit(f"no H.264 video in {path}")
        ok, num, den = self.caps.get_structure(0).get_fraction("framerate")
        frame = Gst.SECOND * den // num if ok and num > 0 else Gst.SECOND // 25
        self.duration = max(b.pts for b in self.buffers) + frame


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="an MP4/MOV file with an H.264 video track")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--name", default="stream", help="mount point: rtsp://HOST:PORT/NAME")
    parser.add_argument("--no-loop", action="store_true", help="end the stream at end of file")
    args = parser.parse_args()

    die_with_parent()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    clip = Clip(args.file)
    server.get_mount_points().add_factory(
        "/" + args.name.lstrip("/"), ClipFactory(clip, loop=not args.no_loop)
    )
    main_loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print(f"ERROR cannot listen on {args.host}:{args.port}", flush=True)
        return 1
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, main_loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    main_loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
