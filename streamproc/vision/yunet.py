"""Decode YuNet's raw anchor-free outputs into face boxes, scores and five landmarks."""

from __future__ import annotations

import numpy as np

from streamproc.vision.boxes import nms

__all__ = ["STRIDES", "decode_yunet"]

STRIDES = (8, 16, 32)


def decode_yunet(
    outputs: dict[str, np.ndarray],
    input_size: int,
    score_threshold: float,
    nms_threshold: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes ``N x 4`` (x1, y1, x2, y2), scores ``N``, landmarks ``N x 5 x 2`` in input pixels.

    Each stride's grid cell predicts a centre offset and log-size (in strides), and
    ``score = sqrt(cls * obj)`` as in OpenCV's FaceDetectorYN.
    """
    all_boxes, all_scores, all_kps = [], [], []
    for stride in STRIDES:
        cols = input_size // stride
        cls = np.clip(outputs[f"cls_{stride}"].reshape(-1), 0.0, 1.0)
        obj = np.clip(outputs[f"obj_{stride}"].reshape(-1), 0.0, 1.0)
        scores = np.sqrt(cls * obj)
        keep = scores >= score_threshold
        if not keep.any():
            continue
        idx = np.nonzero(keep)[0]
        bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)[idx]
        kps = outputs[f"kps_{stride}"].reshape(-1, 5, 2)[idx]
        col = (idx % cols).astype(np.float32)
        row = (idx // cols).astype(np.float32)
        cx = (col + bbox[:, 0]) * stride
        cy = (row + bbox[:, 1]) * stride
        w = np.exp(bbox[:, 2]) * stride
        h = np.exp(bbox[:, 3]) * stride
        all_boxes.append(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1))
        all_scores.append(scores[idx])
        points = np.empty_like(kps)
        points[..., 0] = (kps[..., 0] + col[:, None]) * stride
        points[..., 1] = (kps[..., 1] + row[:, None]) * stride
        all_kps.append(points)
    if not all_boxes:
        return (
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros((0, 5, 2), np.float32),
        )
    boxes = np.concatenate(all_boxes).astype(np.float32)
    scores = np.concatenate(all_scores).astype(np.float32)
    kps_all = np.concatenate(all_kps).astype(np.float32)
    kept = nms(boxes, scores, nms_threshold)
    return boxes[kept], scores[kept], kps_all[kept]
