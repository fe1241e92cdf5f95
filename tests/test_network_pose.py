"""The network pose stage: an image network on its own crop recipe, placed by FaceMesh's points."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from openheadpose.core.geometry import points_box
from openheadpose.inference.results import Faces
from openheadpose.inference.pose_stages import GeometricPose, NetworkPose, face_template, landmarks68_from_facemesh
from openheadpose.core.geometry import camera_frame
from openheadpose.specs.spec import PosePrediction
from openheadpose.assets import shipped_weights
from openheadpose.core.rotation import euler_to_matrix

needs_weights = pytest.mark.skipif(shipped_weights("fsanet-synth") is None, reason="fsanet-synth.onnx is not packaged")


def test_68_landmarks_follow_the_facemesh_points():
    """A rigid template face seen at any pose, scale and place gives back its own 68 landmarks
    (image pixels, y down); a few wild FaceMesh points do not drag them."""
    t = face_template()
    for yaw, pitch, roll in ((0, 0, 0), (40, -10, 5), (-75, 15, -20)):
        R = euler_to_matrix(yaw, pitch, roll)
        pts = _project_template(R, scale=1.7, centre=(210.0, 140.0))
        want = _project_template(R, scale=1.7, centre=(210.0, 140.0), points=t.landmarks68)[:, :2]
        np.testing.assert_allclose(landmarks68_from_facemesh(pts), want, atol=1e-6)
        noisy = pts.copy()
        noisy[::40, :2] += 60.0  # 12 points thrown 85 px away
        assert np.abs(landmarks68_from_facemesh(noisy) - want).max() < 3.0


class _Recorder:
    """A crop model that records its crops and answers a fixed pose."""

    name, crop, input_size, takes_keypoints = "recorder", "face-1.1", 32, False

    def __init__(self, R):
        self.R, self.seen = R, []

    def predict(self, crops):
        self.seen.append(crops)
        return PosePrediction(np.repeat(self.R[None], len(crops), 0))


def Landmarks(points, presence):  # noqa: N802 - the faces a landmarker pipeline hands its pose stage
    return Faces(points_box(points), presence, points_box(points), mesh=points)


def _project_template(R, scale=2.0, centre=(200.0, 150.0), points=None):
    """The template's 468 points (or ``points``) seen at rotation ``R`` (image pixels, y down, z towards the viewer)."""
    p = scale * (face_template().points if points is None else points) @ R.T
    return np.column_stack([p[:, 0] + centre[0], -p[:, 1] + centre[1], p[:, 2]])


def test_crop_box_is_the_recipe_on_the_68_point_extent():
    from openheadpose.specs.crops import CROPS, landmark_box

    R = euler_to_matrix(30.0, -10.0, 5.0)
    pts = _project_template(R)
    model = _Recorder(R)
    est = NetworkPose(model)
    box = est.crop_boxes((300, 400, 3), Landmarks(pts[None], np.ones(1)))[0]
    lm68 = _project_template(R, points=face_template().landmarks68)[:, :2]
    assert np.array_equal(box, CROPS["face-1.1"].expand_landmarks(lm68, (300, 400)))
    # a square 1.1 x the longer side of the 68-point extent, centred on it
    ext = landmark_box(lm68)
    side = 1.1 * max(ext[2] - ext[0], ext[3] - ext[1])
    assert box[2] - box[0] == pytest.approx(side, abs=2)
    assert (box[0] + box[2]) / 2 == pytest.approx((ext[0] + ext[2]) / 2, abs=1)


def test_batches_and_camera_frame():
    R = euler_to_matrix(20.0, 0.0, 0.0)
    pts = np.stack([_project_template(R, centre=(60.0 + 40 * i, 150.0)) for i in range(5)])
    lm = Landmarks(pts, np.ones(5))
    image = np.zeros((300, 400, 3), np.uint8)
    model = _Recorder(R)
    NetworkPose(model, batch_size=2)(image, lm)  # the default reads each face and its mirror in one batch
    assert [len(c) for c in model.seen] == [4, 4, 2]
    model = _Recorder(R)
    out = NetworkPose(model, batch_size=2, mirror=False, upright=False)(image, lm)
    assert [len(c) for c in model.seen] == [2, 2, 1] and model.seen[0].shape[1:] == (32, 32, 3)
    np.testing.assert_allclose(out.rotations, np.repeat(R[None], 5, 0), atol=1e-9)
    assert out.sigma is None
    # with a camera: the same correction as the geometric stage's
    cam = NetworkPose(_Recorder(R), focal_factor=1.2, mirror=False, upright=False)(image, lm)
    for r, p in zip(cam.rotations, pts):
        np.testing.assert_allclose(r, camera_frame(R, p[:, :2].mean(0), image.shape, 1.2), atol=1e-9)
    assert not np.allclose(cam.rotations[0], R)  # the leftmost face is off-axis


def test_upright_read_levels_the_face_and_turns_its_pose_back():
    """A face tilted on screen by ``a`` is cut out level -- the network sees the crop of the untilted
    face -- and the pose it reads comes back turned by ``a`` (``Rz(a) @ R``: AFLW roll -a on a frontal face)."""
    from openheadpose.core.rotation import rot_z, screen_angle

    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.random((300, 400, 3)), (0, 0), 10)  # texture a 32-px crop resolves
    image = (255 * (image - image.min()) / np.ptp(image)).astype(np.uint8)
    R = euler_to_matrix(25.0, -5.0, 0.0)
    level_pts = _project_template(R, scale=1.0, centre=(200.0, 150.0))  # its crop stays inside the turned picture
    tilt = float(screen_angle(R))  # the untilted face's own screen angle: a few degrees at this yaw and pitch
    ref = _Recorder(R)
    NetworkPose(ref, mirror=False)(image, Landmarks(level_pts[None], np.ones(1)))
    for a in (-30.0, 20.0):
        M = cv2.getRotationMatrix2D((200.0, 150.0), a, 1.0)  # the picture turned a degrees counter-clockwise
        turned = cv2.warpAffine(image, M, (400, 300), flags=cv2.INTER_LINEAR)
        pts = level_pts.copy()
        pts[:, :2] = level_pts[:, :2] @ M[:, :2].T + M[:, 2]
        model = _Recorder(R)
        out = NetworkPose(model, mirror=False)(turned, Landmarks(pts[None], np.ones(1)))
        # the crop matches the level face's (two resamplings apart); an axis-aligned one does not
        diff = np.abs(model.seen[0].astype(float) - ref.seen[0].astype(float)).mean()
        tilted = _Recorder(R)
        NetworkPose(tilted, mirror=False, upright=False)(turned, Landmarks(pts[None], np.ones(1)))
        assert diff < 3.0 < np.abs(tilted.seen[0].astype(float) - ref.seen[0].astype(float)).mean()
        # the pose comes back turned by a plus the untilted face's own screen angle (the fitted
        # template is the face itself here, so that angle is exact)
        np.testing.assert_allclose(out.rotations[0], rot_z(np.radians(a + tilt)) @ R, atol=1e-6)


def test_no_faces():
    out = NetworkPose(_Recorder(np.eye(3)))(np.zeros((10, 10, 3), np.uint8), Landmarks(np.zeros((0, 468, 3)), np.zeros(0)))
    assert out.rotations.shape == (0, 3, 3)


@needs_weights
def test_refuses_a_keypoint_network():
    with pytest.raises(ValueError, match="keypoint network"):
        NetworkPose("hhpnet")


@needs_weights
def test_pipeline_agrees_with_the_geometric_stage_on_frontal_faces(media):
    """Two unrelated estimators of the same faces: within 12 deg per angle on near-frontal faces
    (each has a typical error of 3-6 deg there; a sign or axis slip costs tens of degrees)."""
    from openheadpose import HeadPoseEstimator
    from openheadpose.io.images import read_image

    img = read_image(media / "multi_face.jpg")
    net = HeadPoseEstimator(pose="fsanet-synth")(img)
    geo = HeadPoseEstimator(pose=GeometricPose())(img)
    assert len(net) == len(geo) == 5
    np.testing.assert_array_equal(net.boxes, geo.boxes)
    a, b = net.euler, geo.euler
    for k in ("yaw", "pitch", "roll"):
        assert np.max(np.abs(getattr(a, k) - getattr(b, k))) < 12.0, k


@needs_weights
def test_landmark_crops_match_labelled_crops_on_aflw2000(shared):
    """68 points placed from FaceMesh put the crop where AFLW2000's own 68 points do:
    median IoU of the two face-1.1 boxes above 0.85 on 40 faces (no pose is scored here)."""
    from openheadpose.specs.crops import CROPS
    from openheadpose.datasets.aflw2000 import AFLW2000
    from openheadpose.core.geometry import box_iou
    from openheadpose.inference.landmarkers import LANDMARKERS
    from openheadpose.inference.results import Detections

    recipe = CROPS["face-1.1"]
    mesh = LANDMARKERS.create("facemesh")
    ious = []
    for s in itertools.islice(iter(AFLW2000(shared / "data" / "aflw2000-dev")), 40):
        img = s.load_image()
        lm = mesh(img, Detections(np.asarray(s.box, float)[None], np.ones(1)))
        ours = recipe.expand_landmarks(landmarks68_from_facemesh(lm.points[0]), img.shape)
        theirs = recipe.from_sample(s, img.shape)
        ious.append(box_iou(ours, theirs)[0, 0])
    assert np.median(ious) > 0.85, np.percentile(ious, [10, 50, 90])



def test_a_face_facemesh_rejects_is_read_from_its_detector_box():
    """FaceMesh's presence collapses on faces turned far; with an image network the pipeline keeps
    such a face when the detector alone is sure of it, reads its detector box, and says so
    (NaN mesh row, the detector's score). A weak detection, or one on a face already
    confirmed, is not added; a stage that needs the mesh gets no such face."""
    from openheadpose.inference import pipeline as pl
    from openheadpose.inference.results import Detections
    from openheadpose.inference.results import Landmarks as LM

    R = euler_to_matrix(20.0, 0.0, 0.0)
    mesh = _project_template(R, centre=(100.0, 150.0))
    confirmed = points_box(mesh[None])[0]
    boxes = np.array([confirmed, [250.0, 100.0, 330.0, 180.0], [260.0, 20.0, 300.0, 60.0], confirmed + 4])
    det_scores = np.array([0.95, pl.UNCONFIRMED_MIN_SCORE + 0.01, pl.UNCONFIRMED_MIN_SCORE - 0.01, 0.9])
    presence = np.array([0.9, 0.02, 0.02, 0.02])

    def detector(image):
        return Detections(boxes, det_scores)

    def landmarker(image, det):
        return LM(np.repeat(mesh[None], len(det), 0), presence)

    image = np.zeros((300, 400, 3), np.uint8)
    model = _Recorder(R)
    est = pl.HeadPoseEstimator(detector, landmarker, NetworkPose(model, mirror=False))
    heads = est(image)
    assert len(heads) == 2  # the confirmed face, and the sure but unconfirmed one on the right
    assert np.isfinite(heads.mesh[0]).all() and np.isnan(heads.mesh[1]).all()
    np.testing.assert_allclose(heads.boxes[1], boxes[1])
    assert heads.scores[1] == pytest.approx(det_scores[1])
    crops = model.seen[0]
    assert crops.shape[0] == 2
    # its crop is the detector-box recipe on that box, not a landmark crop
    want = NetworkPose(model).recipe.from_detection(boxes[1], image.shape)
    got = NetworkPose(model).crop_boxes(image.shape, Faces(heads.boxes, heads.scores, heads.boxes, mesh=heads.mesh))
    np.testing.assert_array_equal(got[1], want)
    # off: only the confirmed face; a mesh-only stage: never an unconfirmed face
    assert len(pl.HeadPoseEstimator(detector, landmarker, NetworkPose(_Recorder(R)), box_fallback=False)(image)) == 1
    assert len(pl.HeadPoseEstimator(detector, landmarker, GeometricPose())(image)) == 1
