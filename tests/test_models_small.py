"""The small model families: keypoint-heatmap CNN, RealHePoNet and the 6D-rotation nets.

Every registered model here: forward + backward with a gradient on every parameter,
outputs that decode to proper rotations, and torch <-> ONNX Runtime parity after
``models.export.export_onnx``. Plus the heatmap renderer, RealHePoNet's output
mapping and the torch 6D / geodesic functions against :mod:`openheadpose.core.rotation`.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from openheadpose.specs.codecs import get_codec  # noqa: E402
from openheadpose.specs.crops import take_pixels  # noqa: E402
from openheadpose.models import create_model, list_models, model_spec  # noqa: E402
from openheadpose.models.heatmap import KEYPOINTS, OPENPOSE_SIGMA, render_heatmaps, to_map_coordinates  # noqa: E402
from openheadpose.models.realheponet import PAN_MEAN, PAN_STD, TILT_MEAN, TILT_STD  # noqa: E402
from openheadpose.models.rot6d import geodesic_angle, geodesic_loss, rotation_from_6d  # noqa: E402
from openheadpose.specs.spec import ModelSpec  # noqa: E402
from openheadpose.core.rotation import from_6d, geodesic_distance, is_rotation, to_6d  # noqa: E402

NAMES = ["heatmap-cnn", "realheponet", "rot6d-tiny", "rot6d-mobilenetv3small", "rot6d-resnet18"]


def _small_side(name: str) -> int:
    """The 6D nets pool globally, so their gradient and decode tests run at 64 px (speed);
    the others' dense layers fix the input side."""
    return 64 if name.startswith("rot6d-") else model_spec(name).preprocessing.input_size


def _channels(spec: ModelSpec) -> int:
    return {"gray": 1, "heatmaps": len(KEYPOINTS) + 1}.get(spec.preprocessing.channels, 3)


def _random_rotations(n: int, seed: int) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.random(n, random_state=seed).as_matrix()


def _inputs(name: str, batch: int, seed: int = 0, size: int | None = None) -> torch.Tensor:
    """A plausible network input: rendered heatmaps for the heatmap CNN, N(0, 1) otherwise."""
    spec = model_spec(name)
    s = size or spec.preprocessing.input_size
    rng = np.random.default_rng(seed)
    if spec.preprocessing.channels == "heatmaps":
        kp = rng.uniform(20, s - 20, (batch, len(KEYPOINTS), 2))
        conf = rng.uniform(0.3, 1.0, (batch, len(KEYPOINTS)))
        conf[0, -1] = 0.0  # one ear hidden
        return torch.from_numpy(render_heatmaps(kp, conf))
    return torch.from_numpy(rng.standard_normal((batch, _channels(spec), s, s)).astype(np.float32))


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def test_registered():
    assert set(NAMES) <= set(list_models())
    assert model_spec("heatmap-cnn").codec == "euler" and model_spec("realheponet").codec == "euler"
    assert {model_spec(n).codec for n in list_models("rot6d-*")} == {"rot6d"}
    pre = model_spec("heatmap-cnn").preprocessing
    assert (pre.input_size, pre.channels, pre.crop) == (96, "heatmaps", "keypoints")
    pre = model_spec("realheponet").preprocessing
    assert (pre.input_size, pre.channels) == (64, "gray")
    # RealHePoNet's (x / 255 - 0.408808) / 0.237583, written on the 0..255 scale
    assert np.isclose(pre.mean[0], 0.408808 * 255) and np.isclose(pre.std[0], 0.237583 * 255)
    assert [model_spec(n).preprocessing.input_size for n in ("rot6d-tiny", "rot6d-mobilenetv3small", "rot6d-resnet18")] == [112, 128, 224]


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_every_parameter(name):
    model = create_model(name).train()
    out = model(_inputs(name, 2, size=_small_side(name)))
    codec = get_codec(model.spec.codec)
    assert sorted(out) == sorted(codec.outputs)
    if codec.name == "rot6d":
        target = torch.from_numpy(_random_rotations(2, 1)).float()
        loss = geodesic_loss(rotation_from_6d(out["rot6d"]), target)
    else:
        loss = sum(v.square().mean() for v in out.values())
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing, f"no gradient reaches {missing}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_outputs_decode_to_rotations(name):
    model = create_model(name).eval()
    with torch.no_grad():
        out = {k: v.numpy() for k, v in model(_inputs(name, 3, size=_small_side(name))).items()}
    width = {"euler": 3, "rot6d": 6}
    assert all(v.shape == (3, width[k]) for k, v in out.items())
    pred = get_codec(model.spec.codec).decode(out)
    assert pred.rotations.shape == (3, 3, 3)
    assert pred.valid()  # orthonormal, det +1


def _eval_with_data_statistics(model, x: torch.Tensor):
    """Eval mode with BatchNorm statistics taken from ``x``.

    Freshly initialised running statistics (mean 0, var 1) leave the deep nets'
    activations vanishing, so every input gives the same output and a parity
    check would compare constants.
    """
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one pass sets the statistics of x
    model.train()
    with torch.no_grad():
        model(x)
    return model.eval()


def _export(model, path):
    from openheadpose.models.export import export_onnx

    return export_onnx(model, path)


def _ort_run(path, x: np.ndarray) -> dict[str, np.ndarray]:
    ort = pytest.importorskip("onnxruntime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, {sess.get_inputs()[0].name: x})))


def _max_diff(a: dict, b: dict) -> float:
    assert sorted(a) == sorted(b)
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


# Tolerance 1e-4 (absolute, in the outputs' own units: degrees for ``euler``,
# unit-free for ``rot6d``): float32 kernels of PyTorch and ONNX Runtime sum in
# different orders; measured differences are 2e-7 to 3e-6.
@pytest.mark.parametrize("name", NAMES)
def test_onnx_parity(name, tmp_path):
    pytest.importorskip("onnx")
    model = _eval_with_data_statistics(create_model(name), _inputs(name, 2, seed=4))
    path = _export(model, tmp_path / f"{name}.onnx")
    x = _inputs(name, 2, seed=5)  # batch 2 against an export traced with batch 1: the batch axis is dynamic
    with torch.no_grad():
        ref = {k: v.numpy() for k, v in model(x).items()}
    assert all(np.abs(v[0] - v[1]).max() > 1e-3 for v in ref.values()), "outputs do not depend on the input"
    got = _ort_run(path, x.numpy())
    diff = _max_diff(ref, got)
    print(f"{name}: torch vs onnxruntime max |diff| = {diff:.2e}")
    assert diff < 1e-4

    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert ModelSpec.from_metadata(meta) == model.spec



def test_heatmap_cnn_architecture():
    # Hand count of the README's Keras model: convs 6*50*25+50, 50*50*25+50, 50*150*25+150,
    # dense 150*8*8*300+300, 300*300+300, 300*3+3; the 5-channel input has 50*25 fewer weights.
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(create_model("heatmap-cnn")) == 3_229_253
    assert n(create_model("heatmap-cnn", in_chans=5)) == 3_229_253 - 50 * 25
    model = create_model("heatmap-cnn").eval()
    assert tuple(model.features(torch.zeros(1, 6, 96, 96)).shape) == (1, 150, 8, 8)
    with torch.no_grad():  # tanh x 90: every angle within [-90, 90] even for absurd inputs
        out = model(torch.full((2, 6, 96, 96), 1e4))["euler"]
    assert torch.all(out.abs() <= 90.0)


def test_render_heatmaps_peaks_and_background():
    kp = np.array([[[48.0, 40.0], [40.0, 30.0], [56.0, 30.0], [30.0, 36.0], [66.0, 36.0]]])
    conf = np.array([[1.0, 0.8, 0.6, 0.0, 0.9]])
    hm = render_heatmaps(kp, conf, sigma=2.0)
    assert hm.shape == (1, 6, 96, 96) and hm.dtype == np.float32
    for k in (0, 1, 2, 4):
        y, x = np.unravel_index(np.argmax(hm[0, k]), (96, 96))
        assert (x, y) == tuple(kp[0, k].astype(int))
        assert np.isclose(hm[0, k, y, x], conf[0, k])
        # one sigma away the Gaussian is exp(-1/2) of its peak
        assert np.isclose(hm[0, k, y, x + 2], conf[0, k] * np.exp(-0.5), rtol=1e-5)
    assert not hm[0, 3].any()  # confidence 0: an empty channel
    np.testing.assert_allclose(hm[0, 5], 1.0 - hm[0, :5].max(axis=0), atol=1e-7)
    assert hm[0, 5, 90, 5] > 0.999 and hm[0, 5, 40, 48] == 0.0


def test_render_heatmaps_invisible_and_subpixel():
    kp = np.array([[[np.nan, np.nan], [20.5, 10.0]]])
    hm = render_heatmaps(kp)  # no confidence: 1 for finite points
    assert not hm[0, 0].any() and not np.isnan(hm).any()
    assert np.isclose(hm[0, 1, 10, 20], hm[0, 1, 10, 21])  # a half-pixel keypoint sits between two pixels
    assert np.isclose(hm[0, 1, 10, 20], np.exp(-0.25 / (2 * OPENPOSE_SIGMA**2)), rtol=1e-6)
    with pytest.raises(ValueError):
        render_heatmaps(np.zeros((1, 5, 3)))
    with pytest.raises(ValueError):
        render_heatmaps(np.zeros((1, 5, 2)), np.ones((1, 4)))


def test_map_coordinates_follow_the_crop():
    """A bright pixel, cropped and enlarged by take_pixels, is centred where to_map_coordinates says."""
    img = np.zeros((120, 160), np.float32)
    u, v = 71, 53
    img[v, u] = 1.0
    box = np.array([50.0, 40.0, 98.0, 88.0])  # 48 px -> 96: bilinear enlargement
    crop = take_pixels(img, box, 96, outside="pad", resize="squash", interp="linear")
    ys, xs = np.mgrid[:96, :96]
    centroid = np.array([(crop * xs).sum(), (crop * ys).sum()]) / crop.sum()
    np.testing.assert_allclose(to_map_coordinates(np.array([[[u, v]]]), box[None])[0, 0], centroid, atol=1e-4)


# --- RealHePoNet -------------------------------------------------------------


def test_realheponet_architecture_and_output_mapping():
    model = create_model("realheponet").eval()
    # Keras count_params of mpatacchiola_generic(64, 6, 32, 1, 512): convs 1->32->...->1024, dense 1024->512->2.
    assert sum(p.numel() for p in model.parameters()) == 6_813_442
    assert tuple(model.features(torch.zeros(1, 1, 64, 64)).shape) == (1, 1024, 1, 1)
    assert not any("out_" in k for k in model.state_dict())  # the decoding constants are not weights
    last = model.head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([1.0, -1.0]))  # raw (tilt, pan)
        e = model(torch.zeros(2, 1, 64, 64))["euler"].numpy()
    # euler = (yaw, pitch, roll) = (pan, tilt, 0); label / 90 = raw * std + mean
    np.testing.assert_allclose(e[0], [(-PAN_STD + PAN_MEAN) * 90, (TILT_STD + TILT_MEAN) * 90, 0.0], rtol=1e-6)


# --- 6D rotation and geodesic loss -------------------------------------------


def test_rotation_from_6d_matches_numpy():
    rng = np.random.default_rng(3)
    d6 = rng.standard_normal((1000, 6))
    np.testing.assert_allclose(rotation_from_6d(torch.from_numpy(d6)).numpy(), from_6d(d6), atol=1e-12)
    R = _random_rotations(50, 4)
    np.testing.assert_allclose(rotation_from_6d(torch.from_numpy(to_6d(R))).numpy(), R, atol=1e-12)
    many = rotation_from_6d(torch.from_numpy(d6[:30].reshape(3, 10, 6)))  # any leading shape
    assert tuple(many.shape) == (3, 10, 3, 3) and is_rotation(many.numpy()).all()


def test_geodesic_matches_numpy_and_stays_finite():
    R1, R2 = _random_rotations(1000, 5), _random_rotations(1000, 6)
    want = geodesic_distance(R1, R2)
    got = np.rad2deg(geodesic_angle(torch.from_numpy(R1), torch.from_numpy(R2)).numpy())
    inside = (want > 0.1) & (want < 179.9)  # away from the clamp at cos = +-(1 - eps)
    assert inside.sum() > 990
    np.testing.assert_allclose(got[inside], want[inside], atol=1e-8)
    assert np.isclose(geodesic_loss(torch.from_numpy(R1), torch.from_numpy(R2)).item(), np.deg2rad(got).mean())

    # identical and opposite rotations: the clamp keeps value and gradient finite (float32, as in training)
    flip = np.diag([-1.0, -1.0, 1.0])  # 180 degrees about z
    a = torch.from_numpy(np.stack([R1[0], R1[1]])).float().requires_grad_(True)
    b = torch.from_numpy(np.stack([R1[0], R1[1] @ flip])).float()
    ang = geodesic_angle(a, b)
    assert ang[0].item() < np.deg2rad(0.05) and ang[1].item() > np.deg2rad(179.9)
    ang.sum().backward()
    assert torch.isfinite(a.grad).all()


def test_tiny_is_under_one_megabyte():
    state = create_model("rot6d-tiny").state_dict()
    assert sum(t.numel() * t.element_size() for t in state.values()) < 1_000_000
