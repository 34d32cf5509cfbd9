"""The unit every source yields and every model consumes."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import numpy.typing as npt

__all__ = ["Frame"]

#: Decoder pixel formats whose first plane is the luma (Y) the motion detector reads.
_PLANAR_LUMA = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "nv12"})


class Frame:
    """One decoded video frame; RGB on demand.

    A source hands over the decoder's frame as it is: conversion to RGB happens on the
    first read of :attr:`rgb`, in the worker that analyses the frame, so frames skipped by
    the fps budget or by motion gating are never converted. :meth:`luma` reads the
    decoder's Y plane directly (no conversion) for motion and scene-change checks.

    ``pts`` is the frame's offset in its stream in seconds (from the container, or derived
    from the frame rate when the container has none); a live source restarts it at each
    (re)connection, so use ``capture_time`` to order frames across reconnects.
    ``frame_number`` counts frames delivered by the source since it was created and never
    repeats, even across loops and reconnects.
    """

    __slots__ = ("stream_id", "frame_number", "pts", "capture_time", "width", "height",
                 "_rgb", "_decoded")

    def __init__(
        self,
        stream_id: str,
        frame_number: int,
        pts: float,
        capture_time: float,
        width: int,
        height: int,
        rgb: npt.NDArray[np.uint8] | None = None,
        *,
        decoded: Any = None,
    ) -> None:
        if rgb is None and decoded is None:
            raise ValueError("a Frame needs rgb pixels or a decoded frame to convert")
        self.stream_id = stream_id
        self.frame_number = frame_number
        self.pts = pts
        self.capture_time = capture_time
        self.width = width
        self.height = height
        self._rgb = rgb
        self._decoded = decoded  # an av.VideoFrame until converted

    @property
    def rgb(self) -> npt.NDArray[np.uint8]:
        """H x W x 3 uint8, converted from the decoder's frame on first read."""
        if self._rgb is None:
            self._rgb = cast("npt.NDArray[np.uint8]", self._decoded.to_ndarray(format="rgb24"))
            self._decoded = None
        return self._rgb

    def luma(self) -> npt.NDArray[np.uint8]:
        """H x W brightness: the decoder's Y plane when it has one, else RGB's green."""
        decoded = self._decoded
        if self._rgb is None and decoded is not None and decoded.format.name in _PLANAR_LUMA:
            plane = decoded.planes[0]
            rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
            return rows[:, : plane.width]
        return self.rgb[..., 1]

    def __repr__(self) -> str:
        return (
            f"Frame(stream_id={self.stream_id!r}, frame_number={self.frame_number}, "
            f"pts={self.pts:.3f}, capture_time={self.capture_time:.3f}, "
            f"size={self.width}x{self.height})"
        )
