"""The packaged image networks (``fsanet-synth`` ...; trained on ``headpose synth`` data only).

Accuracy bound: on the first 200 faces of AFLW2000-dev (ground-truth crops) the
mean MAE must stay below the network's full-set figure in ``docs/RESULTS.md`` plus 1.5 deg --
the spread of a 200-face subset mean around the full-set mean is about 0.5 deg
(per-face error s.d. ~7 deg / sqrt(200)), so this fails on a broken file, a wrong
crop recipe or a convention slip (each costs several degrees), not on noise.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from openheadpose.assets import SHIPPED_IMAGE_NETWORKS

DATA = Path(str(resources.files("openheadpose.assets")))
#: the network behind each shipped name (its ``.json`` records it too)
NETWORKS = {"fsanet-synth": "fsanet-capsule", "hopenet-synth": "hopenet-mobilenetv3small"}

shipped = pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.skipif(not (DATA / f"{n}.onnx").is_file(), reason=f"{n}.onnx is not packaged"))
    for n in SHIPPED_IMAGE_NETWORKS
])


@shipped
def test_packaged_file_matches_its_record(name):
    ONNX = DATA / f"{name}.onnx"
    side = json.loads(ONNX.with_suffix(".json").read_text())
    assert ONNX.stat().st_size == side["bytes"] <= 5 * 1024 * 1024
    assert hashlib.sha256(ONNX.read_bytes()).hexdigest() == side["sha256"]
    assert "AFLW2000" not in side["recipe"]["train"]  # chosen on the synthesized set's own held-out part


@shipped
def test_loads_by_name_with_its_crop(name):
    from openheadpose.inference.backends.onnx import load_network

    m = load_network(name)
    assert m.spec.name == NETWORKS[name] and m.crop == "face-1.1"
    p = m.spec.preprocessing
    x = np.random.default_rng(0).integers(0, 255, (2, p.input_size, p.input_size, 3), np.uint8)
    pred = m.predict(x)
    assert pred.rotations.shape == (2, 3, 3) and np.all(np.isfinite(pred.rotations))


@shipped
def test_mirrored_face_mirrors_the_pose(media, name):
    """A flipped photo must flip yaw and roll (the labels' convention survives training and export)."""
    from openheadpose.io.images import read_image
    from openheadpose.inference.builder import build_estimator

    est = build_estimator(name)
    img = read_image(media / "Tom_Hanks_54745.png")
    a = est(img).euler
    b = est(np.ascontiguousarray(img[:, ::-1])).euler
    assert len(a.yaw) == len(b.yaw) == 1
    assert a.yaw[0] == pytest.approx(-b.yaw[0], abs=6.0)  # tolerance: the detector box is not exactly mirrored
    assert a.pitch[0] == pytest.approx(b.pitch[0], abs=6.0)


@shipped
def test_accuracy_on_aflw2000_dev_subset(shared, name):
    from openheadpose.datasets.aflw2000 import AFLW2000
    from openheadpose.evaluation.evaluate import evaluate
    from openheadpose.inference.backends.onnx import load_network

    rows = json.loads((Path(__file__).resolve().parents[1] / f"benchmarks/results/eval/aflw2000-dev_{name}_gt.json").read_text())
    ds = list(itertools.islice(iter(AFLW2000(shared / "data" / "aflw2000-dev")), 200))
    res = evaluate(load_network(name), ds, "gt", progress=False)
    assert res.to_dict()["mae"]["mean"] < rows["mae"]["mean"] + 1.5


@pytest.mark.skipif(not (DATA / "hopenet-synth.onnx").is_file(), reason="hopenet-synth.onnx is not packaged")
def test_default_network_gives_a_calibrated_sigma(media):
    """The default network's sigma is its bins' spread times the file's per-angle factors
    (fitted off AFLW2000: tools/calibrate_sigma.py), it reaches every output, and it is
    larger on a crop with no face in it than on a face."""
    from openheadpose.inference.backends.onnx import OnnxPoseModel
    from openheadpose.inference.builder import build_estimator
    from openheadpose.io.images import read_image

    model = OnnxPoseModel(DATA / "hopenet-synth.onnx")
    cal = model.spread_calibration
    assert cal is not None and len(cal.scale) == 3 and all(0.2 < k < 5 for k in cal.scale)
    assert "Never AFLW2000" in cal.fitted_on
    side = json.loads((DATA / "hopenet-synth.json").read_text())
    assert side["sigma"]["scale"] == pytest.approx(list(cal.scale), abs=1e-4)

    est = build_estimator(track=False)
    heads = est(read_image(media / "single_face.jpg"))
    assert len(heads) == 1 and heads.sigma is not None and heads.sigma.shape == (1, 3)
    assert heads.to_list()[0]["sigma"] is not None

    rng = np.random.default_rng(0)
    face = est.pose.model  # the same network
    size = face.input_size
    box = est.pose.crop_boxes(read_image(media / "single_face.jpg").shape, est.find_faces(read_image(media / "single_face.jpg")))[0]
    crop = est.pose.recipe(read_image(media / "single_face.jpg"), box, size)
    noise = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    out = face.raw(np.stack([crop, noise]))
    pred = face.predict(np.stack([crop, noise]))
    np.testing.assert_allclose(pred.sigma, face.codec.spread(out) * np.asarray(cal.scale), rtol=1e-6)
    assert (pred.sigma[1] > pred.sigma[0]).all(), pred.sigma
