"""Where a head is: its position in the camera frame from landmarks (or a box), a rotation and a camera.

Dimension legend: N heads, P points per head.

**The landmark fit.** With the head's rotation ``R`` in the camera frame known, the
face template's points ``X_i`` (mm, head axes; :class:`~openheadpose.assets.FaceTemplate`)
land at ``Y_i = R X_i + t``; a pinhole sees ``Y_i`` at the normalised image position
``(a_i, b_i) = (Y_x, Y_y) / -Y_z`` (``Frame.GL``: x right, y up, z towards the viewer, so
a point in front of the camera has ``Y_z < 0``). Each point gives two equations linear in
``t``::

    t_x + a_i t_z = -(R X_i)_x - a_i (R X_i)_z
    t_y + b_i t_z = -(R X_i)_y - b_i (R X_i)_z

solved by least squares, all heads at once (a 3 x 3 system per head; no iterations).
Depth then comes from the face's size in the image -- so the template's size sets the
scale of every position. **Head size prior:** the template is the Basel Face Model mean
face, whose eye centres are 63.1 mm apart; the adult inter-pupillary distance is
63.4 mm on average with a standard deviation of 3.8 mm (Dodgson 2004, "Variation and
extrema of human interpupillary distance", from the 1988 US Army anthropometric survey,
3976 adults, men and women together). So the template is taken at the population's mean
size, and a head's unknown size is a relative standard deviation of
:data:`HEAD_SIZE_REL_SIGMA` = 3.8 / 63.4 = 6.0 % on its depth: for a face alone, size and
distance cannot be told apart, so this sets most of the depth sigma. The fit's own
residuals add the rest (small and distant faces, an inexact rotation).

**Without landmarks**, depth comes from the box's size against the template's extent
seen at the head's rotation (:func:`box_positions`), with a larger sigma
(:data:`BOX_REL_SIGMA`).

Position sigma is per axis, in metres: depth's relative sigma ``s_z`` (size prior, focal
length, fit), and laterally the same relative error along the viewing ray
(``|x / z| * sigma_z``) plus the fit's lateral part.
"""

from __future__ import annotations

import numpy as np

from openheadpose.core.rotation import look_at_rotation

#: Relative standard deviation of an adult head's size: the inter-pupillary distance's
#: 3.83 mm over its mean 63.36 mm (Dodgson 2004; see the module docstring).
HEAD_SIZE_REL_SIGMA = 3.83 / 63.36

#: Adult mean inter-pupillary distance, mm (Dodgson 2004), for reference in the docs and tests.
ADULT_IPD_MM = 63.36

#: Relative depth sigma of a head placed from its detector box alone (no landmarks): the
#: SD of box depth over landmark depth on the same faces (0.084 on the 16 real faces of
#: ../shared/media: ``python benchmarks/bench_position.py --box-calibration``; never the
#: renders), with the head-size prior added: hypot(0.084, 0.060) = 0.104.
BOX_REL_SIGMA = 0.10

#: A BlazeFace box's side over the template's extent at the head's rotation: the median of
#: landmark depth over box depth on those faces, 1.009 (same command).
BOX_TEMPLATE_RATIO = 1.01


def normalised_rays(points_px: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Undistorted pixel positions ``(..., 2)`` -> ``Frame.GL`` normalised coordinates ``(..., 2)``: ``(x, y) / -z``."""
    p = np.asarray(points_px, np.float64)
    a = (p[..., 0] - K[0, 2]) / K[0, 0]
    b = -(p[..., 1] - K[1, 2]) / K[1, 1]
    return np.stack([a, b], axis=-1)


def rays_through(points_px: np.ndarray, K: np.ndarray) -> np.ndarray:
    """``Frame.GL`` viewing rays ``(..., 3)`` (camera looks along -z) through pixel positions ``(..., 2)``."""
    ab = normalised_rays(points_px, K)
    return np.concatenate([ab, -np.ones(ab.shape[:-1] + (1,))], axis=-1)


def to_camera_rotations(R_apparent: np.ndarray, centres_px: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Apparent rotations ``(N, 3, 3)`` (relative to each face's line of sight through
    ``centres_px`` ``(N, 2)``, undistorted pixels) turned into the camera's frame: ``look_at(ray) @ R``."""
    R = np.asarray(R_apparent, np.float64).reshape(-1, 3, 3)
    if len(R) == 0:
        return R.copy()
    return look_at_rotation(rays_through(np.asarray(centres_px, np.float64).reshape(-1, 2), K)) @ R


def inverse3(A: np.ndarray) -> np.ndarray:
    """Inverses of 3x3 matrices ``(N, 3, 3)`` by cofactors: no LAPACK call, whose thread pool
    (OpenBLAS) woke for each photo and took longer than the arithmetic (issue 32).

    >>> A = np.array([[[2.0, 0, 1], [0, 3, 0], [1, 0, 4]]])
    >>> bool(np.allclose(inverse3(A) @ A, np.eye(3)))
    True
    """
    A = np.asarray(A, np.float64)
    r0, r1, r2 = A[..., 0, :], A[..., 1, :], A[..., 2, :]
    c0, c1, c2 = np.cross(r1, r2), np.cross(r2, r0), np.cross(r0, r1)
    det = (r0 * c0).sum(-1)
    return np.stack([c0, c1, c2], axis=-1) / det[..., None, None]


def fit_positions(points_px: np.ndarray, template_mm: np.ndarray, R_cam: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Translations of N heads whose landmarks are ``points_px`` and rotations ``R_cam``.

    Args:
        points_px: ``(N, P, 2)`` undistorted pixel positions of the template's points.
        template_mm: ``(P, 3)`` the template's points in mm, head axes (``Frame.GL``).
        R_cam: ``(N, 3, 3)`` head-to-camera rotations in the camera's frame.
        K: ``(3, 3)`` the camera matrix.

    Returns:
        ``t`` ``(N, 3)`` metres, ``Frame.GL`` (the template's origin in the camera frame),
        and ``cov`` ``(N, 3, 3)`` the least-squares covariance of ``t`` in m^2 from the
        fit's residuals (the landmarks' scatter about the rigid template only; the
        head-size prior is added by :func:`position_sigma`).

    >>> from openheadpose.core.rotation import euler_to_matrix
    >>> X = np.random.default_rng(0).normal(size=(50, 3)) * 60.0
    >>> R = euler_to_matrix(20.0, -10.0, 5.0)[None]
    >>> t_true = np.array([0.2, -0.1, -1.5])
    >>> Y = (X / 1000.0) @ R[0].T + t_true
    >>> K = np.array([[800.0, 0, 320], [0, 800, 240], [0, 0, 1]])
    >>> uv = np.stack([K[0, 2] + K[0, 0] * Y[:, 0] / -Y[:, 2], K[1, 2] - K[1, 1] * Y[:, 1] / -Y[:, 2]], -1)
    >>> t, cov = fit_positions(uv[None], X, R, K)
    >>> np.abs(t[0] - t_true).max() < 1e-9
    True
    """
    ab = normalised_rays(points_px, K)  # (N, P, 2) normalised coordinates, GL (y up)
    a, b = ab[..., 0], ab[..., 1]
    Y = np.matmul(np.asarray(template_mm, np.float64) * 1e-3, np.swapaxes(np.asarray(R_cam, np.float64).reshape(-1, 3, 3), 1, 2))  # (N, P, 3)
    ok = np.isfinite(a) & np.isfinite(b)
    if not ok.all():  # a point FaceMesh did not give: left out of the sums
        a, b = np.where(ok, a, 0.0), np.where(ok, b, 0.0)
        Y = np.where(ok[..., None], Y, 0.0)
    n = ok.sum(1).astype(np.float64)
    # rows [1, 0, a] and [0, 1, b] (zero rows where a point is missing); normal equations
    rx = -(Y[..., 0] + a * Y[..., 2])
    ry = -(Y[..., 1] + b * Y[..., 2])
    sa, sb = a.sum(1), b.sum(1)
    A = np.zeros((len(a), 3, 3))
    A[:, 0, 0] = A[:, 1, 1] = n
    A[:, 0, 2] = A[:, 2, 0] = sa
    A[:, 1, 2] = A[:, 2, 1] = sb
    A[:, 2, 2] = (a * a + b * b).sum(1)
    rhs = np.stack([rx.sum(1), ry.sum(1), (a * rx + b * ry).sum(1)], axis=-1)
    A_inv = inverse3(A)
    t = np.matmul(A_inv, rhs[..., None])[..., 0]
    # residuals (normalised image error times depth: metres at the head); missing points add 0
    ex = rx - t[:, None, 0] - a * t[:, None, 2]
    ey = ry - t[:, None, 1] - b * t[:, None, 2]
    s2 = ((ex * ok) ** 2 + (ey * ok) ** 2).sum(1) / np.maximum(2 * n - 3, 1.0)
    cov = s2[:, None, None] * A_inv
    return t, cov


def box_positions(boxes: np.ndarray, template_mm: np.ndarray, R_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Translations ``(N, 3)`` (metres, ``Frame.GL``) of heads known only by their boxes ``(N, 4)``
    (undistorted pixels), from the template's extent at rotations ``R_cam`` ``(N, 3, 3)``.

    Depth from width and from height each (``f * extent / side``, the extent times
    :data:`BOX_TEMPLATE_RATIO`), combined as their geometric mean; the head's origin is
    placed on the ray through the box centre.
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(b) == 0:
        return np.zeros((0, 3))
    Y = np.einsum("nij,pj->npi", np.asarray(R_cam, np.float64).reshape(-1, 3, 3), np.asarray(template_mm, np.float64) / 1000.0)
    ext = (Y[..., :2].max(1) - Y[..., :2].min(1)) * BOX_TEMPLATE_RATIO  # (N, 2) metres, x and y
    side = np.maximum(b[:, 2:] - b[:, :2], 1e-6)
    depth = np.sqrt((K[0, 0] * ext[:, 0] / side[:, 0]) * (K[1, 1] * ext[:, 1] / side[:, 1]))
    ab = normalised_rays((b[:, :2] + b[:, 2:]) / 2.0, K)
    # the box centre is the centre of the projected template's extent, not its origin
    mid = (Y[..., :2].max(1) + Y[..., :2].min(1)) / 2.0
    return np.stack([ab[:, 0] * depth - mid[:, 0], ab[:, 1] * depth - mid[:, 1], -depth], axis=-1)


def position_sigma(t: np.ndarray, rel_depth_sigma: np.ndarray | float, cov: np.ndarray | None = None) -> np.ndarray:
    """Per-axis standard deviations ``(N, 3)`` (metres) of positions ``t`` ``(N, 3)``.

    An error of the head's size (or the focal length) moves the head along its viewing
    ray: relative error ``s`` on all three coordinates, ``s * |t|`` per axis. The fit's
    covariance ``cov`` ``(N, 3, 3)`` (or None) adds its diagonal.
    """
    t = np.asarray(t, np.float64).reshape(-1, 3)
    s = np.broadcast_to(np.asarray(rel_depth_sigma, np.float64), (len(t),))
    var = (s[:, None] * np.abs(t)) ** 2
    if cov is not None:
        var = var + np.diagonal(np.asarray(cov), axis1=1, axis2=2)
    return np.sqrt(var)


def transforms(R_cam: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Head-to-camera transforms ``(N, 4, 4)``: ``[[R, t], [0, 0, 0, 1]]`` (NaN where ``t`` is)."""
    R = np.asarray(R_cam, np.float64).reshape(-1, 3, 3)
    T = np.zeros((len(R), 4, 4))
    T[:, :3, :3] = R
    T[:, :3, 3] = np.asarray(t, np.float64).reshape(-1, 3)
    T[:, 3, 3] = 1.0
    return T
