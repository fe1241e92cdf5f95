"""Faces per second of the crop networks through ONNX Runtime on this CPU.

Times the network alone (preprocessed crops in, angles out) at batch 1 and 32 with
2 intra-op threads, median of ``--repeats`` timed runs after a warm-up, for our
shipped image networks (``openheadpose/assets/*-synth.onnx``) and, measured in the same
run (both need ``../shared``): the imported FSA-Net capsule (official weights through
``headpose convert``), the reference of the ratios, and the small peers of
``benchmarks/peers`` -- the PyTorch ones (Shaw's b66, 3DDFA_V2 MobileNet-0.5) exported to
ONNX here (``torch.onnx.export``, a dynamic batch axis; needs torch) so that every network
runs on the same runtime; omasaht's FSA-Net as published (two ONNX files with a fixed
batch of 1, both run per face, as its demo does). Size: the ONNX file(s) that run.

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


def _time(run, shape: tuple[int, ...], batch: int, repeats: int) -> float:
    """Faces per second of ``run(x)`` on random ``(batch, *shape)`` float32 input: median of ``repeats`` runs after 3 warm-ups."""
    x = np.random.default_rng(0).uniform(0, 255, (batch, *shape)).astype(np.float32)
    for _ in range(3):
        run(x)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(x)
        ts.append(time.perf_counter() - t0)
    return batch / statistics.median(ts)


def _session_runner(sessions, fixed_batch: bool = False):
    """``run(x)`` through every ONNX Runtime session in turn (one face per call where the graphs fix the batch at 1)."""
    names = [s.get_inputs()[0].name for s in sessions]

    def run(x):
        for sess, name in zip(sessions, names):
            if fixed_batch:
                for b in range(len(x)):
                    sess.run(None, {name: x[b : b + 1]})
            else:
                sess.run(None, {name: x})

    return run


def _torch_peer_to_onnx(peer, path: Path) -> Path:
    """Export a PyTorch peer's network (``peer.net``, NCHW input of ``peer.input_size``) with a dynamic batch axis."""
    import torch

    s = peer.input_size
    with torch.no_grad():
        torch.onnx.export(peer.net.eval(), (torch.zeros(1, 3, s, s),), str(path), input_names=["input"],
                          dynamic_axes={"input": {0: "batch"}}, opset_version=17, dynamo=False)
    return path


def _peers(tmp: Path) -> dict:
    """name -> (sessions, input shape, bytes, fixed batch, colour order) for the peers whose weights (and torch) are here."""
    import onnxruntime as ort

    from benchmarks.peers import PEERS

    weights = SHARED / "weights"
    out = {}
    for name, factory in PEERS.items():
        try:
            peer = factory(weights)
        except (FileNotFoundError, ImportError) as e:  # no ../shared weights, or a PyTorch peer without torch
            print(f"{name}: skipped ({e})", file=sys.stderr)
            continue
        shape = (3, peer.input_size, peer.input_size)
        if hasattr(peer, "sessions"):  # published as ONNX files, a fixed batch of 1
            out[name] = (peer.sessions, shape, sum(p.stat().st_size for p in peer.paths), True, peer.channels)
            continue
        f = _torch_peer_to_onnx(peer, tmp / f"{name}.onnx")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = 2, 1
        out[name] = ([ort.InferenceSession(str(f), opts, providers=["CPUExecutionProvider"])], shape, f.stat().st_size, False, peer.channels)
    return out


def _imported_fsanet(src: Path, tmp: Path) -> Path:
    """The official FSA-Net capsule weights through our importer (``headpose convert``)."""
    from openheadpose.convert import CONVERTERS

    return CONVERTERS["fsanet"](src, tmp / "ref.onnx")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "crop_speed.json")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from benchmarks.common import machine_info
    from openheadpose.inference.backends.onnx import OnnxPoseModel

    # name -> (run, input shape, bytes, input label, key of its AFLW2000-dev evaluation in results/eval)
    entries = {}
    tmp = Path(tempfile.mkdtemp())
    ref = SHARED / "weights" / "fsanet" / "300W_LP_models" / "fsanet_capsule_3_16_2_21_5"
    shipped = [f for f in sorted((ROOT / "src" / "openheadpose" / "assets").glob("*-synth.onnx")) if f.stem != "hhpnet-synth"]
    ours = {"fsanet-capsule (imported, reference)": (_imported_fsanet(ref, tmp), "fsanet-capsule")} if ref.is_dir() else {}
    ours.update({f.stem: (f, f.stem) for f in shipped})
    for name, (f, key) in ours.items():
        m = OnnxPoseModel(f, threads=2)
        p = m.spec.preprocessing
        entries[name] = (_session_runner([m.session]), (p.num_channels, p.input_size, p.input_size), Path(m.path).stat().st_size, f"{p.input_size} {p.channels}", key)
    if (SHARED / "weights").is_dir():
        for name, (sessions, shape, size, fixed, channels) in _peers(tmp).items():
            label = f"{shape[-1]} {channels}" + (f", {len(sessions)} files" if len(sessions) > 1 else "")
            entries[f"{name} (peer)"] = (_session_runner(sessions, fixed), shape, size, label, name)
    rows = []
    for name, (run, shape, size, label, key) in entries.items():
        rows.append({"model": name, "eval_key": key, "input": label, "bytes": size,
                     "faces_per_s_batch1": round(_time(run, shape, 1, args.repeats), 1), "faces_per_s_batch32": round(_time(run, shape, 32, args.repeats), 1)})
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
