"""Where the detector schedule's and FaceMesh-auto's constants come from (training data and shared photos only).

(1) **Reach** of BlazeFace short and full range (``detectors.SHORT_REACH``, ``FULL_REACH``): the
    share of faces found (IoU >= 0.3 with the face's landmark box) as a function of face side
    over the model's input image side. Faces: ``--crops`` aflw-yaw crops (a training set; the
    face side is the extent of AFLW's 21 labelled points), each pasted at every size at a random
    place onto the no-face ``media/free-mountain-vector-01.jpg`` shrunk to 640 x 640.
(2) **FaceMesh's second pass** (``facemesh-auto``; ``FaceMesh.REFINE_SCORE`` is chosen by
    ``speed_settings.py``): on 300 aflw-yaw crops (shown at 360 px)
    and the shared media photos, how far the crop placed by the first pass's landmarks lies
    from the detector's, and how much the second pass moves the landmarks, for the faces the
    ``auto`` rule would and would not send to a second pass.

Never run on AFLW2000 (evaluation only). Usage::

    python benchmarks/schedule_constants.py            # about a minute on 2 cores
"""

from __future__ import annotations

import argparse
import csv
import glob
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import shared_root, write_result  # noqa: E402
FRACTIONS = (0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 0.4)




def _rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def reach(shared: Path, n_crops: int, side: int = 640) -> dict:
    from openheadpose.core.geometry import box_iou
    from openheadpose.inference.detectors import BlazeFace

    root = shared / "data" / "aflw-yaw"
    rows = list(csv.DictReader(open(root / "labels.csv")))[:n_crops]
    bg = cv2.resize(_rgb(shared / "media" / "free-mountain-vector-01.jpg"), (side, side), interpolation=cv2.INTER_AREA)
    models = {"short": BlazeFace("short", 0.5), "full": BlazeFace("full", 0.6)}
    hits = {m: {f: [] for f in FRACTIONS} for m in models}
    rng = np.random.default_rng(0)
    for r in rows:
        im = _rgb(root / "images" / r["image"])
        k = im.shape[1] / (float(r["roi_x2"]) - float(r["roi_x1"]))
        pts = np.array([(float(r[f"x{i}"]), float(r[f"y{i}"])) for i in range(1, 22) if r[f"x{i}"]])
        pts = (pts - [float(r["roi_x1"]), float(r["roi_y1"])]) * k  # crop pixels
        lo, hi = pts.min(0), pts.max(0)
        face = float(max(hi - lo))
        for f in FRACTIONS:
            cs = int(round(im.shape[1] * f * side / face))
            if cs < 4 or cs >= side:
                continue
            crop = cv2.resize(im, (cs, cs), interpolation=cv2.INTER_AREA if cs < im.shape[1] else cv2.INTER_LINEAR)
            x0, y0 = rng.integers(0, side - cs, 2)
            canvas = bg.copy()
            canvas[y0 : y0 + cs, x0 : x0 + cs] = crop
            s = cs / im.shape[1]
            truth = np.array([[x0 + lo[0] * s, y0 + lo[1] * s, x0 + hi[0] * s, y0 + hi[1] * s]])
            for m, det in models.items():
                d = det(canvas)
                hits[m][f].append(bool(len(d) and box_iou(d.boxes, truth).max() >= 0.3))
    out = {m: {str(f): round(float(np.mean(v)), 3) for f, v in h.items() if v} for m, h in hits.items()}
    for m, v in out.items():
        print(f"{m:5s} found, by face side / image side: " + "  ".join(f"{f}: {x:.2f}" for f, x in v.items()))
    return {"crops": len(rows), "image_side": side, "found_by_fraction": out}


def refine(shared: Path, n_crops: int) -> dict:
    from openheadpose.inference.detectors import DETECTORS
    from openheadpose.inference.landmarkers import FaceMesh

    det, fm = DETECTORS.create("blazeface"), FaceMesh(refine="auto")
    root = shared / "data" / "aflw-yaw"
    rows = list(csv.DictReader(open(root / "labels.csv")))[:n_crops]
    images = [cv2.resize(_rgb(root / "images" / r["image"]), (360, 360)) for r in rows]
    images += [_rgb(p) for p in sorted(glob.glob(str(shared / "media" / "*.jpg")))]
    second, moved = [], []
    for im in images:
        d = det(im)
        for i in range(len(d)):
            roi = fm._roi_from_detection(d.boxes[i], None if d.keypoints is None else d.keypoints[i])
            p1, s1 = fm._run(im, roi)
            roi2 = fm._roi_from_landmarks(p1)
            p2, s2 = fm._run(im, roi2)
            final = p2 if (s2 >= s1 or s2 > 0.5) else p1  # what the two-pass FaceMesh keeps
            second.append(fm._needs_second_pass(roi, roi2, s1))
            moved.append(float(np.linalg.norm(final[:, :2] - p1[:, :2], axis=1).mean() / roi2.size))
    second_a, moved_a = np.array(second), np.array(moved)
    out = {
        "faces": len(second),
        "second_pass_share": round(float(second_a.mean()), 3),
        "moved_without_second_pass": {q: round(float(np.percentile(moved_a[~second_a], int(q[1:]))), 4) for q in ("p50", "p95")},
        "moved_with_second_pass": {q: round(float(np.percentile(moved_a[second_a], int(q[1:]))), 4) for q in ("p50", "p95")} if second_a.any() else None,
    }
    print(f"FaceMesh auto: second pass on {out['second_pass_share']:.0%} of {out['faces']} faces; the others' landmarks would move by "
          f"{out['moved_without_second_pass']['p50']:.2%} (median), {out['moved_without_second_pass']['p95']:.2%} (95th pct.) of the crop")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--crops", type=int, default=80, help="aflw-yaw crops for the reach curves")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "schedule_constants.json")
    args = ap.parse_args(argv)
    shared = shared_root(who="schedule_constants")
    doc = {"reach": reach(shared, args.crops), "facemesh_auto": refine(shared, 300),
           "command": "python benchmarks/schedule_constants.py" + (f" --crops {args.crops}" if args.crops != 80 else "")}
    write_result(args.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
