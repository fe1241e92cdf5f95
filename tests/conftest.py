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
