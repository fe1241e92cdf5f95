"""Speed and memory of the head-pose pipeline on the CPU.

Measures, on whatever machine it runs on:

(a) stage times: median milliseconds of ``detect`` per image and of
    ``landmarks`` and ``pose`` per face, on three photos, for each pipeline;
(b) end-to-end frames per second on a 640x360 video (decode, BGR->RGB,
    ``predict``), next to the decode-only speed of the same file measured in
    the same run, so the ratio survives a change of machine better than fps;
(c) peak resident memory of a fresh process that imports openheadpose, builds
    the estimator and runs the video, next to a bare ``import numpy, cv2``
    process as the reference.

Usage:
    python benchmarks/bench_speed.py                 # full run, a few minutes on 2 cores
    python benchmarks/bench_speed.py --quick         # smoke test: 3 repeats, 100 frames
    python benchmarks/bench_speed.py --repeats 20 --out /tmp/speed.json

The media come from the shared folder: ``$OPENHEADPOSE_SHARED`` or ``../shared``
next to the repository root. Numbers go to a table on stdout and to ``--out``
as JSON (read by ``benchmarks/make_results.py``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from openheadpose.assets import DEFAULT_POSE_NETWORK

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package
from benchmarks.common import run_header, write_result  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGES = ("group-t1.jpg", "multi_face.jpg", "single_face.jpg")
VIDEO = "WolfgangLanger_Pexels.mp4"
WARMUP = 2
SCHEMA_VERSION = 1

# name -> HeadPoseEstimator keyword arguments. "default" is what HeadPoseEstimator() builds
# (BlazeFace short + full + tiles, FaceMesh with refined eyes/lips, our default network on the
# landmark-placed crop); "geometric" swaps in the rigid fit of the landmarks.
PIPELINES: dict[str, dict[str, str]] = {
    "default": {"detector": "blazeface", "landmarker": "facemesh", "pose": DEFAULT_POSE_NETWORK},
    "geometric": {"detector": "blazeface", "landmarker": "facemesh", "pose": "geometric"},
    "fast": {"detector": "blazeface-short", "landmarker": "facemesh-fast", "pose": DEFAULT_POSE_NETWORK},
}


# --------------------------------------------------------------------------- helpers


def shared_dir() -> Path:
    """The shared data folder, or exit with a message that says where it was looked for."""
    env = os.environ.get("OPENHEADPOSE_SHARED")
    root = Path(env) if env else REPO_ROOT.parent / "shared"
    media = root / "media"
    missing = [n for n in (*IMAGES, VIDEO) if not (media / n).is_file()]
    if missing:
        how = "$OPENHEADPOSE_SHARED" if env else "../shared next to the repository (set OPENHEADPOSE_SHARED to override)"
        sys.exit(f"bench_speed: media not found: {', '.join(missing)} missing from {media} (looked in {how})")
    return media


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _ms(x: float | None) -> float | None:
    return None if x is None else round(1000.0 * x, 3)


def _estimator(name: str):
    from openheadpose import HeadPoseEstimator

    return HeadPoseEstimator(**PIPELINES[name])


# --------------------------------------------------------------------------- (a) stages


def bench_stages(media: Path, repeats: int) -> list[dict[str, Any]]:
    """Median stage times per image (detect) and per face (landmarks, pose).

    ``landmarks`` covers FaceMesh on every detection plus the merge of duplicates;
    it is divided by the number of heads finally reported, like ``pose``.
    """
    import cv2

    rows = []
    for name, kwargs in PIPELINES.items():
        est = _estimator(name)
        for image_name in IMAGES:
            bgr = cv2.imread(str(media / image_name))
            if bgr is None:
                sys.exit(f"bench_speed: OpenCV could not read {media / image_name}")
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            for _ in range(WARMUP):
                est.predict(rgb)
            detect, landmarks, pose, total, faces = [], [], [], [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                heads, t = est.predict(rgb)
                total.append(time.perf_counter() - t0)
                n = len(heads)
                faces.append(n)
                detect.append(t["detect"])
                if n:
                    landmarks.append(t["landmarks"] / n)
                    pose.append(t["pose"] / n)
            rows.append(
                {
                    "pipeline": name,
                    **kwargs,
                    "image": image_name,
                    "width": int(rgb.shape[1]),
                    "height": int(rgb.shape[0]),
                    "faces": int(statistics.median(faces)),
                    "faces_stable": len(set(faces)) == 1,
                    "repeats": repeats,
                    "detect_ms": _ms(_median(detect)),
                    "landmarks_ms_per_face": _ms(_median(landmarks)),
                    "pose_ms_per_face": _ms(_median(pose)),
                    "total_ms": _ms(_median(total)),
                }
            )
    return rows


# --------------------------------------------------------------------------- (b) video


def decode_only(video: Path, max_frames: int | None) -> dict[str, Any]:
    """Seconds to decode the video with ``cv2.VideoCapture`` alone (no colour conversion)."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        sys.exit(f"bench_speed: OpenCV could not open {video}")
    n = 0
    t0 = time.perf_counter()
    while max_frames is None or n < max_frames:
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    seconds = time.perf_counter() - t0
    cap.release()
    return {"frames": n, "seconds": round(seconds, 4), "fps": round(n / seconds, 2)}


def run_video(est, video: Path, max_frames: int | None) -> dict[str, Any]:
    """Decode -> BGR->RGB -> ``est.predict`` per frame; wall time over all frames."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        sys.exit(f"bench_speed: OpenCV could not open {video}")
    n = one = 0
    counts: dict[int, int] = {}
    t0 = time.perf_counter()
    while max_frames is None or n < max_frames:
        ok, bgr = cap.read()
        if not ok:
            break
        heads, _ = est.predict(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        n += 1
        counts[len(heads)] = counts.get(len(heads), 0) + 1
        one += len(heads) == 1
    seconds = time.perf_counter() - t0
    cap.release()
    return {
        "frames": n,
        "seconds": round(seconds, 4),
        "fps": round(n / seconds, 2) if seconds else None,
        "one_head_share": round(one / n, 4) if n else None,
        "heads_histogram": {str(k): v for k, v in sorted(counts.items())},
    }


def bench_video(media: Path, max_frames: int | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Decode-only reference, then each pipeline end to end, all in this process."""
    import cv2

    video = media / VIDEO
    decode_only(video, max_frames)  # first pass warms the OS file cache; not reported
    ref = decode_only(video, max_frames)
    rows = []
    for name, kwargs in PIPELINES.items():
        est = _estimator(name)
        cap = cv2.VideoCapture(str(video))
        ok, bgr = cap.read()
        cap.release()
        if ok:  # model warm-up on the first frame, outside the timed loop
            for _ in range(WARMUP):
                est.predict(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        r = run_video(est, video, max_frames)
        r["time_ratio_vs_decode"] = round(r["seconds"] / ref["seconds"], 2) if ref["seconds"] else None
        rows.append({"pipeline": name, **kwargs, **r})
    return ref, rows


# --------------------------------------------------------------------------- (c) memory

# The reference child: a bare `import numpy, cv2`, then the same two readings as peak_rss_kib().
_REFERENCE_CHILD = """\
import numpy, cv2
import json, re, resource
hwm = re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())
print(json.dumps({"ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "vmhwm_kib": int(hwm.group(1)) if hwm else None}))
"""


def peak_rss_kib() -> dict[str, int | None]:
    """This process's peak resident set: ``ru_maxrss`` (KiB on Linux) and, as a check, VmHWM."""
    import resource

    hwm = None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except OSError:
        pass
    return {"ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "vmhwm_kib": hwm}


def _child_memory(video: str, max_frames: int | None, pipeline: str) -> None:
    """Body of the memory subprocess: import, build, run the video, print peak RSS as JSON."""
    import openheadpose  # noqa: F401  (the import is part of what is measured)

    r = run_video(_estimator(pipeline), Path(video), max_frames)
    print(json.dumps({**peak_rss_kib(), "frames": r["frames"]}))


def _run_child(cmd: list[str]) -> dict[str, Any]:
    # Linux carries ru_maxrss across exec: a child spawned straight from this (by now
    # large) process would report at least *our* peak. Going through /bin/sh, which forks
    # before running the command, hands the child the small shell's peak instead.
    if os.path.exists("/bin/sh"):
        cmd = ["/bin/sh", "-c", '"$@"; exit $?', "sh", *cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
    if p.returncode != 0:
        sys.exit(f"bench_speed: memory subprocess failed ({shlex.join(cmd)}):\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def bench_memory(media: Path, max_frames: int | None, pipeline: str = "default") -> dict[str, Any]:
    """Peak RSS of fresh interpreters: the pipeline on the video, and bare ``import numpy, cv2``."""
    if sys.platform != "linux":
        print("bench_speed: ru_maxrss is read as KiB, which only holds on Linux", file=sys.stderr)
    ref = _run_child([sys.executable, "-c", _REFERENCE_CHILD])
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_child-memory", str(media / VIDEO), "--pipeline", pipeline]
    if max_frames is not None:
        cmd += ["--max-frames", str(max_frames)]
    run = _run_child(cmd)
    mib_run, mib_ref = run["ru_maxrss_kib"] / 1024, ref["ru_maxrss_kib"] / 1024
    return {
        "pipeline": pipeline,
        "frames": run["frames"],
        "peak_rss_mib": round(mib_run, 1),
        "reference_peak_rss_mib": round(mib_ref, 1),
        "reference": "python -c 'import numpy, cv2'",
        "excess_over_reference_mib": round(mib_run - mib_ref, 1),
        "vmhwm_mib": None if run["vmhwm_kib"] is None else round(run["vmhwm_kib"] / 1024, 1),
        "reference_vmhwm_mib": None if ref["vmhwm_kib"] is None else round(ref["vmhwm_kib"] / 1024, 1),
    }


# --------------------------------------------------------------------------- report


def _fmt(x: float | None, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def print_report(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"\nopenheadpose speed  {result['date']}  {m['cpu_model'] or m['processor']}  "
          f"{m['cpus_usable']}/{m['cpu_count']} CPUs  python {m['python']}")
    print(f"\n(a) stage times, median of {result['settings']['repeats']} runs after {WARMUP} warm-ups")
    print(f"{'pipeline':<9} {'image':<17} {'size':>9} {'faces':>5} {'detect ms':>10} "
          f"{'lmk ms/face':>12} {'pose ms/face':>13} {'total ms':>9}")
    for r in result["stages"]:
        print(f"{r['pipeline']:<9} {r['image']:<17} {r['width']:>4}x{r['height']:<4} {r['faces']:>5} "
              f"{_fmt(r['detect_ms']):>10} {_fmt(r['landmarks_ms_per_face']):>12} "
              f"{_fmt(r['pose_ms_per_face']):>13} {_fmt(r['total_ms']):>9}")
    d = result["video_decode"]
    print(f"\n(b) video {VIDEO}: decode only {d['fps']:.1f} fps over {d['frames']} frames (reference)")
    print(f"{'pipeline':<9} {'frames':>6} {'fps':>7} {'1-head share':>13} {'time / decode':>14}")
    for r in result["video"]:
        print(f"{r['pipeline']:<9} {r['frames']:>6} {_fmt(r['fps']):>7} {_fmt(r['one_head_share'], '.3f'):>13} "
              f"{_fmt(r['time_ratio_vs_decode']):>13}x")
    mem = result["memory"]
    print(f"\n(c) peak RSS, fresh process ({mem['pipeline']} pipeline, {mem['frames']} frames): "
          f"{mem['peak_rss_mib']:.1f} MiB; reference `import numpy, cv2`: {mem['reference_peak_rss_mib']:.1f} MiB "
          f"(+{mem['excess_over_reference_mib']:.1f} MiB); VmHWM check {_fmt(mem['vmhwm_mib'])} / "
          f"{_fmt(mem['reference_vmhwm_mib'])} MiB")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python benchmarks/bench_speed.py --quick --out /tmp/speed.json",
    )
    p.add_argument("--repeats", type=int, default=10, help="timed runs per image for the stage times (default 10)")
    p.add_argument("--max-frames", type=int, default=None, help="stop the video after this many frames (default: all)")
    p.add_argument("--quick", action="store_true", help="smoke test: 3 repeats and the first 100 video frames")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "speed.json",
                   help="JSON file for the numbers (default benchmarks/results/speed.json)")
    # Internal: the memory subprocess re-enters this script.
    p.add_argument("--_child-memory", dest="child_memory", metavar="VIDEO", help=argparse.SUPPRESS)
    p.add_argument("--pipeline", choices=sorted(PIPELINES), default="default", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = 3
        args.max_frames = 100 if args.max_frames is None else min(args.max_frames, 100)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child_memory:
        _child_memory(args.child_memory, args.max_frames, args.pipeline)
        return
    media = shared_dir()
    started = _dt.datetime.now(_dt.timezone.utc)
    result: dict[str, Any] = {
        **run_header("speed", SCHEMA_VERSION, started),
        "settings": {
            "repeats": args.repeats,
            "warmup": WARMUP,
            "quick": args.quick,
            "max_frames": args.max_frames,
            "images": list(IMAGES),
            "video": VIDEO,
            "pipelines": PIPELINES,
        },
    }
    print(f"(a) stage times on {len(IMAGES)} photos ...", file=sys.stderr, flush=True)
    result["stages"] = bench_stages(media, args.repeats)
    print("(b) video ...", file=sys.stderr, flush=True)
    result["video_decode"], result["video"] = bench_video(media, args.max_frames)
    print("(c) memory (subprocesses) ...", file=sys.stderr, flush=True)
    result["memory"] = bench_memory(media, args.max_frames)
    result["elapsed_s"] = round((_dt.datetime.now(_dt.timezone.utc) - started).total_seconds(), 1)

    print_report(result)
    write_result(args.out, result, indent=2)


if __name__ == "__main__":
    main()
