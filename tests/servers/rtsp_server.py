"""A real RTSP server for tests: GStreamer's gst-rtsp-server serving one H.264 MP4 file.

Run with Debian's /usr/bin/python3 (python3-gi does not import inside a venv):

    /usr/bin/python3 tests/servers/rtsp_server.py FILE --port 8554 --name cam

The file is re-payloaded, never re-encoded (qtdemux ! h264parse ! rtph264pay), paced at its
own frame rate, and looped with segment seeks so RTP timestamps keep increasing across loops.
Each client gets its own pipeline starting at the file's first key frame. Prints
"READY <port>" on stdout once listening; exits on SIGTERM/SIGINT and when its parent dies.
"""

from __future__ import annotations

import argparse
import ctypes
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """A test server must never outlive the pytest process that started it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class LoopingFactory(GstRtspServer.RTSPMediaFactory):
    def __init__(self, path: str, loop: bool) -> None:
        super().__init__()
        self.loop_file = loop
        location = path.replace("\\", "\\\\").replace('"', '\\"')
        self.set_launch(
            f'( filesrc location="{location}" ! qtdemux name=demux '
            "demux.video_0 ! queue ! h264parse config-interval=-1 "
            "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
        )
        self.set_shared(False)
        self.set_protocols(GstRtsp.RTSPLowerTrans.TCP | GstRtsp.RTSPLowerTrans.UDP)
        self.connect("media-configure", self._on_media_configure)

    def _on_media_configure(
        self, _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia
    ) -> None:
        if not self.loop_file:
            return
        element = media.get_element()
        demux = element.get_by_name("demux")
        pipeline = element
        while pipeline.get_parent() is not None:
            pipeline = pipeline.get_parent()
        started = [False]

        def on_new_state(_media: GstRtspServer.RTSPMedia, state: int) -> None:
            # PLAY does its own flushing seek (Range: npt=0-), which would undo a segment seek
            # made earlier; so the first segment seek waits for PLAYING.
            if state == Gst.State.PLAYING and not started[0]:
                started[0] = True
                GLib.idle_add(_segment_seek, pipeline, True)

        def on_event(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
            if info.get_event().type == Gst.EventType.SEGMENT_DONE:
                # A non-flushing segment seek keeps running time (and RTP timestamps) going.
                GLib.idle_add(_segment_seek, pipeline, False)
            return Gst.PadProbeReturn.OK

        def on_pad_added(_demux: Gst.Element, pad: Gst.Pad) -> None:
            pad.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, on_event)

        media.connect("new-state", on_new_state)
        if demux is not None:
            demux.connect("pad-added", on_pad_added)


def _segment_seek(pipeline: Gst.Element, flush: bool) -> bool:
    flags = Gst.SeekFlags.SEGMENT
    if flush:
        flags |= Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT
    pipeline.seek(1.0, Gst.Format.TIME, flags, Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1)
    return False


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
    server.get_mount_points().add_factory(
        "/" + args.name.lstrip("/"), LoopingFactory(args.file, loop=not args.no_loop)
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
