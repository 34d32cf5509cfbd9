"""The unit every source yields and every model consumes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Frame"]


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One decoded video frame in RGB.

    ``pts`` is the frame's offset in its stream in seconds (from the container, or derived from
    the frame rate when the container has none); a live source restarts it at each
    (re)connection, so use ``capture_time`` to order frames across reconnects.
    ``frame_number`` counts frames delivered by the source since it was created and never
    repeats, even across loops and reconnects.
    """

    stream_id: str
    frame_number: int
    pts: float
    capture_time: float
    width: int
    height: int
    rgb: npt.NDArray[np.uint8]

    def __repr__(self) -> str:
        return (
            f"Frame(stream_id={self.stream_id!r}, frame_number={self.frame_number}, "
            f"pts={self.pts:.3f}, capture_time={self.capture_time:.3f}, "
            f"size={self.width}x{self.height})"
        )
