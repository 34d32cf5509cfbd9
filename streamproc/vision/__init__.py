"""Pure pre- and post-processing functions: no I/O, no model sessions, unit-tested."""

from streamproc.vision.align import ARCFACE_TEMPLATE, align_face, estimate_similarity
from streamproc.vision.boxes import iou, nms
from streamproc.vision.letterbox import Letterbox, letterbox
from streamproc.vision.pose import pose_from_landmarks
from streamproc.vision.quality import brightness, sharpness
from streamproc.vision.rotation import rotate_points_back, rotate_upright
from streamproc.vision.yunet import decode_yunet

__all__ = [
    "ARCFACE_TEMPLATE",
    "Letterbox",
    "align_face",
    "brightness",
    "decode_yunet",
    "estimate_similarity",
    "iou",
    "letterbox",
    "nms",
    "pose_from_landmarks",
    "rotate_points_back",
    "rotate_upright",
    "sharpness",
]
