"""Choose the default pipeline's pose stage on real photos no network was trained on.

The candidates are pose stages of the same pipeline (BlazeFace + FaceMesh, then
the stage), so every candidate scores exactly the same faces. They are compared
on the aflw-yaw photos whose faces ``headpose synth`` put in its ``val/`` split
(chosen by a hash of the source name): real photos, held out from every
network trained on the synthesized ``train/`` split, and never AFLW2000
(which stays for the final report). Only yaw is labelled there.

The result -- yaw MAE per stage, by |yaw|, and the paired difference on the
common faces with a bootstrap 95 % interval -- goes to
``benchmarks/results/default_pose.json``; ``make_results.py`` shows it.

Usage::

    python benchmarks/select_default_pose.py --synth /work/synth/aflw
    python benchmarks/select_default_pose.py --synth /work/synth/aflw --pose geometric fsanet-synth --limit 100
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.evaluate_all import shared_root  # noqa: E402
from openheadpose.datasets.aflw_yaw import AFLWYaw  # noqa: E402
from openheadpose.evaluation.evaluate import evaluate  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package
from benchmarks.common import write_result  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "default_pose.json"
BINS = ((0, 30), (30, 60), (60, 99))


class HeldOut:
    """The samples of an aflw-yaw reader whose image is in ``names``, as a reader."""

    def __init__(self, reader, names: set[str]):
        self.reader, self.names = reader, names

    @property
    def failures(self):
        return self.reader.failures

    @property
    def n_filtered(self):
        return self.reader.n_filtered

    def __iter__(self):
        return (s for s in self.reader if s.name in self.names)

    def summary(self) -> str:
        return f"{self.reader.summary()} (held-out synth val sources)"


def val_sources(synth: Path) -> list[str]:
    """Source image names (``images/imageNNNNN.jpg``) that ``headpose synth`` put in ``val/``."""
    fits = synth / "fits.csv"
    if not fits.is_file():
        sys.exit(f"select_default_pose: {fits} not found (a `headpose synth` output folder)")
    with open(fits, newline="") as fh:
        return [r["source"] for r in csv.DictReader(fh) if r["split"] == "val"]


def paired(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, n_boot: int = 2000) -> dict:
    """Mean of ``b - a`` (absolute errors, same faces) and its bootstrap 95 % interval."""
    d = b - a
    idx = rng.integers(0, len(d), (n_boot, len(d)))
    boot = d[idx].mean(1)
    return {"mean": round(float(d.mean()), 3), "ci95": [round(float(x), 3) for x in np.percentile(boot, [2.5, 97.5])], "n": int(len(d))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synth", type=Path, required=True, help="a `headpose synth aflw-yaw:...` output folder (its fits.csv says the split)")
    ap.add_argument("--pose", nargs="+", default=["geometric", "fsanet-synth"], help="pose stages to compare; the first is the reference")
    ap.add_argument("--limit", type=int, help="first N held-out faces only (smoke runs)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    from openheadpose.inference.pipeline import HeadPoseEstimator

    names = val_sources(args.synth)[: args.limit]
    root = shared_root() / "data" / "aflw-yaw"
    runs = {}
    for pose in args.pose:
        t0 = time.perf_counter()
        res = evaluate(HeadPoseEstimator(pose=pose), HeldOut(AFLWYaw(root), set(names)), "detect", name="aflw-yaw held-out", progress=True)
        err = np.abs(res.errors()[:, 0])
        true = np.abs(res.true_deg[:, 0])
        runs[pose] = {
            "n_images": res.n_images,
            "n_scored": res.n_detected,
            "mae_yaw": round(float(err.mean()), 3),
            "median_yaw": round(float(np.median(err)), 3),
            "by_abs_yaw": {f"{lo}-{hi}": {"n": int(m.sum()), "mae_yaw": round(float(err[m].mean()), 3) if m.any() else None}
                           for lo, hi in BINS for m in [(true >= lo) & (true < hi)]},
            "seconds": round(time.perf_counter() - t0, 1),
            "_err": dict(zip(res.names, err)),
        }
        print(f"{pose:16s} scored {res.n_detected}/{res.n_images}  yaw MAE {runs[pose]['mae_yaw']:.2f}  "
              + "  ".join(f"{k}: {v['mae_yaw']}" for k, v in runs[pose]["by_abs_yaw"].items()))

    ref = args.pose[0]
    rng = np.random.default_rng(0)
    comparisons = {}
    for pose in args.pose[1:]:
        common = sorted(set(runs[ref]["_err"]) & set(runs[pose]["_err"]))
        a = np.array([runs[ref]["_err"][n] for n in common])
        b = np.array([runs[pose]["_err"][n] for n in common])
        comparisons[f"{pose} - {ref}"] = paired(a, b, rng)
    best = min(args.pose, key=lambda p: runs[p]["mae_yaw"])
    for r in runs.values():
        del r["_err"]
    doc = {
        "what": "default pipeline (BlazeFace + FaceMesh + pose stage) on real aflw-yaw photos held out as headpose synth's val sources; yaw MAE, detector crops",
        "synth": str(args.synth),
        "n_sources": len(names),
        "pose": runs,
        "paired_difference_deg": comparisons,
        "lowest_yaw_mae": best,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/select_default_pose.py --synth SYNTH " + " ".join(["--pose", *args.pose]) + (f" --limit {args.limit}" if args.limit else ""),
    }
    for k, v in comparisons.items():
        print(f"{k}: {v['mean']:+.2f} deg (95% {v['ci95'][0]:+.2f} .. {v['ci95'][1]:+.2f}) on {v['n']} faces")
    write_result(args.out, doc)
    print(f"lowest yaw MAE: {best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
