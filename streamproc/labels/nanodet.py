"""NanoDet's raw outputs -> COCO detections (boxes in image pixels, class, score).

NanoDet (GFL head) predicts, per grid cell and stride, 80 class scores (already
sigmoid in the graph) and, for each box side, a discrete distribution over 11 distance
bins: the distance is the distribution's expectation times the stride, measured from the
cell centre ``((col + 0.5) * s, (row + 0.5) * s)``. Boxes then go through class-agnostic
NMS, as the NanoDet demo does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamproc.vision.boxes import nms
from streamproc.vision.letterbox import Letterbox

__all__ = [
    "COCO_CLASSES",
    "IOU_THRESHOLD",
    "NANODET_SIZE",
    "NANODET_STRIDES",
    "REG_BINS",
    "SCORE_THRESHOLD",
    "Detection",
    "decode_nanodet",
    "distribution_distances",
    "grid_centres",
]

NANODET_SIZE = 416
NANODET_STRIDES = (8, 16, 32)
REG_BINS = 11
#: Lowest score decoded; the confidence calibration maps 0.3 (FINDINGS' working point) to 50.
SCORE_THRESHOLD = 0.2
IOU_THRESHOLD = 0.6

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
)  # fmt: skip


@dataclass(frozen=True)
class Detection:
    """One object: ``box`` is ``[x1, y1, x2, y2]`` in image pixels, ``score`` NanoDet's 0-1."""

    class_id: int
    score: float
    box: tuple[float, float, float, float]

    @property
    def name(self) -> str:
        return COCO_CLASSES[self.class_id]


def grid_centres(stride: int, size: int = NANODET_SIZE) -> np.ndarray:
    """``g² x 2`` cell centres (x, y) in input pixels, row-major like the outputs."""
    cells = size // stride
    rows, cols = np.divmod(np.arange(cells * cells), cells)
    return np.stack([(cols + 0.5) * stride, (rows + 0.5) * stride], axis=1).astype(np.float32)


def distribution_distances(box: np.ndarray, stride: int) -> np.ndarray:
    """``n x 44`` bin logits -> ``n x 4`` (left, top, right, bottom) distances in pixels."""
    logits = box.reshape(-1, 4, REG_BINS).astype(np.float64)
    logits = logits - logits.max(axis=2, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=2, keepdims=True)
    return (probs @ np.arange(REG_BINS, dtype=np.float64)) * stride  # type: ignore[no-any-return]


def decode_nanodet(
    outputs: dict[int, tuple[np.ndarray, np.ndarray]],
    letterbox: Letterbox,
    image_width: int,
    image_height: int,
    score_threshold: float = SCORE_THRESHOLD,
    iou_threshold: float = IOU_THRESHOLD,
) -> list[Detection]:
    """Detections from ``{stride: (cls [1, g², 80], box [1, g², 44])}``, best first."""
    boxes, scores, classes = [], [], []
    for stride, (cls, box) in sorted(outputs.items()):
        cls = cls.reshape(-1, cls.shape[-1])
        best = cls.argmax(axis=1)
        best_score = cls[np.arange(cls.shape[0]), best]
        keep = np.flatnonzero(best_score >= score_threshold)
        if keep.size == 0:
            continue
        centres = grid_centres(stride)[keep]
        dist = distribution_distances(box.reshape(-1, 4 * REG_BINS)[keep], stride)
        corners = np.concatenate([centres - dist[:, :2], centres + dist[:, 2:]], axis=1)
        boxes.append(corners)
        scores.append(best_score[keep])
        classes.append(best[keep])
    if not boxes:
        return []
    all_boxes = np.concatenate(boxes).astype(np.float32)
    all_scores = np.concatenate(scores).astype(np.float32)
    all_classes = np.concatenate(classes)
    kept = nms(all_boxes, all_scores, iou_threshold)
    out = []
    for i in kept:
        corners = letterbox.to_image(all_boxes[i].reshape(2, 2)).reshape(4)
        x1, x2 = np.clip(corners[[0, 2]], 0, image_width)
        y1, y2 = np.clip(corners[[1, 3]], 0, image_height)
        if x2 <= x1 or y2 <= y1:
            continue
        out.append(
            Detection(
                class_id=int(all_classes[i]),
                score=float(all_scores[i]),
                box=(float(x1), float(y1), float(x2), float(y2)),
            )
        )
    return out
