"""Pose estimators: turn landmarks (and later, image crops) into head rotations.

A pose estimator is a callable ``estimator(image_rgb, landmarks) -> PoseOutput``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from scipy.optimize import least_squares

from .landmarks import Landmarks
from .registry import Registry
from .rotation import from_axis_angle, look_at_rotation, orthonormalize, to_axis_angle

POSE_ESTIMATORS: Registry = Registry("pose estimator")


@dataclass(frozen=True)
class PoseOutput:
    """Rotations ``(N, 3, 3)`` in ``Frame.GL`` and per-angle sigma ``(N, 3)`` degrees (or None)."""

    rotations: np.ndarray
    sigma: np.ndarray | None = None


@dataclass(frozen=True)
class FaceTemplate:
    """A rigid 3D face: ``points`` ``(468, 3)`` in mm, head axes of ``Frame.GL``.

    The points are the 3DDFA Basel-Face-Model mean shape sampled at the 468
    FaceMesh landmarks (see ``tools/build_face_template.py``), so a rotation
    fitted to it is in the frame of the AFLW2000 / 300W-LP labels.
    """

    points: np.ndarray
    landmarks68: np.ndarray
    mirror_partner: np.ndarray


@lru_cache(maxsize=None)
def face_template() -> FaceTemplate:
    with resources.files("openheadpose.data").joinpath("face_template.npz").open("rb") as f:
        z = np.load(f)
        return FaceTemplate(z["points"].astype(np.float64), z["landmarks68"].astype(np.float64), z["mirror_partner"])


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


class GeometricPose:
    """Robust rigid fit of FaceMesh landmarks to a 3D face model.

    1. Landmarks go to ``Frame.GL`` (x right, y up, z towards the viewer).
    2. A scaled-orthographic fit aligns the template to them: first a 3D
       similarity (Umeyama) with Huber-weighted iterations, then -- by default --
       a refinement on the 2D image positions alone with a robust loss, because
       FaceMesh's depth is less reliable than its image positions and
       compresses profiles.
    3. The crop's perspective: a face off the optical axis is seen from the side
       even when it faces along the camera's axis. By default the *apparent*
       rotation is reported -- the pose relative to the line of sight, which is
       what AFLW2000 / 300W-LP / BIWI labels and every published model give.
       With ``focal_factor`` set (a pinhole camera of focal
       ``focal_factor * max(W, H)`` pixels centred on the image) the rotation is
       turned from the face's viewing ray to the optical axis, giving the pose
       in the camera's frame, which is what geometry between several heads needs.

    Gives no sigma (``None``): a rigid fit has no calibrated uncertainty.
    """

    def __init__(self, refine_2d: bool = True, focal_factor: float | None = None, huber_mm: float = 3.0):
        self.template = face_template()
        self.refine_2d = refine_2d
        self.focal_factor = focal_factor
        self.huber_mm = huber_mm

    def fit_one(self, pts_img: np.ndarray) -> np.ndarray:
        """Apparent rotation ``(3, 3)`` for one face's landmarks ``(468, 3)`` (image pixels, z towards viewer)."""
        P = pts_img * np.array([1.0, -1.0, 1.0])
        T = self.template.points
        w = np.ones(len(T))
        for _ in range(4):
            s, R, t = similarity_fit(T, P, w)
            r = np.linalg.norm(s * T @ R.T + t - P, axis=1) / s  # residual in mm
            w = np.minimum(1.0, self.huber_mm / np.maximum(r, 1e-9))
        if not self.refine_2d:
            return R
        scale_px = s
        x0 = np.concatenate([to_axis_angle(R), [np.log(s)], t[:2]])

        def residuals(x):
            Rx = from_axis_angle(x[:3])
            proj = np.exp(x[3]) * T @ Rx[:2].T + x[4:6]
            return ((proj - P[:, :2]) / scale_px).ravel()

        sol = least_squares(residuals, x0, loss="soft_l1", f_scale=self.huber_mm, method="trf", x_scale="jac", max_nfev=50)
        return from_axis_angle(sol.x[:3])

    def __call__(self, image: np.ndarray, landmarks: Landmarks) -> PoseOutput:
        h, w = image.shape[:2]
        rots = np.zeros((len(landmarks), 3, 3))
        for i, pts in enumerate(landmarks.points):
            R = self.fit_one(pts)
            if self.focal_factor is not None:
                f = self.focal_factor * max(h, w)
                c = pts[:, :2].mean(0)
                ray = np.array([c[0] - w / 2.0, -(c[1] - h / 2.0), -f])
                R = look_at_rotation(ray) @ R
            rots[i] = orthonormalize(R)
        return PoseOutput(rots, None)


@POSE_ESTIMATORS.register("geometric", help="robust rigid fit of FaceMesh landmarks to a 3D face (default)")
def _make_geometric(**kw):
    return GeometricPose(**kw)
