"""From a checkpoint to predictions in two commands: convert/export, then predict/evaluate with --model."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import have_models

torch = pytest.importorskip("torch")


def run_cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "openheadpose.cli", *map(str, args)], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from openheadpose.models import create_model, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("zoo") / "rot6d-tiny.pt"
    save_checkpoint(create_model("rot6d-tiny"), path)
    return path


def test_weights_take_a_training_checkpoint(tiny_checkpoint, tmp_path, monkeypatch):
    """--weights run/best.pt works where PyTorch is (exported on the fly, same heads as the
    exported file); without PyTorch the message says how to export it."""
    via_pt = run_cli("predict", "example:astronaut", "--model", "rot6d-tiny", "--weights", tiny_checkpoint, "--json", "-", "-q")
    assert via_pt.returncode == 0, via_pt.stderr
    onnx = tmp_path / "r.onnx"
    assert run_cli("export", tiny_checkpoint, onnx).returncode == 0
    via_onnx = run_cli("predict", "example:astronaut", "--model", "rot6d-tiny", "--weights", onnx, "--json", "-", "-q")
    a, b = json.loads(via_pt.stdout)["heads"], json.loads(via_onnx.stdout)["heads"]
    assert len(a) == len(b) == 1 and a[0]["yaw"] == pytest.approx(b[0]["yaw"], abs=1e-3)

    import importlib.util

    from click.testing import CliRunner

    from openheadpose.cli.predict import predict

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    r = CliRunner().invoke(predict, ["example:astronaut", "--model", "rot6d-tiny", "--weights", str(tiny_checkpoint)])
    assert r.exit_code == 2 and f"headpose export {tiny_checkpoint} model.onnx" in r.output


def test_export_then_predict_with_any_detector(tiny_checkpoint, tmp_path):
    """Untrained weights: only the plumbing and the rotation's validity are checked here;
    accuracy of real weights is checked with the imported FSA-Net below."""
    onnx_path = tmp_path / "tiny.onnx"
    r = run_cli("export", tiny_checkpoint, onnx_path)
    assert r.returncode == 0, r.stderr
    for detector in ("blazeface", "haar"):
        r = run_cli("predict", "example:astronaut", "--model", "rot6d", "--weights", onnx_path, "--detector", detector, "--json", "-", "-q")
        assert r.returncode == 0, r.stderr
        heads = json.loads(r.stdout.splitlines()[0])["heads"]
        assert len(heads) == 1, detector
        R = np.array(heads[0]["rotation"])
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-4) and np.isclose(np.linalg.det(R), 1, atol=1e-4)


def test_onnx_and_torch_backends_agree_on_real_crops(tiny_checkpoint, tmp_path):
    from skimage.data import astronaut

    from openheadpose.specs.crops import CROPS
    from openheadpose.models import create_model
    from openheadpose.models.export import TorchPoseModel, export_onnx
    from openheadpose.inference.backends.onnx import OnnxPoseModel
    from openheadpose.core.rotation import geodesic_distance

    model = create_model("rot6d-tiny", weights=tiny_checkpoint)
    o = OnnxPoseModel(export_onnx(model, tmp_path / "t.onnx"))
    t = TorchPoseModel(model)
    r = CROPS[o.crop]
    img = astronaut()
    crops = np.stack([r(img, r.from_detection(np.array(b, float), img.shape), o.input_size) for b in ([160, 60, 260, 190], [150, 50, 280, 200])])
    assert o.spec == t.spec  # the metadata round-trips the whole spec
    assert geodesic_distance(o.predict(crops).rotations, t.predict(crops).rotations).max() < 1e-3


def test_wrong_model_or_file_is_refused(tiny_checkpoint, tmp_path):
    onnx_path = tmp_path / "tiny.onnx"
    assert run_cli("export", tiny_checkpoint, onnx_path).returncode == 0
    r = run_cli("predict", "example:astronaut", "--model", "hopenet", "--weights", onnx_path, "-q")
    assert r.returncode == 2 and "holds model 'rot6d-tiny', not 'hopenet'" in r.stderr
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    r = run_cli("predict", "example:astronaut", "--model", "onnx", "--weights", bad, "-q")
    assert r.returncode == 2 and "bad.onnx" in r.stderr
    r = run_cli("export", tmp_path / "missing.pt", tmp_path / "x.onnx")
    assert r.returncode == 2


def test_convert_fsanet_then_predict_and_evaluate(shared, tmp_path):
    """The two-command path on real weights: the imported capsule model on a real photo agrees
    with our default pipeline on which way the head is turned, and scores its known MAE."""
    h5 = shared / "weights/fsanet/300W_LP_models/fsanet_capsule_3_16_2_21_5"
    onnx_path = tmp_path / "capsule.onnx"
    r = run_cli("convert", "fsanet", h5, onnx_path)
    assert r.returncode == 0, r.stderr
    photo = shared / "media/0-f1-su-ph.jpg"
    ours = run_cli("predict", photo, "--json", "-", "-q")
    fsa = run_cli("predict", photo, "--model", "fsanet", "--weights", onnx_path, "--json", "-", "-q")
    assert ours.returncode == fsa.returncode == 0, fsa.stderr
    a, b = json.loads(ours.stdout)["heads"], json.loads(fsa.stdout)["heads"]
    assert len(a) == len(b) == 1
    # two different methods on one real face: same direction within 15 deg per angle
    for k in ("yaw", "pitch", "roll"):
        assert abs(a[0][k] - b[0][k]) < 15, (k, a[0][k], b[0][k])
    out = tmp_path / "eval.json"
    # --no-mirror: the published figure is one read per face (the default reads each crop and its mirror)
    r = run_cli("evaluate", "--root", shared / "data/aflw2000-dev", "--model", "fsanet", "--weights", onnx_path, "--json", out, "-q", "--no-mirror")
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert d["n_detected"] == 983 and d["crop_recipe"] == "fsanet"
    assert d["mae"]["mean"] == pytest.approx(5.36, abs=0.02)  # TF graph: 5.36 (../shared README); parity 1e-4 deg


def test_evaluation_does_not_depend_on_batch_size_with_a_real_model(shared, tmp_path):
    """The imported FSA-Net capsule model on 120 AFLW2000-dev faces at batch 1 and 64.
    Tolerance 1e-6 deg on the means: ONNX Runtime may sum a batch in another order
    (float32 last-bit differences), nothing else may change."""
    import itertools

    from openheadpose.convert import CONVERTERS
    from openheadpose.datasets.aflw2000 import AFLW2000
    from openheadpose.evaluation.evaluate import evaluate
    from openheadpose.inference.backends.onnx import OnnxPoseModel

    model = OnnxPoseModel(CONVERTERS["fsanet"](shared / "weights/fsanet/300W_LP_models/fsanet_capsule_3_16_2_21_5", tmp_path / "c.onnx"))

    class First120:
        def __init__(self):
            self.reader = AFLW2000(shared / "data/aflw2000-dev")
            self.failures, self.n_filtered = self.reader.failures, 0

        def __iter__(self):
            return itertools.islice(iter(self.reader), 120)

    a = evaluate(model, First120(), "gt", batch_size=1, progress=False, keep_worst=0)
    b = evaluate(model, First120(), "gt", batch_size=64, progress=False, keep_worst=0)
    assert a.n_detected == b.n_detected == 120
    for k in ("mae", "mae_yaw", "mae_pitch", "mae_roll", "maev", "geodesic"):
        assert abs(getattr(a.metrics, k) - getattr(b.metrics, k)) < 1e-6, k


def test_evaluate_keypoint_network_from_labelled_keypoints(tiny_aflw2000, tmp_path):
    """`headpose evaluate --model hhpnet --keypoints labels`: the shipped weights on the labelled keypoints,
    sigma calibrated with the file's `labels` factor; MAE and coverage recomputed here from the file itself."""
    from importlib import resources

    import onnxruntime as ort

    from openheadpose.core.calibration import coverage
    from openheadpose.datasets.aflw2000 import AFLW2000
    from openheadpose.specs.keypoint_input import keypoints_to_input
    from openheadpose.inference.keypoint_sources import label_keypoints
    from openheadpose.core.rotation import wrap_degrees

    out = tmp_path / "labels.json"
    r = run_cli("evaluate", "--root", tiny_aflw2000, "--model", "hhpnet", "--keypoints", "labels", "--json", out, "-q")
    assert r.returncode == 0, r.stderr
    assert "within +-1 sigma" in r.stdout and "keypoints labels" in r.stdout
    d = json.loads(out.read_text())
    samples = list(AFLW2000(tiny_aflw2000))
    assert (d["keypoints"], d["crop"], d["n_images"], d["n_detected"]) == ("labels", "keypoints", len(samples), len(samples))
    # the same from first principles
    data = resources.files("openheadpose.assets")
    cal = json.loads(data.joinpath("hhpnet-synth.json").read_text())["calibration"]
    factor = np.asarray(cal["per_source"]["labels"]) / np.asarray(cal["scale"])
    sess = ort.InferenceSession(str(data.joinpath("hhpnet-synth.onnx")), providers=["CPUExecutionProvider"])
    P, C = zip(*(label_keypoints(s.landmarks) for s in samples))
    mu, lv = sess.run(["euler", "log_var"], {"input": keypoints_to_input(np.concatenate(P), np.concatenate(C))})
    err = wrap_degrees(mu - np.stack([s.euler for s in samples]), 360.0)
    sigma = np.exp(lv / 2.0) * factor
    for z, key in ((1.0, "within_1sigma"), (2.0, "within_2sigma")):
        np.testing.assert_allclose(list(d["sigma_coverage"][key].values()), coverage(err, sigma, z), atol=1e-4)
    np.testing.assert_allclose(list(d["sigma_coverage"]["mean_sigma"].values()), sigma.mean(0), atol=2e-3)
    assert d["mae"]["yaw"] == pytest.approx(np.abs(err[:, 0]).mean(), abs=1e-3)


def test_evaluate_keypoint_network_behind_a_source(tiny_aflw2000, tmp_path):
    if not have_models("face_detection_short_range", "face_detection_full_range_sparse"):
        pytest.skip("no BlazeFace model files")
    out = tmp_path / "bf.json"
    r = run_cli("evaluate", "--root", tiny_aflw2000, "--model", "hhpnet", "--keypoints", "blazeface", "--json", out, "-q")
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert d["keypoints"] == "blazeface" and d["model"] == "blazeface+hhpnet-synth" and d["n_images"] == 8
    assert 6 <= d["n_detected"] <= 8 and d["n_detected"] + d["n_missed"] == 8
    assert d["mae"]["mean"] < 15.0  # measured 6.91 on the 983 faces (docs/RESULTS.md)
    cov = d["sigma_coverage"]
    assert all(0.0 <= cov["within_1sigma"][a] <= cov["within_2sigma"][a] <= 1.0 for a in ("yaw", "pitch", "roll"))
    # the same faces through the Python API, with the source's factor and with the baked one
    from openheadpose.datasets.aflw2000 import AFLW2000
    from openheadpose.evaluation.evaluate import collect_keypoints, score_keypoints
    from openheadpose.inference.backends.onnx import load_network

    model = load_network("hhpnet")
    kps = collect_keypoints(AFLW2000(tiny_aflw2000), "blazeface", progress=False)
    calibrated, baked = score_keypoints(model, kps, keep_worst=0), score_keypoints(model, kps, keep_worst=0, source=None)
    assert calibrated.to_dict()["sigma_coverage"]["within_1sigma"] == cov["within_1sigma"]
    ratio = np.asarray(model.calibration.per_source["blazeface"]) / np.asarray(model.calibration.baked)
    np.testing.assert_allclose(calibrated.sigma, baked.sigma * ratio, rtol=1e-9)


def test_evaluate_refuses_keypoints_for_image_models_and_typos(tiny_aflw2000):
    r = run_cli("evaluate", "--root", tiny_aflw2000, "--keypoints", "facemesh", "-q")
    assert r.returncode == 2 and "--keypoints is for keypoint networks" in r.stderr
    r = run_cli("evaluate", "--root", tiny_aflw2000, "--model", "hhpnet", "--keypoints", "poses", "-q")
    assert r.returncode == 2 and "did you mean 'pose'" in r.stderr
