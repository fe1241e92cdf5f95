"""Where each head is: the camera (calibration files, sizes), the template fit, the outputs.

The fit is checked on exact projections of the face template (no landmark noise), where
it must give back the translation to rounding (1e-6 m); the box fallback, which takes
the box for the template's orthographic extent, to 3 % of depth (measured 1.8 and 2.2 %:
the face's relief of +-50 mm enlarges its perspective image by about that at 1-2 m).
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from openheadpose.apps.interaction import InteractionConfig, find_interactions
from openheadpose.assets import face_template
from openheadpose.core.camera import Camera, read_calibration
from openheadpose.core.placement import BOX_TEMPLATE_RATIO, HEAD_SIZE_REL_SIGMA, fit_positions, rays_through
from openheadpose.core.rotation import Frame, change_frame, euler_to_matrix, look_at_rotation
from openheadpose.inference.placement import HeadPlacer
from openheadpose.inference.results import FrameResult, Heads

from conftest import needs_face_models

K = np.array([[900.0, 0.0, 652.0], [0.0, 905.0, 355.0], [0.0, 0.0, 1.0]])
DIST = np.array([-0.28, 0.09, 0.001, -0.0008, -0.012])  # a wide lens's barrel distortion
SIZE = (1280, 720)


def write_calibration(path, K=K, dist=DIST, size=SIZE):
    """What OpenCV's calibration sample writes, through cv2.FileStorage (YAML, XML or JSON by the suffix)."""
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", int(size[0]))
    fs.write("image_height", int(size[1]))
    fs.write("camera_matrix", K)
    fs.write("distortion_coefficients", dist.reshape(1, -1))
    fs.write("avg_reprojection_error", 0.31)
    fs.release()
    return path


def project(R_cam, t, K=K, dist=DIST):
    """The template's 468 points seen by the camera: ``(468, 3)`` as FaceMesh gives them (x, y pixels; z unused)."""
    X = face_template().points / 1000.0
    Y = X @ R_cam.T + t  # GL, metres
    Ycv = Y * np.array([1.0, -1.0, -1.0])
    uv, _ = cv2.projectPoints(Ycv, np.zeros(3), np.zeros(3), K, dist)
    return np.concatenate([uv.reshape(-1, 2), np.zeros((len(X), 1))], 1)


def heads_seen(R_cam, ts, K=K, dist=DIST, apparent=True):
    """Heads as the pipeline hands them to the placer: mesh, landmark boxes, apparent rotations."""
    meshes = np.stack([project(R, t, K, dist) for R, t in zip(R_cam, ts)])
    boxes = np.concatenate([meshes[:, :, :2].min(1), meshes[:, :, :2].max(1)], 1)
    # apparent: relative to the line of sight through the face's centre as the picture shows it
    # (its distorted points' mean: what a network reading the picture sees; inference.placement)
    rays = [rays_through(m[:, :2].mean(0), K) for m in meshes]
    R = np.stack([look_at_rotation(r).T @ Rc for Rc, r in zip(R_cam, rays)]) if apparent else np.asarray(R_cam)
    return Heads(boxes, np.ones(len(ts)), R, mesh=meshes)


@pytest.mark.parametrize("suffix", [".yaml", ".xml", ".json"])
def test_calibration_written_by_filestorage_is_read(tmp_path, suffix):
    cam = read_calibration(write_calibration(tmp_path / f"calib{suffix}"))
    assert cam.size == SIZE and cam.calibrated and cam.source == f"calib{suffix}"
    np.testing.assert_allclose(cam.matrix, K)
    np.testing.assert_allclose(cam.distortion, DIST)


def test_ros_camera_info_yaml_is_read(tmp_path):
    pytest.importorskip("yaml")
    p = tmp_path / "head_camera.yaml"
    p.write_text(
        "image_width: 640\nimage_height: 480\ncamera_name: head_camera\n"
        "camera_matrix:\n  rows: 3\n  cols: 3\n  data: [500.0, 0.0, 320.0, 0.0, 501.0, 240.0, 0.0, 0.0, 1.0]\n"
        "distortion_model: plumb_bob\n"
        "distortion_coefficients:\n  rows: 1\n  cols: 5\n  data: [-0.1, 0.01, 0.0, 0.0, 0.0]\n"
    )
    cam = read_calibration(p)
    assert cam.size == (640, 480) and cam.matrix[1, 1] == 501.0 and cam.distortion[0] == -0.1


def test_bad_calibration_files_say_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match="no such calibration file"):
        read_calibration(tmp_path / "nope.yaml")
    fs = cv2.FileStorage(str(tmp_path / "nosize.yaml"), cv2.FILE_STORAGE_WRITE)
    fs.write("camera_matrix", K)
    fs.release()
    with pytest.raises(ValueError, match="no image size"):
        read_calibration(tmp_path / "nosize.yaml")


def test_wrong_size_is_refused_and_same_aspect_is_scaled(tmp_path):
    cam = read_calibration(write_calibration(tmp_path / "c.yaml"))
    R = euler_to_matrix(np.array([25.0]), np.array([-10.0]), np.array([5.0]))
    heads = heads_seen(R, [np.array([0.15, -0.05, -0.9])])
    with pytest.raises(ValueError, match=r"calibration is for 1280x720 images, this one is 640x480"):
        HeadPlacer(cam)(heads, 640, 480)
    # half the resolution, same sensor: the same head, the matrix scaled
    K2, _ = cam.intrinsics(640, 360)
    half = heads_seen(R, [np.array([0.15, -0.05, -0.9])], K=K2)
    out = HeadPlacer(cam)(half, 640, 360)
    np.testing.assert_allclose(out.positions[0], [0.15, -0.05, -0.9], atol=1e-5)


@pytest.mark.parametrize("apparent", [True, False])
def test_known_translation_is_recovered_through_distortion(apparent):
    """Heads on and off the optical axis at 0.4-3.5 m, seen through barrel distortion."""
    rng = np.random.default_rng(3)
    ts = np.array([[0.0, 0.0, -0.4], [0.35, -0.2, -1.1], [-1.2, 0.5, -2.4], [1.6, 0.9, -3.5]])
    R = euler_to_matrix(rng.uniform(-50, 50, 4), rng.uniform(-25, 25, 4), rng.uniform(-20, 20, 4))
    cam = Camera(K, DIST, SIZE, source="test")
    placer = HeadPlacer(cam, rotations_in_camera_frame=not apparent, report_camera_frame=True)
    out = placer(heads_seen(R, ts, apparent=apparent), *SIZE)
    np.testing.assert_allclose(out.positions, ts, atol=1e-6)
    np.testing.assert_allclose(out.rotations, R, atol=1e-6)  # reported in the camera's frame
    np.testing.assert_allclose(out.transforms[:, :3, 3], ts, atol=1e-6)
    np.testing.assert_allclose(out.transforms[:, 3], np.tile([0, 0, 0, 1.0], (4, 1)))
    # sigma: the head-size prior along the ray (the fit's residuals are nil here)
    np.testing.assert_allclose(out.position_sigma, HEAD_SIZE_REL_SIGMA * np.abs(ts), rtol=1e-3, atol=1e-6)
    # without undistorting, the far-off-axis head lands elsewhere: the calibration matters
    plain = HeadPlacer(Camera(K, None, SIZE), rotations_in_camera_frame=not apparent)(heads_seen(R, ts, apparent=apparent), *SIZE)
    assert np.linalg.norm(plain.positions[3] - ts[3]) > 0.05


def test_opencv_axes_of_a_position():
    """Frame.GL positions and transforms in OpenCV's axes: x right, y down, z forward."""
    t = np.array([0.2, 0.1, -1.5])  # right of, above and in front of the camera
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = euler_to_matrix(30.0, 0.0, 0.0), t
    F = np.diag([1.0, -1.0, -1.0, 1.0])
    T_cv = F @ T @ F
    np.testing.assert_allclose(T_cv[:3, 3], [0.2, -0.1, 1.5])
    np.testing.assert_allclose(T_cv[:3, :3], change_frame(T[:3, :3], Frame.GL, Frame.OPENCV))


def test_fit_ignores_nan_points():
    R = euler_to_matrix(10.0, 5.0, 0.0)[None]
    t = np.array([0.1, 0.0, -1.0])
    m = project(R[0], t, dist=np.zeros(5))[None, :, :2].copy()
    m[0, :100] = np.nan
    got, _ = fit_positions(m, face_template().points, R, K)
    np.testing.assert_allclose(got[0], t, atol=1e-6)


def test_heads_without_landmarks_are_placed_from_their_boxes():
    R = euler_to_matrix(np.array([0.0, 30.0]), np.array([0.0, 10.0]), np.zeros(2))
    ts = np.array([[0.0, 0.0, -1.0], [-0.4, 0.1, -2.0]])
    h = heads_seen(R, ts, dist=np.zeros(5))
    boxed = Heads(h.boxes, h.scores, h.rotations, mesh=np.full_like(h.mesh, np.nan))
    out = HeadPlacer(Camera(K, None, SIZE))(boxed, *SIZE)
    # a detector's box is BOX_TEMPLATE_RATIO times the landmark extent given here
    assert np.all(np.abs(out.positions[:, 2] / BOX_TEMPLATE_RATIO / ts[:, 2] - 1) < 0.03), out.positions
    assert np.all(out.position_sigma[:, 2] > 1.5 * HEAD_SIZE_REL_SIGMA * np.abs(out.positions[:, 2]))  # a box says less than landmarks (10 % vs 6 %)
    unplaced = HeadPlacer(Camera(K, None, SIZE), from_boxes=False)(boxed, *SIZE)
    assert np.isnan(unplaced.positions).all()
    assert [r["position"] for r in unplaced.to_list()] == [None, None]


def test_outputs_carry_position_sigma_and_transform():
    R = euler_to_matrix(np.array([20.0]), np.array([0.0]), np.array([0.0]))
    out = HeadPlacer(Camera.from_fov(70.0))(heads_seen(R, [np.array([0.1, 0.0, -1.2])], K=Camera.from_fov(70.0).intrinsics(*SIZE)[0], dist=None), *SIZE)
    rec = FrameResult("x.jpg", 0, *SIZE, out).to_dict()
    (h,) = rec["heads"]
    assert h["position"] == pytest.approx([0.1, 0.0, -1.2], abs=1e-4)
    assert len(h["position_sigma"]) == 3 and np.shape(h["transform"]) == (4, 4)
    json.dumps(rec)  # strict JSON
    from openheadpose.cli.predict import CSV_HEADER, _csv_rows

    (row,) = _csv_rows(rec)
    assert dict(zip(CSV_HEADER, row))["z_m"] == pytest.approx(-1.2, abs=1e-4)
    # heads nobody placed: null, not missing
    assert Heads(out.boxes, out.scores, out.rotations).to_list()[0]["position"] is None


def test_assumed_camera_widens_sigma():
    R = euler_to_matrix(np.array([0.0]), np.array([0.0]), np.array([0.0]))
    Ka = Camera.assumed().intrinsics(*SIZE)[0]
    h = heads_seen(R, [np.array([0.0, 0.0, -1.0])], K=Ka, dist=None)
    known = HeadPlacer(Camera.from_fov(60.0))(h, *SIZE)
    guessed = HeadPlacer(Camera.assumed())(h, *SIZE)
    np.testing.assert_allclose(known.positions, guessed.positions)
    assert guessed.position_sigma[0, 2] > 1.5 * known.position_sigma[0, 2]


def test_interaction_uses_positions_and_reports_metres():
    """Two heads 1 m apart across the image, the right one 0.6 m further back, facing each
    other in 3D: mutual gaze; the pair's distance is the positions' distance."""
    pa, pb = np.array([-0.5, 0.0, -2.0]), np.array([0.5, 0.0, -2.6])
    ga, gb = (pb - pa) / np.linalg.norm(pb - pa), (pa - pb) / np.linalg.norm(pa - pb)

    def facing(g):  # a rotation whose facing direction R[:, 2] is g (no roll)
        yaw, pitch = -np.degrees(np.arcsin(g[0])), np.degrees(np.arctan2(g[1], g[2]))
        return euler_to_matrix(yaw, pitch, 0.0)

    Rc = np.stack([facing(ga), facing(gb)])
    h = heads_seen(Rc, [pa, pb], K=K, dist=None)
    h = HeadPlacer(Camera(K, None, SIZE))(h, *SIZE)
    inter = find_interactions(h, SIZE, InteractionConfig())
    p = inter.pairs[0]
    assert p.mutual and p.distance_m == pytest.approx(np.linalg.norm(pb - pa), abs=1e-4)
    assert 0 < p.distance_sigma_m < 0.2
    assert inter.config.depth.value == "position"
    # heads nobody placed: the size model, and no metres
    bare = find_interactions(Heads(h.boxes, h.scores, h.rotations), SIZE)
    assert bare.pairs[0].distance_m is None and bare.config.depth.value == "size"


@needs_face_models
def test_cli_camera_and_distance(media, tmp_path):
    from openheadpose.cli.predict import predict

    cal = write_calibration(tmp_path / "cam.yaml", K=np.array([[600.0, 0, 255.5], [0, 600, 255.5], [0, 0, 1]]), dist=np.zeros(5), size=(512, 512))
    out = tmp_path / "h.jsonl"
    r = CliRunner().invoke(predict, ["example:astronaut", "--camera", str(cal), "--json", str(out), "--save", str(tmp_path / "vis"), "--distance", "-q"])
    assert r.exit_code == 0, r.output
    (h,) = json.loads(out.read_text())["heads"]
    # astronaut: a face ~107 px tall at f = 600 px is ~0.6 m away (a 0.16 m face)
    assert -1.0 < h["position"][2] < -0.4 and h["position_sigma"][2] < 0.1 * abs(h["position"][2])
    wrong = write_calibration(tmp_path / "hd.yaml", size=(1280, 720))
    r = CliRunner().invoke(predict, ["example:astronaut", "--camera", str(wrong), "--json", "-", "-q"])
    assert r.exit_code == 2 and "calibration is for 1280x720 images, this one is 512x512" in (r.stderr or r.output)
    r = CliRunner().invoke(predict, ["example:astronaut", "--camera", str(cal), "--fov", "60", "-q"])
    assert r.exit_code == 2 and "leave --fov out" in (r.stderr or r.output)


def test_template_is_the_adult_mean_size():
    """The README's and core.placement's figures: the template's eye centres are 63.1 mm apart,
    within 0.5 % of the adult mean inter-pupillary distance, so it is taken at the mean size."""
    from openheadpose.core.placement import ADULT_IPD_MM

    L = face_template().landmarks68
    ipd = np.linalg.norm(L[36:42].mean(0) - L[42:48].mean(0))
    assert round(ipd, 1) == 63.1 and abs(ipd / ADULT_IPD_MM - 1) < 0.005
    assert round(HEAD_SIZE_REL_SIGMA, 3) == 0.060


@needs_face_models
def test_service_started_with_a_camera(tmp_path):
    """`headpose serve --camera`: the records place heads with it; a request cannot add --fov to it."""
    pytest.importorskip("fastapi")
    import time

    from fastapi.testclient import TestClient
    from skimage.data import astronaut

    from openheadpose.serve.app import create_app
    from openheadpose.serve.config import ServeConfig

    cal = write_calibration(tmp_path / "cam.yaml", K=np.array([[600.0, 0, 255.5], [0, 600, 255.5], [0, 0, 1]]), dist=np.zeros(5), size=(512, 512))
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(astronaut()[:, :, ::-1]))
    with TestClient(create_app(ServeConfig(camera=str(cal)))) as c:
        for _ in range(600):  # the models load in the background
            if c.get("/readyz").status_code == 200:
                break
            time.sleep(0.1)
        (h,) = c.post("/v1/predict", content=buf.tobytes()).json()["heads"]
        assert -1.0 < h["position"][2] < -0.4 and h["position_sigma"][2] < 0.1 * abs(h["position"][2])  # no assumed-focal sigma
        r = c.post("/v1/predict?fov=60", content=buf.tobytes())
        assert r.status_code == 422 and "leave --fov out" in r.text
        pairs = c.post("/v1/interact", content=buf.tobytes()).json()
        assert pairs["pairs"] == [] and pairs["heads"][0]["position"] == h["position"]


def test_inverse3_matches_lapack():
    """fit_positions' cofactor inverse (no OpenBLAS call per photo, issue 32) against numpy's."""
    from openheadpose.core.placement import inverse3

    rng = np.random.default_rng(5)
    M = rng.normal(size=(50, 3, 3))
    A = M @ np.swapaxes(M, 1, 2) + 0.1 * np.eye(3)  # the normal equations' matrices are symmetric positive definite
    assert np.allclose(inverse3(A), np.linalg.inv(A), rtol=1e-9, atol=1e-9)
    B = rng.normal(size=(50, 3, 3))  # and any invertible matrix
    assert np.allclose(inverse3(B) @ B, np.eye(3), atol=1e-8)
