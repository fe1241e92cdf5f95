"""Head-pose error metrics, one definition each.

Dimension legend: N faces. Rotations are ``(N, 3, 3)`` in ``Frame.GL``; Euler
angles are ``(N, 3)`` degrees ordered (yaw, pitch, roll), AFLW convention, with
NaN where a dataset does not label an angle (e.g. yaw-only AFLW crops).

Definitions:
    * **MAE** per angle: mean absolute Euler difference. ``wrap=True`` (the
      default) wraps differences at 360 deg only, so 179 vs -179 counts as 2 deg.
      It never wraps at 180: the widely copied ``min(|d|, 180 - |d|)``-style
      evaluation forgives a head predicted facing backwards.
    * **MAEV**: mean over faces and the three head axes of the angle between
      the predicted and true axis (Hsu et al.'s vector error).
    * **geodesic**: the angle of ``R_pred^T R_true``.
    * **within k**: share of faces whose geodesic error is at most k deg.

Every number is per face, then averaged, so results cannot depend on batching.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from openheadpose.core.rotation import geodesic_distance, matrix_to_euler, wrap_degrees

#: The standard AFLW2000 filter: keep faces whose three angles are all within +-99 deg.
STANDARD_ANGLE_LIMIT = 99.0


def standard_filter(euler_deg: np.ndarray, limit: float = STANDARD_ANGLE_LIMIT) -> np.ndarray:
    """Boolean mask ``(N,)``: every labelled angle within ``+-limit`` degrees (1969 of AFLW2000's 2000).

    >>> standard_filter(np.array([[10.0, 0.0, 0.0], [100.0, 0.0, 0.0], [5.0, np.nan, np.nan]])).tolist()
    [True, False, True]
    """
    a = np.abs(np.asarray(euler_deg, np.float64))
    return np.all(np.isnan(a) | (a <= limit), axis=-1)


def euler_errors(pred_deg: np.ndarray, true_deg: np.ndarray, wrap: bool = True) -> np.ndarray:
    """Absolute per-angle errors ``(N, 3)`` in degrees (NaN where the label is NaN).

    Args:
        wrap: wrap differences at 360 deg only (179 vs -179 is 2 deg apart). Never
            at 180: that would forgive a head predicted facing backwards.

    >>> euler_errors(np.array([[179.0, 0, 0]]), np.array([[-179.0, 0, 0]])).tolist()
    [[2.0, 0.0, 0.0]]
    >>> euler_errors(np.array([[179.0, 0, 0]]), np.array([[-179.0, 0, 0]]), wrap=False).tolist()
    [[358.0, 0.0, 0.0]]
    """
    d = np.asarray(pred_deg, np.float64) - np.asarray(true_deg, np.float64)
    return np.abs(wrap_degrees(d, 360.0) if wrap else d)


def euler_mae(pred_deg: np.ndarray, true_deg: np.ndarray, wrap: bool = True) -> np.ndarray:
    """Per-angle MAE ``(3,)``; an angle no face has a label for is NaN."""
    e = euler_errors(pred_deg, true_deg, wrap).reshape(-1, 3)
    n = np.sum(~np.isnan(e), axis=0)
    return np.where(n > 0, np.nansum(e, axis=0) / np.maximum(n, 1), np.nan)


def axis_errors(R_pred: np.ndarray, R_true: np.ndarray) -> np.ndarray:
    """Angles ``(N, 3)`` in degrees between the predicted and true head x, y, z axes."""
    cos = np.sum(np.asarray(R_pred) * np.asarray(R_true), axis=-2)  # column-wise dot products
    return np.rad2deg(np.arccos(np.clip(cos, -1.0, 1.0)))


def vector_mae(R_pred: np.ndarray, R_true: np.ndarray) -> float:
    """MAEV: mean angle between predicted and true head axes, degrees."""
    return float(axis_errors(R_pred, R_true).mean())


def geodesic_error(R_pred: np.ndarray, R_true: np.ndarray) -> np.ndarray:
    """Per-face geodesic error ``(N,)`` in degrees."""
    return geodesic_distance(np.asarray(R_pred, np.float64), np.asarray(R_true, np.float64))


@dataclass(frozen=True)
class PoseMetrics:
    """Summary of a set of predictions; every number comes with ``n``.

    ``mae_*`` are wrapped at 360 deg; ``mae_plain_*`` are the raw absolute
    differences (they differ only when a prediction crosses +-180 deg). ``mae``
    is the mean of the labelled angles' MAEs. Rotation-based numbers (``maev``,
    ``geodesic``, ``within_*``) are NaN when the labels hold no full rotation.
    """

    n: int
    mae_yaw: float
    mae_pitch: float
    mae_roll: float
    mae: float
    mae_plain_yaw: float
    mae_plain_pitch: float
    mae_plain_roll: float
    mae_plain: float
    maev: float
    geodesic: float
    within_5: float
    within_10: float
    within_15: float

    def to_dict(self) -> dict:
        return asdict(self)


def pose_metrics(R_pred: np.ndarray, R_true: np.ndarray | None, true_deg: np.ndarray | None = None) -> PoseMetrics:
    """All metrics for N faces.

    Args:
        R_pred: ``(N, 3, 3)``.
        R_true: ``(N, 3, 3)``, or ``None`` when the labels are partial (then only
            the labelled Euler angles are scored).
        true_deg: the dataset's own label angles ``(N, 3)`` (NaN = unlabelled),
            used for the Euler errors instead of re-deriving them from ``R_true``
            (they differ only at gimbal lock). Required when ``R_true`` is None.

    >>> from openheadpose.core.rotation import euler_to_matrix
    >>> m = pose_metrics(euler_to_matrix(np.array([10.0]), np.array([0.0]), np.array([0.0])), np.eye(3)[None])
    >>> round(m.mae_yaw, 6), round(m.mae, 6), round(m.geodesic, 6), m.within_10
    (10.0, 3.333333, 10.0, 1.0)
    """
    R_pred = np.asarray(R_pred, np.float64).reshape(-1, 3, 3)
    n = len(R_pred)
    nan = float("nan")
    if n == 0:
        return PoseMetrics(0, *([nan] * 13))
    if R_true is None and true_deg is None:
        raise ValueError("pose_metrics needs R_true or true_deg")
    pred = matrix_to_euler(R_pred).stack()
    true = matrix_to_euler(np.asarray(R_true, np.float64)).stack() if true_deg is None else np.asarray(true_deg, np.float64).reshape(-1, 3)
    e, p = euler_mae(pred, true), euler_mae(pred, true, wrap=False)
    if R_true is None:
        maev = geo_mean = w5 = w10 = w15 = nan
    else:
        geo = geodesic_error(R_pred, R_true)
        maev, geo_mean = vector_mae(R_pred, R_true), float(geo.mean())
        w5, w10, w15 = (float((geo <= k).mean()) for k in (5, 10, 15))
    return PoseMetrics(
        n, float(e[0]), float(e[1]), float(e[2]), float(np.nanmean(e)) if np.isfinite(e).any() else nan,
        float(p[0]), float(p[1]), float(p[2]), float(np.nanmean(p)) if np.isfinite(p).any() else nan,
        maev, geo_mean, w5, w10, w15,
    )
