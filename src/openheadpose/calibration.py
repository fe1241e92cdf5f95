"""Calibrating per-angle uncertainty: sigma that means what it says.

A model with a heteroscedastic head (HHP-Net) predicts, per angle, a sigma. If
the errors were Gaussian with that sigma, 68.3 % of them would lie within
+-1 sigma and 95.4 % within +-2 sigma. A network trained on synthetic data is
usually over-confident on real data; one factor per angle, ``sigma' = k sigma``,
fitted on data *not* used for evaluation, fixes the scale while keeping the
ordering (which faces are harder) that the network learnt.

Dimension legend: N faces, A angles (3: yaw, pitch, roll), Q coverage levels.

All errors and sigmas are in degrees; NaN entries (an angle without a label)
are ignored per angle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf, erfinv

__all__ = ["GAUSS_1SIGMA", "GAUSS_2SIGMA", "coverage", "fit_scale", "reliability", "scale_log_var", "Calibration"]

#: Share of a Gaussian within +-1 and +-2 standard deviations.
GAUSS_1SIGMA = float(erf(1.0 / np.sqrt(2.0)))  # 0.6827
GAUSS_2SIGMA = float(erf(2.0 / np.sqrt(2.0)))  # 0.9545


def _as2d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x[:, None] if x.ndim == 1 else x


def coverage(errors: np.ndarray, sigma: np.ndarray, z: float = 1.0) -> np.ndarray:
    """Share ``(A,)`` of faces whose ``|error| <= z * sigma``, per angle (NaN ignored).

    >>> coverage(np.array([[0.5, 3.0], [1.5, 1.0]]), np.ones((2, 2)), z=1.0).tolist()
    [0.5, 0.5]
    """
    e, s = np.abs(_as2d(errors)), _as2d(sigma)
    ok = np.isfinite(e) & np.isfinite(s)
    inside = (e <= z * s) & ok
    return inside.sum(0) / np.maximum(ok.sum(0), 1)


def fit_scale(errors: np.ndarray, sigma: np.ndarray, z: tuple[float, ...] = (1.0, 2.0)) -> np.ndarray:
    """Per-angle factors ``k`` ``(A,)`` so that ``sigma' = k * sigma`` gives Gaussian coverage at each ``z``.

    Minimises ``sum_z (coverage(|e| <= z k sigma) - P(|N(0,1)| <= z))^2`` over k
    (a fine log-spaced grid, then the middle of the best plateau: coverage is a
    step function of k). With ``z = (1, 2)`` that is the 68 % / 95 % targets.

    >>> rng = np.random.default_rng(0)
    >>> s = rng.uniform(1, 5, (20000, 1))
    >>> e = rng.standard_normal((20000, 1)) * s * 2.5   # true sigma is 2.5 x the prediction
    >>> round(float(fit_scale(e, s)[0]), 1)
    2.5
    """
    e, s = np.abs(_as2d(errors)), _as2d(sigma)
    targets = np.array([erf(zi / np.sqrt(2.0)) for zi in z])
    grid = np.exp(np.linspace(np.log(0.05), np.log(50.0), 4001))
    out = np.full(e.shape[1], np.nan)
    for a in range(e.shape[1]):
        ok = np.isfinite(e[:, a]) & np.isfinite(s[:, a]) & (s[:, a] > 0)
        if not ok.any():
            continue
        r = np.sort(e[ok, a] / s[ok, a])  # coverage at z k = share of r <= z k
        cov = np.stack([np.searchsorted(r, zi * grid, side="right") / len(r) for zi in z], 1)  # (G, Q)
        loss = ((cov - targets) ** 2).sum(1)
        best = np.flatnonzero(loss <= loss.min() + 1e-12)
        out[a] = float(np.sqrt(grid[best[0]] * grid[best[-1]]))
    return out


def reliability(errors: np.ndarray, sigma: np.ndarray, levels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Expected vs observed coverage for a reliability plot.

    For each nominal level ``p`` the interval is ``+- z_p sigma`` with
    ``z_p = sqrt(2) erfinv(p)`` (the central p of a Gaussian); observed is the
    share of ``|error|`` inside it.

    Returns:
        ``levels`` ``(Q,)`` and ``observed`` ``(Q, A)``.
    """
    levels = np.linspace(0.05, 0.95, 19) if levels is None else np.asarray(levels, np.float64)
    zs = np.sqrt(2.0) * erfinv(levels)
    return levels, np.stack([coverage(errors, sigma, z) for z in zs])


def scale_log_var(log_var: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The log-variance of ``k * sigma``: ``log_var + 2 log k``."""
    return np.asarray(log_var) + 2.0 * np.log(np.asarray(k, np.float64))


@dataclass(frozen=True)
class Calibration:
    """Per-angle sigma factors and where they were fitted.

    Attributes:
        scale: ``(3,)`` k for (yaw, pitch, roll).
        fitted_on: a sentence naming the data (never an evaluation set).
        coverage_before, coverage_after: ``{"1sigma": [..], "2sigma": [..]}`` on that data.
    """

    scale: tuple[float, float, float]
    fitted_on: str
    coverage_before: dict
    coverage_after: dict

    def to_dict(self) -> dict:
        return {
            "scale": [round(float(k), 4) for k in self.scale],
            "fitted_on": self.fitted_on,
            "coverage_before": self.coverage_before,
            "coverage_after": self.coverage_after,
        }

    @staticmethod
    def fit(errors: np.ndarray, sigma: np.ndarray, fitted_on: str) -> "Calibration":
        k = fit_scale(errors, sigma)
        cov = lambda s: {f"{z}sigma": [round(float(c), 4) for c in coverage(errors, s, z)] for z in (1, 2)}  # noqa: E731
        return Calibration(tuple(float(x) for x in k), fitted_on, cov(sigma), cov(_as2d(sigma) * k))
