"""Metrics: one definition each, checked on hand-made cases."""

from __future__ import annotations

import numpy as np

from openheadpose.core.metrics import axis_errors, euler_errors, euler_mae, geodesic_error, pose_metrics, standard_filter, vector_mae
from openheadpose.core.rotation import euler_to_matrix


def test_wrap_at_360_never_at_180():
    # a head predicted facing backwards (yaw 0 vs 180) is 180 deg wrong, not 0
    assert euler_errors(np.array([[180.0, 0, 0]]), np.array([[0.0, 0, 0]]))[0, 0] == 180.0
    assert euler_errors(np.array([[-170.0, 0, 0]]), np.array([[170.0, 0, 0]]))[0, 0] == 20.0
    assert euler_errors(np.array([[-170.0, 0, 0]]), np.array([[170.0, 0, 0]]), wrap=False)[0, 0] == 340.0


def test_euler_mae_skips_unlabelled_angles():
    pred = np.array([[10.0, 5.0, 0.0], [20.0, 5.0, 0.0]])
    true = np.array([[0.0, np.nan, np.nan], [10.0, np.nan, np.nan]])
    e = euler_mae(pred, true)
    assert e[0] == 10.0 and np.isnan(e[1]) and np.isnan(e[2])


def test_pose_metrics_partial_labels_score_yaw_only():
    R = euler_to_matrix(np.array([10.0, -30.0]), np.zeros(2), np.zeros(2))
    m = pose_metrics(R, None, np.array([[0.0, np.nan, np.nan], [-20.0, np.nan, np.nan]]))
    assert m.n == 2 and np.isclose(m.mae_yaw, 10.0) and np.isclose(m.mae, 10.0)
    assert np.isnan(m.mae_pitch) and np.isnan(m.geodesic)


def test_geodesic_and_maev_of_a_pure_yaw_error():
    R = euler_to_matrix(np.array([30.0]), np.array([0.0]), np.array([0.0]))
    I = np.eye(3)[None]
    assert np.isclose(geodesic_error(R, I)[0], 30.0)
    # a yaw turn moves the x and z axes by 30 deg and leaves y: MAEV = 20
    assert np.allclose(axis_errors(R, I), [[30.0, 0.0, 30.0]])
    assert np.isclose(vector_mae(R, I), 20.0)


def test_within_thresholds_and_counts():
    yaws = np.array([1.0, 4.0, 9.0, 14.0, 40.0])
    R = euler_to_matrix(yaws, np.zeros(5), np.zeros(5))
    m = pose_metrics(R, np.tile(np.eye(3), (5, 1, 1)))
    assert m.n == 5
    assert (m.within_5, m.within_10, m.within_15) == (0.4, 0.6, 0.8)
    assert np.isclose(m.mae_yaw, yaws.mean())


def test_metrics_do_not_depend_on_order_or_split():
    rng = np.random.default_rng(0)
    e = rng.uniform(-80, 80, (200, 3))
    R_t = euler_to_matrix(e[:, 0], e[:, 1], e[:, 2])
    p = e + rng.normal(0, 5, e.shape)
    R_p = euler_to_matrix(p[:, 0], p[:, 1], p[:, 2])
    a = pose_metrics(R_p, R_t, e)
    perm = rng.permutation(200)
    b = pose_metrics(R_p[perm], R_t[perm], e[perm])
    assert np.isclose(a.mae, b.mae) and np.isclose(a.geodesic, b.geodesic) and np.isclose(a.maev, b.maev)


def test_standard_filter_counts_nan_as_inside():
    e = np.array([[0.0, 0, 0], [99.0, 0, 0], [99.5, 0, 0], [0, np.nan, -120.0]])
    assert standard_filter(e).tolist() == [True, True, False, False]
