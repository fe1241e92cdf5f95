"""Fitting the morphable model to sparse 2D landmarks (weak perspective).

Model (conventions of :mod:`openheadpose.synth.bfm`): a landmark ``k`` of the face
with coefficients ``c`` is ``X_k(c) = m_k + B_k c`` (mm, head axes); it appears at

    u = tx + s (R X)_x,    v = ty - s (R X)_y        (pixels, y down)

with ``R = euler_to_matrix(yaw, pitch, roll)`` -- exactly the AFLW2000 / 300W-LP
``Pose_Para`` model, so the fitted angles are labels in that convention.

The fit minimises, over rotation, log scale, shift and ``c``,

    sum_k rho(|u_k - x_k| / (s sigma_k))^2 + |c|^2 + ((yaw - yaw0) / sigma_yaw)^2
        + (pitch^2 + roll^2) / sigma_tilt^2

i.e. the MAP estimate with landmark noise ``sigma_k`` mm (robust: soft-L1), the
Gaussian prior of the coefficients, where the dataset has one its yaw label as a
prior, and optionally a weak prior on the tilt (see ``tilt_sigma``). Hidden landmarks (NaN) are left out. The rotation is a rotation
vector (no gimbal lock at |yaw| = 90); the start is the best of a few rigid fits
from several yaws (or the label's).

Dimension legend: P landmarks, C coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from openheadpose.core.rotation import (
    EulerConvention,
    euler_to_matrix,
    matrix_to_euler,
    rot_z,
)
from openheadpose.synth.bfm import AFLW_TO_BFM68, MorphableModel

__all__ = ["LANDMARK_SETS", "LandmarkSet", "FitResult", "facemesh_layout", "fit_landmarks", "project"]


@dataclass(frozen=True)
class LandmarkSet:
    """How a dataset's landmarks map onto the model.

    Attributes:
        name: ``aflw21``, ``68`` or ``facemesh``.
        groups: per landmark, the 68-point indices whose mean is that point; ``()`` = not modelled (ignored).
        sigma_mm: per landmark, its noise in mm (contour points slide along the jaw: larger).
        vertices: per landmark, a model vertex instead (``groups`` then unused), e.g. FaceMesh's 468 points.
    """

    name: str
    groups: tuple[tuple[int, ...], ...]
    sigma_mm: tuple[float, ...]
    vertices: tuple[int, ...] | None = None

    def modelled(self) -> np.ndarray:
        if self.vertices is not None:
            return np.ones(len(self.vertices), bool)
        return np.array([len(g) > 0 for g in self.groups])

    def __len__(self) -> int:
        return len(self.vertices) if self.vertices is not None else len(self.groups)

    def rows(self, model: MorphableModel, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``(P, 3)`` and basis ``(P, 3, C)`` of the landmarks ``idx``."""
        if self.vertices is None:
            return model.rows([self.groups[i] for i in idx])
        return model.vertex_rows(np.asarray(self.vertices)[idx])


def _aflw21() -> LandmarkSet:
    groups = tuple(AFLW_TO_BFM68.get(i, ()) for i in range(1, 22))
    # brows and the nose wings are the least well defined of AFLW's points
    sigma = tuple(5.0 if i in (1, 2, 3, 4, 5, 6, 14, 16, 21) else 3.0 for i in range(1, 22))
    return LandmarkSet("aflw21", groups, sigma)


def _ibug68() -> LandmarkSet:
    return LandmarkSet("68", tuple((i,) for i in range(68)), tuple(8.0 if i < 17 else 3.0 for i in range(68)))


#: Landmark layouts the fitter understands by name (``facemesh`` is built per model: :func:`facemesh_layout`).
LANDMARK_SETS: dict[str, LandmarkSet] = {"aflw21": _aflw21(), "68": _ibug68()}


#: FaceMesh's face-oval points (MediaPipe's FACEMESH_FACE_OVAL): they follow the visible outline, so they slide.
FACEMESH_OVAL = (10, 21, 54, 58, 67, 93, 103, 109, 127, 132, 136, 148, 149, 150, 152, 162, 172, 176, 234, 251, 284, 288, 297,
                 323, 332, 338, 356, 361, 365, 377, 378, 379, 389, 397, 400, 454)  # fmt: skip


_FACEMESH_CACHE: dict[int, LandmarkSet] = {}


def facemesh_layout(model: MorphableModel) -> LandmarkSet:
    """FaceMesh's 468 points as model vertices.

    ``assets/face_template.npz`` holds the BFM mean sampled at FaceMesh's landmarks
    (``tools/build_face_template.py``) and the 68 landmarks of the same face: the
    template is aligned to ``model``'s mean face on those 68 points (translation
    only: same axes and units) and each FaceMesh point takes the nearest model vertex.
    """
    if id(model) in _FACEMESH_CACHE:
        return _FACEMESH_CACHE[id(model)]
    from scipy.spatial import cKDTree

    from openheadpose.assets import face_template

    t = face_template()
    pts, lm68 = t.points, t.landmarks68
    mean = model.vertices().astype(np.float64)
    shift = mean[model.landmarks68].mean(0) - lm68.mean(0)
    _, idx = cKDTree(mean).query(pts + shift)
    sigma = tuple(8.0 if i in FACEMESH_OVAL else 4.0 for i in range(len(pts)))
    lay = LandmarkSet("facemesh", (), sigma, tuple(int(i) for i in idx))
    _FACEMESH_CACHE[id(model)] = lay
    return lay


@dataclass(frozen=True)
class FitResult:
    """A fitted face.

    Attributes:
        rotation: ``(3, 3)`` head rotation (``Frame.GL``).
        euler: ``(3,)`` yaw, pitch, roll in degrees (AFLW convention).
        scale: pixels per mm.
        shift: ``(2,)`` pixels, where the model origin appears.
        coeffs: ``(C,)`` shape and expression coefficients.
        rms_px: root-mean-square landmark residual in pixels.
        rms_mm: the same in mm (pixels / scale).
        num_points: landmarks used.
    """

    rotation: np.ndarray
    euler: np.ndarray
    scale: float
    shift: np.ndarray
    coeffs: np.ndarray
    rms_px: float
    rms_mm: float
    num_points: int


def project(points3d: np.ndarray, rotation: np.ndarray, scale: float, shift: np.ndarray) -> np.ndarray:
    """``(N, 3)`` head-axis mm -> ``(N, 3)`` image ``(u, v)`` pixels and depth ``z`` (mm towards the viewer)."""
    Y = np.asarray(points3d, np.float64) @ np.asarray(rotation, np.float64).T
    return np.stack([shift[0] + scale * Y[:, 0], shift[1] - scale * Y[:, 1], Y[:, 2]], 1)


def fit_landmarks(
    points: np.ndarray,
    model: MorphableModel,
    layout: str | LandmarkSet = "aflw21",
    yaw_prior: float | None = None,
    yaw_sigma: float = 6.0,
    rigid_only: bool = False,
    tilt_sigma: float | None = None,
) -> FitResult:
    """Fit ``model`` to ``points`` ``(P, 2)`` (pixels, NaN = hidden) of the layout ``layout``.

    Args:
        yaw_prior: the dataset's yaw label in degrees (AFLW convention), used as a
            Gaussian prior of width ``yaw_sigma``; None: no prior (start from several yaws).
        rigid_only: keep ``c = 0`` (the average face).
        tilt_sigma: a zero-mean Gaussian prior of this width (degrees) on pitch and
            roll. Near profile the two are nearly interchangeable (at |yaw| = 90 only
            their difference shows), and without a prior a fit may land on
            pitch -80, roll -60 for an upright profile; the prior picks the
            smallest tilt that explains the points.

    Raises:
        ValueError: fewer than 5 usable landmarks.
    """
    lay = (facemesh_layout(model) if layout == "facemesh" else LANDMARK_SETS[layout]) if isinstance(layout, str) else layout
    x = np.asarray(points, np.float64)[..., :2].reshape(-1, 2)
    if len(x) != len(lay):
        raise ValueError(f"{len(x)} landmarks given, the {lay.name} layout has {len(lay)}")
    use = lay.modelled() & np.all(np.isfinite(x), 1)
    if use.sum() < 5:
        raise ValueError(f"only {int(use.sum())} usable landmarks (need 5)")
    idx = np.flatnonzero(use)
    m, B = lay.rows(model, idx)
    x = x[idx]
    sig = np.asarray(lay.sigma_mm, np.float64)[idx]
    C = 0 if rigid_only else model.num_coeffs

    def unpack(th):
        return th[:3], th[3], th[4:6], th[6:]

    flip = np.array([1.0, -1.0])

    def residuals(th):
        rv, ls, t, c = unpack(th)
        s = np.exp(ls)
        R = Rotation.from_rotvec(rv).as_matrix()
        X = m + (B[..., :C] @ c if C else 0.0)
        uv = project(X, R, s, t)[:, :2]
        r = ((uv - x) / (s * sig[:, None])).ravel()
        extra = [c] if C else []
        if yaw_prior is not None or tilt_sigma is not None:
            e = matrix_to_euler(R, EulerConvention.AFLW)
            if yaw_prior is not None:
                extra.append([(float(e.yaw) - yaw_prior) / yaw_sigma])
            if tilt_sigma is not None:
                extra.append([float(e.pitch) / tilt_sigma, float(e.roll) / tilt_sigma])
        return np.concatenate([r, *map(np.ravel, extra)]) if extra else r

    def jacobian(th):
        # rotation by central differences; scale, shift and coefficients exactly
        rv, ls, t, c = unpack(th)
        s = np.exp(ls)
        r0 = residuals(th)
        J = np.zeros((len(r0), len(th)))
        for j in range(3):
            d = np.zeros_like(th)
            d[j] = 1e-6
            J[:, j] = (residuals(th + d) - residuals(th - d)) / 2e-6
        P = len(x)
        R = Rotation.from_rotvec(rv).as_matrix()
        X = m + (B[..., :C] @ c if C else 0.0)
        uv = project(X, R, s, t)[:, :2]
        J[: 2 * P, 3] = (-(t - x) / (s * sig[:, None]) + 0.0 * uv).ravel()
        J[: 2 * P, 4] = np.tile([1.0, 0.0], P) / (s * np.repeat(sig, 2))
        J[: 2 * P, 5] = np.tile([0.0, 1.0], P) / (s * np.repeat(sig, 2))
        if C:
            RB = np.einsum("ij,pjc->pic", R[:2], B[..., :C]) * flip[None, :, None]  # (P, 2, C)
            J[: 2 * P, 6:] = (RB / sig[:, None, None]).reshape(2 * P, C)
            J[2 * P : 2 * P + C, 6:] = np.eye(C)
        return J

    # rigid starts: from the label's yaw, or from a spread of yaws; pitch 0, roll from the eye line
    cen = x.mean(0)
    yaws = [yaw_prior] if yaw_prior is not None else [-70.0, -35.0, 0.0, 35.0, 70.0]
    best = None
    for y0 in yaws:
        R0 = euler_to_matrix(y0, 0.0, 0.0)
        p = project(m, R0, 1.0, np.zeros(2))[:, :2]
        # in-plane angle and scale by 2D Procrustes (image axes, y down)
        pc, xc = p - p.mean(0), x - cen
        ang = np.arctan2((pc[:, 0] * xc[:, 1] - pc[:, 1] * xc[:, 0]).sum(), (pc * xc).sum())
        s0 = np.sqrt((xc**2).sum() / max((pc**2).sum(), 1e-9))
        R0 = rot_z(-ang) @ R0  # clockwise on screen (y down) = negative about the GL z axis
        th0 = np.concatenate([Rotation.from_matrix(R0).as_rotvec(), [np.log(s0)], np.zeros(2)])
        th0[4:6] = cen - project(m, R0, s0, np.zeros(2))[:, :2].mean(0)
        saved_C, C = C, 0
        sol = least_squares(residuals, th0, jac=jacobian, loss="soft_l1", f_scale=2.0, max_nfev=100)
        C = saved_C
        if best is None or sol.cost < best.cost:
            best = sol
    th = best.x
    if C:
        th = np.concatenate([th, np.zeros(C)])
        sol = least_squares(residuals, th, jac=jacobian, loss="soft_l1", f_scale=2.0, max_nfev=200, x_scale="jac")
        th = sol.x
    rv, ls, t, c = unpack(th)
    R = Rotation.from_rotvec(rv).as_matrix()
    s = float(np.exp(ls))
    X = m + (B[..., :C] @ c if C else 0.0)
    res = project(X, R, s, t)[:, :2] - x
    rms = float(np.sqrt((res**2).sum(1).mean()))
    e = matrix_to_euler(R, EulerConvention.AFLW)
    coeffs = np.zeros(model.num_coeffs)
    coeffs[:C] = c
    return FitResult(R, np.array([e.yaw, e.pitch, e.roll], np.float64).ravel(), s, np.asarray(t, np.float64), coeffs, rms, rms / s, len(idx))
