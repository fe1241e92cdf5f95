"""Compare the networks trained on one ``headpose synth`` set and say which to ship.

For each training run (a ``headpose train --out`` folder): the best epoch's
validation MAE on the synthesized set's held-out ``val/`` part -- the selection
criterion -- plus, for the reader, the yaw MAE on the real aflw-yaw photos
those ``val/`` faces were rendered from (through the pipeline: BlazeFace +
FaceMesh + the network on its own crop, so every candidate sees the same
faces), its ONNX size and its faces per second through ONNX Runtime (2
threads, batch 1). AFLW2000 plays no part.

The candidates in ``results/synth_candidates.json`` were trained on the 2-core CPU with::

    headpose train --model fsanet-capsule --data 300wlp:SYNTH/train --val 300wlp:SYNTH/val --crop face-1.1 \
        --epochs 7 --batch-size 64 --lr 1e-3 --out runs/fsanet-synth
    headpose train --model rot6d-mobilenetv3small --data 300wlp:SYNTH/train --val 300wlp:SYNTH/val --crop face-1.1 \
        --epochs 4 --warmup-epochs 0.5 --batch-size 64 --lr 1e-3 --out runs/rot6d-synth
    headpose train --model hopenet-mobilenetv3small --data 300wlp:SYNTH/train --val 300wlp:SYNTH/val --crop face-1.1 \
        --epochs 4 --warmup-epochs 0.5 --batch-size 64 --lr 1e-3 --out runs/hopenet-synth

Usage::

    python benchmarks/synth_candidates.py --synth /work/synth/aflw runs/fsanet-synth runs/rot6d-synth runs/hopenet-synth
    # -> benchmarks/results/synth_candidates.json, shown by make_results.py
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_crop_models import _time  # noqa: E402
from benchmarks.select_default_pose import HeldOut, val_sources  # noqa: E402
from benchmarks.evaluate_all import shared_root  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package
from benchmarks.common import write_result  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "synth_candidates.json"


def best_epoch(run: Path) -> dict:
    """The metrics.csv row with the lowest validation MAE, and how many epochs ran."""
    with open(run / "metrics.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["train_loss"]]
    if not rows:
        sys.exit(f"synth_candidates: {run / 'metrics.csv'} has no finished epoch")
    best = min(rows, key=lambda r: float(r["val_mae"]))
    return {"epochs_run": len(rows), "best_epoch": int(best["epoch"]),
            "val_mae_by_epoch": [round(float(r["val_mae"]), 2) for r in rows],
            "val_mae": round(float(best["val_mae"]), 3),
            "val_mae_ypr": [round(float(best[f"val_mae_{a}"]), 3) for a in ("yaw", "pitch", "roll")],
            "train_images_per_s": round(float(np.median([float(r["images_per_s"]) for r in rows])), 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="headpose train output folders (best.pt, metrics.csv)")
    ap.add_argument("--synth", type=Path, required=True, help="the headpose synth folder they were trained on")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    from openheadpose.datasets.aflw_yaw import AFLWYaw
    from openheadpose.evaluation.evaluate import evaluate
    from openheadpose.models import create_model, load_checkpoint
    from openheadpose.models.export import export_onnx
    from openheadpose.inference.pipeline import HeadPoseEstimator
    from openheadpose.inference.pose_stages import NetworkPose
    from openheadpose.inference.backends.onnx import OnnxPoseModel

    names = set(val_sources(args.synth))
    aflw = shared_root() / "data" / "aflw-yaw"
    tmp = Path(tempfile.mkdtemp(prefix="openheadpose-candidates-"))
    rows = []
    for run in args.runs:
        row = {"run": run.name, **best_epoch(run)}
        _, spec = load_checkpoint(run / "best.pt")
        model = create_model(spec.name, weights=run / "best.pt").eval()
        onnx = export_onnx(model, tmp / f"{run.name}.onnx")
        m = OnnxPoseModel(onnx, threads=2)
        res = evaluate(HeadPoseEstimator(pose=NetworkPose(m)), HeldOut(AFLWYaw(aflw), names), "detect", name="aflw-yaw held-out", progress=False)
        err = np.abs(res.errors()[:, 0])
        row.update({
            "network": spec.name, "crop": m.crop, "input": m.input_size,
            "training": {k: v for k, v in (spec.notes.get("training") or {}).items() if k in ("epochs", "batch_size", "lr", "seed", "train_samples", "val_samples")},
            "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
            "onnx_bytes": Path(onnx).stat().st_size,
            "faces_per_s_batch1": round(_time(m, 1, args.repeats), 1),
            "real_heldout_yaw_mae": round(float(err.mean()), 3), "real_heldout_scored": int(res.n_detected), "real_heldout_images": int(res.n_images),
        })
        rows.append(row)
        print(row)
    chosen = min(rows, key=lambda r: r["val_mae"])["run"]
    doc = {
        "what": "networks trained on one headpose synth set; selected by the lowest val MAE on its held-out synthesized part",
        "synth": str(args.synth),
        "selected": chosen,
        "candidates": rows,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/synth_candidates.py --synth SYNTH " + " ".join(f"runs/{r.name}" for r in args.runs),
    }
    write_result(args.out, doc)
    print(f"selected {chosen}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
