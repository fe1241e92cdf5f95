"""Fusing a head's per-frame readings over time: an error-state Kalman filter on SO(3).

A tracked head's state is its rotation ``R`` (head to camera, ``Frame.GL``) and its
angular velocity ``w`` (rad/s, camera axes), with a 6x6 covariance ``P`` over the error
state ``[dtheta, dw]``, where the true rotation is ``exp([dtheta]x) @ R`` (a small turn
about camera axes: x right, y up, z towards the viewer).

* **Predict** (constant angular velocity): ``R <- exp([w dt]x) @ R``; the covariance grows
  by white angular acceleration of spectral density ``q`` (rad^2/s^3), the standard
  discretised constant-velocity model.
* **Update** with a reading ``R_z``: the innovation is ``log(R_z @ R.T)``, a 3-vector in
  the tangent space; its noise is diagonal over the camera axes, taken from the reading's
  per-angle sigma (pitch turns about x, yaw about y, roll about z: exact for a frontal
  head, close for the others). The error state is folded back into ``R`` and ``w``.

Which part of sigma a filter can remove
---------------------------------------
A pose network's sigma is calibrated against the truth: it holds a per-face bias (the same
in every frame of a still head, which no filter removes) and a frame-to-frame part (sensor
noise, compression, the crop's jitter). The filter fuses only the second:
``sigma_frame = FRAME_SHARE * sigma``. The fused head then reports
``sqrt((1 - FRAME_SHARE^2) * sigma^2 + P)`` per angle: the bias that stays plus what the
filter still does not know. A reading without sigma (the geometric fit) counts as
``DEFAULT_SIGMA_DEG``.

With ``q`` the still head averages about ``n = sqrt(2 sigma_frame / (sqrt(q) dt^1.5))``
readings (the filter's steady-state memory), and a head turning at a constant rate is
followed without lag (the constant-velocity model has none in steady state); a turn that
starts or stops costs a few frames of overshoot, traded against ``q``.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from openheadpose.core.rotation import exp_so3, log_so3

#: Share of a reading's calibrated sigma that changes from frame to frame (the rest is a
#: per-face bias, constant over a still head). On still photos of ../shared/media with sensor
#: noise alone (single_face.jpg, Tom_Hanks_54745.png, 30 copies with noise of 3 grey levels,
#: read by ``build_estimator(track=False)``) the readings scatter by 0.05-0.10 of their sigma;
#: video adds the crop's own motion and compression, so twice the larger is taken (a larger
#: share averages more readings and trusts a single one less). Never set on an evaluation set.
FRAME_SHARE = 0.2

#: Per-angle sigma (degrees) of a reading whose pose stage gives none (the geometric fit):
#: about its error on faces turned less than 60 degrees (../shared/README.md: 2.4-5.2).
DEFAULT_SIGMA_DEG = 4.0

#: Spectral density of the angular acceleration, (deg/s^2)^2 per Hz, of the constant-velocity
#: model: set on synthetic readings (tests/test_fusion.py) so that a still head with 0.5 deg
#: of frame noise moves by under 0.1 deg/frame and a head turning sinusoidally (30 deg, 2 s
#: period: peak 94 deg/s) is followed within 2 frames.
ACCEL_DENSITY = 1.0e4

#: The still model's random walk, deg^2/s: a head held "still" drifts by about
#: sqrt(STILL_DENSITY / fps) deg per frame (0.03 at 30 fps), far below a reading's noise.
STILL_DENSITY = 0.01

#: Spread (deg/s) of the still model's angular velocity: what a still head's tremor turns it by.
STILL_SPEED_DEG_S = 2.0

#: Probability per frame that the head keeps its motion model (still or moving): a switch is
#: expected about every 1 / (1 - STAY) frames (20: two-thirds of a second).
STAY = 0.99

#: Probability that a head is still when its track starts (or restarts): most heads that
#: appear are not turning. On synthetic readings (0.5 deg of noise) 0.9 instead of an even 0.5
#: took the jitter over a still head's first 30 frames from 0.124 to 0.111 deg/frame and left a
#: head that turns at 60 deg/s from its first frame followed as closely (0.65 deg after 15 frames).
START_STILL = 0.9

#: A reading this many standard deviations away from the prediction (Mahalanobis, 3 dof)
#: restarts the state on it: a different face took the track, or the head jumped.
RESTART_SIGMAS = 12.0


def _inv3(S: np.ndarray) -> tuple[np.ndarray, float]:
    """Inverse and determinant of a 3x3 matrix by its adjugate: per head and frame this runs a
    few times, and LAPACK's call overhead (threads on a loaded machine) costs more than the sum."""
    a, b, c = S[0]
    d, e, f = S[1]
    g, h, i = S[2]
    A, B, C = e * i - f * h, f * g - d * i, d * h - e * g
    det = a * A + b * B + c * C
    adj = np.array([[A, c * h - b * i, b * f - c * e], [B, a * i - c * g, c * d - a * f], [C, b * g - a * h, a * e - b * d]])
    return adj / det, float(det)


def _reorthonormalize(R: np.ndarray) -> np.ndarray:
    """The rotation nearest ``R`` to first order (Gram-Schmidt on its rows): rounding creeps in
    over thousands of products, this removes it without an SVD per frame."""
    x = R[0] / np.linalg.norm(R[0])
    y = R[1] - (R[1] @ x) * x
    y /= np.linalg.norm(y)
    z = np.array([x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2], x[0] * y[1] - x[1] * y[0]])  # x cross y
    return np.stack([x, y, z])


@functools.lru_cache(maxsize=64)
def _transition(still: bool, dt: float, q_move: float, q_still: float, w_still: float) -> tuple[np.ndarray, np.ndarray]:
    """Transition and process noise of one motion model for a step of ``dt`` (a stream has a few
    distinct steps: computed once each). Read-only arrays."""
    if still:  # the head holds its rotation: no velocity, a slow random walk
        I, Z = np.eye(3), np.zeros((3, 3))
        F = np.block([[I, Z], [Z, Z]])
        Q = np.diag(np.concatenate([np.full(3, q_still * dt), np.full(3, w_still**2)]))
    else:
        F, Q = _cv_matrices(dt, q_move, 3)
    F.flags.writeable = False
    Q.flags.writeable = False
    return F, Q


def _cv_matrices(dt: float, q: float, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Transition and process noise of a constant-velocity model over ``dim`` axes."""
    I = np.eye(dim)
    F = np.block([[I, dt * I], [np.zeros((dim, dim)), I]])
    Q = q * np.block([[dt**3 / 3 * I, dt**2 / 2 * I], [dt**2 / 2 * I, dt * I]])
    return F, Q


#: Camera axis (x, y, z) each Euler angle name turns about, for sigma -> tangent noise.
ANGLE_AXIS = {"pitch": 0, "yaw": 1, "roll": 2}


def tangent_sigma(sigma: np.ndarray | None, angles=("yaw", "pitch", "roll")) -> np.ndarray:
    """Per-axis (x, y, z) sigma in degrees from a reading's per-angle sigma (``DEFAULT_SIGMA_DEG``
    where there is none, or where it is not finite: an angle the stage does not estimate)."""
    out = np.full(3, DEFAULT_SIGMA_DEG)
    if sigma is not None:
        for name, s in zip(angles, np.asarray(sigma, float).ravel()):
            if name in ANGLE_AXIS and math.isfinite(s) and s > 0:
                out[ANGLE_AXIS[name]] = s
    return out


class _Model:
    """One motion model of :class:`RotationKalman`: its state and covariance."""

    def __init__(self, still: bool):
        self.still = still
        self.R = np.eye(3)
        self.w = np.zeros(3)
        self.P = np.eye(6)

    def predict(self, dt: float, q_move: float, q_still: float, w_still: float) -> None:
        F, Q = _transition(self.still, float(dt), q_move, q_still, w_still)
        if self.still:  # the head holds its rotation: no velocity, a slow random walk
            self.w = np.zeros(3)
        else:
            self.R = exp_so3(self.w * dt) @ self.R
        self.P = F @ self.P @ F.T + Q

    def update(self, R_z: np.ndarray, noise2: np.ndarray) -> float:
        """Fuse the reading; the log-likelihood of its innovation under this model."""
        z = log_so3(R_z @ self.R.T)
        S = self.P[:3, :3] + np.diag(noise2)
        Sinv, det = _inv3(S)
        K = self.P[:, :3] @ Sinv
        dx = K @ z
        self.R = exp_so3(dx[:3]) @ self.R
        self.w = self.w + dx[3:]
        IKH = np.eye(6)
        IKH[:, :3] -= K
        self.P = IKH @ self.P @ IKH.T + K @ np.diag(noise2) @ K.T  # Joseph form: symmetric, positive
        return -0.5 * float(z @ Sinv @ z) - 0.5 * math.log((2 * math.pi) ** 3 * det)


class RotationKalman:
    """Error-state Kalman filtering on SO(3) with two motion models mixed (IMM; module docstring).

    A *still* model (the rotation holds, a slow random walk of density ``still_density``) and a
    *moving* one (constant angular velocity, white angular acceleration of density
    ``accel_density``) run side by side; each frame their states are mixed by the models'
    probabilities (interacting multiple models, Blom & Bar-Shalom 1988), each fuses the
    reading, and the reading's likelihood under each re-weighs them. A still head is averaged
    over many readings by the still model; the moment it turns, the moving model takes over
    without lag; when it stops, the still model starts averaging again from where it stopped.

    Args:
        accel_density: the moving model's ``q`` in (deg/s^2)^2/Hz (:data:`ACCEL_DENSITY`).
        still_density: the still model's random walk in deg^2/s (:data:`STILL_DENSITY`).
        frame_share: share of a reading's sigma fused as frame-to-frame noise (:data:`FRAME_SHARE`).
        stay: probability that a model holds from one frame to the next (:data:`STAY`).
        restart_sigmas: Mahalanobis distance (against the moving model) at which a reading
            restarts the state.

    Example:
        >>> f = RotationKalman()
        >>> R = f.update(np.eye(3), 1 / 30, np.array([3.0, 3.0, 3.0]))
        >>> bool(np.allclose(R, np.eye(3)))
        True
    """

    def __init__(self, accel_density: float = ACCEL_DENSITY, still_density: float = STILL_DENSITY,
                 frame_share: float = FRAME_SHARE, stay: float = STAY, restart_sigmas: float = RESTART_SIGMAS):
        self.q_move = accel_density * math.radians(1.0) ** 2
        self.q_still = still_density * math.radians(1.0) ** 2
        self.w_still = math.radians(STILL_SPEED_DEG_S)
        self.frame_share = frame_share
        self.restart_sigmas = restart_sigmas
        self.T = np.array([[stay, 1 - stay], [1 - stay, stay]])  # [from, to]: still, moving
        self.models = [_Model(True), _Model(False)]
        self.mu = np.array([0.5, 0.5])
        self.R: np.ndarray | None = None
        self.w = np.zeros(3)
        self.P = np.eye(6)
        self.bias_var = np.zeros(3)  # deg^2 per axis: the part of sigma that fusion keeps

    @property
    def still(self) -> float:
        """Probability that the head is still."""
        return float(self.mu[0])

    def _start(self, R: np.ndarray, noise2: np.ndarray) -> None:
        for m in self.models:
            m.R, m.w = R.copy(), np.zeros(3)
            # a new head may be turning: its speed is unknown to about 60 deg/s
            m.P = np.diag(np.concatenate([noise2, np.full(3, math.radians(60.0) ** 2)]))
        self.mu = np.array([START_STILL, 1.0 - START_STILL])
        self._combine()

    def _combine(self) -> None:
        ref = self.models[int(np.argmax(self.mu))].R
        xs = [np.concatenate([log_so3(m.R @ ref.T), m.w]) for m in self.models]
        x = sum(u * xi for u, xi in zip(self.mu, xs))
        self.P = sum(u * (m.P + np.outer(xi - x, xi - x)) for u, m, xi in zip(self.mu, self.models, xs))
        self.R, self.w = exp_so3(x[:3]) @ ref, x[3:]

    def predict(self, dt: float) -> np.ndarray | None:
        """The rotation predicted ``dt`` seconds on (for a frame without a reading; the state is kept)."""
        if self.R is None:
            return None
        return exp_so3(self.w * dt * (1.0 - self.still)) @ self.R

    def update(self, R_z: np.ndarray, dt: float, sigma: np.ndarray | None = None,
               angles=("yaw", "pitch", "roll")) -> np.ndarray:
        """Fuse the reading ``R_z`` (3, 3) of per-angle ``sigma`` (degrees, in ``angles`` order, as
        ``Heads.sigma``'s columns; ``None``: :data:`DEFAULT_SIGMA_DEG`) taken ``dt`` seconds after
        the last; the fused rotation."""
        R_z = np.asarray(R_z, np.float64)
        s = tangent_sigma(sigma, angles)
        self.bias_var = (1.0 - self.frame_share**2) * s**2
        noise2 = np.radians(self.frame_share * s) ** 2
        if self.R is None or not all(np.isfinite(m.P).all() and np.isfinite(m.R).all() for m in self.models):
            self._start(R_z, noise2)
            return self.R.copy()
        # 1. mix: each model starts from the blend of both, weighted by how likely it came from each
        c = self.T.T @ self.mu
        mix = self.T * self.mu[:, None] / np.maximum(c[None, :], 1e-300)  # [from i, to j]
        ref = self.R
        xs = [np.concatenate([log_so3(m.R @ ref.T), m.w]) for m in self.models]
        Ps = [m.P for m in self.models]
        for j, m in enumerate(self.models):
            x0 = sum(mix[i, j] * xs[i] for i in range(2))
            m.P = sum(mix[i, j] * (Ps[i] + np.outer(xs[i] - x0, xs[i] - x0)) for i in range(2))
            m.R, m.w = exp_so3(x0[:3]) @ ref, x0[3:].copy()
        # 2. predict and fuse in each model; 3. re-weigh them by the reading's likelihood
        for m in self.models:
            m.predict(dt, self.q_move, self.q_still, self.w_still)
        moving = self.models[1]
        z = log_so3(R_z @ moving.R.T)
        if float(z @ _inv3(moving.P[:3, :3] + np.diag(noise2))[0] @ z) > self.restart_sigmas**2:
            self._start(R_z, noise2)  # a jump no motion explains: another face, or the head re-found
            return self.R.copy()
        loglik = np.array([m.update(R_z, noise2) for m in self.models])
        w = c * np.exp(loglik - loglik.max())
        self.mu = np.clip(w / w.sum(), 1e-6, 1.0)
        self.mu /= self.mu.sum()
        for m in self.models:
            m.R = _reorthonormalize(m.R)  # keep R a rotation over long streams
        self._combine()
        return self.R.copy()

    def sigma(self, angles=("yaw", "pitch", "roll")) -> np.ndarray:
        """Per-angle sigma (degrees, ``angles`` order) of the fused rotation against the truth:
        the reading's bias that stays plus the filter's own uncertainty."""
        var = self.bias_var + np.degrees(np.sqrt(np.clip(np.diag(self.P)[:3], 0, None))) ** 2
        return np.array([math.sqrt(var[ANGLE_AXIS[a]]) if a in ANGLE_AXIS else math.nan for a in angles])
