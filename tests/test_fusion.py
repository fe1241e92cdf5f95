"""Fusion of per-frame readings on SO(3) (``inference/fusion.py``), on synthetic readings with known noise.

A reading is the truth turned by a random rotation vector of ``NOISE_DEG`` per axis; its sigma
says so (``NOISE_DEG / FRAME_SHARE``: the filter fuses the frame-to-frame share of sigma). For
that noise a single reading is off by ``NOISE_DEG * 2 * sqrt(2 / pi)`` = 0.80 deg on average (the
mean length of a 3D Gaussian vector), and an average of ``n`` readings by ``1 / sqrt(n)`` of that.
"""

from __future__ import annotations

import numpy as np
import pytest

from openheadpose.core.rotation import euler_to_matrix, exp_so3, from_axis_angle, geodesic_distance, log_so3, rot_z
from openheadpose.inference.fusion import FRAME_SHARE, RotationKalman

NOISE_DEG = 0.5  # per axis: the default pipeline's frame-to-frame scatter on a still face (module docstring of fusion.py)
FPS = 30.0
SIGMA = np.full(3, NOISE_DEG / FRAME_SHARE)


def _read(truth: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([from_axis_angle(np.radians(rng.normal(0, NOISE_DEG, 3))) @ T for T in truth])


def _fuse(readings: np.ndarray, **kw) -> np.ndarray:
    f = RotationKalman(**kw)
    return np.stack([f.update(R, 1 / FPS, SIGMA) for R in readings])


def _screen(R: np.ndarray) -> np.ndarray:
    """In-plane angle of the head's up axis, degrees (exactly +a more after rot_z(a) @ R)."""
    return np.degrees(np.arctan2(-R[..., 0, 1], R[..., 1, 1]))


def _lag(truth: np.ndarray, est: np.ndarray, span: slice) -> int:
    """The frame shift k (positive: late) that best aligns est[t + k] with truth[t] over ``span``."""
    t = np.arange(span.start, span.stop)
    return min(range(-5, 6), key=lambda k: float(np.mean((est[t + k] - truth[t]) ** 2)))


def test_exp_and_log_are_inverse_up_to_pi():
    rng = np.random.default_rng(1)
    for v in [*rng.normal(0, 1, (200, 3)), np.array([np.pi - 1e-6, 0, 0]), np.zeros(3), np.array([1e-9, 0, 0])]:
        v = v if np.linalg.norm(v) < np.pi else v / np.linalg.norm(v) * (np.pi - 1e-3)
        np.testing.assert_allclose(log_so3(exp_so3(v)), v, atol=1e-6)
        np.testing.assert_allclose(exp_so3(v), from_axis_angle(v), atol=1e-9)


def test_a_still_head_averages_many_readings():
    """A still head read 200 times: after 50 frames the fused rotation is off by under a quarter of
    a single reading's error -- what an average of 16 readings reaches (1/sqrt(16)); measured 0.09
    deg against 0.80, about 80 readings' worth. From the 10th frame on it moves by under 0.1
    deg/frame (the issue's target for a still head; measured 0.05) while a reading moves by ~1.1."""
    R0 = euler_to_matrix(20.0, -10.0, 5.0)
    truth = np.repeat(R0[None], 200, 0)
    raw = _read(truth)
    out = _fuse(raw)
    single = geodesic_distance(raw, truth).mean()
    fused = geodesic_distance(out[50:], truth[50:]).mean()
    assert 0.7 < single < 0.9, single  # the noise is what the docstring says
    assert fused < single / 4, (single, fused)
    jitter_raw = geodesic_distance(raw[1:], raw[:-1]).mean()
    jitter = geodesic_distance(out[10:], out[9:-1]).mean()
    assert jitter_raw > 1.0 and jitter < 0.1, (jitter_raw, jitter)


@pytest.mark.parametrize("rate", [30.0, 90.0])
def test_a_constant_turn_is_followed_without_lag(rate):
    """A head turning in the image plane at a constant rate (deg/s): after 15 frames the fused angle
    is at most 2 frames late (the issue's target; the constant-velocity model has none in steady
    state: measured 0) and off by under 2 frames' worth of turning."""
    n = 120
    angle = rate * np.arange(n) / FPS
    R0 = euler_to_matrix(10.0, 5.0, 0.0)
    truth = np.stack([rot_z(np.radians(a)) @ R0 for a in angle])
    out = _fuse(_read(truth, seed=2))
    est = np.unwrap(np.radians(_screen(out)))
    tru = np.unwrap(np.radians(_screen(truth)))
    assert 0 <= _lag(np.degrees(tru), np.degrees(est), slice(15, n - 5)) <= 2
    assert geodesic_distance(out[15:], truth[15:]).mean() < 2 * rate / FPS


def test_turns_then_a_stop_settle_within_ten_frames():
    """Still 30 frames, sinusoidal in-plane turns (30 deg, 2 s period: up to 94 deg/s) for 90, still
    again: the turns are followed within 2 frames, and from the 10th frame after the stop the head
    moves by under 0.1 deg/frame (measured: 1 frame of lag at most, 0.06 deg/frame)."""
    a = np.r_[np.zeros(30), 30 * np.sin(2 * np.pi * np.arange(90) / 60), np.zeros(120)]
    R0 = euler_to_matrix(-15.0, 0.0, 0.0)
    truth = np.stack([rot_z(np.radians(x)) @ R0 for x in a])
    out = _fuse(_read(truth, seed=3))
    assert 0 <= _lag(_screen(truth), _screen(out), slice(35, 115)) <= 2
    assert geodesic_distance(out[130:], out[129:-1]).mean() < 0.1


def test_no_nan_when_a_track_is_lost_and_comes_back_elsewhere():
    """A head unseen for 45 frames that comes back turned 120 deg away (another face took the
    track): the fused rotation goes to the reading at once (within 0.1 deg: the state's
    uncertainty grew over the gap, or it restarts); every output and sigma stays finite; a reading
    without sigma (a stage that gives none) is fused at the documented default."""
    f = RotationKalman()
    R0 = euler_to_matrix(0.0, 0.0, 0.0)
    for _ in range(20):
        f.update(R0, 1 / FPS, SIGMA)
    R1 = euler_to_matrix(120.0, 0.0, 0.0)
    out = f.update(R1, 46 / FPS, None)
    assert np.isfinite(out).all() and geodesic_distance(out, R1) < 0.1
    out = f.update(R1, 1 / FPS, np.array([np.nan, 3.0, np.inf]))
    assert np.isfinite(out).all() and np.isfinite(f.sigma()).all()
    assert np.isfinite(f.predict(1 / FPS)).all()


def test_fused_sigma_keeps_the_bias_and_shrinks_the_frame_noise():
    """After many readings of sigma s the fused sigma tends to s * sqrt(1 - FRAME_SHARE^2) (the
    per-face bias no filter removes) and never below it."""
    f = RotationKalman()
    for R in _read(np.repeat(np.eye(3)[None], 100, 0)):
        f.update(R, 1 / FPS, SIGMA)
    floor = SIGMA[0] * np.sqrt(1 - FRAME_SHARE**2)
    assert np.all(f.sigma() >= floor) and np.all(f.sigma() < floor * 1.05), (f.sigma(), floor)


def test_the_tracker_fuses_and_keeps_each_frames_reading():
    """A head read with noise through :class:`HeadTracker` (a fake detector and pose stage: no
    model files): ``rotations`` are fused (error under a third of the readings'), ``raw_rotations``
    are the readings themselves, ``sigma`` is the fused one, and a head that leaves for 10 frames
    comes back with its id and no NaN."""
    from openheadpose.inference.pipeline import HeadPoseEstimator
    from openheadpose.inference.results import Detections
    from openheadpose.inference.tracking import HeadTracker
    from openheadpose.specs.spec import PosePrediction

    R0 = euler_to_matrix(25.0, -5.0, 3.0)
    readings = _read(np.repeat(R0[None], 60, 0), seed=5)

    class Stage:
        needs = "mesh or detector box"

        def __call__(self, image, faces):
            i = int(image[0, 0, 0])
            return PosePrediction(readings[i][None].repeat(len(faces), 0), SIGMA[None].repeat(len(faces), 0))

    class Detector:
        def __call__(self, image):
            shown = not 30 <= int(image[0, 0, 0]) < 40
            return Detections(np.array([[100.0, 100.0, 160.0, 160.0]]) if shown else np.zeros((0, 4)), np.array([0.9] if shown else []))

    est = HeadPoseEstimator(Detector(), None, Stage(), tracker=HeadTracker())
    res = [r.heads for r in est.stream([np.full((240, 320, 3), i, np.uint8) for i in range(60)])]
    seen = [i for i, h in enumerate(res) if len(h)]
    assert seen == [*range(30), *range(40, 60)]
    assert {int(res[i].track_ids[0]) for i in seen} == {0}
    for i in seen:
        assert np.isfinite(res[i].rotations).all() and np.isfinite(res[i].sigma).all()
        np.testing.assert_allclose(res[i].raw_rotations[0], readings[i])
    later = [i for i in seen if i >= 15]
    raw_err = geodesic_distance(readings[later], R0[None]).mean()
    fused_err = geodesic_distance(np.stack([res[i].rotations[0] for i in later]), R0[None]).mean()
    assert fused_err < raw_err / 3, (raw_err, fused_err)
    assert np.all(res[29].sigma < SIGMA)


def test_plain_and_mirrored_reads_in_turn_are_fused_about_their_midpoint():
    """With ``alternate_views`` (not the default): a stage that reads one view per frame (``view="plain"`` / ``"mirrored"``), the two views off
    the truth by +-2 deg about the vertical axis (a network that is not mirror-symmetric), with
    0.5 deg of noise: the tracker asks for the views in turn after the first frame, and the fused rotation settles on
    their midpoint (the truth) within 0.3 deg (a single view is 2 deg off; measured 0.13) and
    moves by under 0.1 deg/frame (measured 0.04) -- the alternating bias is not followed."""
    from openheadpose.inference.pipeline import HeadPoseEstimator
    from openheadpose.inference.results import Detections
    from openheadpose.inference.tracking import HeadTracker
    from openheadpose.specs.spec import PosePrediction

    R0 = euler_to_matrix(15.0, 5.0, -3.0)
    offset = np.radians([0.0, 2.0, 0.0])
    rng = np.random.default_rng(6)
    asked = []

    class Stage:
        needs = "mesh or detector box"
        mirror = True

        def __call__(self, image, faces, view=None):
            asked.append(view)
            sign = {"plain": -1.0, "mirrored": 1.0, None: 0.0}[view]  # None: the stage's default, both views
            R = from_axis_angle(np.radians(rng.normal(0, NOISE_DEG, 3))) @ exp_so3(sign * offset) @ R0
            return PosePrediction(R[None].repeat(len(faces), 0), SIGMA[None].repeat(len(faces), 0))

    def detector(image):
        return Detections(np.array([[100.0, 100.0, 160.0, 160.0]]), np.array([0.9]))

    est = HeadPoseEstimator(detector, None, Stage(), tracker=HeadTracker())
    list(est.stream([np.zeros((240, 320, 3), np.uint8)] * 3))
    assert set(asked) == {None}  # the default reads both views on every frame
    asked.clear()
    est = HeadPoseEstimator(detector, None, Stage(), tracker=HeadTracker(alternate_views=True))
    out = np.stack([r.heads.rotations[0] for r in est.stream([np.zeros((240, 320, 3), np.uint8)] * 120)])
    assert asked[:4] == [None, "mirrored", "plain", "mirrored"]  # a stream's first frame (maybe a still image) reads both
    assert geodesic_distance(out[60:], R0[None]).mean() < 0.3
    assert geodesic_distance(out[61:], out[60:-1]).mean() < 0.1


def test_facemesh_is_skipped_on_a_still_head_only_when_asked():
    """``skip_still=1``: on a still head (the fusion sure it is still, its box not moving) the
    tracker reuses the last landmarks on every other frame instead of running FaceMesh; the
    default (0) runs FaceMesh on every frame it does not detect on."""
    from openheadpose.inference.pipeline import HeadPoseEstimator
    from openheadpose.inference.results import Detections, Landmarks
    from openheadpose.inference.tracking import HeadTracker
    from openheadpose.specs.spec import PosePrediction

    R0 = euler_to_matrix(5.0, 0.0, 0.0)
    rng = np.random.default_rng(7)
    grid = np.c_[np.stack(np.meshgrid(np.linspace(100, 160, 26), np.linspace(100, 160, 18)), -1).reshape(-1, 2), np.zeros(468)]

    class Mesh:
        follows = 0

        def __call__(self, image, det):
            return Landmarks(grid[None].repeat(len(det), 0), np.full(len(det), 0.95))

        def follow(self, image, previous, shift=(0.0, 0.0), axis=None):
            Mesh.follows += 1
            return grid.copy(), 0.95

    class Stage:
        needs = "mesh or detector box"

        def __call__(self, image, faces):
            R = from_axis_angle(np.radians(rng.normal(0, NOISE_DEG, 3))) @ R0
            return PosePrediction(R[None].repeat(len(faces), 0), SIGMA[None].repeat(len(faces), 0))

    def detector(image):
        return Detections(np.array([[100.0, 100.0, 160.0, 160.0]]), np.array([0.9]))

    counts = {}
    for skip in (0, 1):
        Mesh.follows = 0
        est = HeadPoseEstimator(detector, Mesh(), Stage(), tracker=HeadTracker(detect_every=1000, skip_still=skip))
        res = list(est.stream([np.zeros((240, 320, 3), np.uint8)] * 60))
        assert all(len(r.heads) == 1 and int(r.heads.track_ids[0]) == 0 for r in res)
        counts[skip] = Mesh.follows
    assert counts[0] == 59  # every frame after the first (detected)
    assert 25 <= counts[1] <= 40, counts  # about every other frame once the head is known to be still
