"""The mirrored read: a face read as it is, mirrored (pose mapped back) or both, averaged on SO(3).

Toy networks with a known answer stand in for real ones (no data, no torch): an image network
whose yaw and roll follow the crop's left-right brightness difference ``a`` (which the crop's
mirror negates exactly) plus a bias ``b`` (which it keeps), and a keypoint network whose yaw
follows the nose's offset from the eyes' midpoint. Their reads have closed forms, so the
tolerances below are float round-off (1e-9 deg), not slack.
"""

from __future__ import annotations

import numpy as np
import pytest

from openheadpose.core.calibration import Calibration
from openheadpose.core.geometry import points_box
from openheadpose.core.rotation import euler_to_matrix, matrix_to_euler
from openheadpose.inference.pose_stages import (
    GeometricPose,
    KeypointPose,
    NetworkPose,
    both_sigma_factor,
    mirror_keypoints,
    read_crops,
)
from openheadpose.inference.results import Faces
from openheadpose.specs.spec import PosePrediction

SIGMA = np.array([2.0, 3.0, 4.0])


class _Asymmetry:
    """yaw = 40 a + yaw_bias, pitch = 7, roll = 10 a + roll_bias, with a = (left half - right half) / 255."""

    name, crop, input_size, takes_keypoints = "toy", "face-1.1", 16, False

    def __init__(self, yaw_bias=0.0, roll_bias=0.0, both=None):
        self.yaw_bias, self.roll_bias, self.seen = yaw_bias, roll_bias, []
        self.both_calibration = both

    @staticmethod
    def asymmetry(crops):
        c = np.asarray(crops, np.float64).mean(axis=(1, 3))  # (B, W): column brightness
        w = c.shape[1] // 2
        return (c[:, :w].mean(1) - c[:, -w:].mean(1)) / 255.0

    def predict(self, crops):
        self.seen.append(len(crops))
        a = self.asymmetry(crops)
        R = euler_to_matrix(40 * a + self.yaw_bias, np.full_like(a, 7.0), 10 * a + self.roll_bias)
        # sigma grows with |a| so that the two reads' sigma differ where the biases differ
        return PosePrediction(R, SIGMA * (1 + np.abs(40 * a + self.yaw_bias))[:, None] / 10)


def _crops(n=6, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)


def _angles(R):
    return matrix_to_euler(R).stack()


def test_mirrored_read_maps_back_to_the_face():
    """The mirrored crop has -a; the network answers yaw -40a + b, roll -10a + c; mapped back
    (yaw and roll negated) that is 40a - b, 10a - c, pitch 7: the face's pose less the bias."""
    crops, model = _crops(), _Asymmetry(yaw_bias=5.0, roll_bias=-3.0)
    a = _Asymmetry.asymmetry(crops)
    plain, mirrored, both = (_angles(read_crops(model, crops, v).rotations) for v in ("plain", "mirrored", "both"))
    np.testing.assert_allclose(plain, np.stack([40 * a + 5, np.full_like(a, 7), 10 * a - 3], 1), atol=1e-9)
    np.testing.assert_allclose(mirrored, np.stack([40 * a - 5, np.full_like(a, 7), 10 * a + 3], 1), atol=1e-9)
    # both: the geodesic midpoint of the two. With roll it is not the mean of the Euler angles,
    # but it sits halfway and is free of the constant bias to first order
    from openheadpose.core.rotation import geodesic_distance

    Rp, Rm, Rb = (read_crops(model, crops, v).rotations for v in ("plain", "mirrored", "both"))
    np.testing.assert_allclose(geodesic_distance(Rb, Rp), geodesic_distance(Rp, Rm) / 2, atol=1e-9)
    np.testing.assert_allclose(geodesic_distance(Rb, Rm), geodesic_distance(Rp, Rm) / 2, atol=1e-9)
    assert np.abs(both[:, 0] - 40 * a).max() < 0.2 and np.abs(both[:, 2] - 10 * a).max() < 0.2
    assert np.abs(plain[:, 0] - 40 * a).min() > 4.9  # the bias the plain read keeps


def test_both_of_a_mirror_symmetric_network_is_the_plain_read():
    crops, model = _crops(seed=1), _Asymmetry()
    plain, both = (read_crops(model, crops, v) for v in ("plain", "both"))
    np.testing.assert_allclose(both.rotations, plain.rotations, atol=1e-12)
    np.testing.assert_allclose(both.sigma, plain.sigma, atol=1e-12)  # no factor in the file: the single-read sigma
    assert model.seen == [6, 12]  # plain: one read per face; both: crop and mirror in one batch


def test_sigma_of_each_view():
    crops = _crops(seed=2)
    model = _Asymmetry(yaw_bias=5.0, both=Calibration((0.8, 0.9, 0.7), "toy", {}, {}))
    p, m, b = (read_crops(model, crops, v).sigma for v in ("plain", "mirrored", "both"))
    a = _Asymmetry.asymmetry(crops)
    np.testing.assert_allclose(p, SIGMA * (1 + np.abs(40 * a + 5))[:, None] / 10)
    np.testing.assert_allclose(m, SIGMA * (1 + np.abs(-40 * a + 5))[:, None] / 10)  # the mirror image's own read
    np.testing.assert_allclose(b, (p + m) / 2 * [0.8, 0.9, 0.7])
    assert both_sigma_factor(object()).tolist() == [1.0, 1.0, 1.0]


def test_network_pose_views_and_default():
    from openheadpose.inference.pose_stages import MIRROR_DEFAULT

    image = np.random.default_rng(3).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[10.0, 10.0, 60.0, 60.0], [80.0, 30.0, 140.0, 90.0]])
    faces = Faces(boxes, np.ones(2), boxes, crop_boxes=boxes.astype(int))
    model = _Asymmetry(yaw_bias=5.0)
    stage = NetworkPose(model)
    assert stage.mirror is MIRROR_DEFAULT is True
    default, both = stage(image, faces), stage(image, faces, view="both")
    np.testing.assert_allclose(default.rotations, both.rotations)
    plain = NetworkPose(model, mirror=False)(image, faces)
    np.testing.assert_allclose(plain.rotations, stage(image, faces, view="plain").rotations)
    assert not np.allclose(plain.rotations, both.rotations)
    with pytest.raises(ValueError, match="view must be one of"):
        stage(image, faces, view="flipped")


class _KeypointToy:
    """yaw = nose x - eyes' mid x (pixels) + 4; pitch 0, roll = (right eye y - left eye y) + 2."""

    name, takes_keypoints = "kp-toy", True

    def __init__(self):
        self.seen = []

    def predict_keypoints(self, points, conf, boxes, source=None):
        self.seen.append(len(points))
        p = np.asarray(points, np.float64)
        yaw = p[:, 0, 0] - (p[:, 1, 0] + p[:, 2, 0]) / 2 + 4.0
        roll = p[:, 2, 1] - p[:, 1, 1] + 2.0
        return PosePrediction(euler_to_matrix(yaw, np.zeros_like(yaw), roll), None)


def _keypoint_faces():
    # nose, left eye (the person's: image right when facing the camera), right eye, left ear, right ear
    pts = np.array([[[52.0, 60.0], [62.0, 48.0], [40.0, 50.0], [75.0, 55.0], [28.0, 56.0]]])
    box = points_box(pts) + np.array([[-10.0, -10.0, 10.0, 10.0]])
    return Faces(box, np.ones(1), box, keypoints=pts, keypoint_conf=np.array([[1.0, 0.9, 0.8, 0.7, 0.6]]))


def test_keypoints_mirror_about_the_box_centre_with_sides_swapped():
    f = _keypoint_faces()
    m = mirror_keypoints(f.keypoints, f.boxes)
    cx = (f.boxes[0, 0] + f.boxes[0, 2]) / 2
    np.testing.assert_allclose(m[0, 1], [2 * cx - 40.0, 50.0])  # the mirror image's left eye is the face's right eye, mirrored
    np.testing.assert_allclose(mirror_keypoints(m, f.boxes), f.keypoints)  # an involution


def test_keypoint_pose_mirrored_read_maps_back():
    """Mirrored: the toy sees yaw -d + 4 and roll -r + 2 (d, r: the face's offsets), mapped back d - 4, r - 2."""
    f, model = _keypoint_faces(), _KeypointToy()
    stage = KeypointPose(model)
    assert stage.mirror is False  # off unless asked: no measured sigma factor for keypoint networks
    image = np.zeros((100, 100, 3), np.uint8)
    d, r = 52.0 - 51.0, 50.0 - 48.0
    plain, mirrored, both = (_angles(stage(image, f, view=v).rotations)[0] for v in ("plain", "mirrored", "both"))
    np.testing.assert_allclose(plain, [d + 4, 0, r + 2], atol=1e-9)
    np.testing.assert_allclose(mirrored, [d - 4, 0, r - 2], atol=1e-9)
    assert abs(both[0] - d) < 0.1 and abs(both[2] - r) < 0.1
    assert model.seen[-1] == 2  # the head and its mirror in one call


def test_geometric_pose_accepts_and_ignores_view():
    with pytest.raises(ValueError):
        GeometricPose.__call__(GeometricPose.__new__(GeometricPose), None, None, view="sideways")


needs_hopenet = pytest.mark.skipif(
    __import__("openheadpose.assets", fromlist=["shipped_weights"]).shipped_weights("hopenet-synth") is None,
    reason="hopenet-synth.onnx is not packaged",
)


@needs_hopenet
def test_builder_gives_the_pose_stage_the_option():
    from openheadpose.inference.builder import build_estimator
    from openheadpose.inference.pipeline import HeadPoseEstimator

    assert build_estimator("hopenet-synth", track=False).pose.mirror is True
    assert build_estimator("hopenet-synth", track=False, mirror=False).pose.mirror is False
    assert build_estimator("default", landmarker="none", pose="hopenet-synth", track=False, mirror=False).pose.mirror is False
    # one default for the class and the builder
    assert HeadPoseEstimator(None, None, "hopenet-synth").pose.mirror is build_estimator("default", landmarker="none", pose="hopenet-synth").pose.mirror
    with pytest.raises(ValueError, match="mirror"):
        build_estimator("default", pose="geometric", mirror=True)


def test_cli_option_reaches_the_builder(monkeypatch, tmp_path):
    """--mirror/--no-mirror of predict, interact and evaluate arrive at build_estimator (None when not given)."""
    from click.testing import CliRunner

    import openheadpose.inference.builder as builder
    from openheadpose.cli.evaluate import evaluate
    from openheadpose.cli.interact import interact
    from openheadpose.cli.predict import predict

    seen = []

    def fake(*args, **kw):
        seen.append(kw.get("mirror"))
        raise ValueError("stop here")

    monkeypatch.setattr(builder, "build_estimator", fake)
    labels = tmp_path / "faces.csv"
    labels.write_text("image,yaw,pitch,roll,x1,y1,x2,y2\nface.jpg,10,0,0,0,0,20,20\n")
    data = ["--dataset", "csv", "--root", str(labels)]
    for cmd, args in ((predict, ["example:astronaut"]), (interact, ["example:astronaut"]), (evaluate, data)):
        for flag, want in ((None, None), ("--mirror", True), ("--no-mirror", False)):
            seen.clear()
            r = CliRunner().invoke(cmd, args + ([flag] if flag else []))
            assert r.exit_code == 2 and "stop here" in r.output, r.output
            assert seen == [want], (cmd.name, flag)
