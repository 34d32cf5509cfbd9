"""Head pose from the face mesh fitted to MediaPipe's canonical 3-D face.

A weighted 3-D similarity (Umeyama) takes the canonical face onto the observed mesh; its
rotation gives the pose. This is a real 3-D fit, so it follows image rotation exactly
(roll) and does not depend on assumed face proportions the way the 5-point estimate does.
Weights are MediaPipe's own Procrustes basis (stable points: no lids, no lips).

Frames: the mesh is in image pixels (x right, y down, z away from the camera); it is
turned into the canonical face's frame (x right, y up, z towards the camera) first.
Signs as for the 5-point estimate: positive roll turns the face clockwise in the image,
positive yaw turns it towards the image's right, positive pitch tilts it up.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["fit_similarity_3d", "pose_from_rotation", "pose_from_mesh"]

_TO_CANONICAL = np.array([1.0, -1.0, -1.0])


def fit_similarity_3d(
    src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """Weighted least-squares ``dst ≈ scale * R @ src + t``; returns ``(scale, R, t)``."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    src_mean, dst_mean = w @ src, w @ dst
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = (dst_c * w[:, None]).T @ src_c
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rotation = u @ np.diag(d) @ vt
    var_src = float(w @ (src_c**2).sum(axis=1))
    scale = float((s * d).sum() / var_src) if var_src > 0 else 1.0
    return scale, rotation, dst_mean - scale * rotation @ src_mean


def pose_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """``(roll, yaw, pitch)`` in degrees of a canonical-frame rotation (y up, z to camera).

    Decomposed as ``Rz(roll) @ Ry(yaw) @ Rx(pitch)``: roll is applied last, about the camera
    axis, so rolling the image changes roll alone (yaw and pitch stay in the head's frame)
    and roll is the image angle of the eye line, as the 5-point estimate measures it.
    """
    r = np.asarray(rotation, dtype=np.float64)
    roll = -math.degrees(math.atan2(r[1, 0], r[0, 0]))
    yaw = -math.degrees(math.asin(max(-1.0, min(1.0, float(r[2, 0])))))
    pitch = -math.degrees(math.atan2(r[2, 1], r[2, 2]))
    return roll, yaw, pitch


def pose_from_mesh(
    points: np.ndarray, canonical: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, float, float]:
    """``(roll, yaw, pitch)`` of a 468 x 3 mesh (image pixels) against the canonical face."""
    observed = np.asarray(points, dtype=np.float64)[:, :3] * _TO_CANONICAL
    _, rotation, _ = fit_similarity_3d(canonical[:, :3], observed, weights)
    return pose_from_rotation(rotation)
