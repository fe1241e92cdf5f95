"""The evaluator: batch-size invariance, missed faces, partial labels, JSON and plots."""

from __future__ import annotations

import numpy as np
import pytest

from openheadpose.datasets.base import PoseSample
from openheadpose.evaluation.evaluate import evaluate
from openheadpose.specs.spec import CropModel, PosePrediction
from openheadpose.inference.results import Detections
from openheadpose.core.rotation import euler_to_matrix


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
    a = evaluate(m1, data, "gt", batch_size=1, progress=False, mirror=False)
    b = evaluate(m64, data, "gt", batch_size=64, progress=False, mirror=False)
    assert m1.batches == [1] * 70 and m64.batches == [64, 6]
    both = _ColourModel()
    evaluate(both, data, "gt", batch_size=64, progress=False)  # the default reads each face and its mirror
    assert both.batches == [128, 12]
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
    from openheadpose.evaluation.plots import write_plots

    res = evaluate(_ColourModel(), _ListDataset(_samples()), "gt", progress=False)
    paths = write_plots(res, tmp_path, "synthetic")
    assert sorted(p.name for p in paths) == ["synthetic_error_vs_yaw.png", "synthetic_histograms.png", "synthetic_worst.png"]
    import cv2

    sheet = cv2.imread(str(tmp_path / "synthetic_worst.png"))
    assert sheet.shape == (28 + 4 * 160, 4 * 160, 3)  # a legend strip, then 4 x 4 faces
    for p in paths:
        assert p.stat().st_size > 5000


# --------------------------------------------------------------------------- sigma calibration (openheadpose.core.calibration)


def test_fit_scale_recovers_a_known_scale_and_removes_known_label_noise():
    """The network's sigma is 1.7x too small and the labels err by N(0, 4 deg): fitted on the observed
    errors without the label noise, k comes out too large; with it, the known 1.7 comes back."""
    from openheadpose.core.calibration import coverage, fit_scale

    rng = np.random.default_rng(3)
    n = 40000
    sigma = rng.uniform(2.0, 10.0, (n, 3))
    model_err = rng.standard_normal((n, 3)) * sigma * 1.7
    observed = model_err + rng.standard_normal((n, 3)) * np.array([4.0, 4.0, 0.0])  # roll labels exact
    k_exact = fit_scale(model_err, sigma)
    np.testing.assert_allclose(k_exact, 1.7, atol=0.03)
    k_naive = fit_scale(observed, sigma)
    assert np.all(k_naive[:2] > 1.85) and abs(k_naive[2] - 1.7) < 0.03
    k = fit_scale(observed, sigma, label_noise=np.array([4.0, 4.0, 0.0]))
    np.testing.assert_allclose(k, 1.7, atol=0.03)
    # what the calibrated sigma promises holds against the true pose ...
    np.testing.assert_allclose(coverage(model_err, sigma * k, 1.0), 0.6827, atol=0.01)
    np.testing.assert_allclose(coverage(model_err, sigma * k, 2.0), 0.9545, atol=0.01)
    # ... and against the noisy labels once their noise is added back
    obs_sigma = np.sqrt((sigma * k) ** 2 + np.array([4.0, 4.0, 0.0]) ** 2)
    np.testing.assert_allclose(coverage(observed, obs_sigma, 1.0), 0.6827, atol=0.01)


def test_label_noise_by_triple_collocation():
    """Three predictors with independent errors against labels off by N(0, 5 deg): their pairwise
    covariances give the label noise, also when one fails grossly on 3 % of the faces. Two
    predictors that share an error (one network) inflate it; pairing with an independent one does not."""
    from openheadpose.core.calibration import label_noise

    rng = np.random.default_rng(4)
    n = 30000
    label_err = rng.standard_normal(n) * 5.0
    shared = rng.standard_normal(n) * 4.0  # an error two of the predictors make together
    e = {
        "a": rng.standard_normal(n) * 3.0 + shared - label_err,
        "b": rng.standard_normal(n) * 6.0 + shared - label_err,
        "ref": rng.standard_normal(n) * 4.0 - label_err,
    }
    e["a"][:900] += rng.choice([-80.0, 80.0], 900)  # gross failures
    e["a"][100:200] = np.nan  # no answer
    tau_all, pairs = label_noise(e)
    tau_ref, pairs_ref = label_noise(e, reference="ref")
    assert set(pairs) == {"a|b", "a|ref", "b|ref"} and set(pairs_ref) == {"a|ref", "b|ref"}
    assert abs(tau_ref[0] - 5.0) < 0.3
    assert np.sqrt(pairs["a|b"][0]) > 6.0  # 5 deg of label noise + 4 deg shared
    with pytest.raises(KeyError, match="nope"):
        label_noise(e, reference="nope")
    # per angle, with a mask
    two = {k: np.stack([v, v * 0.0], 1) for k, v in e.items()}
    tau2, _ = label_noise(two, mask=np.arange(n) >= n // 2, reference="ref")
    assert tau2.shape == (2,) and abs(tau2[0] - 5.0) < 0.4 and tau2[1] == 0.0


def test_fit_source_calibration_per_source():
    """Two keypoint sources, one twice as noisy relative to its sigma: each gets its own factor,
    relative to the factor baked into the file."""
    from openheadpose.core.calibration import SourceCalibration, fit_source_calibration

    rng = np.random.default_rng(5)
    n = 20000
    tau = np.array([3.0, 3.0, 1.0])
    label = rng.standard_normal((n, 3)) * tau
    sig = {s: rng.uniform(2, 8, (n, 3)) for s in ("good", "bad")}
    err = {"good": rng.standard_normal((n, 3)) * sig["good"] * 0.8 - label, "bad": rng.standard_normal((n, 3)) * sig["bad"] * 1.6 - label}
    cal = fit_source_calibration(err, sig, tau, baked=(2.0, 2.0, 2.0), fitted_on="synthetic test")
    np.testing.assert_allclose(cal.per_source["good"], 0.8, atol=0.03)
    np.testing.assert_allclose(cal.per_source["bad"], 1.6, atol=0.05)
    np.testing.assert_allclose(cal.factor("bad"), np.asarray(cal.per_source["bad"]) / 2.0)
    np.testing.assert_array_equal(cal.factor(None), 1.0)
    np.testing.assert_array_equal(cal.factor("unknown"), 1.0)
    back = SourceCalibration.from_dict(cal.to_dict())
    np.testing.assert_allclose(back.factor("good"), cal.factor("good"), rtol=1e-3)
    assert back.label_noise == pytest.approx(tuple(tau)) and back.fitted_on == "synthetic test"
    assert SourceCalibration.from_dict({"scale": [1, 1, 1]}) is None  # no per-source factors
    with pytest.raises(ValueError, match="three positive"):
        SourceCalibration({"x": (1.0, -1.0, 1.0)})


# --------------------------------------------------------------------------- keypoint networks


def _aflw_landmarks(nose_x: float) -> np.ndarray:
    """AFLW's 21 points, all hidden but the nose tip (15) and one eye centre (11)."""
    lm = np.full((21, 2), np.nan)
    lm[14] = (nose_x, 50.0)
    lm[10] = (60.0, 40.0)
    return lm


#: Signed yaw errors the fake network makes on the samples below (deg); its sigma is 2 deg for
#: keypoints "from labels" and 1 deg otherwise: within +-1 sigma (2 deg) 3 of 8, within +-2 sigma 6 of 8.
KP_ERRORS = np.array([0.5, 1.5, 2.5, 3.5, 4.5, -1.0, -3.0, -5.0])


def _keypoint_samples():
    out = []
    for i, d in enumerate(KP_ERRORS):
        true = np.array([10.0 * i - 30.0, 0.0, 0.0])
        img = np.zeros((96, 96, 3), np.uint8)
        img[0, 0, 0] = i  # the fake source reads which face this is
        out.append(
            PoseSample(f"kp{i}", euler_to_matrix(*true), true, np.array([30.0, 30.0, 66.0, 66.0]), _aflw_landmarks(100.0 + true[0] + d), image=img)
        )
    return out


class _KeypointNet:
    """A keypoint network whose yaw is the nose's x - 100 and whose sigma depends on the source."""

    name, crop, input_size, takes_keypoints = "kp-fake", "square-1.5", 15, True

    def __init__(self):
        self.calls = []

    def predict(self, crops):  # the CropModel surface; a keypoint network refuses crops
        raise AssertionError("a keypoint network was given image crops")

    def predict_keypoints(self, points, conf, boxes, source=None):
        self.calls.append((len(points), source))
        yaw = points[:, 0, 0] - 100.0
        z = np.zeros_like(yaw)
        sigma = np.full((len(points), 3), 2.0 if source == "labels" else 1.0)
        return PosePrediction(euler_to_matrix(yaw, z, z), sigma)


def test_keypoint_network_on_labelled_keypoints():
    net = _KeypointNet()
    res = evaluate(net, _ListDataset(_keypoint_samples()), keypoints="labels", progress=False, keep_worst=2)
    d = res.to_dict()
    assert (d["n_images"], d["n_detected"], d["keypoints"], d["crop"], d["crop_recipe"]) == (8, 8, "labels", "keypoints", "keypoints:labels")
    np.testing.assert_allclose(res.errors()[:, 0], KP_ERRORS, atol=1e-9)
    assert d["mae"]["yaw"] == pytest.approx(np.abs(KP_ERRORS).mean())
    cov = d["sigma_coverage"]
    assert cov["within_1sigma"] == {"yaw": 0.375, "pitch": 1.0, "roll": 1.0}
    assert cov["within_2sigma"] == {"yaw": 0.75, "pitch": 1.0, "roll": 1.0}
    assert cov["mean_sigma"]["yaw"] == 2.0 and all(src == "labels" for _, src in net.calls)
    assert [w.name for w in res.worst] == ["kp7", "kp4"]  # -5 and 4.5 deg


def test_keypoint_network_behind_a_source_counts_missed_faces_and_ignores_batching():
    """A callable source that finds the face only in even images (elsewhere a head far away):
    odd faces are missed; the source's name reaches the network (its sigma calibration)."""
    from openheadpose.inference.results import HeadKeypoints

    samples = _keypoint_samples()

    class Source:
        name = "facemesh"
        finds_heads = True  # it stands in for the whole front end

        def __call__(self, img, faces=None):
            i = int(img[0, 0, 0])
            nose = samples[i].landmarks[14]
            pts = np.tile(np.array([60.0, 40.0]), (5, 1))
            pts[0] = nose
            box = [31.0, 29.0, 65.0, 67.0] if i % 2 == 0 else [0.0, 0.0, 10.0, 10.0]
            return HeadKeypoints(pts[None], np.ones((1, 5)), np.array([box]), np.array([0.9]))

    a_net, b_net = _KeypointNet(), _KeypointNet()
    a = evaluate(a_net, _ListDataset(samples), keypoints=Source(), batch_size=1, progress=False, keep_worst=0)
    b = evaluate(b_net, _ListDataset(samples), keypoints=Source(), batch_size=64, progress=False, keep_worst=0)
    assert a.names == b.names == ["kp0", "kp2", "kp4", "kp6"] and a.missed == ["kp1", "kp3", "kp5", "kp7"]
    assert [c[0] for c in a_net.calls] == [1, 1, 1, 1] and [c[0] for c in b_net.calls] == [4]
    assert {c[1] for c in a_net.calls + b_net.calls} == {"facemesh"}
    np.testing.assert_allclose(a.R_pred, b.R_pred, atol=1e-12)
    np.testing.assert_allclose(a.errors()[:, 0], KP_ERRORS[::2], atol=1e-9)
    cov = a.to_dict()["sigma_coverage"]  # sigma 1 deg: |0.5| inside 1 sigma, |-3| outside 2 sigma
    assert cov["within_1sigma"]["yaw"] == 0.25 and cov["within_2sigma"]["yaw"] == 0.25


def test_keypoints_only_for_keypoint_networks():
    with pytest.raises(ValueError, match="for keypoint networks"):
        evaluate(_ColourModel(), _ListDataset(_samples(2)), keypoints="labels", progress=False)
    res = evaluate(_ColourModel(), _ListDataset(_samples(3)), "gt", progress=False)
    assert "sigma_coverage" not in res.to_dict() and "keypoints" not in res.to_dict()
