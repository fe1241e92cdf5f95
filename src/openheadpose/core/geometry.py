"""Plane and space geometry shared by every stage: box overlap and NMS, similarity fits, tiling, camera frame.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    into the camera's frame: a pinhole of focal ``focal_factor * W`` pixels (``W`` the
    image width: ``focal_factor = 0.5 / tan(horizontal_fov / 2)``) centred on the image.

    >>> R = camera_frame(np.eye(3), (200.0, 200.0), (400, 200), 0.5)  # portrait, 90 deg across its width
    >>> round(float(np.degrees(np.arccos(R[2, 2]))), 6)  # a face at the right edge is seen 45 deg from the side
    45.0
    """
    h, w = image_shape[:2]
    f = focal_factor * w
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


@dataclass(frozen=True)
class RotatedSquare:
    """A square region of an image, turned in the image plane: what a landmark model is fed.

    Attributes:
        centre: ``(2,)`` the square's centre, in the caller's image coordinates.
        size: its side in image pixels.
        ex: ``(2,)`` unit vector, the crop's x axis in the image; the y axis is ``ex``
            turned a quarter clockwise on screen (y down): ``(-ex[1], ex[0])``.

    Two pixel conventions are in use, named by ``continuous``:

    * ``False``: image and crop coordinates are pixel indices (pixel ``j`` is at ``j``);
    * ``True``: coordinates are continuous (pixel ``j`` covers ``[j, j + 1)``), as
      MediaPipe's normalised coordinates times the image size.
    """

    centre: np.ndarray
    size: float
    ex: np.ndarray

    @staticmethod
    def from_axis(centre, size: float, axis) -> "RotatedSquare":
        """The square whose x axis points along ``axis`` ``(2,)`` (image x when it is zero)."""
        axis = np.asarray(axis, np.float64)
        n = np.linalg.norm(axis)
        ex = axis / n if n > 1e-9 else np.array([1.0, 0.0])
        return RotatedSquare(np.asarray(centre, np.float64), float(size), ex)

    @staticmethod
    def from_angle(centre, size: float, angle: float) -> "RotatedSquare":
        """The square turned by ``angle`` radians (clockwise on screen, y down)."""
        return RotatedSquare(np.asarray(centre, np.float64), float(size), np.array([np.cos(angle), np.sin(angle)]))

    @property
    def ey(self) -> np.ndarray:
        return np.array([-self.ex[1], self.ex[0]])

    @property
    def axes(self) -> np.ndarray:
        """``(2, 2)``: columns are the crop's x and y axes in image coordinates."""
        return np.stack([self.ex, self.ey], axis=1)

    def affine(self, side: int, continuous: bool = False) -> np.ndarray:
        """``(2, 3)`` map from pixel indices of a ``side``-pixel crop to image pixel indices."""
        A = self.axes * (self.size / side)
        if continuous:  # crop index i is at i + 0.5; image index = continuous - 0.5
            t = self.centre - A @ np.full(2, side / 2.0 - 0.5) - 0.5
        else:
            t = self.centre - A @ np.full(2, side / 2.0)
        return np.concatenate([A, t[:, None]], axis=1)

    def crop_to_image(self, u: np.ndarray, side: int) -> np.ndarray:
        """Continuous crop coordinates ``(..., 2)`` on a ``side``-pixel crop -> continuous image coordinates."""
        A = self.axes * (self.size / side)
        return self.centre + (np.asarray(u, np.float64) - side / 2.0) @ A.T

    def warp(self, image: np.ndarray, side: int, continuous: bool = False) -> np.ndarray:
        """The ``side x side`` crop (bilinear, black outside the image)."""
        import cv2

        M = self.affine(side, continuous)
        return cv2.warpAffine(image, M, (side, side), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
