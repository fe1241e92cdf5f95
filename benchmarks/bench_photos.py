"""Photos: openheadpose beside MediaPipe FaceMesh, recall by face size, and folder throughput.

One command writes ``benchmarks/results/photos.json`` (read by ``make_results.py``):

(a) **per photo**: milliseconds per photo, decode included, model construction excluded,
    median of ``--repeats`` (7) for MediaPipe 0.10.21's FaceMesh (``static_image_mode=True,
    max_num_faces=8``), ``build_estimator()`` (the default pipeline) and the same pipeline with
    the exhaustive detector schedule (``--detector blazeface-tiled``,
    what the default was before issue 32). The three run in turn within each repetition, so the
    machine's load falls on all alike; compare the ratios, not the milliseconds. CPU time
    (``time.process_time``, all threads) is recorded beside wall time: on a machine others
    load, it moves much less than wall time.
(b) **recall by face size**: a face counts as found when a reported head's box overlaps its
    labelled box with IoU >= 0.3.
    * ``group-t1.jpg`` (6 faces, hand-labelled boxes ``benchmarks/data/group-t1_heads.json``)
      shrunk to several scales, so the same faces come at 40-120 px;
    * AFLW2000-dev (983 faces, boxes from the labels: the extent of ``pt3d_68``), per box side.
      Evaluation data: measured here, never tuned on (the schedule's constants come from
      aflw-yaw crops and the shared media photos).
(c) **folder throughput**: wall seconds of ``headpose predict DIR --json OUT -q`` over
    ``--folder-size`` (200) AFLW2000-dev photos, start-up included, median of
    ``--folder-repeats`` (3) runs, locally and with ``--engine ray --num-workers 2``. With
    ``--baseline-src PATH`` (the ``src`` folder of another checkout, e.g. ``git worktree add
    --detach /tmp/base main``) every command also runs with ``PYTHONPATH=PATH``, in turn with
    ours, and the JSON holds both and their ratio (wall, and CPU seconds of the command).

Usage::

    python benchmarks/bench_photos.py                                  # about 5 minutes on 2 cores
    python benchmarks/bench_photos.py --baseline-src /tmp/base/src     # and today's main beside it
    python benchmarks/bench_photos.py --quick                          # smoke test
    python benchmarks/bench_photos.py --parts photos --repeats 31 --out /tmp/photos.json   # (a) only, a minute

Data: ``$OPENHEADPOSE_SHARED`` or ``../shared``. Needs ``mediapipe==0.10.21`` (the ``body``
extra) for the MediaPipe column and ``ray`` for the Ray row (each is left out, with a note,
when missing).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import run_header, shared_root, write_result  # noqa: E402

PHOTOS = ("single_face.jpg", "multi_face.jpg", "group-t1.jpg", "free-mountain-vector-01.jpg")
GROUP_SCALES = (1.0, 0.8, 0.6, 0.45)
AFLW_BINS = (0, 150, 175, 200, 225, 250, 10_000)
MIN_IOU = 0.3
SCHEMA_VERSION = 1
#: The exhaustive schedule (the default before issue 32), for the same-run comparison.
EXHAUSTIVE = {"detector": "blazeface-tiled"}




# --------------------------------------------------------------------------- the tools


class MediaPipeMesh:
    """MediaPipe's FaceMesh solution as the issue measured it: boxes of its landmarks."""

    call = "mediapipe.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=8)"

    def __init__(self):
        import mediapipe as mp

        self.version = mp.__version__
        self.mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=8)

    def boxes(self, rgb: np.ndarray) -> np.ndarray:
        res = self.mesh.process(rgb)
        h, w = rgb.shape[:2]
        out = []
        for lm in res.multi_face_landmarks or []:
            p = np.array([(q.x * w, q.y * h) for q in lm.landmark])
            out.append([*p.min(0), *p.max(0)])
        return np.array(out).reshape(-1, 4)

    def photo(self, path: Path) -> int:
        import cv2

        return len(self.boxes(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)))


class Ours:
    def __init__(self, **kw):
        from openheadpose.inference.builder import build_estimator

        self.est = build_estimator(**kw)

    def boxes(self, rgb: np.ndarray) -> np.ndarray:
        return self.est.predict(rgb)[0].boxes.reshape(-1, 4)

    def photo(self, path: Path) -> int:
        from openheadpose.io.images import read_image

        return len(self.est.predict(read_image(path))[0])


def _tools() -> tuple[dict, dict]:
    tools, notes = {"openheadpose": Ours(), "openheadpose, exhaustive schedule": Ours(**EXHAUSTIVE)}, {}
    try:
        tools = {"mediapipe": MediaPipeMesh(), **tools}
    except ImportError as exc:
        notes["mediapipe"] = f"left out: {exc}"
    return tools, notes


def _found(boxes: np.ndarray, truth: np.ndarray) -> np.ndarray:
    from openheadpose.core.geometry import box_iou

    if len(boxes) == 0:
        return np.zeros(len(truth), bool)
    return box_iou(truth, boxes).max(1) >= MIN_IOU


# --------------------------------------------------------------------------- (a) per photo


def bench_photos(media: Path, tools: dict, repeats: int) -> list[dict]:
    rows = []
    for name in PHOTOS:
        path = media / name
        times = {k: [] for k in tools}
        cpu = {k: [] for k in tools}
        faces = {k: set() for k in tools}
        for t in tools.values():  # warm-up: first-call allocations are not a photo's cost
            t.photo(path)
        for _ in range(repeats):
            for k, t in tools.items():
                t0, c0 = time.perf_counter(), time.process_time()
                n = t.photo(path)
                times[k].append(time.perf_counter() - t0)
                cpu[k].append(time.process_time() - c0)
                faces[k].add(n)
        row = {"photo": name, "repeats": repeats}
        for k in tools:
            row[k] = {"ms": round(1000 * statistics.median(times[k]), 2), "cpu_ms": round(1000 * statistics.median(cpu[k]), 2), "faces": sorted(faces[k])}
        if "mediapipe" in tools:
            row["ratio_to_mediapipe"] = round(row["openheadpose"]["ms"] / row["mediapipe"]["ms"], 2)
            row["cpu_ratio_to_mediapipe"] = round(row["openheadpose"]["cpu_ms"] / row["mediapipe"]["cpu_ms"], 2)
        row["speedup_over_exhaustive"] = round(row["openheadpose, exhaustive schedule"]["ms"] / row["openheadpose"]["ms"], 2)
        rows.append(row)
        print(f"{name:30s} " + "  ".join(f"{k}: {row[k]['ms']:7.1f} ms (CPU {row[k]['cpu_ms']:.1f}) {row[k]['faces']}" for k in tools), flush=True)
    return rows


# --------------------------------------------------------------------------- (b) recall by size


def recall_group(media: Path, tools: dict) -> list[dict]:
    import cv2

    labels = json.loads((ROOT / "benchmarks" / "data" / "group-t1_heads.json").read_text())
    truth = np.array(labels["boxes"], np.float64)
    rgb = cv2.cvtColor(cv2.imread(str(media / "group-t1.jpg")), cv2.COLOR_BGR2RGB)
    rows = []
    for s in GROUP_SCALES:
        img = rgb if s == 1.0 else cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        side = (truth[:, 2] - truth[:, 0]) * s
        row = {"scale": s, "image": [int(img.shape[1]), int(img.shape[0])], "face_px": [round(float(side.min())), round(float(side.max()))], "faces": len(truth)}
        for k, t in tools.items():
            row[k] = int(_found(t.boxes(img), truth * s).sum())
        rows.append(row)
        print(f"group x{s}: faces {row['face_px']} px  " + "  ".join(f"{k}: {row[k]}/6" for k in tools), flush=True)
    return rows


def recall_aflw(shared: Path, tools: dict, limit: int | None) -> dict:
    from openheadpose.datasets.aflw2000 import AFLW2000
    from openheadpose.io.images import read_image

    data = AFLW2000(shared / "data" / "aflw2000-dev")
    sides, found = [], {k: [] for k in tools}
    for i, s in enumerate(data):
        if limit is not None and i >= limit:
            break
        img = read_image(s.image_path)
        box = np.asarray(s.box, np.float64)[None]
        sides.append(float(max(box[0, 2] - box[0, 0], box[0, 3] - box[0, 1])))
        for k, t in tools.items():
            found[k].append(bool(_found(t.boxes(img), box)[0]))
    sides_a = np.array(sides)
    bins = []
    for lo, hi in zip(AFLW_BINS[:-1], AFLW_BINS[1:]):
        m = (sides_a >= lo) & (sides_a < hi)
        bins.append({"side_px": [lo, hi], "faces": int(m.sum()), **{k: int(np.asarray(found[k])[m].sum()) for k in tools}})
    out = {"faces": len(sides), "found": {k: int(sum(v)) for k, v in found.items()}, "by_side": bins}
    print(f"aflw2000-dev: {out['faces']} faces, found " + ", ".join(f"{k} {v}" for k, v in out["found"].items()), flush=True)
    return out


# --------------------------------------------------------------------------- (c) folders


def _predict_seconds(src: Path, folder: Path, out: Path, extra: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the command and its children) of one run."""
    import resource

    env = dict(os.environ, PYTHONPATH=str(src))
    cmd = [sys.executable, "-m", "openheadpose.cli", "predict", str(folder), "--json", str(out), "-q", *extra]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} (PYTHONPATH={src}) failed ({r.returncode}): {r.stderr[-2000:]}")
    return dt, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def bench_folders(shared: Path, size: int, repeats: int, baseline: Path | None, ray: bool) -> list[dict]:
    photos = sorted((shared / "data" / "aflw2000-dev").glob("*.jpg"))[:size]
    codes = {"ours": ROOT / "src"} | ({"baseline": baseline} if baseline else {})
    engines = {"local": []} | ({"ray, 2 workers": ["--engine", "ray", "--num-workers", "2"]} if ray else {})
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-photos-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for p in photos:
            (folder / p.name).symlink_to(p)
        for engine, extra in engines.items():
            secs = {k: [] for k in codes}
            cpus = {k: [] for k in codes}
            for i in range(repeats):
                for k, src in codes.items():
                    wall, cpu = _predict_seconds(src, folder, Path(tmp) / f"{k}-{i}.jsonl", extra)
                    secs[k].append(wall)
                    cpus[k].append(cpu)
            row = {"engine": engine, "photos": len(photos), "repeats": repeats}
            for k in codes:
                med = statistics.median(secs[k])
                row[k] = {"seconds": round(med, 2), "photos_per_s": round(len(photos) / med, 1), "runs": [round(x, 2) for x in secs[k]],
                          "cpu_seconds": round(statistics.median(cpus[k]), 2)}
            if baseline:
                row["speedup"] = round(row["baseline"]["seconds"] / row["ours"]["seconds"], 2)
                row["cpu_speedup"] = round(row["baseline"]["cpu_seconds"] / row["ours"]["cpu_seconds"], 2)
            rows.append(row)
            print(f"folder of {len(photos)}, {engine}: " + "  ".join(f"{k} {row[k]['photos_per_s']} photos/s" for k in codes)
                  + (f"  (x{row['speedup']} wall, x{row['cpu_speedup']} CPU)" if baseline else ""), flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--folder-size", type=int, default=200)
    ap.add_argument("--folder-repeats", type=int, default=3)
    ap.add_argument("--baseline-src", type=Path, help="src folder of another checkout to time beside ours (folder throughput)")
    ap.add_argument("--no-ray", action="store_true", help="leave out the --engine ray row")
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 repeats, 100 AFLW faces, folder of 20, one run")
    ap.add_argument("--parts", nargs="+", choices=("photos", "recall", "folders"), default=["photos", "recall", "folders"],
                    help="which parts to run (a partial run is for a quick look: write it outside results/ with --out)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "photos.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.folder_size, args.folder_repeats = 2, 20, 1
    started = _dt.datetime.now(_dt.timezone.utc)
    t_start = time.perf_counter()
    shared = shared_root("media", "bench_photos")
    tools, notes = _tools()
    doc = run_header("bench_photos", SCHEMA_VERSION, started)
    doc["mediapipe_call"] = MediaPipeMesh.call if "mediapipe" in tools else None
    doc["mediapipe_version"] = tools["mediapipe"].version if "mediapipe" in tools else None
    doc["exhaustive"] = EXHAUSTIVE
    doc["notes"] = notes
    doc["loadavg_before"] = list(os.getloadavg())
    doc["parts"] = args.parts
    if "photos" in args.parts:
        doc["photos"] = bench_photos(shared / "media", tools, args.repeats)
    if "recall" in args.parts:
        doc["recall_group"] = recall_group(shared / "media", tools)
        doc["recall_aflw2000_dev"] = recall_aflw(shared, tools, 100 if args.quick else None)
    ray = not args.no_ray and "folders" in args.parts
    if ray:
        try:
            import ray as _ray  # noqa: F401
        except ImportError:
            ray, doc["notes"]["ray"] = False, "left out: ray is not installed (pip install 'openheadpose[ray]')"
    if "folders" in args.parts:
        doc["folders"] = bench_folders(shared, args.folder_size, args.folder_repeats, args.baseline_src, ray)
    doc["baseline_src"] = str(args.baseline_src) if args.baseline_src else None
    doc["loadavg_after"] = list(os.getloadavg())
    doc["seconds"] = round(time.perf_counter() - t_start, 1)
    write_result(args.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
