"""Calibrating per-angle uncertainty: sigma that means what it says.

A model with a heteroscedastic head (HHP-Net) predicts, per angle, a sigma. If
the errors were Gaussian with that sigma, 68.3 % of them would lie within
+-1 sigma and 95.4 % within +-2 sigma. A network trained on synthetic keypoints
learns *which* faces are hard (sigma grows with a hidden ear or a turned head)
but not how hard real keypoints are, so its sigma is rescaled: per keypoint
source ``s`` and angle ``a``, ``sigma' = k[s, a] * sigma``, fitted on data that is
*never* used for evaluation. One factor per (source, angle) keeps the ordering the
network learnt and lets a noisy source (MediaPipe Pose) widen its sigma without
widening FaceMesh's.

The reasoning and measurements behind it: ``docs/design-notes.md`` (Sigma calibration).

Dimension legend: N faces, A angles (3: yaw, pitch, roll), Q coverage levels.

All errors and sigmas are in degrees; NaN entries (an angle without a label)
are ignored per angle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Mapping

import numpy as np

__all__ = [
    "GAUSS_1SIGMA",
    "GAUSS_2SIGMA",
    "ANGLES",
    "coverage",
    "fit_scale",
    "robust_covariance",
    "label_noise",
    "own_error_scale",
    "reliability",
    "scale_log_var",
    "Calibration",
    "SourceCalibration",
    "fit_source_calibration",
]

#: Share of a Gaussian within +-1 and +-2 standard deviations.
GAUSS_1SIGMA = math.erf(1.0 / math.sqrt(2.0))  # 0.6827
GAUSS_2SIGMA = math.erf(2.0 / math.sqrt(2.0))  # 0.9545

ANGLES = ("yaw", "pitch", "roll")


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


def fit_scale(errors: np.ndarray, sigma: np.ndarray, z: tuple[float, ...] = (1.0, 2.0), label_noise: float | np.ndarray = 0.0) -> np.ndarray:
    """Per-angle factors ``k`` ``(A,)`` so that ``sigma' = k * sigma`` gives Gaussian coverage at each ``z``.

    Minimises ``sum_z (coverage(|e| <= z sqrt(k^2 sigma^2 + tau^2)) - P(|N(0,1)| <= z))^2``
    over k (a fine log-spaced grid, then the middle of the best plateau: coverage
    is a step function of k). ``tau`` (``label_noise``, a scalar or ``(A,)``) is the
    standard deviation of the labels' own error: the observed errors are model
    error plus label error, and k describes the model's alone. With ``z = (1, 2)``
    the targets are 68 % / 95 %.

    A known scale is recovered, and with label noise the observed errors alone
    would overestimate it:

    >>> rng = np.random.default_rng(0)
    >>> s = rng.uniform(1, 5, (20000, 1))
    >>> e = rng.standard_normal((20000, 1)) * s * 2.5   # true sigma is 2.5 x the prediction
    >>> round(float(fit_scale(e, s)[0]), 1)
    2.5
    >>> noisy = e + rng.standard_normal((20000, 1)) * 4.0   # labels off by N(0, 4 deg)
    >>> round(float(fit_scale(noisy, s)[0]), 1), round(float(fit_scale(noisy, s, label_noise=4.0)[0]), 1)
    (3.0, 2.5)
    """
    e, s = np.abs(_as2d(errors)), _as2d(sigma)
    tau = np.broadcast_to(np.asarray(label_noise, np.float64), (e.shape[1],))
    targets = np.array([math.erf(zi / math.sqrt(2.0)) for zi in z])
    grid = np.exp(np.linspace(np.log(0.05), np.log(50.0), 4001))
    out = np.full(e.shape[1], np.nan)
    for a in range(e.shape[1]):
        ok = np.isfinite(e[:, a]) & np.isfinite(s[:, a]) & (s[:, a] > 0)
        if not ok.any():
            continue
        ea, sa = e[ok, a], s[ok, a]
        # face i is inside at z for every k >= sqrt(max(e^2 / z^2 - tau^2, 0)) / sigma
        cov = np.stack(
            [np.searchsorted(np.sort(np.sqrt(np.maximum((ea / zi) ** 2 - tau[a] ** 2, 0.0)) / sa), grid, side="right") / len(ea) for zi in z], 1
        )  # (G, Q)
        loss = ((cov - targets) ** 2).sum(1)
        best = np.flatnonzero(loss <= loss.min() + 1e-12)
        out[a] = float(np.sqrt(grid[best[0]] * grid[best[-1]]))
    return out


def _mad(x: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def robust_covariance(a: np.ndarray, b: np.ndarray) -> float:
    """Gnanadesikan-Kettenring covariance ``(s(a + b)^2 - s(a - b)^2) / 4`` with ``s`` the MAD scale.

    Equals the covariance for Gaussian data and ignores a minority of gross outliers.

    >>> rng = np.random.default_rng(1)
    >>> common = rng.standard_normal(40000) * 3.0
    >>> a, b = common + rng.standard_normal(40000), common + 2 * rng.standard_normal(40000)
    >>> round(robust_covariance(a, b), 1), round(float(np.cov(a, b)[0, 1]), 1)   # true: 9
    (9.0, 8.9)
    >>> a[:800] += 300.0   # 2 % gross failures of one predictor
    >>> round(robust_covariance(a, b), 1), round(float(np.cov(a, b)[0, 1]), 1)
    (9.4, 7.3)
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) < 3:
        return float("nan")
    return (_mad(a + b) ** 2 - _mad(a - b) ** 2) / 4.0


def label_noise(
    errors: Mapping[str, np.ndarray], mask: np.ndarray | None = None, reference: str | None = None
) -> tuple[np.ndarray, dict[str, list[float]]]:
    """The labels' own noise ``tau`` ``(A,)`` from several predictors' errors against the same labels.

    Triple collocation: for predictors A, B whose errors are independent of each
    other and of the labels, ``cov(pA - y, pB - y) = var(label error)``. Takes the
    :func:`robust_covariance` of every pair (faces where both have an answer and
    ``mask`` holds), the median over pairs, and its square root (0 if negative).
    Errors the two predictors share count as label noise: the keypoint sources of
    one network share its errors, so their pairs overestimate tau; pairing each
    with an independent ``reference`` predictor (another network, other inputs)
    does not.

    Args:
        errors: predictor name -> ``(N,)`` or ``(N, A)`` signed errors (prediction
            - label) on the same N faces; NaN where the predictor has none.
        mask: ``(N,)`` faces to use (e.g. near-frontal ones), default all.
        reference: use only the pairs with this predictor (default: every pair).

    Returns:
        ``tau`` ``(A,)`` and, per pair ``"a|b"``, the covariance per angle.

    >>> rng = np.random.default_rng(2)
    >>> noise = rng.standard_normal(30000) * 5.0                   # the label's error
    >>> errs = {n: rng.standard_normal(30000) * s - noise for n, s in (("a", 3.0), ("b", 6.0), ("c", 4.0))}
    >>> round(float(label_noise(errs)[0][0]), 1)
    5.0
    """
    names = list(errors)
    if len(names) < 2:
        raise ValueError("label_noise needs the errors of at least two predictors")
    E = {n: _as2d(errors[n]) for n in names}
    n_faces, n_angles = E[names[0]].shape
    m = np.ones(n_faces, bool) if mask is None else np.asarray(mask, bool)
    if reference is not None and reference not in E:
        raise KeyError(f"reference predictor {reference!r} is not among {names}")
    pairs: dict[str, list[float]] = {}
    for a, b in combinations(names, 2):
        if reference is None or reference in (a, b):
            pairs[f"{a}|{b}"] = [robust_covariance(E[a][m, j], E[b][m, j]) for j in range(n_angles)]
    cov = np.nanmedian(np.array(list(pairs.values())), axis=0)
    return np.sqrt(np.maximum(cov, 0.0)), pairs


def own_error_scale(
    errors: np.ndarray, reference: np.ndarray, sigma: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Factors ``k`` ``(A,)`` for a model's *own* error, measured against noisy labels.

    The labels must come from a labeller the model never learnt from: a model
    trained on one labeller's output copies part of its mistakes, and its
    disagreement with that labeller understates its error. Against another
    labeller the errors are model error plus label noise; ``tau``, the noise, is
    the :func:`label_noise` of the model paired with ``reference``, a predictor
    whose errors are independent of the model's (other inputs, other training
    data), on the faces in ``mask``. Then ``k = fit_scale(errors, sigma, label_noise=tau)``.

    Args:
        errors, reference: ``(N,)`` or ``(N, A)`` signed errors of the model and of the
            reference predictor against the same labels (NaN where one has no answer).
        sigma: ``(N,)`` or ``(N, A)`` the model's uncalibrated sigma.
        mask: ``(N,)`` faces for ``tau`` (where the reference is reliable); default all.

    Returns:
        ``k`` ``(A,)`` and ``tau`` ``(A,)``.

    A network that copied 90 % of its training labeller's mistakes (hard faces are
    hard for both, so both errors grow with ``s``) looks sharper against that
    labeller than it is; against a second labeller, with that one's noise taken
    out, its true scale (``sqrt(1.2^2 + (0.9 * 1.6)^2)`` = 1.87) comes back:

    >>> rng = np.random.default_rng(0)
    >>> n = 400000                                                   # k follows the estimate of tau, which 40,000 faces leave a few % off
    >>> s = rng.uniform(1.0, 3.0, n)
    >>> ours = rng.standard_normal(n) * 1.6 * s                      # the training labeller's error
    >>> model = rng.standard_normal(n) * 1.2 * s + 0.9 * ours         # the model's error against the truth
    >>> other = rng.standard_normal(n) * 5.0                          # a second labeller's error
    >>> ref = rng.standard_normal(n) * 6.0                            # an independent predictor's error
    >>> round(float(fit_scale(model - ours, s)[0]), 2)                # against the labeller it copied
    1.21
    >>> k, tau = own_error_scale(model - other, ref - other, s)
    >>> round(float(k[0]), 2), round(float(tau[0]), 1)
    (1.87, 5.0)
    """
    e, r = _as2d(errors), _as2d(reference)
    tau, _ = label_noise({"model": e, "reference": r}, mask=mask)
    return fit_scale(e, sigma, label_noise=tau), tau


def reliability(errors: np.ndarray, sigma: np.ndarray, levels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Expected vs observed coverage for a reliability plot.

    For each nominal level ``p`` the interval is ``+- z_p sigma`` with
    ``z_p = sqrt(2) erfinv(p)`` (the central p of a Gaussian); observed is the
    share of ``|error|`` inside it.

    Returns:
        ``levels`` ``(Q,)`` and ``observed`` ``(Q, A)``.
    """
    levels = np.linspace(0.05, 0.95, 19) if levels is None else np.asarray(levels, np.float64)
    from scipy.special import erfinv  # here only: scipy.special is slow to import (start-up, issue 32)

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
    def from_dict(d: Mapping[str, Any] | None) -> "Calibration | None":
        """What :meth:`to_dict` wrote (``None`` for ``None``); raises ``ValueError`` on bad factors."""
        if d is None:
            return None
        return Calibration(_triple(d["scale"]), str(d.get("fitted_on", "")), dict(d.get("coverage_before", {})), dict(d.get("coverage_after", {})))

    def apply(self, sigma: np.ndarray) -> np.ndarray:
        """``(N, 3)`` calibrated sigma: the uncalibrated one times :attr:`scale`."""
        return _as2d(sigma) * np.asarray(self.scale, np.float64)

    @staticmethod
    def fit(errors: np.ndarray, sigma: np.ndarray, fitted_on: str) -> "Calibration":
        k = fit_scale(errors, sigma)
        cov = lambda s: {f"{z}sigma": [round(float(c), 4) for c in coverage(errors, s, z)] for z in (1, 2)}  # noqa: E731
        return Calibration(tuple(float(x) for x in k), fitted_on, cov(sigma), cov(_as2d(sigma) * k))


def _triple(x) -> tuple[float, float, float]:
    v = np.asarray(x, np.float64).reshape(-1)
    if v.shape != (3,) or not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError(f"a calibration factor needs three positive finite values (yaw, pitch, roll), got {x!r}")
    return (float(v[0]), float(v[1]), float(v[2]))


#: Other names of a keypoint source in calibration tables (the body source was called ``pose``).
SOURCE_ALIASES = {"body": "pose", "pose": "body"}


@dataclass(frozen=True)
class SourceCalibration:
    """Sigma factors per keypoint source, as a keypoint network's file carries them.

    All factors multiply the network's *uncalibrated* sigma (what it learnt on
    synthetic keypoints). The file's ``log_var`` already holds ``baked`` (``+2 log
    baked`` in its biases, so every backend gets a usable sigma); a predictor that
    knows its keypoint source multiplies the file's sigma by
    ``per_source[source] / baked`` (:meth:`factor`).

    Attributes:
        per_source: source name -> ``(3,)`` factors (yaw, pitch, roll).
        baked: ``(3,)`` the factor inside the file, used for an unknown source.
        label_noise: ``(3,)`` tau (deg) of the calibration labels, deconvolved.
        fitted_on: how and on what data (never an evaluation set).

    >>> c = SourceCalibration({"facemesh": (0.5, 1.0, 2.0)}, baked=(2.0, 2.0, 2.0))
    >>> c.factor("facemesh").tolist(), c.factor("unknown").tolist(), c.factor(None).tolist()
    ([0.25, 0.5, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    >>> SourceCalibration.from_dict(c.to_dict()) == c
    True
    """

    per_source: dict[str, tuple[float, float, float]]
    baked: tuple[float, float, float] = (1.0, 1.0, 1.0)
    label_noise: tuple[float, float, float] = (0.0, 0.0, 0.0)
    fitted_on: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "per_source", {str(k): _triple(v) for k, v in self.per_source.items()})
        object.__setattr__(self, "baked", _triple(self.baked))
        object.__setattr__(self, "label_noise", tuple(float(x) for x in np.asarray(self.label_noise, np.float64).reshape(3)))

    @property
    def sources(self) -> list[str]:
        return sorted(self.per_source)

    def factor(self, source: str | None) -> np.ndarray:
        """``(3,)`` multiplier of the file's sigma for heads from ``source`` (1 for an unknown one).

        Files written before the body keypoint source was renamed call it ``pose``; either name finds it.
        """
        if source is not None and source not in self.per_source:
            source = SOURCE_ALIASES.get(source, source)
        k = self.per_source.get(source) if source is not None else None
        if k is None:
            return np.ones(3)
        return np.asarray(k) / np.asarray(self.baked)

    def apply(self, sigma: np.ndarray, source: str | None) -> np.ndarray:
        """The file's sigma ``(N, 3)`` calibrated for ``source``."""
        return np.asarray(sigma, np.float64) * self.factor(source)

    def to_dict(self) -> dict[str, Any]:
        return {
            "per_source": {k: [round(x, 4) for x in v] for k, v in sorted(self.per_source.items())},
            "baked": [round(x, 4) for x in self.baked],
            "label_noise_deg": [round(x, 3) for x in self.label_noise],
            "fitted_on": self.fitted_on,
            **self.extra,
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any] | None) -> "SourceCalibration | None":
        """From :meth:`to_dict`'s form (or a file's ``notes["calibration"]``); ``None`` without per-source factors."""
        if not d or "per_source" not in d:
            return None
        known = {"per_source", "baked", "scale", "label_noise_deg", "fitted_on"}
        return SourceCalibration(
            per_source=dict(d["per_source"]),
            baked=d.get("baked", d.get("scale", (1.0, 1.0, 1.0))),
            label_noise=d.get("label_noise_deg", (0.0, 0.0, 0.0)),
            fitted_on=str(d.get("fitted_on", "")),
            extra={k: v for k, v in d.items() if k not in known},
        )


def fit_source_calibration(
    errors: Mapping[str, np.ndarray],
    sigma: Mapping[str, np.ndarray],
    tau: np.ndarray,
    baked: tuple[float, float, float] = (1.0, 1.0, 1.0),
    fitted_on: str = "",
) -> SourceCalibration:
    """Per-source, per-angle factors on labels with noise ``tau`` (:func:`fit_scale` with ``label_noise``).

    Args:
        errors: source -> ``(N_s, 3)`` signed errors against the calibration labels
            (NaN where an angle has no label).
        sigma: source -> ``(N_s, 3)`` the network's uncalibrated sigma on the same faces.
        tau: ``(3,)`` the labels' noise (:func:`label_noise`).
        baked: the factor already inside the file.
    """
    per = {s: tuple(float(x) for x in fit_scale(errors[s], sigma[s], label_noise=tau)) for s in errors}
    return SourceCalibration(per, baked=baked, label_noise=tuple(np.asarray(tau, np.float64).reshape(3)), fitted_on=fitted_on)
