"""The Ray engine against the local engine: throughput with 1 and 2 workers, start-up, and equality.

A benchmark, not a test: it asserts nothing; every figure was measured in this run, on
this machine, against the local engine in the same run.

(1) start-up: ``ray.init`` of a local 2-CPU Ray, then per run its overhead: the run's time
    minus its units' own time (summed over actors) / workers -- starting the actors, loading
    the models in each, scheduling, stitching.
(2) throughput: ``--images`` AFLW2000-dev photos (images/s) and ``WolfgangLanger_Pexels.mp4``
    (472 frames, frames/s) through the local engine (``estimator.stream``, as ``headpose
    predict`` runs it) and through :func:`openheadpose.scale.run_ray` with 1 and 2 workers
    (the video whole with 1 worker, in two chunks with 2: the second seeks by the video's index), each run into a fresh folder,
    times from the call to its return (Ray already up; shards written and ids stitched).
(3) ``--check-equality``: the Ray engine (2 workers, 32 images per unit, videos cut into
    120-frame chunks with the default 60-frame warm-up) against the local engine on the whole
    ``aflw2000-dev`` folder and every shared video, record for record: the same
    (source, frame) list, per record the same size, head count and track ids, and for
    photos every number equal to one unit of the digit the JSON keeps; for split videos
    the angle differences (max, 95th percentile, median). ``mismatches`` counts records that
    break any of it (for videos, the angle is not counted: it is reported instead).

Usage:
    python benchmarks/bench_ray.py                      # throughput + start-up, a few minutes on 2 cores
    python benchmarks/bench_ray.py --check-equality     # and the equality check (about 10 more minutes)
    python benchmarks/bench_ray.py --images 50 --out /tmp/ray.json

Data: ``$OPENHEADPOSE_SHARED`` or ``../shared`` (``data/aflw2000-dev`` is evaluation-only
data; here it is only timed and compared, never learnt from). Results go to
``benchmarks/results/ray.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_header, shared_root, write_result

ROOT = Path(__file__).resolve().parents[1]
VIDEO = "WolfgangLanger_Pexels.mp4"
ROUNDING = {"box": 0.0101, "score": 0.00011, "yaw": 0.0011, "pitch": 0.0011, "roll": 0.0011, "rotation": 2.1e-6, "sigma": 0.0011}




def assets_digest() -> str:
    """A digest of the shipped model files (to tell whether one changed during the run)."""
    import hashlib

    h = hashlib.sha1()
    for p in sorted((ROOT / "src" / "openheadpose" / "assets").glob("*.onnx")):
        h.update(p.read_bytes())
    return h.hexdigest()


def local_run(estimator, specs) -> tuple[list[dict], float]:
    """The local engine's records for ``specs`` and its seconds."""
    from openheadpose.scale.ray_engine import expand

    t0 = time.perf_counter()
    expanded, _ = expand(specs)
    records = [r.to_dict() for src in expanded for r in estimator.stream(src) if r.ok]
    return records, time.perf_counter() - t0


def ray_run(specs, workers: int, **kw):
    from openheadpose.scale.ray_engine import iter_records, run_ray

    with tempfile.TemporaryDirectory(prefix="bench-ray-") as out:
        run = run_ray(specs, Path(out) / "shards", num_workers=workers, **kw)
        return list(iter_records(Path(out) / "shards")), run


def compare(ours: list[dict], theirs: list[dict]) -> dict:
    """Record-for-record comparison (see the module docstring)."""
    keys_ours = [(r["source"], r["frame"]) for r in ours]
    keys_theirs = [(r["source"], r["frame"]) for r in theirs]
    out = {"records": len(theirs), "records_ray": len(ours), "same_order": keys_ours == keys_theirs, "mismatches": 0, "angle_diffs": []}
    if keys_ours != keys_theirs:
        out["mismatches"] = len(set(keys_ours) ^ set(keys_theirs))
    by_key = {(r["source"], r["frame"]): r for r in ours}
    for b in theirs:
        a = by_key.get((b["source"], b["frame"]))
        if a is None:
            continue
        bad = (a["width"], a["height"]) != (b["width"], b["height"]) or [h["track_id"] for h in a["heads"]] != [h["track_id"] for h in b["heads"]]
        for ha, hb in zip(a["heads"], b["heads"]):
            out["angle_diffs"].append(max(abs(ha[k] - hb[k]) for k in ("yaw", "pitch", "roll")))
            for k, tol in ROUNDING.items():
                if (ha[k] is None) != (hb[k] is None) or (ha[k] is not None and not np.allclose(ha[k], hb[k], rtol=0, atol=tol)):
                    out.setdefault("beyond_rounding", 0)
                    out["beyond_rounding"] += 1
                    break
        out["mismatches"] += bad
    d = np.array(out.pop("angle_diffs") or [0.0])
    out.update(heads=len(d), angle_diff_max=float(d.max()), angle_diff_p95=float(np.percentile(d, 95)), angle_diff_median=float(np.median(d)))
    out.setdefault("beyond_rounding", 0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=200, help="AFLW2000-dev photos for the images/s figure")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--check-equality", action="store_true", help="also compare record for record on all of aflw2000-dev and the shared videos")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ray.json")
    args = ap.parse_args()
    started = dt.datetime.now()
    shared = shared_root(who="bench_ray")
    photos = sorted((shared / "data" / "aflw2000-dev").glob("*.jpg"))
    video = str(shared / "media" / VIDEO)

    import ray

    from openheadpose.inference.builder import build_estimator

    doc = run_header("bench_ray", 1, started)
    doc["load_average_before"] = os.getloadavg()
    assets = assets_digest()
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             _temp_dir=tempfile.mkdtemp(prefix="r", dir="/tmp"))
    doc["ray_version"] = ray.__version__
    doc["ray_init_seconds"] = time.perf_counter() - t0
    print(f"ray.init: {doc['ray_init_seconds']:.1f} s", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-ray-img-") as tmp:
        folder = Path(tmp)
        for p in photos[: args.images]:
            (folder / p.name).symlink_to(p)
        est = build_estimator("default")
        rows = []
        recs, sec = local_run(est, [str(folder)])
        n_img = len(recs)
        rows.append({"what": "images", "engine": "local", "workers": 1, "items": n_img, "seconds": sec, "per_second": n_img / sec})
        recs, sec = local_run(est, [video])
        n_frames = len(recs)
        rows.append({"what": "video", "engine": "local", "workers": 1, "items": n_frames, "seconds": sec, "per_second": n_frames / sec})
        for w in args.workers:
            _, run = ray_run([str(folder)], w, images_per_unit=16)
            rows.append({"what": "images", "engine": "ray", "workers": w, "items": run.records, "seconds": run.seconds,
                         "per_second": run.records / run.seconds, "work_seconds": run.work_seconds,
                         "overhead_seconds": run.seconds - run.work_seconds / run.workers, "units": run.units})
            chunk = -(-n_frames // w) if w > 1 else 0
            chunk = -(-chunk // 30) * 30  # a multiple of the tracker's detection period
            _, run = ray_run([video], w, video_chunk=chunk)
            rows.append({"what": "video", "engine": "ray", "workers": w, "items": run.records, "seconds": run.seconds,
                         "per_second": run.records / run.seconds, "work_seconds": run.work_seconds,
                         "overhead_seconds": run.seconds - run.work_seconds / run.workers, "units": run.units})
            print(rows[-2:], flush=True)
    for r in rows:
        base = next(x for x in rows if x["what"] == r["what"] and x["engine"] == "local")
        r["vs_local"] = r["per_second"] / base["per_second"]
    doc["throughput"] = rows

    if args.check_equality:
        est = build_estimator("default")
        videos = sorted(str(p) for p in (shared / "media").iterdir() if p.suffix.lower() in (".mp4", ".mov"))
        checks = {}
        for name, specs, kw in (("aflw2000-dev", [str(shared / "data" / "aflw2000-dev")], {}),
                                ("videos", videos, {"video_chunk": 120})):
            theirs, local_sec = local_run(est, specs)
            ours, run = ray_run(specs, 2, **kw)
            c = compare(ours, theirs)
            c.update(units=run.units, ray_seconds=run.seconds, local_seconds=local_sec, errors=len(run.errors),
                     sources=run.sources_ok + run.sources_failed, **{k: v for k, v in kw.items()})
            if name == "videos":
                c["warmup"] = __import__("openheadpose.scale.units", fromlist=["x"]).DEFAULT_WARMUP
                c["per_video"] = {}
                for v in videos:
                    pv = compare([r for r in ours if r["source"] == v], [r for r in theirs if r["source"] == v])
                    c["per_video"][Path(v).name] = {k: pv[k] for k in ("records", "mismatches", "beyond_rounding", "angle_diff_max", "angle_diff_median")}
            checks[name] = c
            print(name, c, flush=True)
        doc["equality"] = checks
    ray.shutdown()
    doc["load_average_after"] = os.getloadavg()
    doc["models_unchanged"] = assets_digest() == assets  # the working tree is shared: a model rewritten mid-run spoils a comparison
    write_result(args.out, doc)


if __name__ == "__main__":
    main()
