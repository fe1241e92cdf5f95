"""Evaluate our default pipeline (and its geometric pose stage), the imported seed systems and every peer on AFLW2000-dev, same images.

Seed systems (FSA-Net, HopelessNet) go through ``openheadpose.convert`` and run as ONNX;
peers through the adapters in ``benchmarks/peers``.

Each (model, crop) pair writes ``benchmarks/results/eval/aflw2000-dev_<model>_<crop>.json``
holding the numbers, the crop recipe, the image counts and the command that
reproduces that row; ``make_results.py`` turns them into ``docs/RESULTS.md``.

Our pipeline and our shipped image networks read each face twice (the crop and its mirror,
averaged: the project's default, ``NetworkPose(mirror=True)``); ``default-single`` and
``<network>-single`` are the same with one read (``--no-mirror``); ``default-first-look`` is the
default without its second look where no face was kept (``HeadPoseEstimator(second_look=False)``);
``default-axis-aligned`` reads the recipe's axis-aligned crop instead of the face turned upright
(``NetworkPose(upright=False)``). Seed systems and peers are
read once, as published.

Faces are cut by each model's own recipe: ``gt`` from the labelled landmarks,
``detect`` from our default detector's box (BlazeFace + tiles), which runs once per
image and is shared by every crop model, so all see the same detections.

Usage::

    python benchmarks/evaluate_all.py                      # everything (about 15 min on 2 cores)
    python benchmarks/evaluate_all.py --only shaw-b66 --crop gt
    python benchmarks/evaluate_all.py --list
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `benchmarks.peers`

from openheadpose.datasets.aflw2000 import AFLW2000  # noqa: E402
from openheadpose.evaluation.evaluate import evaluate  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "eval"


def shared_root() -> Path:
    env = os.environ.get("OPENHEADPOSE_SHARED")
    root = Path(env) if env else ROOT.parent / "shared"
    if not (root / "data" / "aflw2000-dev").is_dir():
        sys.exit(f"evaluate_all: {root / 'data' / 'aflw2000-dev'} not found (set OPENHEADPOSE_SHARED)")
    return root


class CachedDetector:
    """Runs the default detector once per image (keyed by pixel content) for all crop models."""

    def __init__(self):
        from openheadpose.inference.detectors import DETECTORS
        from openheadpose.inference.pipeline import default_detector

        self.name = default_detector()
        self.detector = DETECTORS.create(self.name)
        self.cache: dict = {}

    def __call__(self, image):
        import hashlib

        key = hashlib.blake2b(image.tobytes(), digest_size=16).digest()
        if key not in self.cache:
            self.cache[key] = self.detector(image)
        return self.cache[key]


def _imported(kind: str, src: Path, tmp: Path):
    """A seed system's original checkpoint through our importer, run as ONNX like a user would."""
    from openheadpose.convert import CONVERTERS
    from openheadpose.inference.backends.onnx import OnnxPoseModel

    return OnnxPoseModel(CONVERTERS[kind](src, tmp / f"{src.stem}.onnx"), threads=2)


def models(shared: Path, tmp: Path) -> dict:
    """name -> zero-argument factory returning a model for ``evaluate``."""
    from benchmarks.peers import PEERS
    from openheadpose.inference.pipeline import HeadPoseEstimator

    w = shared / "weights"
    fs = w / "fsanet" / "300W_LP_models"
    from openheadpose.assets import DEFAULT_POSE_NETWORK
    from openheadpose.inference.pose_stages import NetworkPose

    out = {
        "default": HeadPoseEstimator,
        "default-single": lambda: HeadPoseEstimator(pose=NetworkPose(DEFAULT_POSE_NETWORK, mirror=False)),
        "default-geometric": lambda: HeadPoseEstimator(pose="geometric"),
        "default-first-look": lambda: HeadPoseEstimator(second_look=False),
        "default-axis-aligned": lambda: HeadPoseEstimator(pose=NetworkPose(DEFAULT_POSE_NETWORK, upright=False)),
        "fsanet-capsfusion": lambda: _imported("fsanet", fs, tmp),
        "fsanet-capsule": lambda: _imported("fsanet", fs / "fsanet_capsule_3_16_2_21_5", tmp),
        "fsanet-var-capsule": lambda: _imported("fsanet", fs / "fsanet_var_capsule_3_16_2_21_5", tmp),
        "fsanet-nos-capsule": lambda: _imported("fsanet", fs / "fsanet_noS_capsule_3_16_2_192_5", tmp),
        "hopelessnet-squeezenet1_0": lambda: _imported("hopenet", w / "hopelessnet" / "squeezenet_1_0.pkl", tmp),
        "hopelessnet-squeezenet1_1": lambda: _imported("hopenet", w / "hopelessnet" / "squeezenet_1_1.pkl", tmp),
    }
    for name, factory in PEERS.items():
        out[name] = (lambda f=factory: f(w))
    # our image networks trained on `headpose synth` data and shipped in the package
    from openheadpose.inference.backends.onnx import OnnxPoseModel

    for f in sorted((ROOT / "src" / "openheadpose" / "assets").glob("*-synth*.onnx")):
        if f.stem != "hhpnet-synth":  # a keypoint network: benchmarks/eval_hhpnet.py
            out[f.stem] = (lambda f=f: OnnxPoseModel(f, threads=2))
            out[f"{f.stem}-single"] = out[f.stem]
    return out


def reads_twice(name: str) -> bool | None:
    """``mirror`` for ``evaluate``: the project's default (``None``) for our pipeline and shipped networks,
    one read for their ``-single`` rows, the seed systems and the peers (as published)."""
    if name.endswith("-single"):
        return False
    ours = name.startswith("default") or name.endswith("-synth")
    return None if ours else False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", help="model names (default: all)")
    ap.add_argument("--crop", nargs="*", choices=["gt", "detect"], default=["gt", "detect"])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    import tempfile

    shared = shared_root()
    tmp = Path(tempfile.mkdtemp(prefix="openheadpose-eval-"))
    zoo = models(shared, tmp)
    if args.list:
        print("\n".join(zoo))
        return 0
    names = args.only or list(zoo)
    unknown = [n for n in names if n not in zoo]
    if unknown:
        sys.exit(f"evaluate_all: unknown model(s) {unknown}; choices: {', '.join(zoo)}")
    args.out.mkdir(parents=True, exist_ok=True)
    detector = CachedDetector()
    for name in names:
        model = zoo[name]()
        for crop in args.crop:
            t0 = time.perf_counter()
            data = AFLW2000(shared / "data" / "aflw2000-dev")
            kw = {"detector": detector, "mirror": reads_twice(name)} if not name.startswith("default") else {}
            res = evaluate(model, data, crop, name="aflw2000-dev", batch_size=args.batch_size, progress=True, **kw)
            d = res.to_dict()
            d["model_key"] = name
            d["seconds"] = round(time.perf_counter() - t0, 1)
            d["date"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            d["detector"] = detector.name if crop == "detect" else None
            d["command"] = f"python benchmarks/evaluate_all.py --only {name} --crop {crop}"
            path = args.out / f"aflw2000-dev_{name}_{crop}.json"
            tmp = path.with_suffix(".part")
            tmp.write_text(json.dumps(d, indent=1, allow_nan=True))
            tmp.replace(path)
            m = d["mae"]
            print(f"{name:28s} {crop:6s} n={d['n_detected']:4d}/{d['n_images']}  MAE {m['yaw']:.2f} {m['pitch']:.2f} {m['roll']:.2f} -> {m['mean']:.2f}  ({d['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
