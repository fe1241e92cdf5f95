"""Why the default network's pitch is shrunk, on held-out photos whose labels are not AFLW2000's.

Issue 28: on AFLW2000 a least-squares line of predicted on true pitch has slope 0.74. This
measures the same on set A (``benchmarks/README.md``, "The selection rule": view 0 of the
68-point sets' ``val`` splits, labelled with their 68-point fitted pose; faces no network of ours
trained on), against two labellers: our 68-point fit (the training labeller) and a fit to AFLW's
21 points without the yaw prior (other points, other annotators: ``synth.build.fit_aflw21_unprimed``).
It separates the causes the issue names:

* **regression to the mean vs label noise:** the slope of predicted on label is pulled below 1 by
  label noise alone (attenuation, ``var(true) / var(label)``), while the slope of label on
  predicted is 1 for an unbiased conditional mean. Both are reported, with the labels' noise sd
  from triple collocation (the 68-point fit, the 21-point fit, the network).
* **the training labels' range:** the spread of the fitted pitch of the held-out photos (the same
  sources as training, split by a hash of the name) and of the rendered views (fitted pitch plus
  N(0, 6 deg) clipped at 20: ``synth.build.plan_views``).
* **the 66-bin expectation near its edges:** the share of the bins' probability beyond +-60 deg.
* **a per-angle monotone map:** isotonic regression of label on prediction, cross-fitted over two
  halves of set A (a hash of the name), scored out of fold against both labellers with a paired
  bootstrap interval. The map is a candidate only if it holds up there (see the README's
  declaration); AFLW2000 takes no part.

Per-face arrays (labels included) go to ``--cache`` outside the repository; the JSON holds only
aggregates::

    python benchmarks/pitch_study.py --synth /work/synth/68/aflw-yaw --real ../shared/data/aflw-yaw \
        --synth /work/synth/68/aflw-extra --real ../shared/data/aflw-extra --cache /work/runs/pitch_study.npz
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import run_header, write_result  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "pitch_study.json"
ANGLES = ("yaw", "pitch", "roll")


def collect(args) -> dict:
    """Per face of set A: the network's plain and two-read angles, the bins' mass beyond +-60,
    our 68-point fit, the 21-point fit, the geometric stage, AFLW's yaw, and the name."""
    import csv

    from tqdm import tqdm

    from openheadpose.core.geometry import box_iou
    from openheadpose.core.rotation import matrix_to_euler
    from openheadpose.datasets import AFLWYaw
    from openheadpose.inference.pipeline import HeadPoseEstimator
    from openheadpose.inference.pose_stages import GeometricPose, NetworkPose
    from openheadpose.synth.bfm import load_bfm
    from openheadpose.synth.build import fit_aflw21_unprimed, fitted_photos, view_stem

    stage = NetworkPose(args.name, mirror=False)
    est = HeadPoseEstimator(pose=stage)
    geo = GeometricPose()
    bfm = load_bfm(args.bfm)
    codec, model = stage.model.codec, stage.model
    centres = codec.start + codec.width * (np.arange(codec.num_bins) + 0.5)
    rows: dict[str, list] = {k: [] for k in ("name", "plain", "both", "edge_mass", "fit68", "fit21", "geometric", "aflw_yaw")}
    for synth, real in zip(args.synth, args.real):
        photos = fitted_photos(synth, "val")
        with open(synth / "fits.csv", newline="") as fh:
            src = {f"val/{view_stem(r['source'])}_0.jpg": r for r in csv.DictReader(fh) if r["split"] == "val"}
        samples = {s.name: s for s in AFLWYaw(real)}
        for p in tqdm(photos, desc=synth.name, unit="img", mininterval=5):
            img = p.load_image()
            faces = est.find_faces(img)
            if not len(faces):
                continue
            iou = box_iou(faces.boxes, p.box[None])[:, 0]
            j = int(np.argmax(iou))
            if iou[j] < 0.3:
                continue
            face = faces[[j]]
            plain = matrix_to_euler(stage(img, face, view="plain").rotations).stack()[0]
            both = matrix_to_euler(stage(img, face, view="both").rotations).stack()[0]
            crop = stage.recipe(img, stage.crop_boxes(img.shape, face)[0], model.input_size)[None]
            out = model.raw(crop)
            prob = [np.exp(out[k][0] - out[k][0].max()) for k in codec.outputs]
            edge = [float((q / q.sum())[np.abs(centres) > 60].sum()) for q in prob]
            has_mesh = face.mesh is not None and bool(np.isfinite(face.mesh).all())
            g = matrix_to_euler(geo(img, face).rotations).stack()[0] if has_mesh else np.full(3, np.nan)
            s = samples[src[p.name]["source"]]
            rows["name"].append(p.name)
            rows["plain"].append(plain)
            rows["both"].append(both)
            rows["edge_mass"].append(edge if len(edge) == 3 else [np.nan] * 3)
            rows["fit68"].append(np.asarray(p.euler, np.float64))
            rows["fit21"].append(fit_aflw21_unprimed(s.landmarks, bfm))
            rows["geometric"].append(g)
            rows["aflw_yaw"].append(float(src[p.name]["label_yaw"]))
    return {k: np.array(v) for k, v in rows.items()}


def _fold(names) -> np.ndarray:
    return np.array([hashlib.sha1(n.encode()).digest()[0] % 2 for n in names])


def slopes(pred: np.ndarray, label: np.ndarray) -> dict:
    m = np.isfinite(pred) & np.isfinite(label)
    x, y = label[m], pred[m]
    c = np.cov(x, y)
    return {"n": int(m.sum()), "pred_on_label": round(float(c[0, 1] / c[0, 0]), 3), "label_on_pred": round(float(c[0, 1] / c[1, 1]), 3),
            "sd_label": round(float(np.sqrt(c[0, 0])), 2), "sd_pred": round(float(np.sqrt(c[1, 1])), 2)}


def noise_sd(a, b, c) -> float:
    """Triple collocation: the noise sd of labeller ``a`` given two others with independent errors."""
    m = np.isfinite(a) & np.isfinite(b) & np.isfinite(c)
    v = np.mean((a[m] - b[m] - np.mean(a[m] - b[m])) * (a[m] - c[m] - np.mean(a[m] - c[m])))
    return round(float(np.sqrt(max(v, 0.0))), 2)


def fit_map(pred: np.ndarray, label: np.ndarray, knots: int = 9) -> tuple[list[float], list[float]]:
    """A monotone map ``pred -> label``: isotonic regression, read at ``knots`` quantiles of ``pred``."""
    from scipy.optimize import isotonic_regression

    m = np.isfinite(pred) & np.isfinite(label)
    o = np.argsort(pred[m])
    x, y = pred[m][o], isotonic_regression(label[m][o]).x
    q = np.quantile(x, np.linspace(0.02, 0.98, knots))
    return [round(float(v), 3) for v in q], [round(float(v), 3) for v in np.interp(q, x, y)]


def apply_map(x: np.ndarray, knots: tuple[list[float], list[float]]) -> np.ndarray:
    """Piecewise linear through the knots; beyond them, the end knots' offset (slope 1)."""
    kx, ky = (np.asarray(v, np.float64) for v in knots)
    y = np.interp(x, kx, ky)
    return np.where(x < kx[0], ky[0] + x - kx[0], np.where(x > kx[-1], ky[-1] + x - kx[-1], y))


def paired(a: np.ndarray, b: np.ndarray, seed: int = 0, n: int = 2000) -> dict:
    """Mean of ``a - b`` (absolute errors) with a bootstrap 95 % interval."""
    m = np.isfinite(a) & np.isfinite(b)
    d = a[m] - b[m]
    rng = np.random.default_rng(seed)
    boot = d[rng.integers(0, len(d), (n, len(d)))].mean(1)
    return {"n": int(m.sum()), "mean": round(float(d.mean()), 3), "ci95": [round(float(v), 3) for v in np.quantile(boot, [0.025, 0.975])]}


def analyse(d: dict, read: str) -> dict:
    pred = d[read]
    f68, f21, geo, ay = d["fit68"], d["fit21"], d["geometric"], d["aflw_yaw"]
    out = {"faces": len(pred)}
    for j, a in enumerate(ANGLES):
        labels = {"68-point fit": f68[:, j], "21-point fit": f21[:, j], **({"AFLW yaw": ay} if j == 0 else {})}
        out[a] = {
            "slope": {k: slopes(pred[:, j], v) for k, v in labels.items()},
            "mean_signed_error": {k: round(float(np.nanmean(pred[:, j] - v)), 3) for k, v in labels.items()},
            "mae": {k: round(float(np.nanmean(np.abs(pred[:, j] - v))), 3) for k, v in labels.items()},
            "label_noise_sd": {"68-point fit": noise_sd(f68[:, j], f21[:, j], geo[:, j]), "21-point fit": noise_sd(f21[:, j], f68[:, j], geo[:, j]),
                               "network": noise_sd(pred[:, j], f21[:, j], geo[:, j])},
        }
        # cross-fitted monotone map, fitted on one half against our 68-point fit, scored on the other half
        fold = _fold(d["name"])
        mapped = np.full(len(pred), np.nan)
        for k in (0, 1):
            knots = fit_map(pred[fold != k, j], f68[fold != k, j])
            mapped[fold == k] = apply_map(pred[fold == k, j], knots)
        out[a]["map_out_of_fold"] = {
            k: {"mae_raw": round(float(np.nanmean(np.abs(pred[:, j] - v))), 3), "mae_mapped": round(float(np.nanmean(np.abs(mapped - v))), 3),
                "mapped_minus_raw": paired(np.abs(mapped - v), np.abs(pred[:, j] - v))}
            for k, v in labels.items()
        }
        out[a]["map_all_faces"] = dict(zip(("x", "y"), fit_map(pred[:, j], f68[:, j])))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", default="hopenet-synth")
    ap.add_argument("--synth", type=Path, action="append", required=True)
    ap.add_argument("--real", type=Path, action="append", required=True)
    ap.add_argument("--bfm", default=None)
    ap.add_argument("--cache", type=Path, required=True, help="per-face arrays (labels included): outside the repository")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    started = _dt.datetime.now(_dt.timezone.utc)
    if args.cache.is_file():
        z = np.load(args.cache, allow_pickle=False)
        d = {k: z[k] for k in z.files}
    else:
        d = collect(args)
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.cache, **d)
    f68 = d["fit68"]
    doc = {
        **run_header("pitch_study", 1, started),
        "set": "A: view 0 of the 68-point sets' val splits (68-point layout), end to end through the default pipeline",
        "training_label_range": {
            "held_out_fitted_pitch_sd": round(float(np.std(f68[:, 1])), 2),
            "held_out_fitted_pitch_percentiles_5_50_95": [round(float(v), 1) for v in np.percentile(f68[:, 1], [5, 50, 95])],
            "rendered_views": "fitted pitch + N(0, 6) clipped at +-20 (synth.build.plan_views)",
        },
        "bins_mass_beyond_60deg_median": dict(zip(ANGLES, [round(float(v), 4) for v in np.nanmedian(d["edge_mass"], 0)])),
        "plain": analyse(d, "plain"),
        "both": analyse(d, "both"),
    }
    write_result(args.out, doc)
    for read in ("plain", "both"):
        p = doc[read]["pitch"]
        print(read, "pitch slope", p["slope"], "\n  map", p["map_out_of_fold"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
