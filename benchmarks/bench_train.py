"""Training throughput of one model per family: images per second of forward + loss + backward + optimizer step.

For every model family in the registry (the name's part before the first '-':
fsanet, ssrnet, hopenet, hhpnet, heatmap, realheponet, rot6d, ...) one
representative is timed on this CPU with ``--threads`` intra-op threads (2 by
default), batch 32, float32, Adam, the codec's own training loss:

* the batch is made once by :class:`openheadpose.training.data.PoseDataset` from
  synthetic 160x160 faces with AFLW-style landmarks and full labels (so keypoint
  models get keypoints), default augmentation -- the real input shapes and targets;
* ``--warmup`` steps (3) are run untimed, then steps are timed until both
  ``--min-steps`` (5) and ``--min-seconds`` (3 s) are reached;
* ``images_per_s`` = batch / median step time. Data loading is not in it; it is
  reported on its own as ``data_items_per_s`` (one process making training items
  from in-memory pictures: crop, augmentation, preprocessing, target encoding).

The machine's 1-minute load average is recorded before and after: on a shared
machine other processes slow both numbers, and two threads contend badly when
the cores are busy.

Usage:
    python benchmarks/bench_train.py                         # every family, 2 threads
    python benchmarks/bench_train.py --models rot6d-tiny --min-seconds 1 --out /tmp/t.json
    python benchmarks/bench_train.py --device cuda           # a GPU (float32; not the CPU table)
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package
from benchmarks.common import run_header, write_result  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_VERSION = 1

#: The model timed for each family (a family not listed: its first registered name).
REPRESENTATIVE = {
    "fsanet": "fsanet-capsule",
    "ssrnet": "ssrnet-mt",
    "hopenet": "hopenet-resnet18",
    "hhpnet": "hhpnet",
    "heatmap": "heatmap-cnn",
    "realheponet": "realheponet",
    "rot6d": "rot6d-mobilenetv3small",
}


def machine_info() -> dict[str, Any]:
    """bench_speed's machine facts plus the PyTorch build and GPU."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.common import machine_info as base
    from benchmarks.common import version as _version

    return {**base(), "torch": torch.__version__, "torchvision": _version("torchvision"),
            "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def families() -> dict[str, str]:
    """family -> the model timed for it."""
    from openheadpose.models import list_models

    out: dict[str, str] = {}
    for name in list_models():
        fam = name.split("-")[0]
        if fam not in out:
            want = REPRESENTATIVE.get(fam)
            out[fam] = want if want in list_models() else name
    return out


def synthetic_samples(n: int, seed: int = 0):
    """Faces with AFLW 21-point landmarks and full labels (pixels are noise around a bright disc)."""
    from openheadpose.datasets.base import PoseSample
    from openheadpose.core.rotation import euler_to_matrix

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:160, :160]
    out = []
    base = np.array([[55, 60], [65, 57], [75, 60], [85, 60], [95, 57], [105, 60], [62, 72], [68, 72], [74, 72], [86, 72], [92, 72],
                     [98, 72], [45, 85], [72, 95], [80, 98], [88, 95], [115, 85], [68, 112], [80, 114], [92, 112], [80, 130]], float)
    for i in range(n):
        img = rng.integers(0, 80, (160, 160, 3), dtype=np.uint8)
        img[(xx - 80) ** 2 + (yy - 90) ** 2 < 50**2] += 120
        e = np.array([rng.uniform(-80, 80), rng.uniform(-40, 40), rng.uniform(-30, 30)])
        lm = base + rng.normal(0, 2, base.shape)
        out.append(PoseSample(f"s{i}", euler_to_matrix(*e), e, np.array([30.0, 40, 130, 140]), landmarks=lm, image=img))
    return out


def bench_model(name: str, batch: int, device: str, warmup: int, min_steps: int, min_seconds: float) -> dict[str, Any]:
    import torch

    from openheadpose.models import create_model
    from openheadpose.training.data import PoseDataset, default_augmentation
    from openheadpose.training.losses import make_loss

    torch.manual_seed(0)
    model = create_model(name).to(device).train()
    spec = model.spec
    ds = PoseDataset(synthetic_samples(batch), spec, default_augmentation(), seed=0)
    t0 = time.perf_counter()
    items = [ds[(0, i)] for i in range(batch)]
    data_s = time.perf_counter() - t0
    b = {k: torch.from_numpy(np.stack([it[k] for it in items])).to(device) for k in items[0]}
    loss_fn = make_loss(spec.codec)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        out = model(b["input"])
        loss = loss_fn(out, b).total()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device != "cpu":
            torch.cuda.synchronize()
        return float(loss.detach())

    for _ in range(warmup):
        step()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_steps or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    pre = spec.preprocessing
    return {
        "family": name.split("-")[0],
        "model": name,
        "codec": spec.codec,
        "input": f"{pre.input_size} {pre.channels}",
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
        "batch": batch,
        "steps": len(times),
        "step_ms_median": round(1000 * med, 2),
        "step_ms_min": round(1000 * min(times), 2),
        "images_per_s": round(batch / med, 1),
        "data_items_per_s": round(batch / data_s, 1),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Training throughput of one model per family.", epilog="example: python benchmarks/bench_train.py --min-seconds 1")
    p.add_argument("--models", nargs="*", default=None, help="time these models instead of one per family")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--min-steps", type=int, default=5)
    p.add_argument("--min-seconds", type=float, default=3.0)
    p.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "train_speed.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    started = _dt.datetime.now(_dt.timezone.utc)
    picks = {m: m for m in args.models} if args.models else families()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result: dict[str, Any] = {
        **run_header("train_speed", SCHEMA_VERSION, started),
        "settings": {
            "batch": args.batch,
            "threads": args.threads,
            "device": args.device,
            "dtype": "float32",
            "optimizer": "adam",
            "warmup_steps": args.warmup,
            "min_steps": args.min_steps,
            "min_seconds": args.min_seconds,
            "what": "forward + codec loss + backward + Adam step on one fixed batch; data loading excluded (data_items_per_s)",
        },
        "load_average_1min_before": load_before,
        "results": [],
    }
    for fam, name in picks.items():
        print(f"{name} ...", file=sys.stderr, flush=True)
        result["results"].append(bench_model(name, args.batch, args.device, args.warmup, args.min_steps, args.min_seconds))
    result["load_average_1min_after"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result["elapsed_s"] = round((_dt.datetime.now(_dt.timezone.utc) - started).total_seconds(), 1)
    print(f"\nopenheadpose training throughput  {result['date']}  {result['machine']['cpu_model']}  {args.threads} threads  batch {args.batch}  {args.device}")
    print(f"load average (1 min) before/after: {load_before} / {result['load_average_1min_after']}")
    print(f"{'model':26s} {'codec':16s} {'input':16s} {'params M':>8s} {'img/s':>8s} {'step ms':>9s} {'data items/s':>13s}")
    for r in result["results"]:
        print(f"{r['model']:26s} {r['codec']:16s} {r['input']:16s} {r['params_m']:8.3f} {r['images_per_s']:8.1f} {r['step_ms_median']:9.1f} {r['data_items_per_s']:13.1f}")
    write_result(args.out, result, indent=2)


if __name__ == "__main__":
    main()
