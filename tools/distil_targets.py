"""Distillation targets for the default network: the training split's photos and their teacher poses.

For each ``aflw-yaw``-layout source (``../shared/data/aflw-yaw``, ``aflw-extra``) this

* keeps only the **training split** -- the sources ``headpose synth`` does not put in ``val``
  (``synth.build._split_of``, the same hash and fraction that made the held-out sets A and B of
  ``benchmarks/select_default_pose.py``) -- as a dataset folder ``OUT/<name>/`` (``labels.csv`` and
  ``landmarks68.csv`` filtered, ``images`` a link to the source's), readable as ``aflw-yaw:OUT/<name>``;
* reads every kept face with the teacher (default: the shipped ``hopenet-synth``) on the crop
  training makes of it, unaugmented, twice -- plain and mirrored, averaged on SO(3)
  (``read_crops(..., view="both")``) -- and writes ``OUT/targets.csv`` (``name,yaw,pitch,roll``) for
  ``headpose train --targets``.

Nothing it writes may be committed (it is derived from ``../shared``). ONNX Runtime only, no torch::

    python tools/distil_targets.py --source aflw-yaw:../shared/data/aflw-yaw --val-fraction 0.05 \\
        --source aflw-yaw:../shared/data/aflw-extra --val-fraction 0.1 --out /work/runs/distil
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np


def _filter_csv(src: Path, dst: Path, keep: set[str]) -> int:
    with open(src, newline="") as fi, open(dst, "w", newline="") as fo:
        rows = csv.reader(fi)
        w = csv.writer(fo)
        w.writerow(next(rows))
        n = 0
        for r in rows:
            if r and r[0] in keep:
                w.writerow(r)
                n += 1
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", action="append", required=True, help="aflw-yaw:PATH (repeatable)")
    ap.add_argument("--val-fraction", type=float, action="append", required=True, help="per --source, as headpose synth had it")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--teacher", default="hopenet-synth", help="registered network, or NAME=FILE.onnx")
    ap.add_argument("--view", default="both", choices=("plain", "mirrored", "both"))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--limit", type=int, default=None, help="first N kept faces of each source (smoke runs)")
    args = ap.parse_args(argv)
    if len(args.source) != len(args.val_fraction):
        ap.error("give one --val-fraction per --source")

    from openheadpose.core.rotation import matrix_to_euler
    from openheadpose.datasets.aflw_yaw import AFLWYaw
    from openheadpose.inference.backends.onnx import load_network
    from openheadpose.inference.pose_stages import read_crops
    from openheadpose.specs.crops import CROPS
    from openheadpose.synth.build import _split_of

    name, _, weights = args.teacher.partition("=")
    teacher = load_network("onnx" if weights else name, weights or None)
    recipe, size = CROPS[teacher.crop], teacher.input_size
    args.out.mkdir(parents=True, exist_ok=True)
    seen: dict[str, str] = {}
    t0, n_all = time.perf_counter(), 0
    with open(args.out / "targets.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "yaw", "pitch", "roll"])
        for spec, frac in zip(args.source, args.val_fraction):
            kind, _, path = spec.partition(":")
            if kind != "aflw-yaw":
                sys.exit(f"distil_targets: {spec}: only aflw-yaw-layout sources")
            root = Path(path).resolve()
            dst = args.out / root.name
            dst.mkdir(exist_ok=True)
            samples = [s for s in AFLWYaw(root) if _split_of(s.name, frac) == "train"][: args.limit]
            for s in samples:
                if s.name in seen:
                    sys.exit(f"distil_targets: {s.name} is in both {seen[s.name]} and {spec}: targets are keyed by name")
                seen[s.name] = spec
            keep = {Path(s.name).name for s in samples}
            n = _filter_csv(root / "labels.csv", dst / "labels.csv", keep)
            if (root / "landmarks68.csv").is_file():
                _filter_csv(root / "landmarks68.csv", dst / "landmarks68.csv", keep)
            link = dst / "images"
            if not link.exists():
                os.symlink(root / "images", link)
            for i in range(0, len(samples), args.batch):
                part = samples[i : i + args.batch]
                crops = []
                for s in part:
                    image = s.load_image()
                    crops.append(recipe(image, recipe.from_sample(s, image.shape), size))
                R = read_crops(teacher, np.stack(crops), args.view).rotations
                e = matrix_to_euler(R).stack()
                for s, (y, p, r) in zip(part, e):
                    w.writerow([s.name, f"{y:.4f}", f"{p:.4f}", f"{r:.4f}"])
            n_all += len(samples)
            print(f"{spec}: {len(samples)} training-split faces ({n} label rows) -> {dst}; {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"{n_all} targets ({args.teacher}, view {args.view}) -> {args.out / 'targets.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
