"""The yaw-label rule of tools/fuse_yaw_labels.py (the 68f experiment): average two fits only where both hold up."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from fuse_yaw_labels import MAX_DISAGREEMENT, MAX_YAW, fused_yaw  # noqa: E402


def test_averages_where_both_fits_hold_up_and_keeps_the_68_point_yaw_elsewhere():
    y68 = np.array([10.0, -30.0, MAX_YAW - 0.1, MAX_YAW, -MAX_YAW, 20.0, 20.0, 20.0])
    y21 = np.array([14.0, -26.0, MAX_YAW + 2.0, MAX_YAW - 2.0, -MAX_YAW, 20.0 + MAX_DISAGREEMENT, 20.0 + MAX_DISAGREEMENT + 0.1, np.nan])
    want = np.array([12.0, -28.0, MAX_YAW + 0.95, MAX_YAW, -MAX_YAW, 20.0 + MAX_DISAGREEMENT / 2, 20.0, 20.0])
    np.testing.assert_allclose(fused_yaw(y68, y21), want)
