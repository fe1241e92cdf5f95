"""HHP-Net on AFLW2000-dev, per keypoint source: our synthetic-trained weights vs the official ones.

For every keypoint source -- the labelled AFLW ``pt2d`` points as a reference row
(eye centres 8/11, nose tip 15, ears 13/17 -- AFLW's ears are the lobes;
confidence 1 where labelled, hidden points absent), then the ``pose``,
``blazeface`` and ``facemesh`` sources of :mod:`openheadpose.inference.keypoint_sources` run on the
whole 450 x 450 image, keeping the head whose box overlaps the labelled face box
(the ``pt3d_68`` extent) most (IoU >= 0.2) -- it reports

* MAE yaw / pitch / roll / mean and the number of faces found, for
  ``data/hhpnet-synth.onnx`` and for the official HHP-Net (``model_w300_biwi``,
  alpha 1, converted on the fly);
* calibration of sigma: the share of ``|error| <= sigma`` and ``<= 2 sigma`` per angle
  (Gaussian: 68.3 % / 95.4 %) -- ours with its per-source factors (what
  ``headpose predict --keypoints SOURCE`` and ``headpose evaluate`` give) and with the
  single factor baked into the file (its sigma for an unknown source; the first
  calibration) -- and a reliability plot (``--plots``);
* whether sigma means something: mean sigma with an ear removed vs the same faces
  with both ears, and mean sigma by |yaw|.

The keypoints are collected and scored by :func:`openheadpose.evaluation.evaluate.collect_keypoints`
and :func:`openheadpose.evaluation.evaluate.score_keypoints`, the code behind
``headpose evaluate --model hhpnet --keypoints SOURCE``. Every source's keypoints go
into the network as the source gives them, hidden points with their low confidence.
AFLW2000-dev is used for evaluation only: nothing here feeds back into training or
calibration (``tools/train_hhpnet_synth.py calibrate`` fits on aflw-yaw).

Usage::

    python benchmarks/eval_hhpnet.py --plots docs/figures/hhpnet_reliability.png

writes ``benchmarks/results/hhpnet_aflw2000-dev.json`` (aggregates only).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package
from benchmarks.common import write_result  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OPENHEADPOSE_SHARED", ROOT.parent / "shared"))
OURS = ROOT / "src" / "openheadpose" / "assets" / "hhpnet-synth.onnx"
ANGLES = ("yaw", "pitch", "roll")
OURS_NAME, OFFICIAL_NAME = "hhpnet-synth (ours)", "hhpnet official (model_w300_biwi)"


def log(msg: str) -> None:
    print(msg, flush=True)


def keypoints(reader, source: str, cache: Path | None):
    """The source's keypoints on every face (:func:`~openheadpose.evaluation.evaluate.collect_keypoints`), cached in ``cache``."""
    from openheadpose.evaluation.evaluate import KeypointSet, collect_keypoints

    f = cache / f"aflw2000-dev_{source}_v2.npz" if cache and source != "labels" else None
    if f is not None and f.is_file():
        z = np.load(f)
        samples = list(reader)
        if [s.name for s in samples] == z["names"].tolist():
            return KeypointSet(source, samples, z["P"], z["C"], z["B"], z["found"], reader.n_filtered, list(reader.failures))
    kps = collect_keypoints(reader, source, progress=False, name="aflw2000-dev")
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        np.savez(f, P=kps.points, C=kps.conf, B=kps.boxes, found=kps.found, names=np.array(kps.names))
    return kps


def row(res) -> dict:
    d = res.to_dict()
    out = {"found": d["n_detected"], "of": d["n_images"], "mae": {k: round(v, 3) for k, v in d["mae"].items()}}
    cov = d.get("sigma_coverage")
    if cov:
        out["within_1sigma"] = cov["within_1sigma"]
        out["within_2sigma"] = cov["within_2sigma"]
        out["mean_sigma"] = cov["mean_sigma"]
    return out


def without_one_ear(points, conf, zero_points: bool):
    """The same faces with their better-scored ear removed (confidence 0; coordinates 0 for labels)."""
    p, c = points.copy(), conf.copy()
    ear = np.where(c[:, 3] >= c[:, 4], 3, 4)
    idx = np.arange(len(p))
    c[idx, ear] = 0.0
    if zero_points:
        p[idx, ear] = 0.0
    return p, c


def reliability_figure(rel: dict, levels: np.ndarray, n_faces: int, path: Path) -> None:
    """Expected vs observed coverage: one row per model variant, one column per angle, a line per source."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from openheadpose.core.calibration import GAUSS_1SIGMA, GAUSS_2SIGMA

    rows = list(rel)
    fig, axes = plt.subplots(len(rows), 3, figsize=(12, 3.6 * len(rows)), squeeze=False)
    for r, variant in enumerate(rows):
        for a, angle in enumerate(ANGLES):
            ax = axes[r, a]
            ax.plot([0, 1], [0, 1], "k--", lw=1, label="ideal")
            for source, obs in rel[variant].items():
                ax.plot(levels, np.asarray(obs)[:, a], marker="o", ms=3, label=source)
            for g in (GAUSS_1SIGMA, GAUSS_2SIGMA):
                ax.axvline(g, color="grey", lw=0.5)
            ax.set_title(f"{variant}: {angle}", fontsize=9)
            ax.set_xlabel("expected coverage (Gaussian, +-z sigma)", fontsize=8)
            ax.set_ylabel("observed share of |error| inside", fontsize=8)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"HHP-Net sigma reliability on AFLW2000-dev ({n_faces} faces; grey lines: 1 sigma = 68.3 %, 2 sigma = 95.4 %)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    import io

    from PIL import Image  # matplotlib's own dependency

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    buf.seek(0)
    # a 64-colour palette keeps the committed figure small (line art: no visible loss)
    Image.open(buf).convert("RGB").quantize(64, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=SHARED)
    ap.add_argument("--ours", type=Path, default=OURS)
    ap.add_argument("--sources", nargs="+", default=["labels", "pose", "blazeface", "facemesh"])
    ap.add_argument("--plots", type=Path, default=None, help="reliability plot (.png), e.g. docs/figures/hhpnet_reliability.png")
    ap.add_argument("--cache", type=Path, default=None, help="cache the sources' keypoints here (re-runs are instant)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "hhpnet_aflw2000-dev.json")
    args = ap.parse_args(argv)

    from openheadpose.core.calibration import GAUSS_1SIGMA, GAUSS_2SIGMA, reliability
    from openheadpose.convert import CONVERTERS
    from openheadpose.datasets.aflw2000 import AFLW2000
    from openheadpose.evaluation.evaluate import score_keypoints
    from openheadpose.inference.backends.onnx import OnnxPoseModel

    reader = AFLW2000(args.shared / "data" / "aflw2000-dev")
    log(f"{reader.summary()}")
    ours = OnnxPoseModel(args.ours)
    with tempfile.TemporaryDirectory() as tmp:
        official = OnnxPoseModel(CONVERTERS["hhpnet"](args.shared / "weights" / "hhpnet" / "model_w300_biwi", Path(tmp) / "hhpnet.onnx"))
    if ours.calibration is None:
        raise SystemExit(f"{args.ours}: no per-source sigma calibration in its metadata (run tools/train_hhpnet_synth.py calibrate)")
    baked_name = "hhpnet-synth, one pooled factor (baked)"
    variants = {OURS_NAME: (ours, "same"), baked_name: (ours, None), OFFICIAL_NAME: (official, "same")}

    results: dict = {}
    rel: dict = {}
    checks: dict = {}
    levels = np.linspace(0.05, 0.95, 19)
    n_images = 0
    for source in args.sources:
        log(f"source {source}")
        kps = keypoints(reader, source, args.cache)
        n_images = len(kps.samples)
        for variant, (net, cal_source) in variants.items():
            res = score_keypoints(net, kps, name="aflw2000-dev", keep_worst=0, source=cal_source)
            r = row(res)
            if variant == baked_name:  # the same predictions as ours; only sigma differs
                results[OURS_NAME][source]["baked_factor_within_1sigma"] = r["within_1sigma"]
                results[OURS_NAME][source]["baked_factor_within_2sigma"] = r["within_2sigma"]
            else:
                results.setdefault(variant, {})[source] = r
            rel.setdefault(variant, {})[source] = reliability(res.errors(), res.sigma, levels)[1].round(4).tolist()
            log(
                f"  {variant:42s} n {r['found']:4d}  MAE yaw {r['mae']['yaw']:6.2f} pitch {r['mae']['pitch']:6.2f} "
                f"roll {r['mae']['roll']:6.2f} mean {r['mae']['mean']:6.2f}  "
                f"<=1s {list(r['within_1sigma'].values())} <=2s {list(r['within_2sigma'].values())}"
            )
            if variant != OURS_NAME:
                continue
            found = kps.found
            P, C, B = kps.points[found], kps.conf[found], kps.boxes[found]
            sig, e, true = res.sigma, res.errors(), res.true_deg
            # sigma with an ear removed vs the same faces with both ears
            both = (C[:, 3] > 0.5) & (C[:, 4] > 0.5) if source != "labels" else (C[:, 3] > 0) & (C[:, 4] > 0)
            if both.any():
                p2, c2 = without_one_ear(P[both], C[both], zero_points=source == "labels")
                sig_one = net.predict_keypoints(p2, c2, B[both], source=source).sigma
                checks.setdefault("ear_removed", {})[source] = {
                    "faces": int(both.sum()),
                    "mean_sigma_both_ears": dict(zip(ANGLES, sig[both].mean(0).round(3).tolist())),
                    "mean_sigma_one_ear_removed": dict(zip(ANGLES, sig_one.mean(0).round(3).tolist())),
                }
            ay = np.abs(true[:, 0])
            bins = {"|yaw|<30": ay < 30, "30-60": (ay >= 30) & (ay < 60), "60-99": ay >= 60}
            checks.setdefault("sigma_by_abs_yaw", {})[source] = {
                k: {"n": int(m.sum()), "mean_sigma": dict(zip(ANGLES, sig[m].mean(0).round(3).tolist())), "mae": dict(zip(ANGLES, np.abs(e[m]).mean(0).round(3).tolist()))}
                for k, m in bins.items()
                if m.any()
            }
            if source == "labels":  # faces where the labels miss an ear (an occluded ear) vs both labelled
                one = ~((C[:, 3] > 0) & (C[:, 4] > 0))
                checks["labels_by_ear_visibility"] = {
                    "both_ears_labelled": {"n": int((~one).sum()), "mean_sigma": dict(zip(ANGLES, sig[~one].mean(0).round(3).tolist()))},
                    "an_ear_hidden": {"n": int(one.sum()), "mean_sigma": dict(zip(ANGLES, sig[one].mean(0).round(3).tolist()))},
                }
    for k, v in checks.items():
        log(f"{k}: {json.dumps(v)}")

    if args.plots:
        reliability_figure(rel, levels, n_images, args.plots)
        log(f"wrote {args.plots}")

    cal = ours.calibration.to_dict()
    sidecar = args.ours.with_suffix(".json")
    cal_command = "python tools/train_hhpnet_synth.py calibrate"
    if sidecar.is_file():
        cal_command = json.loads(sidecar.read_text()).get("calibration", {}).get("per_source_fit", {}).get("command", cal_command)
    out = {
        "command": "python benchmarks/eval_hhpnet.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "dataset": {"name": "aflw2000-dev", "images": n_images, "filter": "all angles within +-99 deg"},
        "keypoints": {
            "labels": "AFLW pt2d: nose tip 15, eye centres 11 (person's left) / 8, ears 17 / 13 (lobes); hidden = absent",
            "sources": "openheadpose.inference.keypoint_sources sources on the whole image; the head with the largest IoU (>= 0.2) with the pt3d_68 box",
        },
        "models": {
            OURS_NAME: str(args.ours.relative_to(ROOT)) if args.ours.is_relative_to(ROOT) else str(args.ours),
            OFFICIAL_NAME: "../shared/weights/hhpnet/model_w300_biwi via openheadpose.convert",
        },
        "calibration": {
            "per_source": cal["per_source"],
            "baked": cal["baked"],
            "label_noise_deg": cal["label_noise_deg"],
            "fitted_on": cal["fitted_on"],
            "baked_fitted_on": cal.get("baked_fitted_on", ""),
            "command": cal_command,
        },
        "targets": {"within_1sigma": round(GAUSS_1SIGMA, 4), "within_2sigma": round(GAUSS_2SIGMA, 4)},
        "results": results,
        "sigma_checks": checks,
        "reliability": {"levels": levels.round(3).tolist(), "observed": rel},
    }
    if args.plots:
        fig = args.plots.resolve()
        out["reliability"]["figure"] = fig.relative_to(ROOT).as_posix() if fig.is_relative_to(ROOT) else str(args.plots)
    write_result(args.out, out)


if __name__ == "__main__":
    main()
