"""The keypoint-heatmap CNN (``heatmap-cnn-synth``) on AFLW2000-dev per keypoint source, beside HHP-Net.

For every keypoint source -- the labelled AFLW ``pt2d`` points (a reference row), then the
``facemesh``, ``blazeface`` and ``body`` sources of :mod:`openheadpose.inference.keypoint_sources`
run on the whole 450 x 450 image, keeping the head whose box overlaps the labelled face box
most (IoU >= 0.2), exactly as ``benchmarks/eval_hhpnet.py`` does -- it reports, for our
shipped ``heatmap-cnn-synth`` and ``hhpnet-synth`` on the very same keypoints:

* MAE yaw / pitch / roll / mean and the faces found (of 983 after the +-99 deg filter);
* the ONNX file's size;
* faces/s of the pose stage alone (``predict_keypoints``: input encoding + ONNX Runtime,
  keypoints given), one face per call and 32 per call, median of repeated runs on this machine.

The keypoints are collected and scored by :func:`openheadpose.evaluation.evaluate.collect_keypoints`
and :func:`~openheadpose.evaluation.evaluate.score_keypoints`, the code behind
``headpose evaluate --model heatmap-cnn --keypoints SOURCE``. AFLW2000-dev is used for
evaluation only: the network was trained and selected on synthetic keypoints
(``tools/train_heatmap_cnn_synth.py``).

Usage::

    python benchmarks/eval_heatmap_cnn.py --cache /tmp/openheadpose-keypoint-cache

writes ``benchmarks/results/heatmap_cnn_aflw2000-dev.json`` (aggregates only).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package
from benchmarks.common import write_result
from benchmarks.eval_hhpnet import keypoints, row

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OPENHEADPOSE_SHARED", ROOT.parent / "shared"))
ASSETS = ROOT / "src" / "openheadpose" / "assets"
MODELS = {"heatmap-cnn-synth (ours)": "heatmap-cnn-synth.onnx", "hhpnet-synth (ours)": "hhpnet-synth.onnx"}


def log(msg: str) -> None:
    print(msg, flush=True)


def faces_per_second(net, kps, batch: int, repeats: int = 5, budget_s: float = 3.0) -> float:
    """Median faces/s of ``net.predict_keypoints`` over the found faces, ``batch`` faces per call."""
    idx = np.flatnonzero(kps.found)[:256]
    P, C, B = kps.points[idx], kps.conf[idx], kps.boxes[idx]
    net.predict_keypoints(P[:batch], C[:batch], B[:batch])  # warm-up
    rates = []
    for _ in range(repeats):
        t0, n = time.perf_counter(), 0
        while n < len(idx) and time.perf_counter() - t0 < budget_s / repeats:
            net.predict_keypoints(P[n : n + batch], C[n : n + batch], B[n : n + batch])
            n += len(P[n : n + batch])
        rates.append(n / (time.perf_counter() - t0))
    return float(np.median(rates))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=SHARED)
    ap.add_argument("--sources", nargs="+", default=["labels", "facemesh", "blazeface", "body"])
    ap.add_argument("--cache", type=Path, default=None, help="cache the sources' keypoints here (re-runs are instant)")
    ap.add_argument("--heatmap", type=Path, default=ASSETS / MODELS["heatmap-cnn-synth (ours)"], help="the heatmap CNN's .onnx (default: the shipped one)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "heatmap_cnn_aflw2000-dev.json")
    args = ap.parse_args(argv)

    from benchmarks.common import machine_info
    from openheadpose.datasets.aflw2000 import AFLW2000
    from openheadpose.evaluation.evaluate import score_keypoints
    from openheadpose.inference.backends.onnx import OnnxPoseModel
    from openheadpose.inference.keypoint_sources import KEYPOINT_SOURCES

    reader = AFLW2000(args.shared / "data" / "aflw2000-dev")
    log(reader.summary())
    files = {**{name: ASSETS / f for name, f in MODELS.items()}, "heatmap-cnn-synth (ours)": args.heatmap}
    nets = {name: OnnxPoseModel(f) for name, f in files.items()}
    results: dict = {name: {} for name in nets}
    speed: dict = {name: {} for name in nets}
    n_images = 0
    for source in args.sources:
        if source != "labels":
            try:
                KEYPOINT_SOURCES.create(source)
            except Exception as exc:  # noqa: BLE001 - a source whose models are not installed here
                log(f"source {source}: skipped ({exc})")
                continue
        log(f"source {source}")
        kps = keypoints(reader, source, args.cache)
        n_images = len(kps.samples)
        for name, net in nets.items():
            r = row(score_keypoints(net, kps, name="aflw2000-dev", keep_worst=0))
            results[name][source] = {k: r[k] for k in ("found", "of", "mae")}
            log(f"  {name:26s} n {r['found']:4d}/{r['of']}  MAE yaw {r['mae']['yaw']:6.2f} pitch {r['mae']['pitch']:6.2f} roll {r['mae']['roll']:6.2f} mean {r['mae']['mean']:6.2f}")
            if source == "labels":
                speed[name] = {f"batch_{b}": round(faces_per_second(net, kps, b), 1) for b in (1, 32)}
                log(f"  {name:26s} pose stage faces/s: {speed[name]}")
    sidecar = args.heatmap.with_suffix(".json")
    meta = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    out = {
        "command": "python benchmarks/eval_heatmap_cnn.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "dataset": {"name": "aflw2000-dev", "images": n_images, "filter": "all angles within +-99 deg"},
        "keypoints": {
            "labels": "AFLW pt2d: nose tip 15, eye centres 11 (person's left) / 8, ears 17 / 13 (lobes); hidden = absent; box: the pt3d_68 extent",
            "sources": "openheadpose.inference.keypoint_sources sources on the whole image; the head with the largest IoU (>= 0.2) with the pt3d_68 box; the source's own box",
        },
        "models": {
            name: {
                "file": f.resolve().relative_to(ROOT).as_posix() if f.resolve().is_relative_to(ROOT) else str(f),
                "bytes": f.stat().st_size,
                "faces_per_s": speed[name],
            }
            for name, f in files.items()
        },
        "heatmap_cnn": {
            "parameters": meta.get("parameters"),
            "bytes_float32": meta.get("bytes_float32"),
            "quantisation": meta.get("quantisation"),
            "synthetic_val_mae": meta.get("synthetic_val", {}).get("mae"),
            "recipe_command": meta.get("recipe", {}).get("command"),
            "selected_step": meta.get("recipe", {}).get("selected_step"),
            "samples_seen": meta.get("recipe", {}).get("samples_seen"),
        },
        "speed": {"what": "pose stage alone (OnnxPoseModel.predict_keypoints: input encoding + ONNX Runtime), keypoints given; median of 5 runs", "machine": machine_info()},
        "results": results,
    }
    write_result(args.out, out)


if __name__ == "__main__":
    main()
