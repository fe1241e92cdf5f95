"""Face profiling (``headpose synth``): fitter, renderer, writer.

Tolerances: the fitter's pose error is bounded at 2 deg (the issue's bar) on
clean or sub-pixel-noisy points, where the remaining error is the shape / pose
ambiguity of 17-68 points under a shape prior; renderer geometry within 1.5 px
(a dot's centroid after bilinear resampling of a 5 px disc).
"""

from __future__ import annotations

import numpy as np
import pytest

from openheadpose.datasets.base import PoseSample
from openheadpose.datasets.registry import open_dataset
from openheadpose.core.rotation import euler_to_matrix, geodesic_distance
from openheadpose.synth.fit import LANDMARK_SETS, FitResult, fit_landmarks, project
from openheadpose.synth.render import build_scene, rasterize, render, shift_at


def _points(bfm, layout, c, euler, scale=1.0, shift=(120.0, 120.0)):
    lay = LANDMARK_SETS[layout]
    m, B = bfm.rows([g for g in lay.groups if g])
    pts = np.full((len(lay.groups), 2), np.nan)
    pts[lay.modelled()] = project(m + B @ c, euler_to_matrix(*euler), scale, np.array(shift))[:, :2]
    return pts


def test_model_axes_match_the_packaged_template(bfm):
    from importlib import resources

    with resources.files("openheadpose.assets").joinpath("face_template.npz").open("rb") as f:
        tmpl = np.load(f)["landmarks68"]
    lm = bfm.vertices()[bfm.landmarks68]
    assert np.abs(lm - tmpl).max() < 10.0  # same axes and origin (mm); the template is the raw BFM mean
    assert lm[45, 0] > lm[36, 0]  # the person's left eye corner (68-point 45) on +x
    assert lm[30, 2] > lm[0, 2]  # the nose in front of the ears (+z towards the viewer)


@pytest.mark.parametrize("layout", ["aflw21", "68"])
def test_fitter_recovers_known_poses(bfm, layout):
    rng = np.random.default_rng(1)
    errs = []
    for _ in range(8):
        c = rng.standard_normal(bfm.num_coeffs)
        e = (rng.uniform(-80, 80), rng.uniform(-30, 30), rng.uniform(-30, 30))
        pts = _points(bfm, layout, c, e) + rng.normal(0, 0.3, (len(LANDMARK_SETS[layout].groups), 2))
        f = fit_landmarks(pts, bfm, layout)
        errs.append(float(geodesic_distance(f.rotation, euler_to_matrix(*e))))
    assert np.mean(errs) < 2.0, errs


def test_yaw_prior_pulls_towards_the_label(bfm):
    pts = _points(bfm, "aflw21", np.zeros(bfm.num_coeffs), (30.0, 0.0, 0.0))
    free = fit_landmarks(pts, bfm)
    pulled = fit_landmarks(pts, bfm, yaw_prior=50.0, yaw_sigma=1.0)
    assert abs(free.euler[0] - 30.0) < 1.0
    assert pulled.euler[0] > free.euler[0] + 5.0


def test_fitter_refuses_too_few_points(bfm):
    pts = np.full((21, 2), np.nan)
    pts[:4] = [[1, 2], [3, 4], [5, 6], [7, 9]]
    with pytest.raises(ValueError, match="usable landmarks"):
        fit_landmarks(pts, bfm)


def test_rasterize_nearest_surface_and_interpolation():
    uv = np.array([[0, 0], [9, 0], [0, 9], [0, 0], [9, 0], [0, 9.0]])
    depth = np.array([0, 0, 0, 1, 1, 1.0])  # the second triangle is nearer
    attr = np.array([[0.0], [9.0], [0.0], [100.0], [100.0], [100.0]])
    out, mask = rasterize(uv, depth, np.array([[0, 1, 2]]), (10, 10), attr)
    assert mask[0, 0] and mask[0, 9] and not mask[9, 9]
    assert out[4, 3, 0] == pytest.approx(3.0)  # x interpolated linearly
    out, _ = rasterize(uv, depth, np.array([[0, 1, 2], [3, 4, 5]]), (10, 10), attr)
    assert np.allclose(out[mask, 0], 100.0)


DOTS = (36, 39, 42, 45, 30, 48, 54, 19, 24, 33, 51, 57)


def test_rendered_face_lands_where_the_new_pose_puts_it(bfm):
    """Colour dots on landmark positions, turn the head, find the dots: they sit at the
    landmarks projected with the new pose, and fitting them recovers that pose within 2 deg."""
    import cv2

    R0, s, t = euler_to_matrix(10.0, 5.0, 0.0), 1.0, np.array([120.0, 120.0])
    c = np.zeros(bfm.num_coeffs)
    fit = FitResult(R0, np.array([10.0, 5.0, 0.0]), s, t, c, 0.0, 0.0, 68)
    lm = bfm.vertices()[bfm.landmarks68].astype(np.float64)
    img = np.full((240, 240, 3), 128, np.uint8)
    palette = [(r, g, b) for r in (0, 128, 255) for g in (0, 128, 255) for b in (0, 255)]  # >= 127 apart, none gray
    colours = dict(zip(DOTS, palette))
    uv0 = project(lm, R0, s, t)
    for k in DOTS:
        cv2.circle(img, (int(round(uv0[k, 0])), int(round(uv0[k, 1]))), 2, colours[k], -1)
    scene = build_scene(img, fit, bfm)
    target = (35.0, 0.0, 5.0)
    out, _ = render(scene, euler_to_matrix(*target))
    uv1 = project(lm, euler_to_matrix(*target), s, shift_at(scene, euler_to_matrix(*target)))
    found = np.full((68, 2), np.nan)
    for k, col in colours.items():
        near = np.all(np.abs(out.astype(int) - np.array(col)) < 20, -1)
        ys, xs = np.nonzero(near)
        if len(xs) >= 3:
            found[k] = [xs.mean(), ys.mean()]
    seen = np.all(np.isfinite(found), 1)
    assert seen.sum() >= 10
    assert np.nanmax(np.linalg.norm(found[seen] - uv1[seen, :2], axis=1)) < 1.5
    refit = fit_landmarks(found, bfm, "68")
    assert float(geodesic_distance(refit.rotation, euler_to_matrix(*target))) < 2.0


def test_render_at_own_pose_is_the_photo(bfm):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (120, 120, 3), np.uint8)
    fit = fit_landmarks(_points(bfm, "aflw21", np.zeros(bfm.num_coeffs), (20, 0, 0), 0.5, (60, 60)), bfm)
    out, holes = render(build_scene(img, fit, bfm), fit.rotation)
    assert not holes.any()
    assert np.abs(out.astype(int) - img).max() <= 1


def _fake_source(tmp_path, bfm, n=3):
    import cv2

    rng = np.random.default_rng(3)
    samples = []
    for i in range(n):
        e = (rng.uniform(-60, 60), rng.uniform(-15, 15), 0.0)
        pts = _points(bfm, "aflw21", rng.standard_normal(bfm.num_coeffs), e, 0.5, (60, 60))
        p = tmp_path / f"face{i}.png"
        cv2.imwrite(str(p), rng.integers(0, 255, (120, 120, 3), np.uint8))
        samples.append(PoseSample(name=f"src/face{i}.png", rotation=None, euler=np.array([e[0], np.nan, np.nan]), box=np.array([0, 0, 120, 120.0]),
                                  landmarks=pts, image_path=p))
    return samples


def test_synthesize_writes_300wlp_readable_labels_and_resumes(bfm, tmp_path):
    from openheadpose.synth.build import SynthConfig, synthesize_one

    cfg = SynthConfig(source="-", out=str(tmp_path / "out"), views=2, val_fraction=0.0, bfm=None)
    out = tmp_path / "out"
    samples = _fake_source(tmp_path, bfm)
    rows = [synthesize_one(s, cfg, out) for s in samples]
    assert all(r["status"] == "ok" for r in rows), rows
    ds = open_dataset(f"300wlp:{out / 'train'}")
    got = list(ds)
    assert len(got) == 3 * 3
    by = {g.name: g for g in got}
    for r, s in zip(rows, samples):
        v0 = by[f"train/src__face{samples.index(s)}_0.jpg"]
        assert v0.euler[0] == pytest.approx(r["yaw"], abs=1e-3)
        # view 0's 68 landmarks: the fitted model's, so refitting them gives its pose back
        refit = fit_landmarks(v0.landmarks, bfm, "68")
        assert float(geodesic_distance(refit.rotation, v0.rotation)) < 1.0
        for k in (1, 2):
            vk = by[f"train/src__face{samples.index(s)}_{k}.jpg"]
            assert abs(vk.euler[0]) >= abs(v0.euler[0]) - 1e-6  # turned further the way it faces
            assert abs(vk.euler[0]) <= 90.0 + 1e-6
    # same seed -> same bytes; finished views are not rewritten
    before = {p.name: p.stat().st_mtime_ns for p in (out / "train").iterdir()}
    synthesize_one(samples[0], cfg, out)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "train").iterdir()} == before
    again = tmp_path / "again"
    synthesize_one(samples[0], SynthConfig(source="-", out=str(again), views=2, val_fraction=0.0), again)
    import scipy.io

    for p in (again / "train").iterdir():
        if p.suffix == ".jpg":
            assert p.read_bytes() == (out / "train" / p.name).read_bytes()
        else:  # the .mat header carries a timestamp: compare the contents
            a, b = scipy.io.loadmat(p), scipy.io.loadmat(out / "train" / p.name)
            for key in ("Pose_Para", "pt2d", "pt3d_68", "Shape_Para", "Exp_Para"):
                assert np.array_equal(a[key], b[key])


def test_bad_source_is_reported_not_fatal(bfm, tmp_path):
    from openheadpose.synth.build import SynthConfig, synthesize_one

    s = _fake_source(tmp_path, bfm, 1)[0]
    (tmp_path / "face0.png").write_bytes(b"not an image")
    r = synthesize_one(s, SynthConfig(source="-", out=str(tmp_path / "o"), views=1), tmp_path / "o")
    assert r["status"].startswith("failed") and "face0.png" in r["status"]


def test_synth_cli_on_aflw_yaw(shared, bfm, tmp_path):
    from click.testing import CliRunner

    from openheadpose.cli import cli

    out = tmp_path / "synth"
    args = ["synth", f"aflw-yaw:{shared / 'data' / 'aflw-yaw'}", str(out), "--views", "1", "--limit", "6", "-q", "--val-fraction", "0"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "fitted yaw vs label" in res.output
    n = len(list((out / "train").glob("*.mat")))
    assert n >= 8  # 6 faces x 2 images, a few may be rejected for a poor fit
    res = CliRunner().invoke(cli, args)  # resume: nothing left to do, same counts
    assert res.exit_code == 0 and len(list((out / "train").glob("*.mat"))) == n


def test_tilt_prior_settles_the_profile_ambiguity(bfm):
    """An upright profile: pitch and roll are nearly interchangeable; the tilt prior keeps both small."""
    pts = _points(bfm, "aflw21", np.zeros(bfm.num_coeffs), (85.0, 0.0, 0.0))
    f = fit_landmarks(pts, bfm, yaw_prior=85.0, tilt_sigma=20.0)
    assert abs(f.euler[1]) < 5.0 and abs(f.euler[2]) < 5.0
    assert float(geodesic_distance(f.rotation, euler_to_matrix(85.0, 0.0, 0.0))) < 2.0


def test_implausible_fit_is_rejected(bfm, tmp_path):
    from openheadpose.synth.build import SynthConfig, synthesize_one

    s = _fake_source(tmp_path, bfm, 1)[0]
    s.landmarks[:] = s.landmarks * 1e-4 + 60.0  # a face squeezed into a fraction of a pixel
    r = synthesize_one(s, SynthConfig(source="-", out=str(tmp_path / "o"), views=1), tmp_path / "o")
    assert r["status"].startswith("rejected: implausible"), r


def test_synth_from_unlabelled_photos(media, bfm, tmp_path):
    """photos: our own detector + FaceMesh give the landmarks; the fit starts without a label."""
    from openheadpose.synth.build import SynthConfig, run

    out = tmp_path / "ph"
    summary = run(SynthConfig(source=f"photos:{media / 'group-t1.jpg'}", out=str(out), views=1, val_fraction=0.0), progress=False)
    assert summary["ok"] == 6, summary  # the six people; the detector's false positives are dropped
    got = list(open_dataset(f"300wlp:{out / 'train'}"))
    assert len(got) == 12 and all(np.isfinite(g.euler).all() for g in got)


def test_failed_source_leaves_no_files(bfm, tmp_path, monkeypatch):
    import openheadpose.synth.render as render_mod
    from openheadpose.synth.build import SynthConfig, synthesize_one

    s = _fake_source(tmp_path, bfm, 1)[0]

    def broken(*a, **k):
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(render_mod, "render", broken)  # view 0 (the photo) is written, view 1 fails
    r = synthesize_one(s, SynthConfig(source="-", out=str(tmp_path / "o"), views=1, val_fraction=0.0), tmp_path / "o")
    assert r["status"] == "failed: renderer broke"
    assert not any((tmp_path / "o").rglob("*.*"))


def _aflw_folder(root, bfm, eulers, with68):
    """An aflw-yaw folder (roi = the whole 120 px picture, so crop pixels = photo pixels) whose faces
    have AFLW's 21 points and, where ``with68``, a landmarks68.csv row of the same face."""
    import cv2

    rng = np.random.default_rng(5)
    (root / "images").mkdir(parents=True)
    head = "image,yaw_deg,roi_x1,roi_y1,roi_x2,roi_y2," + ",".join(f"x{i},y{i}" for i in range(1, 22))
    head68 = "image,residual_px," + ",".join(f"x{i},y{i},v{i}" for i in range(1, 69))
    rows, rows68 = [head], [head68]
    fmt = lambda p: "," if np.isnan(p).any() else f"{p[0]:.3f},{p[1]:.3f}"
    for i, (e, w) in enumerate(zip(eulers, with68)):
        c = rng.standard_normal(bfm.num_coeffs)
        p21 = _points(bfm, "aflw21", c, e, 0.5, (60, 60))  # roi 0..120 of a 120 px crop: crop u = photo x
        p68 = _points(bfm, "68", c, e, 0.5, (60, 60))
        cv2.imwrite(str(root / "images" / f"f{i}.jpg"), rng.integers(0, 255, (120, 120, 3), np.uint8))
        rows.append(f"f{i}.jpg,{e[0]},0,0,120,120," + ",".join(fmt(p) for p in p21))
        if w:
            rows68.append(f"f{i}.jpg,1.0," + ",".join(f"{fmt(p)},1" for p in p68))
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    (root / "landmarks68.csv").write_text("\n".join(rows68) + "\n")


def test_choose_points_prefers_68_where_present(bfm):
    from openheadpose.synth.build import choose_points

    p21, p68 = np.zeros((21, 2)), np.ones((68, 2))
    both = PoseSample(name="a", rotation=None, euler=np.full(3, np.nan), box=np.zeros(4), landmarks=p21, landmarks68=p68)
    only21 = PoseSample(name="b", rotation=None, euler=np.full(3, np.nan), box=np.zeros(4), landmarks=p21)
    assert choose_points(both)[1] == "68" and choose_points(both, "68")[0] is p68
    assert choose_points(both, "21") == (p21, "aflw21")
    assert choose_points(only21) == (p21, "aflw21")
    with pytest.raises(ValueError, match="no 68-point landmarks"):
        choose_points(only21, "68")
    with pytest.raises(ValueError, match="expected one of auto, 21, 68"):
        choose_points(both, "98")


def test_synth_fits_the_68_points_and_records_the_layout(bfm, tmp_path):
    """aflw-yaw folder -> run(): faces with a landmarks68.csv row are fitted to those 68 points (layout 68,
    68 points used), the others to AFLW's 21; an older fits.csv (no layout column) is resumed and rewritten."""
    import csv

    from openheadpose.synth.build import FITS_COLUMNS, SynthConfig, run

    src = tmp_path / "aflw"
    eulers = [(40.0, 5.0, 0.0), (-25.0, -5.0, 3.0), (10.0, 0.0, 0.0)]
    _aflw_folder(src, bfm, eulers, [True, False, True])
    out = tmp_path / "out"
    out.mkdir()
    old = ["source", "split", "status", "label_yaw", "yaw", "pitch", "roll", "rms_px", "rms_mm", "points", "views"]
    (out / "fits.csv").write_text(",".join(old) + "\nimages/f2.jpg,train,rejected: by an older run,10,,,,,,,0\n")
    cfg = SynthConfig(source=f"aflw-yaw:{src}", out=str(out), views=0, val_fraction=0.0)
    summary = run(cfg, progress=False)
    assert summary["layouts"] == {"68": 1, "aflw21": 1}, summary
    with open(out / "fits.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = {r["source"]: r for r in reader}
        assert reader.fieldnames == FITS_COLUMNS
    assert rows["images/f0.jpg"]["layout"] == "68" and int(rows["images/f0.jpg"]["points"]) == 68
    assert rows["images/f1.jpg"]["layout"] == "aflw21" and int(rows["images/f1.jpg"]["points"]) == 19  # 21 minus the ears
    assert rows["images/f2.jpg"]["status"] == "rejected: by an older run" and rows["images/f2.jpg"]["layout"] == ""
    for name, e in (("images/f0.jpg", eulers[0]), ("images/f1.jpg", eulers[1])):
        assert abs(float(rows[name]["yaw"]) - e[0]) < 2.0 and abs(float(rows[name]["pitch"]) - e[1]) < 3.0  # clean points
    # --points 21 on the same folder: AFLW's points for every face
    again = run(SynthConfig(source=f"aflw-yaw:{src}", out=str(tmp_path / "o21"), views=0, val_fraction=0.0, points="21"), progress=False)
    assert again["layouts"] == {"aflw21": 3}
    # --points 68: the face without 68 points is failed and named
    only = run(SynthConfig(source=f"aflw-yaw:{src}", out=str(tmp_path / "o68"), views=0, val_fraction=0.0, points="68"), progress=False)
    assert (only["ok"], only["failed"], only["layouts"]) == (2, 1, {"68": 2})


def test_fitted_photos_are_view_0_of_faces_fitted_to_68_points(bfm, tmp_path):
    """The selection set A (real photos with their fitted pose): only view 0, only layout 68, only the split asked
    for, each labelled with the pose fits.csv records for its source."""
    import csv

    from openheadpose.synth.build import SynthConfig, fitted_photos, run

    src = tmp_path / "aflw"
    _aflw_folder(src, bfm, [(40.0, 5.0, 0.0), (-25.0, -5.0, 3.0), (10.0, 0.0, 0.0)], [True, False, True])
    out = tmp_path / "out"
    run(SynthConfig(source=f"aflw-yaw:{src}", out=str(out), views=1, val_fraction=1.0), progress=False)
    with open(out / "fits.csv", newline="") as f:
        rows = {r["source"]: r for r in csv.DictReader(f)}
    photos = fitted_photos(out, "val")
    assert sorted(s.name for s in photos) == ["val/images__f0_0.jpg", "val/images__f2_0.jpg"]  # f1 has only AFLW's 21 points
    for s in photos:
        r = rows["images/" + s.name.split("__")[1].replace("_0.jpg", ".jpg")]
        assert r["layout"] == "68"
        np.testing.assert_allclose(s.euler, [float(r[a]) for a in ("yaw", "pitch", "roll")], atol=2e-3)  # fits.csv rounds to 1e-3
    assert fitted_photos(out, "train") == []
    assert len(fitted_photos(out, "val", layouts=("68", "aflw21"))) == 3
