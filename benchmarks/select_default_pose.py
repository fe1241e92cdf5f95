"""Choose the default pipeline's pose stage on real photos no network was trained on.

The candidates are pose stages of the same pipeline (BlazeFace + FaceMesh, then
the stage), so the network stages score the same faces (the geometric fit, which
needs FaceMesh's points, a few fewer); paired differences use the faces both scored. They are compared on
the photos whose faces ``headpose synth`` put in its ``val/`` split (chosen by a
hash of the source name): real photos, held out from every network trained on the
synthesized ``train/`` splits, and never AFLW2000 (which stays for the final report).
Two sets, the rule in ``benchmarks/README.md`` ("The selection rule for the next
default"), declared before the candidates it judges were trained:

* **A**: view 0 of each ``--synth`` folder's ``val/`` split -- the real photo with its
  fitted pose -- for the faces fitted to 68 points (``fits.csv`` ``layout`` = ``68``):
  yaw, pitch and roll, mean absolute error over the three;
* **B**: the same folders' held-out source photos (every layout) with AFLW's own yaw
  label, which no fitter of ours made: yaw MAE.

``--default`` names the incumbent; a candidate passes when its paired difference
on A (absolute errors, same faces) has a bootstrap 95 % interval below zero, and
neither the one on B nor the one on A's profiles (true |yaw| >= 60, the faces an
overall mean can trade away; added 2026-12-03) lies above zero; the passing
candidate with the lowest A MAE is chosen. The result goes to ``benchmarks/results/default_pose.json``;
``make_results.py`` shows it.

Usage::

    python benchmarks/select_default_pose.py --synth /work/synth/68/aflw-yaw --synth /work/synth/68/aflw-extra \
        --pose geometric hopenet-synth hopenet-synth68a=/work/runs/hopenet-synth68a/hopenet-synth68a.onnx --default hopenet-synth
    python benchmarks/select_default_pose.py --synth /work/synth/68/aflw-yaw --synth /work/synth/68/aflw-extra \
        --pose hopenet-synth@plain hopenet-synth68m@plain=/work/runs/hopenet-synth68m.onnx --default hopenet-synth@plain  # one read each
    python benchmarks/select_default_pose.py --synth /work/synth/68/aflw-yaw --limit 50   # smoke run
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.evaluate_all import shared_root  # noqa: E402
from openheadpose.evaluation.evaluate import evaluate  # noqa: E402
from benchmarks.common import write_result  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "default_pose.json"
BINS = ((0, 30), (30, 60), (60, 99))
#: A's faces at least this turned (true |yaw|, degrees) must not get worse either: the rule's profile guard.
PROFILE_YAW = 60.0


class HeldOut:
    """The samples of a reader whose ``name`` is in ``names``, as a reader."""

    def __init__(self, reader, names: set[str], what: str = "held-out synth val sources"):
        self.reader, self.names, self.what = reader, names, what

    @property
    def failures(self):
        return self.reader.failures

    @property
    def n_filtered(self):
        return self.reader.n_filtered

    def __iter__(self):
        return (s for s in self.reader if s.name in self.names)

    def summary(self) -> str:
        return f"{self.reader.summary()} ({self.what})"


def _fits(synth: Path) -> list[dict]:
    fits = synth / "fits.csv"
    if not fits.is_file():
        sys.exit(f"select_default_pose: {fits} not found (a `headpose synth` output folder)")
    with open(fits, newline="") as fh:
        return list(csv.DictReader(fh))


def val_sources(synth: Path) -> list[str]:
    """Source image names (``images/imageNNNNN.jpg``) that ``headpose synth`` put in ``val/``."""
    return [r["source"] for r in _fits(synth) if r["split"] == "val"]


def source_root(synth: Path) -> Path:
    """The ``../shared/data`` folder a synth set was made from (``synth.json``'s ``aflw-yaw:PATH`` source)."""
    try:
        kind, _, path = json.loads((synth / "synth.json").read_text())["config"]["source"].partition(":")
    except (OSError, ValueError, KeyError) as exc:
        sys.exit(f"select_default_pose: {synth / 'synth.json'} does not name its source ({exc})")
    if kind != "aflw-yaw":
        sys.exit(f"select_default_pose: {synth} was made from {kind}:{path}; only aflw-yaw-layout photos carry their own yaw label")
    return shared_root() / "data" / Path(path).name


class Chain:
    """Several readers (or lists of samples) as one reader. ``failures`` collects each part's
    after it is read, and takes what ``evaluate`` adds (pictures that do not read)."""

    def __init__(self, parts: list, what: str):
        self.parts, self.what, self.failures = parts, what, []

    @property
    def n_filtered(self):
        return sum(getattr(p, "n_filtered", 0) for p in self.parts)

    def __iter__(self):
        for p in self.parts:
            yield from p
            self.failures.extend(getattr(p, "failures", []))

    def summary(self) -> str:
        return self.what


def paired(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, n_boot: int = 2000) -> dict:
    """Mean of ``b - a`` (absolute errors, same faces) and its bootstrap 95 % interval (0 and [0, 0] without faces)."""
    d = b - a
    if len(d) == 0:
        return {"mean": 0.0, "ci95": [0.0, 0.0], "n": 0}
    idx = rng.integers(0, len(d), (n_boot, len(d)))
    boot = d[idx].mean(1)
    return {"mean": round(float(d.mean()), 3), "ci95": [round(float(x), 3) for x in np.percentile(boot, [2.5, 97.5])], "n": int(len(d))}


def _score(est, dataset, name: str, axes: int) -> dict:
    """Pipeline errors on ``dataset``: MAE of the first ``axes`` angles, by |yaw|, and each face's error."""
    t0 = time.perf_counter()
    res = evaluate(est, dataset, "detect", name=name, progress=True)
    err = np.abs(res.errors()[:, :axes])
    face = err.mean(1)
    true = np.abs(res.true_deg[:, 0])
    out = {
        "n_images": res.n_images,
        "n_scored": res.n_detected,
        "mae": round(float(face.mean()), 3),
        "median": round(float(np.median(face)), 3),
        "by_abs_yaw": {f"{lo}-{hi}": {"n": int(m.sum()), "mae": round(float(face[m].mean()), 3) if m.any() else None}
                       for lo, hi in BINS for m in [(true >= lo) & (true < hi)]},
        "seconds": round(time.perf_counter() - t0, 1),
        "_err": dict(zip(res.names, face)),
        "_yaw": dict(zip(res.names, true)),
    }
    if axes == 3:
        out["mae_ypr"] = [round(float(x), 3) for x in err.mean(0)]
    return out


def decide(runs: dict, default: str, rng: np.random.Generator) -> tuple[dict, str]:
    """Paired differences of each stage against ``default`` on both sets, and the stage the rule chooses."""
    verdicts, passing = {}, []
    for pose in runs:
        if pose == default:
            continue
        v = {}
        for key, src, keep in (("A", "A", None), ("B", "B", None), ("A_profiles", "A", PROFILE_YAW)):
            ref, cand = runs[default][src]["_err"], runs[pose][src]["_err"]
            common = sorted(n for n in set(ref) & set(cand) if keep is None or runs[default][src]["_yaw"][n] >= keep)
            v[key] = paired(np.array([ref[n] for n in common]), np.array([cand[n] for n in common]), rng)
        v["passes"] = bool(v["A"]["ci95"][1] < 0 and v["B"]["ci95"][0] <= 0 and v["A_profiles"]["ci95"][0] <= 0)
        verdicts[pose] = v
        if v["passes"]:
            passing.append(pose)
    return verdicts, min(passing, key=lambda p: runs[p]["A"]["mae"]) if passing else default


READS = {"plain": False, "both": True}


def _estimator(spec: str):
    """``(name, HeadPoseEstimator)`` for a registered pose stage or ``NAME=FILE.onnx`` (an exported candidate).
    ``NAME@plain`` reads each face once, ``NAME@both`` twice (plain and mirrored); without it, the stage's default."""
    from openheadpose.inference.pipeline import HeadPoseEstimator
    from openheadpose.inference.pose_stages import NetworkPose

    name, _, weights = spec.partition("=")
    base, _, reads = name.partition("@")
    if reads and reads not in READS:
        raise SystemExit(f"select_default_pose: {spec}: @{reads} is not one of @{', @'.join(READS)}")
    if not (weights or reads):
        return name, HeadPoseEstimator(pose=name)
    pose = NetworkPose("onnx", weights=weights) if weights else NetworkPose(base)
    if reads:
        pose.mirror = READS[reads]
    return name, HeadPoseEstimator(pose=pose)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synth", type=Path, required=True, action="append",
                    help="a `headpose synth aflw-yaw:...` output folder (repeatable; its fits.csv says the split)")
    ap.add_argument("--pose", nargs="+", default=["geometric", "hopenet-synth"],
                    help="pose stages to compare: registered names, or NAME=FILE.onnx for a candidate not in the package; "
                         "NAME@plain reads each face once, NAME@both twice (plain and mirrored)")
    ap.add_argument("--default", help="the incumbent default the others must beat (default: the package's)")
    ap.add_argument("--limit", type=int, help="first N held-out faces of each folder only (smoke runs)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    from openheadpose.assets import DEFAULT_POSE_NETWORK
    from openheadpose.datasets.aflw_yaw import AFLWYaw
    from openheadpose.synth.build import fitted_photos

    default = args.default or DEFAULT_POSE_NETWORK
    if default not in [p.partition("=")[0] for p in args.pose]:
        ap.error(f"--default {default} must be one of --pose ({', '.join(args.pose)})")
    set_a = Chain([fitted_photos(f, "val")[: args.limit] for f in args.synth], "held-out photos with their 68-point fitted pose")
    set_b = Chain([HeldOut(AFLWYaw(source_root(f)), set(val_sources(f)[: args.limit])) for f in args.synth], "held-out photos with AFLW's yaw")
    runs = {}
    for spec in args.pose:
        pose, est = _estimator(spec)
        runs[pose] = {"A": _score(est, set_a, "A: fitted pose", 3), "B": _score(est, set_b, "B: AFLW yaw", 1)}
        a, b = runs[pose]["A"], runs[pose]["B"]
        print(f"{pose:18s} A {a['n_scored']}/{a['n_images']} MAE {a['mae']:.2f} (ypr {a['mae_ypr']})   "
              f"B {b['n_scored']}/{b['n_images']} yaw MAE {b['mae']:.2f}")

    verdicts, chosen = decide(runs, default, np.random.default_rng(0))
    for pose, v in verdicts.items():
        print(f"{pose} - {default}: A {v['A']['mean']:+.2f} [{v['A']['ci95'][0]:+.2f}, {v['A']['ci95'][1]:+.2f}] on {v['A']['n']}  "
              f"B {v['B']['mean']:+.2f} [{v['B']['ci95'][0]:+.2f}, {v['B']['ci95'][1]:+.2f}] on {v['B']['n']}  "
              f"A |yaw|>={PROFILE_YAW:g} {v['A_profiles']['mean']:+.2f} [{v['A_profiles']['ci95'][0]:+.2f}, {v['A_profiles']['ci95'][1]:+.2f}] "
              f"on {v['A_profiles']['n']}  "
              f"{'passes' if v['passes'] else 'does not pass'}")
    for r in runs.values():
        for s in r.values():
            del s["_err"], s["_yaw"]
    doc = {
        "what": "default pipeline (BlazeFace + FaceMesh + pose stage) on real photos held out as headpose synth's val sources, detector crops. "
                "A: view 0 (the photo, its 68-point fitted pose) of faces fitted to 68 points, MAE over yaw/pitch/roll; "
                "B: the held-out photos with AFLW's yaw label, yaw MAE",
        "rule": "a stage replaces the default when its paired difference on A has a bootstrap 95 % interval below zero and neither the one "
                f"on B nor the one on A's faces with |yaw| >= {PROFILE_YAW:g} lies above zero; among those, the lowest A MAE "
                "(benchmarks/README.md, declared before the candidates were trained)",
        "synth": [str(f) for f in args.synth],
        "default": default,
        "pose": runs,
        "paired_difference_deg": verdicts,
        "chosen": chosen,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/select_default_pose.py " + " ".join(f"--synth {f}" for f in args.synth) + " "
                   + " ".join(["--pose", *args.pose, "--default", default]) + (f" --limit {args.limit}" if args.limit else ""),
    }
    write_result(args.out, doc)
    print(f"chosen: {chosen}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
