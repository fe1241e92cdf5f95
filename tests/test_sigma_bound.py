"""The sigma factors' lower bound from labellers the network never learnt from (tools/calibrate_sigma.py's ``bounded_factors``).

Pure numbers. A simulated network answers with its own error plus a share of its
training labeller's (our 68-point fit's) mistakes; AFLW's yaw label and a 21-point
fit are two other labellers with their own noise; the geometric fit is an
independent predictor. With 100,000 faces the estimates land within 4 % of
their true values over ten seeds (the labels' noise, by triple collocation, moves
the factors most); the tolerance is 8 %.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from calibrate_sigma import bounded_factors  # noqa: E402

N = 100_000
OWN = np.array([1.2, 1.5, 0.8])  # the network's own error, in units of its spread, per angle


def _world(copied: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = np.column_stack([rng.uniform(-40, 40, N), rng.uniform(-20, 20, N), rng.uniform(-15, 15, N)])
    spread = rng.uniform(1.0, 4.0, (N, 3))
    ours = rng.standard_normal((N, 3)) * 1.3 * spread  # our fitter's mistakes, larger on hard faces
    pred = truth + rng.standard_normal((N, 3)) * OWN * spread + copied * ours
    fitted = truth + ours
    label_yaw = truth[:, 0] + rng.standard_normal(N) * 5.0  # AFLW's own yaw label
    fit21 = truth + rng.standard_normal((N, 3)) * np.array([4.0, 5.0, 2.0])
    geometric = truth + rng.standard_normal((N, 3)) * 6.0
    geometric[::10] = np.nan  # faces FaceMesh did not confirm
    true_scale = np.sqrt(OWN**2 + (copied * 1.3) ** 2)  # the network's error against the truth
    return (pred, fitted, label_yaw, fit21, geometric, spread), true_scale


def test_a_network_that_copies_its_labeller_gets_its_own_error_back():
    args, true_scale = _world(copied=0.9)
    b = bounded_factors(*args)
    # against the labeller it copied it looks sharper than it is (what it did not copy is left) ...
    np.testing.assert_allclose(b["fitted"], np.sqrt(OWN**2 + (0.1 * 1.3) ** 2), rtol=0.08)
    assert np.all(b["fitted"] < 0.8 * true_scale)
    # ... the other labellers, their noise taken out, give its own error
    np.testing.assert_allclose(b["own"], true_scale, rtol=0.08)
    np.testing.assert_allclose(b["tau"], [5.0, 5.0, 2.0], rtol=0.08)
    assert b["from"] == ["own error"] * 3
    np.testing.assert_array_equal(b["scale"], b["own"])
    # the 21-point fit's yaw tells the same story as AFLW's label
    assert b["own_yaw_fit21"] == pytest.approx(b["own"][0], rel=0.08)


def test_a_network_that_copied_nothing_keeps_the_fitted_factors():
    args, true_scale = _world(copied=0.0)
    b = bounded_factors(*args)
    np.testing.assert_allclose(b["own"], true_scale, rtol=0.08)
    # our fit's own noise widens the fitted factors past the network's own error: they stay
    np.testing.assert_allclose(b["fitted"], np.sqrt(OWN**2 + 1.3**2), rtol=0.08)
    assert b["from"] == ["fitted"] * 3
    np.testing.assert_array_equal(b["scale"], b["fitted"])
