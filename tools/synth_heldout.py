"""Rebuild only the held-out photos of a ``headpose synth`` folder: the ``val`` split's view 0 and ``fits.csv``.

The sigma calibration (``tools/calibrate_sigma.py``), the selection rule's sets A and B
(``benchmarks/select_default_pose.py``) and the pitch study read only the real held-out photos
with their fitted pose (view 0 of the ``val`` split) and ``fits.csv``. Those depend only on the
source photo, its landmarks and the fit -- not on the re-rendered views -- and a source's split
is a hash of its name (``synth.build``), so this writes exactly the files ``headpose synth``
would have written for them (same ``SynthConfig``, ``views=0``), in a fraction of the time::

    python tools/synth_heldout.py aflw-yaw:../shared/data/aflw-yaw   /work/synth/68/aflw-yaw   --val-fraction 0.05 --bfm $WHEEL -j 2
    python tools/synth_heldout.py aflw-yaw:../shared/data/aflw-extra /work/synth/68/aflw-extra --val-fraction 0.1  --bfm $WHEEL -j 2

(the fractions of the shipped network's sets, ``benchmarks/README.md``, "The 68-point sets"). A
later ``headpose synth`` into the same folder resumes and adds the training split and the views.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", help="KIND:PATH, as headpose synth takes it")
    ap.add_argument("out", type=Path)
    ap.add_argument("--val-fraction", type=float, required=True)
    ap.add_argument("--points", default="auto")
    ap.add_argument("--bfm", default=os.environ.get("OPENHEADPOSE_BFM"))
    ap.add_argument("--limit", type=int, default=None, help="only the first N held-out faces (to time a sample)")
    ap.add_argument("-j", "--jobs", type=int, default=1)
    args = ap.parse_args(argv)

    from tqdm import tqdm

    from openheadpose.synth import build
    from openheadpose.synth.bfm import load_bfm
    from openheadpose.synth.sources import open_source

    cfg = build.SynthConfig(source=args.source, out=str(args.out), views=0, val_fraction=args.val_fraction, bfm=args.bfm, points=args.points)
    load_bfm(cfg.bfm)
    args.out.mkdir(parents=True, exist_ok=True)
    fits = args.out / "fits.csv"
    done = set()
    if fits.is_file():
        with open(fits, newline="") as fh:
            done = {r["source"] for r in csv.DictReader(fh)}
    todo = [s for s in open_source(cfg.source) if build._split_of(s.name, cfg.val_fraction) == "val" and s.name not in done]
    todo = todo[: args.limit] if args.limit else todo
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    t0 = time.time()
    with open(fits, "a", newline="") as fh:
        w = csv.DictWriter(fh, build.FITS_COLUMNS)
        if not done:
            w.writeheader()
        with mp.get_context("spawn").Pool(args.jobs, initializer=build._init_worker, initargs=(cfg, args.out)) as pool:
            for r in tqdm(pool.imap_unordered(build._work, todo, chunksize=4), total=len(todo), desc="held-out", unit="face"):
                w.writerow(r)
                fh.flush()
    with open(fits, newline="") as fh:
        rows = list(csv.DictReader(fh))
    summary = build.summarize(rows)
    summary.update(config=asdict(cfg), held_out_only=True, seconds_this_run=round(time.time() - t0, 1))
    (args.out / "synth.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{len(todo)} faces in {time.time() - t0:.0f} s -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
