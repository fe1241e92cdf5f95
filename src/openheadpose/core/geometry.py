"""Plane and space geometry shared by every stage: box overlap and NMS, similarity fits, tiling, camera frame.
"""

from __future__ import annotations

import numpy as np

from openheadpose.core.rotation import (
    look_at_rotation,
)


def similarity_fit(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None):
    """Weighted Umeyama: ``(s, R, t)`` minimising ``sum w |s R src + t - dst|^2``.

    Args:
        src, dst: ``(P, 3)`` corresponding points.
        weights: ``(P,)`` non-negative weights (uniform if None).
    """
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    ms, md = w @ src, w @ dst
    a, b = src - ms, dst - md
    C = (b * w[:, None]).T @ a
    U, S, Vt = np.linalg.svd(C)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    R = U @ D @ Vt
    s = np.trace(np.diag(S) @ D) / (w @ (a**2).sum(1))
    return s, R, md - s * R @ ms


def robust_similarity_fit(src: np.ndarray, dst: np.ndarray, huber: float = 3.0, iterations: int = 4):
    """:func:`similarity_fit` reweighted ``iterations`` times with Huber weights on the
    residuals measured in ``src`` units (``huber``: the Huber threshold in those units)."""
    w = np.ones(len(src))
    for _ in range(iterations):
        s, R, t = similarity_fit(src, dst, w)
        r = np.linalg.norm(s * src @ R.T + t - dst, axis=1) / s
        w = np.minimum(1.0, huber / np.maximum(r, 1e-9))
    return s, R, t


def camera_frame(R: np.ndarray, centre: np.ndarray, image_shape, focal_factor: float) -> np.ndarray:
    """Turn an apparent rotation (relative to the line of sight through ``centre``, pixels)
    into the camera's frame: a pinhole of focal ``focal_factor * max(W, H)`` pixels
    centred on the image."""
    h, w = image_shape[:2]
    f = focal_factor * max(h, w)
    ray = np.array([centre[0] - w / 2.0, -(centre[1] - h / 2.0), -f])
    return look_at_rotation(ray) @ R


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(N, M)`` between boxes ``(N, 4)`` and ``(M, 4)`` as [x1, y1, x2, y2]."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=-1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def nms_indices(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; indices of the kept boxes, best score first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    iou = box_iou(boxes, boxes)
    keep: list[int] = []
    for i in order:
        if all(iou[i, j] <= iou_threshold for j in keep):
            keep.append(int(i))
    return np.array(keep, dtype=int)


def tile_starts(length: int, tile: int, step: int | None = None, snap: float = 0.0) -> list[int]:
    """Origins of tiles of side ``tile`` covering ``[0, length)`` with stride ``step`` (default half a tile).

    The last tile ends at the border. When it would start less than ``snap * step``
    pixels after the one before, that one is moved to the border instead of adding a
    nearly identical tile.

    >>> tile_starts(100, 40), tile_starts(100, 40, snap=0.25), tile_starts(30, 40)
    ([0, 20, 40, 60], [0, 20, 40, 60], [0])
    >>> tile_starts(105, 40), tile_starts(105, 40, snap=0.25)
    ([0, 20, 40, 60, 65], [0, 20, 40, 65])
    """
    step = max(1, tile // 2) if step is None else step
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, step))
    if starts[-1] + tile < length:
        if length - tile - starts[-1] > int(snap * step):
            starts.append(length - tile)
        else:  # nearly the same tile: move it instead
            starts[-1] = length - tile
    return starts


def points_box(points: np.ndarray) -> np.ndarray:
    """``(N, 4)`` boxes ``[x1, y1, x2, y2]`` around each face's points ``(N, L, 2+)`` (x, y first)."""
    p = np.asarray(points)[:, :, :2]
    return np.concatenate([p.min(1), p.max(1)], axis=1)
