"""Video benchmark: speed, steadiness and identity of our engine on video, next to MediaPipe.

A benchmark, not a test: it asserts nothing, and every figure it reports is
either a ratio or was measured in this one run, on this machine.

(1) throughput on ``media/WolfgangLanger_Pexels.mp4`` (472 frames, 640x360): all
    frames are decoded into memory first, then each engine runs over the same RGB
    frames -- our engine (tracking build when it exists), our per-frame engine
    (``build_estimator(track=False)``), MediaPipe FaceMesh in tracking mode
    (``static_image_mode=False``) and in static mode. Frames per second and the
    ratios ours / MediaPipe.
(2) labelled synthetic videos (``benchmarks/video_fixtures.py``: AFLW2000-dev photos
    pasted, turned, shifted and zoomed; the ground truth is exact): (a) a still
    head, (b) in-plane turns with shifts and zoom, (c) a profile, still then
    moving, (d) two faces crossing, one hiding the other for about a second.
(3) per scenario and engine: geodesic error (median / mean, degrees), frames lost
    (a visible ground-truth head with no predicted box of IoU >= 0.3), false heads,
    jitter on still stretches (mean geodesic angle between consecutive predicted
    rotations of one head, degrees per frame), lag on turns (the frame shift that
    best aligns predicted and true in-plane angle), identity switches (a head's
    matched track id changing) and frames per second.
(4) memory over a long video: a synthetic video (20 minutes, 640x360, 25 fps,
    mp4v, written to a temporary folder under /tmp frame by frame) streamed by
    our engine in a fresh child process; resident memory at 10 %, 50 % and 100 %
    of the video, and the peak.

A ``convention_check`` runs first: a frontal photo turned by +-20 degrees on
screen must change the per-frame engine's predicted roll as the labels say.

Usage:
    python benchmarks/bench_video.py                    # full run, about 45 minutes on 2 cores (35 of them the 20-minute video)
    python benchmarks/bench_video.py --quick            # development: 120 frames, 1 short clip per scenario, 1-minute video,
                                                        # a few minutes; writes /tmp/openheadpose-bench-video-quick.json
    python benchmarks/bench_video.py --memory-minutes 5 --out /tmp/video.json
    python benchmarks/bench_video.py --skip memory,mediapipe

The data come from the shared folder: ``$OPENHEADPOSE_SHARED`` or ``../shared`` next
to the repository root (``media/WolfgangLanger_Pexels.mp4``, ``data/aflw2000-dev``,
which is for evaluation only). Numbers go to a table on stdout and to ``--out``
(default ``benchmarks/results/video.json``; a ``--quick`` run writes to the temporary folder
instead, so that it never replaces the full report).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ log lines, before anything imports it
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package
from benchmarks import video_fixtures as vf
from benchmarks.common import run_header, write_result

REPO_ROOT = Path(__file__).resolve().parents[1]
VIDEO = "WolfgangLanger_Pexels.mp4"
AFLW = "data/aflw2000-dev"
SCHEMA_VERSION = 1
WARMUP_FRAMES = 5  # throughput counts frames after these (model loading, first-call costs)
IOU_MATCH = 0.3
VISIBLE = 0.5  # a ground-truth head counts as visible when this share of its box is front-most and in frame
MAX_LAG = 10  # frames searched either way for the lag on turns
QUICK_OUT = Path(tempfile.gettempdir()) / "openheadpose-bench-video-quick.json"  # a smoke run never replaces the report
SECTIONS = ("throughput", "mediapipe", "scenarios", "memory")

#: clips per scenario (full run, quick run) and frames per clip
FULL = {"clips": {"still": 3, "turns": 2, "profile": 2, "crossing": 2}, "n_frames": 150, "throughput_frames": None,
        "memory_minutes": 20.0}
QUICK = {"clips": {"still": 1, "turns": 1, "profile": 1, "crossing": 1}, "n_frames": 60, "throughput_frames": 120,
         "memory_minutes": 1.0}


# --------------------------------------------------------------------------- engines


def build_engine(kind: str):
    """``(estimator, build kwargs, note)`` for ``kind`` = ``"tracked"`` or ``"per-frame"``;
    ``(None, None, why)`` when this version of openheadpose cannot build it."""
    from openheadpose.inference.builder import build_estimator

    if kind == "tracked":
        try:
            return build_estimator(track=True, smooth=True), {"track": True, "smooth": True}, None
        except TypeError as exc:
            return None, None, f"build_estimator(track=True, smooth=True) failed: {exc}"
    try:
        return build_estimator(track=False), {"track": False}, None
    except TypeError:
        return build_estimator(), {}, "build_estimator() takes no 'track' argument: today's per-frame estimator"


def engine_plan() -> dict[str, dict[str, Any]]:
    """Which of our engines this run measures: ``ours`` (the tracking build, or the
    per-frame one when tracking is absent) and ``ours_per_frame`` (only if different)."""
    tracked, kw_t, why_t = build_engine("tracked")
    _, kw_p, why_p = build_engine("per-frame")
    plan: dict[str, dict[str, Any]] = {}
    if tracked is not None:
        plan["ours"] = {"kind": "tracked", "build_kwargs": kw_t, "tracking": True}
        plan["ours_per_frame"] = {"kind": "per-frame", "build_kwargs": kw_p, "tracking": False, "note": why_p}
    else:
        plan["ours"] = {"kind": "per-frame", "build_kwargs": kw_p, "tracking": False,
                        "note": f"tracking not available ({why_t}); 'ours' is the per-frame estimator"}
    return plan


def stream_heads(est, frames: list[np.ndarray]) -> tuple[list[dict[str, Any]], list[float], int]:
    """Run ``est.stream`` over in-memory frames: per frame the heads' arrays, the time
    each result arrived (perf_counter, relative to the start) and the number of errors."""
    out, stamps, errors = [], [], 0
    t0 = time.perf_counter()
    for res in est.stream(frames):
        stamps.append(time.perf_counter() - t0)
        if res.error is None and getattr(res, "warning", None) is not None:
            stamps.pop()  # a frame-less notice, not a frame
            continue
        errors += res.error is not None
        h = res.heads
        out.append({
            "boxes": np.asarray(h.boxes, float).reshape(-1, 4),
            "rotations": np.asarray(h.rotations, float).reshape(-1, 3, 3),
            "raw_rotations": _opt(getattr(h, "raw_rotations", None), (-1, 3, 3)),
            "track_ids": _opt(getattr(h, "track_ids", None), (-1,)),
        })
    return out, stamps, errors


def _opt(a, shape):
    return None if a is None else np.asarray(a).reshape(shape)


def steady_fps(stamps: list[float]) -> float | None:
    """Frames per second after the first WARMUP_FRAMES frames (all frames when there are few)."""
    n = len(stamps)
    if n == 0:
        return None
    if n > 2 * WARMUP_FRAMES:
        dt = stamps[-1] - stamps[WARMUP_FRAMES - 1]
        return (n - WARMUP_FRAMES) / dt if dt > 0 else None
    return n / stamps[-1] if stamps[-1] > 0 else None


# --------------------------------------------------------------------------- (1) throughput


def decode_all(path: Path, max_frames: int | None) -> tuple[list[np.ndarray], float]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        sys.exit(f"bench_video: OpenCV could not open {path}")
    frames = []
    while max_frames is None or len(frames) < max_frames:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    fps = cap.get(cv2.CAP_PROP_FPS) or None
    cap.release()
    return frames, fps


def ours_throughput(name: str, spec: dict[str, Any], frames: list[np.ndarray]) -> dict[str, Any]:
    est, _, _ = build_engine(spec["kind"])
    heads, stamps, errors = stream_heads(est, frames)
    counts: dict[int, int] = {}
    for h in heads:
        counts[len(h["boxes"])] = counts.get(len(h["boxes"]), 0) + 1
    ids = [int(h["track_ids"][0]) for h in heads if h["track_ids"] is not None and len(h["track_ids"])]
    have_ids = any(h["track_ids"] is not None for h in heads)
    return {
        "engine": name, **spec, "frames": len(heads), "errors": errors,
        "wall_s": round(stamps[-1], 3) if stamps else None,
        "fps": _r(steady_fps(stamps), 2),
        "one_head_share": _r(counts.get(1, 0) / len(heads), 4) if heads else None,
        "heads_histogram": {str(k): v for k, v in sorted(counts.items())},
        "distinct_track_ids": len(set(ids)) if have_ids else None,
        "track_id_changes": sum(a != b for a, b in itertools.pairwise(ids)) if have_ids else None,
    }


def mediapipe_throughput(frames: list[np.ndarray], static: bool) -> dict[str, Any]:
    import mediapipe as mp

    fm = mp.solutions.face_mesh.FaceMesh(static_image_mode=static, max_num_faces=1, refine_landmarks=False)
    found, stamps = 0, []
    t0 = time.perf_counter()
    for f in frames:
        r = fm.process(f)
        found += r.multi_face_landmarks is not None
        stamps.append(time.perf_counter() - t0)
    fm.close()
    return {
        "engine": "mediapipe_static" if static else "mediapipe_tracking",
        "call": f"mediapipe.solutions.face_mesh.FaceMesh(static_image_mode={static}, max_num_faces=1, refine_landmarks=False)",
        "frames": len(frames), "wall_s": round(stamps[-1], 3) if stamps else None,
        "fps": _r(steady_fps(stamps), 2), "one_head_share": _r(found / len(frames), 4) if frames else None,
    }


def bench_throughput(media: Path, plan: dict[str, Any], max_frames: int | None, with_mediapipe: bool) -> dict[str, Any]:
    frames, fps = decode_all(media / VIDEO, max_frames)
    print(f"(1) throughput: {len(frames)} frames of {VIDEO} decoded ...", file=sys.stderr, flush=True)
    rows = [ours_throughput(name, spec, frames) for name, spec in plan.items()]
    if with_mediapipe:
        rows += [mediapipe_throughput(frames, static=False), mediapipe_throughput(frames, static=True)]
    by = {r["engine"]: r["fps"] for r in rows}
    ratios = {}
    for a, b in (("ours", "mediapipe_tracking"), ("ours", "mediapipe_static"), ("ours_per_frame", "mediapipe_static"),
                 ("ours", "ours_per_frame"), ("mediapipe_tracking", "mediapipe_static")):
        if by.get(a) and by.get(b):
            ratios[f"{a}/{b}"] = round(by[a] / by[b], 3)
    return {"video": VIDEO, "frames": len(frames), "video_fps": fps, "size": list(frames[0].shape[1::-1]) if frames else None,
            "fps_counts_frames_after": WARMUP_FRAMES, "rows": rows, "ratios": ratios}


# --------------------------------------------------------------------------- (2, 3) scenarios


def screen_angle(R: np.ndarray) -> np.ndarray:
    """In-plane angle of the head's up axis on screen, degrees, counter-clockwise positive:
    exactly ``+a`` more after ``rot_z(a) @ R`` (the AFLW roll is only close to ``-`` that)."""
    R = np.asarray(R, float)
    return np.degrees(np.arctan2(-R[..., 0, 1], R[..., 1, 1]))


def match(gt: list[dict], pred_boxes: np.ndarray) -> dict[int, int]:
    """Ground-truth index -> prediction index, one-to-one, IoU >= IOU_MATCH; visible heads first
    (a hidden head's box under a visible one must not take that one's prediction)."""
    from scipy.optimize import linear_sum_assignment

    from openheadpose.core.geometry import box_iou

    out: dict[int, int] = {}
    free = list(range(len(pred_boxes)))
    for group in ([i for i, g in enumerate(gt) if g["visible"] >= VISIBLE], [i for i, g in enumerate(gt) if g["visible"] < VISIBLE]):
        if not group or not free:
            continue
        iou = box_iou(np.array([gt[i]["box"] for i in group]), pred_boxes[free])
        rows, cols = linear_sum_assignment(-iou)
        taken = []
        for r, c in zip(rows, cols):
            if iou[r, c] >= IOU_MATCH:
                out[group[r]] = free[c]
                taken.append(free[c])
        free = [j for j in free if j not in taken]
    return out


def lag_frames(truth: np.ndarray, pred: np.ndarray, max_lag: int = MAX_LAG) -> dict[str, Any] | None:
    """Shift ``k`` maximising the correlation of ``pred[t + k]`` with ``truth[t]`` (positive:
    the prediction is late), with a parabolic sub-frame refinement."""
    n = len(truth)
    corr = {}
    for k in range(-max_lag, max_lag + 1):
        t = np.arange(max(0, -k), min(n, n - k))
        x, y = truth[t], pred[t + k]
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < max(10, n // 3):
            continue
        x, y = x[ok] - x[ok].mean(), y[ok] - y[ok].mean()
        den = math.sqrt(float((x * x).sum() * (y * y).sum()))
        if den > 0:
            corr[k] = float((x * y).sum() / den)
    if not corr:
        return None
    best = max(corr, key=corr.get)
    sub = float(best)
    if best - 1 in corr and best + 1 in corr:
        a, b, c = corr[best - 1], corr[best], corr[best + 1]
        d = a - 2 * b + c
        if d < 0:
            sub = best + 0.5 * (a - c) / d
    return {"frames": best, "frames_subframe": round(sub, 2), "correlation": round(corr[best], 4)}


def evaluate_clip(video: list, preds: list[dict[str, Any]], turns: bool) -> dict[str, Any]:
    """Every metric of one clip, plus the raw lists pooled per scenario."""
    from openheadpose.core.rotation import geodesic_distance

    n = min(len(video), len(preds))
    errors, jitter, jitter_raw = [], [], []
    visible = lost = false_heads = 0
    have_ids = any(p["track_ids"] is not None for p in preds)
    last_id: dict[int, int] = {}
    ids_seen: dict[int, set] = {}
    switches = 0
    prev: dict[int, tuple] = {}  # identity -> (gt R, gt box, pred R, raw R) in the previous frame (None if unmatched)
    identities = sorted({g["identity"] for _, gts in video for g in gts})
    truth_angle = {i: np.full(n, np.nan) for i in identities}
    pred_angle = {i: np.full(n, np.nan) for i in identities}
    for t in range(n):
        gts, p = video[t][1], preds[t]
        m = match(gts, p["boxes"])
        false_heads += len(p["boxes"]) - len(m)
        cur: dict[int, tuple] = {}
        for gi, g in enumerate(gts):
            ident = g["identity"]
            truth_angle[ident][t] = screen_angle(g["rotation"])
            vis = g["visible"] >= VISIBLE
            visible += vis
            j = m.get(gi)
            if j is None:
                lost += vis
                cur[ident] = (g["rotation"], g["box"], None, None)
                continue
            R = p["rotations"][j]
            raw = None if p["raw_rotations"] is None else p["raw_rotations"][j]
            if vis:
                errors.append(float(geodesic_distance(R, g["rotation"])))
            pred_angle[ident][t] = screen_angle(R)
            if p["track_ids"] is not None:
                tid = int(p["track_ids"][j])
                if ident in last_id and last_id[ident] != tid:
                    switches += 1
                last_id[ident] = tid
                ids_seen.setdefault(ident, set()).add(tid)
            q = prev.get(ident)
            if q is not None and q[2] is not None and vis and _same(q[0], q[1], g["rotation"], g["box"]):
                jitter.append(float(geodesic_distance(q[2], R)))
                if raw is not None and q[3] is not None:
                    jitter_raw.append(float(geodesic_distance(q[3], raw)))
            cur[ident] = (g["rotation"], g["box"], R, raw)
        prev = cur
    lag = None
    if turns:
        lag = lag_frames(np.unwrap(truth_angle[identities[0]], period=360), _unwrap_nan(pred_angle[identities[0]]))
    return {
        "frames": n, "visible_heads": visible, "lost": lost, "false_heads": false_heads,
        "errors": errors, "jitter": jitter, "jitter_raw": jitter_raw,
        "id_switches": switches if have_ids else None,
        "track_ids_per_identity": {str(k): len(v) for k, v in ids_seen.items()} if have_ids else None,
        "lag": lag,
    }


def _same(R0, b0, R1, b1) -> bool:
    return bool(np.allclose(R0, R1, atol=1e-9) and np.allclose(b0, b1, atol=1e-6))


def _unwrap_nan(a: np.ndarray) -> np.ndarray:
    out = a.copy()
    ok = np.isfinite(a)
    if ok.any():
        out[ok] = np.unwrap(a[ok], period=360)
    return out


def make_clips(samples: list, settings: dict[str, Any]) -> dict[str, list[vf.Clip]]:
    c, n = settings["clips"], settings["n_frames"]
    frontal = vf.pick_samples(samples, "frontal", c["still"] + c["turns"] + 2 * c["crossing"])
    # Profiles the per-frame pipeline finds on the clean photo, so a track can start: the row
    # measures keeping a profile, not detecting one (issue 16's work).
    from openheadpose import HeadPoseEstimator

    finder = HeadPoseEstimator()
    profile = vf.pick_samples([s for s in samples if abs(s.euler[0]) > 60 and len(finder(s.load_image())) == 1], "profile", c["profile"])
    it = iter(frontal)
    hidden = 30.0 * n / 150  # about a second in a full-length clip
    return {
        "still": [vf.still_head_clip(next(it), n_frames=n, seed=10 + i) for i in range(c["still"])],
        "turns": [vf.inplane_turns_clip(next(it), n_frames=n, seed=20 + i) for i in range(c["turns"])],
        "profile": [vf.profile_head_clip(s, n_frames=n, seed=30 + i) for i, s in enumerate(profile)],
        "crossing": [vf.crossing_faces_clip(next(it), next(it), n_frames=n, hidden_frames=hidden, seed=40 + i)
                     for i in range(c["crossing"])],
    }


def summarise(clip_rows: list[dict[str, Any]]) -> dict[str, Any]:
    errs = [e for r in clip_rows for e in r["errors"]]
    jit = [e for r in clip_rows for e in r["jitter"]]
    jraw = [e for r in clip_rows for e in r["jitter_raw"]]
    vis = sum(r["visible_heads"] for r in clip_rows)
    lost = sum(r["lost"] for r in clip_rows)
    lags = [r["lag"]["frames_subframe"] for r in clip_rows if r["lag"]]
    sw = [r["id_switches"] for r in clip_rows]
    frames = sum(r["frames"] for r in clip_rows)
    secs = sum(r["wall_s"] for r in clip_rows)
    return {
        "clips": len(clip_rows), "frames": frames, "visible_heads": vis,
        "error_median_deg": _r(float(np.median(errs)), 2) if errs else None,
        "error_mean_deg": _r(float(np.mean(errs)), 2) if errs else None,
        "lost": lost, "lost_share": _r(lost / vis, 4) if vis else None,
        "false_heads": sum(r["false_heads"] for r in clip_rows),
        "jitter_deg_per_frame": _r(float(np.mean(jit)), 3) if jit else None,
        "jitter_pairs": len(jit),
        "jitter_raw_deg_per_frame": _r(float(np.mean(jraw)), 3) if jraw else None,
        "lag_frames": _r(float(np.mean(lags)), 2) if lags else None,
        "id_switches": None if any(s is None for s in sw) else sum(sw),
        "fps": _r(frames / secs, 2) if secs else None,
    }


def bench_scenarios(shared: Path, plan: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    samples = list(vf.load_dataset(shared / AFLW))
    clips = make_clips(samples, settings)
    out: dict[str, Any] = {"n_frames_per_clip": settings["n_frames"], "fps": vf.FPS, "frame_size": list(vf.FRAME_SIZE),
                           "noise_sigma": vf.NOISE_SIGMA, "iou_match": IOU_MATCH, "visible_share": VISIBLE,
                           "results": {}}
    for scen, cl in clips.items():
        per_engine: dict[str, Any] = {}
        for c in cl:
            print(f"(2) {c.name}: rendering {c.n_frames} frames ...", file=sys.stderr, flush=True)
            video = c.render()
            frames = [f for f, _ in video]
            for name, spec in plan.items():
                est, _, _ = build_engine(spec["kind"])  # a fresh estimator: a new stream per clip
                preds, stamps, errors = stream_heads(est, frames)
                row = evaluate_clip(video, preds, turns=scen == "turns")
                row.update({"clip": c.name, "info": c.info, "errors_in_stream": errors,
                            "wall_s": round(stamps[-1], 3) if stamps else 0.0})
                per_engine.setdefault(name, []).append(row)
            del video, frames
        out["results"][scen] = {
            name: {"summary": summarise(rows),
                   "clips": [{k: v for k, v in r.items() if k not in ("errors", "jitter", "jitter_raw")} | _clip_numbers(r)
                             for r in rows]}
            for name, rows in per_engine.items()
        }
    return out


def _clip_numbers(r: dict[str, Any]) -> dict[str, Any]:
    e = r["errors"]
    return {"error_median_deg": _r(float(np.median(e)), 2) if e else None,
            "jitter_deg_per_frame": _r(float(np.mean(r["jitter"])), 3) if r["jitter"] else None,
            "jitter_raw_deg_per_frame": _r(float(np.mean(r["jitter_raw"])), 3) if r["jitter_raw"] else None,
            "fps": _r(r["frames"] / r["wall_s"], 2) if r["wall_s"] else None}


# --------------------------------------------------------------------------- convention check


def convention_check(shared: Path, angle: float = 20.0) -> dict[str, Any]:
    """Turn a frontal photo by +-angle on screen (counter-clockwise positive) and compare the
    per-frame engine's change of AFLW roll with the labels' (about -angle for +angle)."""
    from openheadpose.core.rotation import matrix_to_euler

    samples = list(vf.load_dataset(shared / AFLW))
    sample = vf.pick_samples(samples, "frontal", 1)[0]
    est, _, _ = build_engine("per-frame")
    rows = []
    base = None
    for a in (0.0, angle, -angle):
        clip = vf.Clip([vf.photo_layer(sample)], lambda t, a=a: [vf.Place(320, 240, a, 0.45)], 1,
                       vf.make_background(), noise_sigma=0.0)
        frame, gts = clip.frame(0)
        heads = est(frame)
        gt_roll = float(matrix_to_euler(gts[0]["rotation"]).roll)
        pred_roll = float(heads.euler.roll[0]) if len(heads) else None
        if base is None:
            base = (gt_roll, pred_roll)
        rows.append({"screen_angle_ccw_deg": a, "label_roll_deg": round(gt_roll, 2),
                     "predicted_roll_deg": _r(pred_roll, 2),
                     "label_roll_change": round(gt_roll - base[0], 2),
                     "predicted_roll_change": None if pred_roll is None or base[1] is None else round(pred_roll - base[1], 2)})
    ok = all(r["predicted_roll_change"] is not None and abs(r["predicted_roll_change"] - r["label_roll_change"]) < angle / 2
             for r in rows[1:])
    return {"photo": sample.name, "rows": rows, "sign_agrees": ok}


# --------------------------------------------------------------------------- (4) memory


def _vm(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def child_memory(path: str, kind: str) -> None:
    """Body of the memory child: stream the video, print RSS readings (KiB) as JSON."""
    import cv2

    t_start = time.perf_counter()
    cap = cv2.VideoCapture(path)
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    est, kwargs, note = build_engine(kind)
    if est is None:
        est, kwargs, note2 = build_engine("per-frame")
        note = f"{note}; fell back to per-frame" + (f" ({note2})" if note2 else "")
    peak = {"rss": 0}
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            v = _vm("VmRSS")
            if v:
                peak["rss"] = max(peak["rss"], v)
            stop.wait(0.2)

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    marks = {max(1, round(total * p / 20)): 5 * p for p in range(1, 21)}  # every 5 %
    profile, n, errors, heads = {}, 0, 0, 0
    rss_built = _vm("VmRSS")
    t0 = time.perf_counter()
    for res in est.stream(path):
        if res.error is None and getattr(res, "warning", None) is not None:
            continue  # a frame-less notice, not a frame
        n += 1
        errors += res.error is not None
        heads += len(res.heads)
        if n in marks:
            profile[str(marks[n])] = _vm("VmRSS")
    seconds = time.perf_counter() - t0
    profile.setdefault("100", _vm("VmRSS"))  # the video held fewer frames than its header said
    stop.set()
    th.join()
    print(json.dumps({"engine_kind": kind, "build_kwargs": kwargs, "note": note, "frames_in_header": total,
                      "frames": n, "errors": errors, "heads": heads, "seconds": round(seconds, 1),
                      "total_seconds": round(time.perf_counter() - t_start, 1),
                      "rss_after_build_kib": rss_built, "rss_end_kib": _vm("VmRSS"), "rss_profile_kib": profile,
                      "sampled_peak_kib": peak["rss"], "vmhwm_kib": _vm("VmHWM")}))


def bench_memory(shared: Path, plan: dict[str, Any], minutes: float, keep: bool) -> dict[str, Any]:
    samples = list(vf.load_dataset(shared / AFLW))
    sample = vf.pick_samples(samples, "frontal", 1)[0]
    fps = 25.0
    n = round(minutes * 60 * fps)
    clip = vf.long_loop_clip(sample, n, fps=fps)
    folder = Path(tempfile.mkdtemp(prefix="ohp-bench-video-", dir="/tmp"))
    path = folder / f"loop_{minutes:g}min.mp4"
    print(f"(4) memory: writing {n} frames ({minutes:g} min) to {path} ...", file=sys.stderr, flush=True)
    t = time.perf_counter()
    written = vf.write_video(clip, path)
    gen_s = time.perf_counter() - t
    size_mb = path.stat().st_size / 1e6
    kind = plan["ours"]["kind"]
    print(f"(4) memory: streaming it in a child process ({kind}) ...", file=sys.stderr, flush=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_child-memory", str(path), "--_engine", kind]
    try:
        p = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=REPO_ROOT)
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    if p.returncode != 0:
        sys.exit(f"bench_video: memory child failed:\n{p.stderr[-3000:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    prof = r["rss_profile_kib"]
    at = {p_: mib(prof.get(str(p_))) for p_ in (10, 50, 100)}
    return {
        "video": {"minutes": minutes, "frames": written, "fps": fps, "size": list(clip.size), "fourcc": "mp4v",
                  "mb": round(size_mb, 1), "generate_s": round(gen_s, 1), "kept": str(path) if keep else None,
                  "content": clip.info},
        "engine": "ours", **{k: r[k] for k in ("engine_kind", "build_kwargs", "note", "frames", "errors", "heads", "seconds")},
        "fps": round(r["frames"] / r["seconds"], 2) if r["seconds"] else None,
        "rss_after_build_mib": mib(r["rss_after_build_kib"]),
        "rss_at_10pct_mib": at[10], "rss_at_50pct_mib": at[50], "rss_at_100pct_mib": at[100],
        "rss_growth_10_to_100_mib": None if None in (at[10], at[100]) else round(at[100] - at[10], 1),
        "rss_ratio_100_over_10": None if None in (at[10], at[100]) else round(at[100] / at[10], 3),
        "peak_rss_mib": mib(r["vmhwm_kib"]), "sampled_peak_rss_mib": mib(r["sampled_peak_kib"]),
        "rss_profile_mib": {k: mib(v) for k, v in prof.items()},
    }


# --------------------------------------------------------------------------- report


def mib(kib: float | None) -> float | None:
    return None if kib is None else round(kib / 1024, 1)


def _r(x, nd):
    return None if x is None else round(float(x), nd)


def _f(x, spec=".2f") -> str:
    return "-" if x is None else format(x, spec)


def print_report(doc: dict[str, Any]) -> None:
    m = doc["machine"]
    print(f"\nopenheadpose video benchmark  {doc['date']}  {m['cpu_model'] or m['processor']}  "
          f"{m['cpus_usable']}/{m['cpu_count']} CPUs  {'QUICK' if doc['settings']['quick'] else 'full'}")
    for name, spec in doc["engines"].items():
        print(f"  {name}: {spec['kind']} {spec['build_kwargs']}" + (f"  [{spec['note']}]" if spec.get("note") else ""))
    cc = doc.get("convention_check")
    if cc:
        print(f"\nconvention check ({cc['photo']}): " + ", ".join(
            f"{r['screen_angle_ccw_deg']:+.0f} deg ccw -> roll {_f(r['label_roll_change'], '+.1f')} label / "
            f"{_f(r['predicted_roll_change'], '+.1f')} predicted" for r in cc["rows"][1:])
            + ("  OK" if cc["sign_agrees"] else "  DISAGREES"))
    tp = doc.get("throughput")
    if tp:
        print(f"\n(1) throughput on {tp['video']} ({tp['frames']} frames in memory; fps over frames after the first "
              f"{tp['fps_counts_frames_after']})")
        print(f"{'engine':<20} {'fps':>8} {'wall s':>8} {'1-head':>7} {'track ids':>9}")
        for r in tp["rows"]:
            print(f"{r['engine']:<20} {_f(r['fps'], '.1f'):>8} {_f(r['wall_s'], '.1f'):>8} "
                  f"{_f(r['one_head_share'], '.3f'):>7} {_f(r.get('distinct_track_ids'), 'd'):>9}")
        for k, v in tp["ratios"].items():
            print(f"  {k}: {v:.2f}x")
    sc = doc.get("scenarios")
    if sc:
        print(f"\n(2-3) synthetic clips ({sc['n_frames_per_clip']} frames each at {sc['fps']} fps); error and jitter in degrees")
        print(f"{'scenario':<9} {'engine':<15} {'clips':>5} {'err med':>8} {'err mean':>8} {'lost':>9} {'false':>5} "
              f"{'jitter':>7} {'raw jit':>7} {'lag fr':>6} {'id sw':>5} {'fps':>6}")
        for scen, engines in sc["results"].items():
            for name, d in engines.items():
                s = d["summary"]
                print(f"{scen:<9} {name:<15} {s['clips']:>5} {_f(s['error_median_deg']):>8} {_f(s['error_mean_deg']):>8} "
                      f"{s['lost']:>4}/{s['visible_heads']:<4} {s['false_heads']:>5} {_f(s['jitter_deg_per_frame'], '.3f'):>7} "
                      f"{_f(s['jitter_raw_deg_per_frame'], '.3f'):>7} {_f(s['lag_frames'], '.1f'):>6} "
                      f"{_f(s['id_switches'], 'd'):>5} {_f(s['fps'], '.1f'):>6}")
    mem = doc.get("memory")
    if mem:
        v = mem["video"]
        print(f"\n(4) memory: {v['minutes']:g}-minute video ({v['frames']} frames, {v['size'][0]}x{v['size'][1]}, "
              f"{v['mb']} MB), {mem['engine_kind']} engine at {_f(mem['fps'], '.1f')} fps")
        print(f"  RSS MiB after build {_f(mem['rss_after_build_mib'], '.1f')}, at 10% {_f(mem['rss_at_10pct_mib'], '.1f')}, "
              f"50% {_f(mem['rss_at_50pct_mib'], '.1f')}, 100% {_f(mem['rss_at_100pct_mib'], '.1f')}; peak "
              f"{_f(mem['peak_rss_mib'], '.1f')}; 100%/10% = {_f(mem['rss_ratio_100_over_10'], '.3f')}")
    print(f"\nelapsed {doc['elapsed_s']:.0f} s")


# --------------------------------------------------------------------------- main


def shared_dir() -> Path:
    env = os.environ.get("OPENHEADPOSE_SHARED")
    root = Path(env) if env else REPO_ROOT.parent / "shared"
    missing = [p for p in (root / "media" / VIDEO, root / AFLW) if not p.exists()]
    if missing:
        how = "$OPENHEADPOSE_SHARED" if env else "../shared next to the repository (set OPENHEADPOSE_SHARED to override)"
        sys.exit(f"bench_video: not found: {', '.join(map(str, missing))} (looked in {how})")
    return root


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="example: python benchmarks/bench_video.py --quick --out /tmp/video.json")
    p.add_argument("--quick", action="store_true",
                   help="development run: 120 frames of throughput, 1 clip of 60 frames per scenario, 1-minute memory video")
    p.add_argument("--memory-minutes", type=float, default=None, help="length of the memory video (default 20; 1 with --quick)")
    p.add_argument("--skip", default="", help=f"comma-separated sections to leave out: {', '.join(SECTIONS)}")
    p.add_argument("--keep-video", action="store_true", help="keep the memory video in /tmp (default: delete it)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"JSON file for the numbers (default benchmarks/results/video.json; {QUICK_OUT} with --quick)")
    p.add_argument("--_child-memory", dest="child_memory", metavar="VIDEO", help=argparse.SUPPRESS)
    p.add_argument("--_engine", dest="engine", default="tracked", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.out is None:
        args.out = QUICK_OUT if args.quick else REPO_ROOT / "benchmarks" / "results" / "video.json"
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.skip - set(SECTIONS):
        p.error(f"unknown section(s) in --skip: {', '.join(sorted(args.skip - set(SECTIONS)))}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child_memory:
        child_memory(args.child_memory, args.engine)
        return
    shared = shared_dir()
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    settings = dict(QUICK if args.quick else FULL)
    if args.memory_minutes is not None:
        settings["memory_minutes"] = args.memory_minutes
    plan = engine_plan()
    doc: dict[str, Any] = {
        **run_header("video", SCHEMA_VERSION, started),
        "settings": {**settings, "quick": args.quick, "skip": sorted(args.skip), "warmup_frames": WARMUP_FRAMES,
                     "iou_match": IOU_MATCH, "visible_share": VISIBLE, "max_lag": MAX_LAG},
        "engines": plan,
        "tracking_available": plan["ours"]["tracking"],
    }
    print("convention check ...", file=sys.stderr, flush=True)
    doc["convention_check"] = convention_check(shared)
    if "throughput" not in args.skip:
        doc["throughput"] = bench_throughput(shared / "media", plan, settings["throughput_frames"], "mediapipe" not in args.skip)
    if "scenarios" not in args.skip:
        doc["scenarios"] = bench_scenarios(shared, plan, settings)
    if "memory" not in args.skip:
        doc["memory"] = bench_memory(shared, plan, settings["memory_minutes"], args.keep_video)
    doc["elapsed_s"] = round(time.perf_counter() - t0, 1)
    print_report(doc)
    write_result(args.out, doc)


if __name__ == "__main__":
    main()
