"""Faces per second of the crop networks through ONNX Runtime on this CPU.

Times the network alone (preprocessed crops in, angles out) at batch 1 and 32 with
2 intra-op threads, median of ``--repeats`` timed runs after a warm-up, for our
shipped image networks (``openheadpose/assets/*-synth.onnx``) and, as the reference
measured in the same run, the imported FSA-Net capsule (official weights through
``headpose convert``, needs ``../shared``). Ratios are against that reference.

Usage::

    python benchmarks/bench_crop_models.py      # -> benchmarks/results/crop_speed.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package
from benchmarks.common import write_result  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OPENHEADPOSE_SHARED", ROOT.parent / "shared"))


def _time(model, batch: int, repeats: int) -> float:
    p = model.spec.preprocessing
    x = np.random.default_rng(0).uniform(0, 255, (batch, p.num_channels, p.input_size, p.input_size)).astype(np.float32)
    name = model.session.get_inputs()[0].name
    for _ in range(3):
        model.session.run(None, {name: x})
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.session.run(None, {name: x})
        ts.append(time.perf_counter() - t0)
    return batch / statistics.median(ts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "crop_speed.json")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from benchmarks.common import machine_info
    from openheadpose.inference.backends.onnx import OnnxPoseModel

    models = {}
    ref = SHARED / "weights" / "fsanet" / "300W_LP_models" / "fsanet_capsule_3_16_2_21_5"
    if ref.is_dir():
        from openheadpose.convert import CONVERTERS

        tmp = Path(tempfile.mkdtemp())
        models["fsanet-capsule (imported, reference)"] = OnnxPoseModel(CONVERTERS["fsanet"](ref, tmp / "ref.onnx"), threads=2)
    for f in sorted((ROOT / "src" / "openheadpose" / "assets").glob("*-synth.onnx")):
        if f.stem != "hhpnet-synth":
            models[f.stem] = OnnxPoseModel(f, threads=2)
    rows = []
    for name, m in models.items():
        p = m.spec.preprocessing
        rows.append({"model": name, "input": f"{p.input_size} {p.channels}", "bytes": Path(m.path).stat().st_size,
                     "faces_per_s_batch1": round(_time(m, 1, args.repeats), 1), "faces_per_s_batch32": round(_time(m, 32, args.repeats), 1)})
    if rows and "reference" in rows[0]["model"]:
        for r in rows:
            r["ratio_batch1_vs_reference"] = round(r["faces_per_s_batch1"] / rows[0]["faces_per_s_batch1"], 2)
    for r in rows:
        print(r)
    out = {"benchmark": "crop_speed", "command": "python benchmarks/bench_crop_models.py", "threads": 2, "repeats": args.repeats,
           "machine": machine_info(), "results": rows}
    write_result(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
