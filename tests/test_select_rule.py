"""The rule that decides which pose stage ships (benchmarks/select_default_pose.py's ``decide``).

Pure numbers: per-face absolute errors and true |yaw| in, verdicts out. Differences are
several times their bootstrap spread (or exactly zero), so the verdicts do not hang on
the resampling.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.select_default_pose import PROFILE_YAW, decide  # noqa: E402

N = 400
YAW = np.where(np.arange(N) % 4 == 0, 75.0, 15.0)  # a quarter of the faces are profiles


def _run(err_a: np.ndarray, err_b: np.ndarray) -> dict:
    names = [f"f{i}" for i in range(N)]
    return {"A": {"mae": float(err_a.mean()), "_err": dict(zip(names, err_a)), "_yaw": dict(zip(names, YAW))},
            "B": {"mae": float(err_b.mean()), "_err": dict(zip(names, err_b)), "_yaw": dict(zip(names, YAW))}}


@pytest.fixture
def base():
    rng = np.random.default_rng(1)
    return rng.uniform(1, 9, N), rng.uniform(2, 12, N)


def test_better_everywhere_passes_and_is_chosen(base):
    a, b = base
    runs = {"old": _run(a, b), "new": _run(a - 0.5, b - 0.2)}
    verdicts, chosen = decide(runs, "old", np.random.default_rng(0))
    assert verdicts["new"]["passes"] and chosen == "new"
    assert verdicts["new"]["A_profiles"]["n"] == int((YAW >= PROFILE_YAW).sum()) == 100


def test_a_gain_bought_with_profiles_does_not_pass(base):
    """Frontal faces 1 deg better, profiles 2 deg worse: A's mean improves, the profile guard refuses."""
    a, b = base
    prof = YAW >= PROFILE_YAW
    runs = {"old": _run(a, b), "new": _run(np.where(prof, a + 2.0, a - 1.0), b)}
    verdicts, chosen = decide(runs, "old", np.random.default_rng(0))
    v = verdicts["new"]
    assert v["A"]["ci95"][1] < 0 and v["B"]["ci95"] == [0.0, 0.0]  # A alone and B would let it through
    assert v["A_profiles"]["ci95"][0] > 0 and not v["passes"] and chosen == "old"


def test_worse_on_the_independent_label_does_not_pass(base):
    a, b = base
    runs = {"old": _run(a, b), "new": _run(a - 0.5, b + 1.0), "other": _run(a - 0.3, b)}
    verdicts, chosen = decide(runs, "old", np.random.default_rng(0))
    assert not verdicts["new"]["passes"] and verdicts["other"]["passes"] and chosen == "other"


def test_no_profiles_is_no_evidence_against():
    """A smoke run (--limit) may hold no profile: the guard then has nothing to refuse on."""
    from benchmarks.select_default_pose import paired

    assert paired(np.array([]), np.array([]), np.random.default_rng(0)) == {"mean": 0.0, "ci95": [0.0, 0.0], "n": 0}


def test_stage_reads_once_or_twice_as_named():
    """``NAME@plain`` / ``NAME@both`` pick one read or two (plain and mirrored) for a network stage:
    the rule can judge a candidate read once against the default read once."""
    from benchmarks.select_default_pose import _estimator
    from openheadpose.assets import DEFAULT_POSE_NETWORK

    name, est = _estimator(f"{DEFAULT_POSE_NETWORK}@plain")
    assert name == f"{DEFAULT_POSE_NETWORK}@plain" and est.pose.mirror is False
    assert _estimator(f"{DEFAULT_POSE_NETWORK}@both")[1].pose.mirror is True
    with pytest.raises(SystemExit, match="@twice"):
        _estimator(f"{DEFAULT_POSE_NETWORK}@twice")
