"""The tracker's tuning videos: made like ``bench_video.py``'s, from faces that are not AFLW2000's.

``bench_video.py`` reports on videos made from AFLW2000-dev photos, which are for evaluation
only. Every tracker and fusion setting is chosen here instead, on the same kind of clip (four
faces one after another at yaw -41, -10, 25 and 62 degrees, each still, turning with shifts and
zoom, then still again where the turn stopped; 640x360, sensor noise of 3 grey levels, mp4v)
built from ``aflw-extra`` crops (a training source, disjoint from AFLW2000), upscaled 3x to
360x360 photos.

Those crops are labelled with yaw only, so each photo's label is the per-frame pipeline's own
reading of the clean, upright photo (both views read): a *pseudo-label*. The error against it
leaves out the network's own bias on that face, which no tracker changes, and keeps what the
tracker adds or removes: the readings' frame-to-frame noise, crops that drift, lag. The
comparison that matters, tracked against ``--no-track`` on the same frames, holds either way.

Usage:
    python benchmarks/video_tune.py                 # 3 aflw-extra clips and 1 media clip (16 faces), tracked and --no-track
    python benchmarks/video_tune.py --clips 1 --engines tracked --set detect_every=15
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import bench_video as bv
from benchmarks import video_fixtures as vf

EXTRA = "data/aflw-extra"
UPSCALE = 3


def tuning_samples(shared: Path, n_sets: int, est) -> list[list]:
    """``n_sets`` sets of four aflw-extra faces (one per yaw of :data:`vf.REAL_YAWS`), each photo
    upscaled and pseudo-labelled by ``est`` (the per-frame pipeline); deterministic."""
    from openheadpose.datasets.aflw_yaw import AFLWYaw

    pool = sorted((s for s in AFLWYaw(shared / EXTRA) if np.isfinite(s.landmarks).sum() >= 12),
                  key=lambda s: s.name)
    sets, used = [], set()
    for k in range(n_sets):
        chosen = []
        for yaw in vf.REAL_YAWS:
            cands = sorted((s for s in pool if s.name not in used and abs(s.euler[0] - yaw) < 4.0), key=lambda s: s.name)
            for s in cands[k * 7 :] + cands[: k * 7]:  # a different face per set, by name order
                up = _upscaled(s, est)
                used.add(s.name)
                if up is not None:
                    chosen.append(up)
                    break
        sets.append(chosen)
    return sets


#: Sharp real photos of the shared media (one face each), the last one also mirrored: a second
#: tuning source beside aflw-extra's small crops (yaw about -38, -2, 6 and 38 degrees).
MEDIA = (("45-m7-di-ph.jpg", True), ("0-f1-su-ph.jpg", False), ("single_face.jpg", False), ("45-m7-di-ph.jpg", False))


def media_samples(shared: Path, est) -> list:
    """The :data:`MEDIA` photos as samples, pseudo-labelled like :func:`tuning_samples`'s (their
    box: the head ``est`` finds)."""
    from openheadpose.datasets.base import PoseSample
    from openheadpose.io.images import read_image

    out = []
    for name, mirrored in MEDIA:
        img = read_image(shared / "media" / name)
        img = np.ascontiguousarray(img[:, ::-1]) if mirrored else img
        s = PoseSample(name=name + (" (mirrored)" if mirrored else ""), rotation=None, euler=np.full(3, np.nan), box=np.zeros(4), image=img)
        out.append(_labelled(s, img, None, est))
    return out


def _upscaled(s, est):
    img = cv2.resize(s.load_image(), None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
    return _labelled(s, img, np.asarray(s.box, float) * UPSCALE, est)


def _labelled(s, img, box, est):
    """``s`` as ``img`` with the pose ``est`` reads for the head nearest ``box``'s centre as its
    label (``box=None``: the first head, and its box)."""
    from openheadpose.core.rotation import matrix_to_euler

    heads, _ = est.predict(img)
    if len(heads) == 0:
        return None
    if box is None:
        j, box = 0, np.asarray(heads.boxes[0], float)
    else:
        centre = (box[:2] + box[2:]) / 2
        j = int(np.argmin(np.linalg.norm((heads.boxes[:, :2] + heads.boxes[:, 2:]) / 2 - centre, axis=1)))
    R = np.asarray(heads.rotations[j], float)
    e = matrix_to_euler(R)
    return replace(s, rotation=R, euler=np.array([float(e.yaw), float(e.pitch), float(e.roll)]), box=box, landmarks=None,
                   landmarks68=None, image=img, image_path=None)


def _split(s: dict) -> dict:
    """Errors of the reported and raw rotations on still and on moving frames."""
    from openheadpose.core.rotation import geodesic_distance

    out = {"_still": [], "_moving": [], "_still_raw": [], "_moving_raw": []}
    for i in range(len(s["t"])):
        if not s["visible"][i]:
            continue
        key = "still" if s["still"][i] >= 0 else "moving"
        if s["R"][i] is not None:
            out["_" + key].append(float(geodesic_distance(s["R"][i], s["truth"][i])))
        if s["raw"][i] is not None:
            out["_" + key + "_raw"].append(float(geodesic_distance(s["raw"][i], s["truth"][i])))
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, default=3)
    p.add_argument("--source", choices=("extra", "media", "both"), default="both",
                   help="aflw-extra crops (--clips sets of four), the shared media's photos (one set), or both")
    p.add_argument("--engines", default="tracked,per-frame")
    p.add_argument("--set", action="append", default=[], help="HeadTracker keyword=value for the tracked engine")
    p.add_argument("--pose", action="append", default=[], help="pose stage attribute=value for every engine (e.g. upright=true)")
    p.add_argument("--scenario", choices=("faces", "crossing"), default="faces",
                   help="faces: four faces one after another; crossing: the set's two most frontal faces crossing, one hidden")
    p.add_argument("--quick", action="store_true", help="shorter clips (15 still, 30 turning)")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    shared = bv.shared_dir()
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in a.set)}
    pose_overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in a.pose)}
    from openheadpose.inference.builder import build_estimator

    labeller = build_estimator(track=False)
    sets = (tuning_samples(shared, a.clips, labeller) if a.source != "media" else []) + ([media_samples(shared, labeller)] if a.source != "extra" else [])
    still, turn = (15, 30) if a.quick else (30, 90)
    report: dict = {}
    folder = Path(tempfile.mkdtemp(prefix="ohp-video-tune-", dir="/tmp"))
    try:
        rows: dict[str, list] = {e: [] for e in a.engines.split(",")}
        for k, faces in enumerate(sets):
            if a.scenario == "faces":
                clip = vf.face_change_clip(faces, still=still, turn=turn, seed=100 + k)
            else:
                front, back = sorted(faces, key=lambda f: abs(f.euler[0]))[:2]
                clip = vf.crossing_faces_clip(front, back, n_frames=150, size=vf.REAL_SIZE, crop_px=130.0, hidden_frames=30.0,
                                              noise_sigma=vf.REAL_NOISE, seed=41 + k)
            frames, gts, _ = vf.encode_decode(clip, folder)
            for eng in rows:
                est, _, _ = bv.build_engine(eng)
                for key, v in pose_overrides.items():
                    setattr(est.pose, key, v)
                if eng == "tracked" and overrides:
                    for key, v in overrides.items():
                        setattr(est.tracker, key, v)
                t0 = time.perf_counter()
                preds, stamps, errors = bv.stream_heads(est, frames)
                series = bv.per_identity(gts, preds)
                rows[eng] += [bv.identity_metrics(s, eng == "tracked") | _split(s) for _, s in sorted(series.items())]
                print(f"clip {k} {eng}: {len(frames) / (time.perf_counter() - t0):.0f} fps", file=sys.stderr)
        for eng, r in rows.items():
            report[eng] = bv.pool(r)
            report[eng]["per_face_error"] = [x["error_mean_deg"] for x in r]
            for key in ("still", "moving", "still_raw", "moving_raw"):
                e = [v for x in r for v in x["_" + key]]
                report[eng][f"error_{key}_deg"] = round(float(np.mean(e)), 3) if e else None
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps({"overrides": overrides, **report}, indent=1))
    if a.out:
        a.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
