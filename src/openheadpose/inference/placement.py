"""The pipeline's last step: place every head in the camera frame (position, sigma, 4x4 transform).

:class:`HeadPlacer` reads what the stages before left on :class:`~openheadpose.inference.results.Heads`
-- FaceMesh's points where there are some, else the box -- and the camera
(:class:`~openheadpose.core.camera.Camera`), and fills ``positions``, ``position_sigma`` and
``transforms``. The geometry is :mod:`openheadpose.core.placement`.

It runs after the pose stage in :meth:`~openheadpose.inference.pipeline.HeadPoseEstimator.predict`
and after the tracker in ``stream``, so position is a plain per-frame field: a tracker
that smooths it over time reads ``positions`` / ``position_sigma`` of each frame.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from openheadpose.assets import face_template
from openheadpose.core.camera import Camera
from openheadpose.core.placement import (
    BOX_REL_SIGMA,
    HEAD_SIZE_REL_SIGMA,
    box_positions,
    fit_positions,
    position_sigma,
    to_camera_rotations,
    transforms,
)
from openheadpose.inference.results import Heads


class HeadPlacer:
    """Positions of heads in the camera frame.

    Args:
        camera: the camera (default :meth:`Camera.assumed`: 60 degrees horizontally, its
            focal length's uncertainty added to every sigma).
        rotations_in_camera_frame: the pose stage already turned its rotations into the
            camera's frame (``--fov``); otherwise they are relative to each face's line of
            sight and are turned here, through the face's centre as the picture shows it.
        report_camera_frame: also replace ``Heads.rotations`` (and ``raw_rotations``) by
            the camera-frame rotations (``--camera``).
        from_boxes: place heads without landmarks from their boxes (a face detector's
            boxes); ``False`` leaves them ``null`` (boxes that are not face boxes: the
            ``body`` keypoint source, the ``heads`` detector).
    """

    def __init__(self, camera: Camera | None = None, rotations_in_camera_frame: bool = False, report_camera_frame: bool = False, from_boxes: bool = True):
        self.camera = Camera.assumed() if camera is None else camera
        self.rotations_in_camera_frame = rotations_in_camera_frame
        self.report_camera_frame = report_camera_frame
        self.from_boxes = from_boxes
        self.template = face_template().points

    def __call__(self, heads: Heads, width: int, height: int) -> Heads:
        n = len(heads)
        if n == 0:
            return replace(heads, positions=np.zeros((0, 3)), position_sigma=np.zeros((0, 3)), transforms=np.zeros((0, 4, 4)))
        K, _ = self.camera.intrinsics(width, height)  # a wrong-size calibration fails here, with its message
        cam = self.camera
        R = np.asarray(heads.rotations, np.float64).reshape(-1, 3, 3)
        has_mesh = np.zeros(n, bool) if heads.mesh is None else np.isfinite(np.asarray(heads.mesh)).reshape(n, -1).all(1)
        boxes = np.asarray(heads.boxes, np.float64).reshape(-1, 4)
        # undistorted: the mesh's points, else the box's edge midpoints
        centres = np.zeros((n, 2))
        pts = None
        if has_mesh.any():
            pts = cam.undistort(np.asarray(heads.mesh)[has_mesh][..., :2], width, height)
            centres[has_mesh] = pts.mean(1)
        ub = boxes.copy()
        if (~has_mesh).any():
            b = boxes[~has_mesh]
            cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
            mids = np.stack([np.stack([b[:, 0], cy], -1), np.stack([b[:, 2], cy], -1), np.stack([cx, b[:, 1]], -1), np.stack([cx, b[:, 3]], -1)], 1)
            m = cam.undistort(mids, width, height)
            ub[~has_mesh] = np.stack([m[:, 0, 0], m[:, 2, 1], m[:, 1, 0], m[:, 3, 1]], -1)
            centres[~has_mesh] = (ub[~has_mesh, :2] + ub[~has_mesh, 2:]) / 2
        # The pose stage read the *distorted* picture, where a face off the axis is squashed
        # along the radius as if seen from nearer the axis: its apparent rotation is relative
        # to the line of sight through the face's distorted centre, not the true ray
        # (benchmarks/bench_position.py: the true ray gave 0.2 degrees more error than the
        # distorted centre off the axis). Positions use the undistorted points.
        seen = np.zeros((n, 2))
        seen[has_mesh] = np.asarray(heads.mesh)[has_mesh][..., :2].mean(1) if has_mesh.any() else seen[has_mesh]
        seen[~has_mesh] = (boxes[~has_mesh, :2] + boxes[~has_mesh, 2:]) / 2
        R_cam = R if self.rotations_in_camera_frame else to_camera_rotations(R, seen, K)
        t = np.full((n, 3), np.nan)
        sigma = np.full((n, 3), np.nan)
        focal = cam.focal_rel_sigma
        if pts is not None:
            tm, cov = fit_positions(pts, self.template, R_cam[has_mesh], K)
            t[has_mesh] = tm
            sigma[has_mesh] = position_sigma(tm, np.hypot(HEAD_SIZE_REL_SIGMA, focal), cov)
        box_rows = ~has_mesh if self.from_boxes else np.zeros(n, bool)
        if box_rows.any():
            tb = box_positions(ub[box_rows], self.template, R_cam[box_rows], K)
            t[box_rows] = tb
            sigma[box_rows] = position_sigma(tb, np.hypot(BOX_REL_SIGMA, focal))
        out = replace(heads, positions=t, position_sigma=sigma, transforms=transforms(R_cam, t))
        if self.report_camera_frame and not self.rotations_in_camera_frame:
            raw = None if heads.raw_rotations is None else to_camera_rotations(heads.raw_rotations, seen, K)
            out = replace(out, rotations=R_cam, raw_rotations=raw)
        return out
