"""One set of defaults: ``HeadPoseEstimator()``, ``build_estimator``, ``headpose predict`` and the
service all stream as :data:`openheadpose.inference.defaults.STREAM` says (tracking and fusion on)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from conftest import needs_face_models

from openheadpose.inference.defaults import STREAM, default_tracker
from openheadpose.inference.tracking import HeadTracker


def _settings(tracker: HeadTracker) -> dict:
    """A tracker's settings (what its constructor took), not its state."""
    return {k: getattr(tracker, k) for k in inspect.signature(HeadTracker).parameters}


def test_the_defaults_track_and_fuse():
    assert STREAM.track and STREAM.smooth
    assert _settings(default_tracker()) == _settings(HeadTracker())
    assert default_tracker(track=False) is None


def test_the_class_and_the_builder_take_the_same_defaults():
    from openheadpose.inference.builder import build_estimator
    from openheadpose.inference.pipeline import HeadPoseEstimator

    params = inspect.signature(build_estimator).parameters
    assert params["track"].default == STREAM.track and params["smooth"].default == STREAM.smooth

    class Stage:  # no model files needed: the tracker is what is compared
        needs = "mesh or detector box"

        def __call__(self, image, faces):
            raise AssertionError("not called")

    est = HeadPoseEstimator(lambda image: None, None, Stage())
    assert isinstance(est.tracker, HeadTracker) and _settings(est.tracker) == _settings(default_tracker())
    assert HeadPoseEstimator(lambda image: None, None, Stage(), tracker=None).tracker is None


def test_the_cli_takes_the_same_defaults():
    from openheadpose.cli.interact import interact
    from openheadpose.cli.predict import predict

    for command in (predict, interact):
        opts = {p.name: p.default for p in command.params}
        assert opts["track"] == STREAM.track and opts["smooth"] == STREAM.smooth, command.name


def test_the_service_takes_the_same_defaults():
    pytest.importorskip("fastapi")
    from openheadpose.serve.app import create_app

    schema = create_app().openapi()
    for path in ("/v1/predict", "/v1/interact"):
        params = {p["name"]: p["schema"].get("default") for p in schema["paths"][path]["post"]["parameters"]}
        assert params["track"] == STREAM.track and params["smooth"] == STREAM.smooth, path


@needs_face_models
def test_head_pose_estimator_streams_exactly_as_headpose_predict(media):
    """``HeadPoseEstimator().stream`` and ``build_estimator().stream`` (what ``headpose predict``
    runs) give the same track ids, fused rotations and per-frame readings on a short noisy clip."""
    import cv2

    from openheadpose.inference.builder import build_estimator
    from openheadpose.inference.pipeline import HeadPoseEstimator

    img = cv2.cvtColor(cv2.imread(str(media / "single_face.jpg")), cv2.COLOR_BGR2RGB)
    rng = np.random.default_rng(0)
    frames = [np.clip(img + rng.normal(0, 3.0, img.shape), 0, 255).astype(np.uint8) for _ in range(8)]
    a = [r.heads for r in HeadPoseEstimator().stream(frames)]
    b = [r.heads for r in build_estimator().stream(frames)]
    for x, y in zip(a, b):
        assert x.track_ids is not None and x.track_ids.tolist() == y.track_ids.tolist()
        np.testing.assert_allclose(x.rotations, y.rotations, atol=1e-9)
        np.testing.assert_allclose(x.raw_rotations, y.raw_rotations, atol=1e-9)
