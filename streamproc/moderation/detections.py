"""Decoding NudeNet's YOLOv8-style output into body-part detections.

The graph gives one column per anchor: rows 0-3 the box centre and size in input
pixels, then one sigmoid score per class. NudeNet keeps an anchor when its best class
score passes the threshold (0.2, then 0.25 inside ``cv2.dnn.NMSBoxes``) and suppresses
overlaps class-agnostically at IoU 0.45; this is the same, in numpy, without OpenCV.
Boxes come back as ratios of the original image, like Rekognition's ``BoundingBox``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "IOU_THRESHOLD",
    "NUDENET_CLASSES",
    "SCORE_THRESHOLD",
    "Detection",
    "decode_nudenet",
    "non_max_suppression",
]

#: The detector's classes in output order (nudenet 3.4.2, ``nudenet.py``; also the manifest).
NUDENET_CLASSES: tuple[str, ...] = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)

#: NudeNet's effective score threshold (0.2 pre-filter, 0.25 in NMSBoxes).
SCORE_THRESHOLD = 0.25
IOU_THRESHOLD = 0.45


@dataclass(frozen=True)
class Detection:
    """One body part: class name, score 0-1, box (left, top, width, height) as image ratios."""

    label: str
    score: float
    box: tuple[float, float, float, float]


def non_max_suppression(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = IOU_THRESHOLD
) -> list[int]:
    """Greedy NMS over ``[x1, y1, x2, y2]`` boxes; indices kept, best score first."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i, rest = int(order[0]), order[1:]
        keep.append(i)
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou <= iou_threshold]
    return keep


def decode_nudenet(
    output: np.ndarray,
    *,
    image_width: int,
    image_height: int,
    input_size: int = 320,
    classes: Sequence[str] = NUDENET_CLASSES,
    score_threshold: float = SCORE_THRESHOLD,
    iou_threshold: float = IOU_THRESHOLD,
) -> list[Detection]:
    """Detections of one image from its ``[1, 4 + C, A]`` (or ``[4 + C, A]``) output.

    The image was padded at the right/bottom to a square of side ``max(w, h)`` and
    resized to ``input_size``, so one input pixel is ``max(w, h) / input_size`` image
    pixels and the origin is unchanged.
    """
    rows = np.asarray(output, np.float32)
    if rows.ndim == 3:
        if rows.shape[0] != 1:
            raise ValueError(f"expected one image's output, got batch {rows.shape[0]}")
        rows = rows[0]
    if rows.ndim != 2 or rows.shape[0] != 4 + len(classes):
        raise ValueError(f"expected [{4 + len(classes)}, anchors] rows, got {rows.shape}")
    scores_all = rows[4:]
    best = scores_all.argmax(axis=0)
    score = scores_all[best, np.arange(rows.shape[1])]
    kept = score >= score_threshold
    if not kept.any():
        return []
    cx, cy, w, h = rows[0, kept], rows[1, kept], rows[2, kept], rows[3, kept]
    px = max(image_width, image_height) / input_size
    x1 = np.clip((cx - w / 2) * px, 0, image_width)
    y1 = np.clip((cy - h / 2) * px, 0, image_height)
    x2 = np.clip((cx + w / 2) * px, 0, image_width)
    y2 = np.clip((cy + h / 2) * px, 0, image_height)
    boxes = np.stack([x1, y1, x2, y2], axis=1)
    score, best = score[kept], best[kept]
    return [
        Detection(
            label=classes[int(best[i])],
            score=float(score[i]),
            box=(
                float(x1[i] / image_width),
                float(y1[i] / image_height),
                float((x2[i] - x1[i]) / image_width),
                float((y2[i] - y1[i]) / image_height),
            ),
        )
        for i in non_max_suppression(boxes, score, iou_threshold)
    ]
