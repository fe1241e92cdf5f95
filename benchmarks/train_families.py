"""A short training run for one model of every family on real faces: does validation error go down?

Data: ``aflw-yaw`` (real AFLW crops, yaw labels only, disjoint from AFLW2000), so
the loss and the validation MAE are on yaw alone; validation is the engine's
default 5 % name-hash split of the same folder. Row 0 of each run's
``metrics.csv`` is the untrained model, so "before" and "after" come from the
same validation faces. Results go to ``benchmarks/results/train_families.json``.

Usage::

    python benchmarks/train_families.py --data ../shared/data/aflw-yaw --epochs 3 --limit 3000        # CPU, ~15 min
    python benchmarks/train_families.py --data DIR --epochs 8 --device cuda                            # GPU
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: One representative per family (the smallest real backbone where a family has several).
FAMILIES = {
    "fsanet": "fsanet-capsule",
    "ssrnet": "ssrnet-mt",
    "hopenet": "hopenet-squeezenet1_1",
    "hhpnet": "hhpnet",
    "heatmap": "heatmap-cnn",
    "realheponet": "realheponet",
    "rot6d": "rot6d-mobilenetv3small",
}

#: Learning rates per family: the originals' optimiser settings where they train from scratch
#: (FSA-Net / SSR-Net Adam 1e-3), lower for the deep classifiers.
LR = {"hopenet": 1e-4, "rot6d": 1e-3}

#: HHP-Net's steps are cheap (a 15-number input) and its beta-NLL starts slowly: 3x the epochs.
EPOCHS_FACTOR = {"hhpnet": 3}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the aflw-yaw folder (labels.csv + images/)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N faces")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", nargs="*", choices=sorted(FAMILIES))
    ap.add_argument("--runs", type=Path, default=Path("/tmp/openheadpose-train-families"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "train_families.json")
    args = ap.parse_args(argv)

    import torch

    from openheadpose.training.engine import TrainConfig, train

    rows = []
    for family in args.only or FAMILIES:
        model = FAMILIES[family]
        out = args.runs / model
        shutil.rmtree(out, ignore_errors=True)  # a fresh run each time
        t0 = time.perf_counter()
        cfg = TrainConfig(
            model=model, data=(f"aflw-yaw:{args.data}",), out=out, epochs=args.epochs * EPOCHS_FACTOR.get(family, 1), batch_size=args.batch_size,
            lr=LR.get(family, 1e-3), workers=args.workers, device=args.device, limit=args.limit, progress=False, seed=0,
        )
        train(cfg, log=lambda m: print(f"  [{model}] {m}", file=sys.stderr))
        with open(out / "metrics.csv", newline="") as fh:
            hist = list(csv.DictReader(fh))
        before, after = float(hist[0]["val_mae_yaw"]), float(hist[-1]["val_mae_yaw"])
        best = min(float(h["val_mae_yaw"]) for h in hist[1:])
        rows.append({
            "family": family, "model": model, "epochs": cfg.epochs, "lr": cfg.lr,
            "val_mae_yaw_untrained": before, "val_mae_yaw_last": after, "val_mae_yaw_best": best,
            "images_per_s_last_epoch": float(hist[-1]["images_per_s"] or 0), "seconds": round(time.perf_counter() - t0, 1),
        })
        print(f"{family:12s} {model:24s} val yaw MAE {before:6.2f} -> {after:6.2f} (best {best:.2f})  {rows[-1]['seconds']} s")
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() and args.device != "cpu" else None
    command = "python benchmarks/train_families.py " + " ".join(argv if argv is not None else sys.argv[1:])
    date = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    for r in rows:  # each row says where and how it was made: --only re-runs merge into the file
        r.update(date=date, command=command, device=cuda or "cpu", torch=torch.__version__, platform=platform.platform(), limit=args.limit)
    old = json.loads(args.out.read_text())["results"] if args.out.is_file() else []
    done = {r["family"] for r in rows}
    merged = [r for r in old if r["family"] not in done] + rows
    merged.sort(key=lambda r: list(FAMILIES).index(r["family"]) if r["family"] in FAMILIES else 99)
    result = {"benchmark": "train_families", "data": "aflw-yaw (yaw only)", "results": merged}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".part")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
