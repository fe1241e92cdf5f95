"""Head-pose error metrics, one definition each.

Dimension legend: N faces. Rotations are ``(N, 3, 3)`` in ``Frame.GL``; Euler
angles are ``(N, 3)`` degrees ordered (yaw, pitch, roll), AFLW convention.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .rotation import geodesic_distance, matrix_to_euler, wrap_degrees

#: The standard AFLW2000 filter: keep faces whose three angles are all within +-99 deg.
STANDARD_ANGLE_LIMIT = 99.0


def standard_filter(euler_deg: np.ndarray, limit: float = STANDARD_ANGLE_LIMIT) -> np.ndarray:
    """Boolean mask ``(N,)``: all of yaw, pitch, roll within ``+-limit`` degrees (1969 of AFLW2000's 2000)."""
    return np.all(np.abs(np.asarray(euler_deg)) <= limit, axis=-1)


def euler_errors(pred_deg: np.ndarray, true_deg: np.ndarray, wrap: bool = True) -> np.ndarray:
    """Absolute per-angle errors ``(N, 3)`` in degrees.

    Args:
        wrap: wrap differences at 360 deg only (179 vs -179 is 2 deg apart). Never
            at 180: that would forgive a head predicted facing backwards.
    """
    d = np.asarray(pred_deg, np.float64) - np.asarray(true_deg, np.float64)
    return np.abs(wrap_degrees(d, 360.0) if wrap else d)


def axis_errors(R_pred: np.ndarray, R_true: np.ndarray) -> np.ndarray:
    """Angles ``(N, 3)`` in degrees between the predicted and true head x, y, z axes (for MAEV)."""
    cos = np.sum(np.asarray(R_pred) * np.asarray(R_true), axis=-2)  # column-wise dot products
    return np.rad2deg(np.arccos(np.clip(cos, -1.0, 1.0)))


@dataclass(frozen=True)
class PoseMetrics:
    """Summary of a set of predictions; every number comes with ``n``."""

    n: int
    mae_yaw: float
    mae_pitch: float
    mae_roll: float
    mae: float
    maev: float
    geodesic: float
    within_5: float
    within_10: float
    within_15: float

    def to_dict(self) -> dict:
        return asdict(self)


def pose_metrics(R_pred: np.ndarray, R_true: np.ndarray, true_deg: np.ndarray | None = None) -> PoseMetrics:
    """All metrics from rotations; Euler errors use the AFLW convention.

    Args:
        R_pred, R_true: ``(N, 3, 3)``.
        true_deg: the dataset's own label angles ``(N, 3)`` if it has them (used
            instead of re-deriving them from ``R_true``, which differs only at
            gimbal lock).

    ``within_k`` is the share of faces whose geodesic error is at most k degrees.
    Results do not depend on how faces are batched: everything is per face, then averaged.
    """
    R_pred = np.asarray(R_pred, np.float64)
    R_true = np.asarray(R_true, np.float64)
    n = len(R_pred)
    if n == 0:
        nan = float("nan")
        return PoseMetrics(0, nan, nan, nan, nan, nan, nan, nan, nan, nan)
    pred = matrix_to_euler(R_pred).stack()
    true = matrix_to_euler(R_true).stack() if true_deg is None else np.asarray(true_deg, np.float64)
    e = euler_errors(pred, true).mean(0)
    geo = geodesic_distance(R_pred, R_true)
    return PoseMetrics(
        n=n,
        mae_yaw=float(e[0]),
        mae_pitch=float(e[1]),
        mae_roll=float(e[2]),
        mae=float(e.mean()),
        maev=float(axis_errors(R_pred, R_true).mean()),
        geodesic=float(geo.mean()),
        within_5=float((geo <= 5).mean()),
        within_10=float((geo <= 10).mean()),
        within_15=float((geo <= 15).mean()),
    )
