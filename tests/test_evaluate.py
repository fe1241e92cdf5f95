"""The evaluator: batch-size invariance, missed faces, partial labels, JSON and plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from openheadpose.datasets import PoseSample
from openheadpose.evaluate import evaluate
from openheadpose.predictors import CropModel, PosePrediction
from openheadpose.results import Detections
from openheadpose.rotation import euler_to_matrix


class _ListDataset:
    def __init__(self, samples):
        self.samples, self.failures, self.n_filtered = samples, [], 0

    def __iter__(self):
        self.failures = []
        yield from self.samples


class _ColourModel:
    """Reads the pose off the crop's mean colour: yaw from red, pitch from green, roll from blue.
    Any crop difference changes the answer, so it also checks that crops do not depend on batching."""

    name, crop, input_size = "colour", "square-1.5", 32

    def __init__(self):
        self.batches = []

    def predict(self, crops):
        self.batches.append(len(crops))
        centre = crops[:, 12:20, 12:20]  # inside the face: a 1.5x square crop of it scaled to 32 px
        m = centre.reshape(len(crops), -1, 3).mean(1).astype(np.float32)  # float32 like a real network
        e = (m - 128.0) * 0.5
        return PosePrediction(euler_to_matrix(e[:, 0], e[:, 1], e[:, 2]))


def _samples(n=70, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = np.zeros((96, 96, 3), np.uint8)
        colour = rng.integers(40, 216, 3)
        img[30:66, 30:66] = colour  # the "face"
        true = (colour - 128.0) * 0.5 + rng.normal(0, 3, 3)
        if i == 5:
            true[0] = 150.0  # beyond the filter in a real reader; here a large error
        out.append(
            PoseSample(
                name=f"img{i:03d}",
                rotation=euler_to_matrix(*true),
                euler=true,
                box=np.array([30.0, 30.0, 66.0, 66.0]),
                landmarks=np.array([[30.0, 30.0], [66.0, 66.0]]),
                image=img,
            )
        )
    return out


def test_crop_model_protocol():
    assert isinstance(_ColourModel(), CropModel)


def test_batch_size_does_not_change_results():
    data = _ListDataset(_samples())
    m1, m64 = _ColourModel(), _ColourModel()
    a = evaluate(m1, data, "gt", batch_size=1, progress=False)
    b = evaluate(m64, data, "gt", batch_size=64, progress=False)
    assert m1.batches == [1] * 70 and m64.batches == [64, 6]
    assert a.n_detected == b.n_detected == 70
    np.testing.assert_allclose(a.R_pred, b.R_pred, atol=1e-12)
    assert a.to_dict()["mae"] == b.to_dict()["mae"]
    assert a.metrics.mae < 5.0  # the colour model is right up to the label noise


def test_worst_cases_come_first_and_name_the_face():
    res = evaluate(_ColourModel(), _ListDataset(_samples()), "gt", progress=False, keep_worst=4)
    assert [w.name for w in res.worst][0] == "img005"
    errs = [w.error for w in res.worst]
    assert errs == sorted(errs, reverse=True) and len(errs) == 4
    assert res.worst[0].thumb.shape == (160, 160, 3)


def test_detect_mode_counts_missed_faces_apart():
    samples = _samples(10)

    def detector(img):  # finds the face only in even-numbered images
        found = detector.calls % 2 == 0
        detector.calls += 1
        if not found:
            return Detections(np.array([[0.0, 0.0, 10.0, 10.0]]), np.array([0.9]))  # elsewhere: IoU 0
        return Detections(np.array([[31.0, 29.0, 65.0, 67.0]]), np.array([0.9]))

    detector.calls = 0
    res = evaluate(_ColourModel(), _ListDataset(samples), "detect", detector=detector, progress=False)
    d = res.to_dict(per_image=True)
    assert (d["n_images"], d["n_detected"], d["n_missed"]) == (10, 5, 5)
    assert res.missed == [f"img{i:03d}" for i in range(1, 10, 2)]
    assert sum(r["pred"] is None for r in d["per_image"]) == 5


def test_yaw_only_labels_score_yaw_only():
    samples = []
    for s in _samples(8):
        samples.append(PoseSample(s.name, None, np.array([s.euler[0], np.nan, np.nan]), s.box, s.landmarks, image=s.image))
    res = evaluate(_ColourModel(), _ListDataset(samples), "gt", progress=False)
    d = res.to_dict()
    assert d["mae"]["yaw"] == d["mae"]["mean"] and np.isnan(d["mae"]["pitch"]) and np.isnan(d["geodesic"])


def test_unreadable_image_is_a_failure_not_a_crash(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    s = _samples(3)
    samples = s[:1] + [PoseSample("broken", s[1].rotation, s[1].euler, s[1].box, image_path=bad)] + s[2:]
    data = _ListDataset(samples)
    res = evaluate(_ColourModel(), data, "gt", progress=False)
    assert res.n_images == 2 and res.n_detected == 2
    assert len(res.failures) == 1 and "broken.jpg" in res.failures[0]


def test_plots_are_written(tmp_path):
    from openheadpose.plots import write_plots

    res = evaluate(_ColourModel(), _ListDataset(_samples()), "gt", progress=False)
    paths = write_plots(res, tmp_path, "synthetic")
    assert sorted(p.name for p in paths) == ["synthetic_error_vs_yaw.png", "synthetic_histograms.png", "synthetic_worst.png"]
    import cv2

    sheet = cv2.imread(str(tmp_path / "synthetic_worst.png"))
    assert sheet.shape == (28 + 4 * 160, 4 * 160, 3)  # a legend strip, then 4 x 4 faces
    for p in paths:
        assert p.stat().st_size > 5000
