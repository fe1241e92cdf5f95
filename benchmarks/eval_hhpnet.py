"""HHP-Net on AFLW2000-dev, per keypoint source: our synthetic-trained weights vs the official ones.

For every keypoint source -- the labelled AFLW ``pt2d`` points as a reference row
(eye centres 8/11, nose tip 15, ears 13/17 -- AFLW's ears are the lobes;
confidence 1 where labelled, hidden points absent), then the ``pose``,
``blazeface`` and ``facemesh`` sources of :mod:`openheadpose.keypoints` run on the
whole 450 x 450 image, keeping the head whose box overlaps the labelled face box
(the ``pt3d_68`` extent) most (IoU >= 0.2) -- it reports

* MAE yaw / pitch / roll / mean (:func:`openheadpose.metrics.pose_metrics`) and
  the number of faces found, for ``data/hhpnet-synth.onnx`` and for the official
  HHP-Net (``model_w300_biwi``, alpha 1, converted on the fly);
* calibration of sigma: the share of ``|error| <= sigma`` and ``<= 2 sigma`` per angle
  (Gaussian: 68.3 % / 95.4 %), and a reliability plot (``--plots``);
* whether sigma means something: mean sigma with an ear removed vs the same faces
  with both ears, and mean sigma by |yaw|.

Every source's keypoints go into the network as the source gives them
(``keypoints_to_input(points, conf)``), hidden points with their low confidence.
AFLW2000-dev is used for evaluation only: nothing here feeds back into training.

Usage::

    python benchmarks/eval_hhpnet.py --plots /tmp/hhpnet_reliability.png

writes ``benchmarks/results/hhpnet_aflw2000-dev.json`` (aggregates only).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OPENHEADPOSE_SHARED", ROOT.parent / "shared"))
OURS = ROOT / "src" / "openheadpose" / "data" / "hhpnet-synth.onnx"
AFLW_COCO = np.array([15, 11, 8, 17, 13])  # AFLW (1-based) of nose, left eye, right eye, left ear, right ear
ANGLES = ("yaw", "pitch", "roll")


def log(msg: str) -> None:
    print(msg, flush=True)


class Net:
    """An HHP-Net ONNX file run by ONNX Runtime on keypoints."""

    def __init__(self, path: Path, name: str):
        import onnxruntime as ort

        self.name = name
        self.sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def __call__(self, points: np.ndarray, conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from openheadpose.keypoint_input import keypoints_to_input

        if len(points) == 0:
            return np.zeros((0, 3)), np.zeros((0, 3))
        mu, lv = self.sess.run(["euler", "log_var"], {"input": keypoints_to_input(points, conf)})
        return mu.astype(np.float64), np.exp(lv.astype(np.float64) / 2.0)


def label_keypoints(samples) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    kps = np.stack([s.landmarks[AFLW_COCO - 1] for s in samples])
    conf = np.where(np.isnan(kps).any(-1), 0.0, 1.0)
    return np.nan_to_num(kps, nan=0.0), conf, np.ones(len(samples), bool)


def source_keypoints(name: str, samples, cache: Path | None, min_iou: float = 0.2):
    from openheadpose.detectors import box_iou
    from openheadpose.keypoints import KEYPOINT_SOURCES

    f = cache / f"aflw2000-dev_{name}.npz" if cache else None
    if f is not None and f.is_file():
        z = np.load(f)
        if len(z["found"]) == len(samples):
            return z["P"], z["C"], z["found"]
    src = KEYPOINT_SOURCES.create(name)
    P, C, found = np.zeros((len(samples), 5, 2)), np.zeros((len(samples), 5)), np.zeros(len(samples), bool)
    t0 = time.time()
    for i, s in enumerate(samples):
        kp = src(s.load_image())
        if len(kp):
            iou = box_iou(kp.boxes, s.box[None])[:, 0]
            j = int(np.argmax(iou))
            if iou[j] >= min_iou:
                P[i], C[i], found[i] = kp.points[j], kp.conf[j], True
    log(f"  {name}: found {found.sum()} of {len(samples)} faces ({time.time() - t0:.0f} s)")
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        np.savez(f, P=P, C=C, found=found)
    return P, C, found


def errors(mu: np.ndarray, true: np.ndarray) -> np.ndarray:
    from openheadpose.rotation import wrap_degrees

    return wrap_degrees(mu - true, 360.0)


def mae_row(mu: np.ndarray, true_euler: np.ndarray, R_true: np.ndarray) -> dict:
    from openheadpose.codecs import get_codec
    from openheadpose.metrics import pose_metrics

    m = pose_metrics(get_codec("heteroscedastic").decode({"euler": mu, "log_var": np.zeros_like(mu)}).rotations, R_true, true_euler)
    return {"yaw": round(m.mae_yaw, 3), "pitch": round(m.mae_pitch, 3), "roll": round(m.mae_roll, 3), "mean": round(m.mae, 3)}


def without_one_ear(points, conf, zero_points: bool):
    """The same faces with their better-scored ear removed (confidence 0; coordinates 0 for labels)."""
    p, c = points.copy(), conf.copy()
    ear = np.where(c[:, 3] >= c[:, 4], 3, 4)
    idx = np.arange(len(p))
    c[idx, ear] = 0.0
    if zero_points:
        p[idx, ear] = 0.0
    return p, c


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=SHARED)
    ap.add_argument("--ours", type=Path, default=OURS)
    ap.add_argument("--sources", nargs="+", default=["labels", "pose", "blazeface", "facemesh"])
    ap.add_argument("--plots", type=Path, default=None, help="reliability plot (.png), not committed")
    ap.add_argument("--cache", type=Path, default=None, help="cache the sources' keypoints here (re-runs are instant)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "hhpnet_aflw2000-dev.json")
    args = ap.parse_args(argv)

    from openheadpose.calibration import GAUSS_1SIGMA, GAUSS_2SIGMA, coverage, reliability
    from openheadpose.convert import CONVERTERS
    from openheadpose.datasets import AFLW2000

    reader = AFLW2000(args.shared / "data" / "aflw2000-dev")
    samples = list(reader)
    log(f"{reader.summary()}")
    true = np.stack([s.euler for s in samples])
    R_true = np.stack([s.rotation for s in samples])
    with tempfile.TemporaryDirectory() as tmp:
        official_path = CONVERTERS["hhpnet"](args.shared / "weights" / "hhpnet" / "model_w300_biwi", Path(tmp) / "hhpnet.onnx")
        nets = [Net(args.ours, "hhpnet-synth (ours)"), Net(official_path, "hhpnet official (model_w300_biwi)")]

    meta_path = args.ours.with_suffix(".json")
    alt = None
    if meta_path.is_file():
        cal = json.loads(meta_path.read_text()).get("calibration", {})
        if "k_synthetic" in cal:
            alt = np.asarray(cal["k_synthetic"]) / np.asarray(cal["scale"])  # sigma_synthetic / sigma_shipped
    results: dict = {}
    rel: dict = {}
    checks: dict = {}
    levels = np.linspace(0.05, 0.95, 19)
    for source in args.sources:
        log(f"source {source}")
        if source == "labels":
            P, C, found = label_keypoints(samples)
        else:
            P, C, found = source_keypoints(source, samples, args.cache)
        for net in nets:
            mu, sig = net(P[found], C[found])
            e = errors(mu, true[found])
            row = {"found": int(found.sum()), "of": len(samples), "mae": mae_row(mu, true[found], R_true[found])}
            row["within_1sigma"] = dict(zip(ANGLES, coverage(e, sig, 1.0).round(4).tolist()))
            row["within_2sigma"] = dict(zip(ANGLES, coverage(e, sig, 2.0).round(4).tolist()))
            if net is nets[0] and alt is not None:
                # informational: the synthetic-only calibration the training script also reports (not shipped)
                row["synthetic_calibration_within_1sigma"] = dict(zip(ANGLES, coverage(e, sig * alt, 1.0).round(4).tolist()))
                row["synthetic_calibration_within_2sigma"] = dict(zip(ANGLES, coverage(e, sig * alt, 2.0).round(4).tolist()))
            results.setdefault(net.name, {})[source] = row
            log(
                f"  {net.name:36s} n {found.sum():4d}  MAE yaw {row['mae']['yaw']:6.2f} pitch {row['mae']['pitch']:6.2f} "
                f"roll {row['mae']['roll']:6.2f} mean {row['mae']['mean']:6.2f}  "
                f"<=1s {[round(v, 3) for v in row['within_1sigma'].values()]} <=2s {[round(v, 3) for v in row['within_2sigma'].values()]}"
            )
            rel.setdefault(net.name, {})[source] = reliability(e, sig, levels)[1].round(4).tolist()
            if net is nets[0]:
                # sigma with an ear removed vs the same faces with both ears
                both = (C[found][:, 3] > 0.5) & (C[found][:, 4] > 0.5) if source != "labels" else (C[found][:, 3] > 0) & (C[found][:, 4] > 0)
                if both.any():
                    p2, c2 = without_one_ear(P[found][both], C[found][both], zero_points=source == "labels")
                    _, sig_one = net(p2, c2)
                    checks.setdefault("ear_removed", {})[source] = {
                        "faces": int(both.sum()),
                        "mean_sigma_both_ears": dict(zip(ANGLES, sig[both].mean(0).round(3).tolist())),
                        "mean_sigma_one_ear_removed": dict(zip(ANGLES, sig_one.mean(0).round(3).tolist())),
                    }
                ay = np.abs(true[found][:, 0])
                bins = {"|yaw|<30": ay < 30, "30-60": (ay >= 30) & (ay < 60), "60-99": ay >= 60}
                checks.setdefault("sigma_by_abs_yaw", {})[source] = {
                    k: {"n": int(m.sum()), "mean_sigma": dict(zip(ANGLES, sig[m].mean(0).round(3).tolist())), "mae": dict(zip(ANGLES, np.abs(e[m]).mean(0).round(3).tolist()))}
                    for k, m in bins.items()
                    if m.any()
                }
                # both-ears-visible labels vs faces where the labels miss an ear (an occluded ear)
                if source == "labels":
                    one = ~((C[found][:, 3] > 0) & (C[found][:, 4] > 0))
                    checks["labels_by_ear_visibility"] = {
                        "both_ears_labelled": {"n": int((~one).sum()), "mean_sigma": dict(zip(ANGLES, sig[~one].mean(0).round(3).tolist()))},
                        "an_ear_hidden": {"n": int(one.sum()), "mean_sigma": dict(zip(ANGLES, sig[one].mean(0).round(3).tolist()))},
                    }
    for k, v in checks.items():
        log(f"{k}: {json.dumps(v)}")

    if args.plots:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(len(nets), 3, figsize=(12, 4 * len(nets)), squeeze=False)
        for r, net in enumerate(nets):
            for a, angle in enumerate(ANGLES):
                ax = axes[r, a]
                ax.plot([0, 1], [0, 1], "k--", lw=1, label="ideal")
                for source, obs in rel[net.name].items():
                    ax.plot(levels, np.asarray(obs)[:, a], marker="o", ms=3, label=source)
                ax.axvline(GAUSS_1SIGMA, color="grey", lw=0.5)
                ax.axvline(GAUSS_2SIGMA, color="grey", lw=0.5)
                ax.set_title(f"{net.name}\n{angle}", fontsize=9)
                ax.set_xlabel("expected coverage (Gaussian, +-z sigma)")
                ax.set_ylabel("observed share of |error| inside")
                ax.set_xlim(0, 1)
                ax.set_ylim(0, 1)
                ax.legend(fontsize=7)
        fig.suptitle(f"HHP-Net sigma reliability on AFLW2000-dev ({len(samples)} faces)")
        fig.tight_layout()
        args.plots.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plots, dpi=110)
        log(f"wrote {args.plots}")

    out = {
        "command": "python benchmarks/eval_hhpnet.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "dataset": {"name": "aflw2000-dev", "images": len(samples), "filter": "all angles within +-99 deg"},
        "keypoints": {
            "labels": "AFLW pt2d: nose tip 15, eye centres 11 (person's left) / 8, ears 17 / 13 (lobes); hidden = absent",
            "sources": "openheadpose.keypoints sources on the whole image; the head with the largest IoU (>= 0.2) with the pt3d_68 box",
        },
        "models": {nets[0].name: str(args.ours.relative_to(ROOT)) if args.ours.is_relative_to(ROOT) else str(args.ours), nets[1].name: "../shared/weights/hhpnet/model_w300_biwi via openheadpose.convert"},
        "targets": {"within_1sigma": round(GAUSS_1SIGMA, 4), "within_2sigma": round(GAUSS_2SIGMA, 4)},
        "results": results,
        "sigma_checks": checks,
        "reliability": {"levels": levels.round(3).tolist(), "observed": rel},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
