"""How closely a distilled network follows its targets on its own training crops, read once, mirrored, twice.

A diagnosis for issue 28 item 2 (``hopenet-synth68m``, ``benchmarks/README.md``): the signed mean and
the MAE of (prediction - target) per angle, on the first ``--n`` training-split photos of a
``tools/distil_targets.py`` folder, for the teacher and the student. Training photos only (no held-out
face, no AFLW2000): it says whether the student learnt its targets, not how good it is.

    python benchmarks/distil_check.py --data /work/runs/distil/ex/aflw-extra --targets /work/runs/distil/targets.csv \\
        --student /work/runs/hopenet-synth68m.onnx --n 384
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import write_result  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="an aflw-yaw folder written by tools/distil_targets.py")
    ap.add_argument("--targets", type=Path, required=True)
    ap.add_argument("--teacher", default="hopenet-synth")
    ap.add_argument("--student", type=Path, required=True, help="the distilled network's .onnx")
    ap.add_argument("--n", type=int, default=384)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "distil_check.json")
    args = ap.parse_args(argv)

    from openheadpose.core.rotation import matrix_to_euler
    from openheadpose.datasets.aflw_yaw import AFLWYaw
    from openheadpose.inference.backends.onnx import load_network
    from openheadpose.inference.pose_stages import read_crops
    from openheadpose.specs.crops import CROPS
    from openheadpose.training.data import read_targets

    targets = read_targets(args.targets)
    samples = [s for s in AFLWYaw(args.data) if s.name in targets][: args.n]
    nets = {"teacher": load_network(args.teacher), "student": load_network("onnx", str(args.student))}
    recipe, size = CROPS[nets["teacher"].crop], nets["teacher"].input_size
    crops = []
    for s in samples:
        image = s.load_image()
        crops.append(recipe(image, recipe.from_sample(s, image.shape), size))
    crops = np.stack(crops)
    want = np.array([targets[s.name] for s in samples])
    rows = {}
    for who, net in nets.items():
        for view in ("plain", "mirrored", "both"):
            d = matrix_to_euler(read_crops(net, crops, view).rotations).stack() - want
            rows[f"{who} {view}"] = {"mean_ypr": [round(float(x), 2) for x in d.mean(0)], "mae_ypr": [round(float(x), 2) for x in np.abs(d).mean(0)]}
            print(f"{who:8s} {view:8s} mean (pred - target) ypr {rows[f'{who} {view}']['mean_ypr']}  MAE {rows[f'{who} {view}']['mae_ypr']}")
    write_result(args.out, {
        "what": "prediction minus distillation target (the teacher's two-read pose) on training crops, per angle, degrees",
        "n": len(samples), "teacher": args.teacher, "student": str(args.student), "rows": rows,
        "command": "python benchmarks/distil_check.py " + " ".join(sys.argv[1:] if argv is None else argv),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
