"""What the mirrored read costs: the pose stage's time per face, one read against two.

The default pose stage reads each face's crop and the crop's mirror image in one batch
(``NetworkPose(view="both")``, issue 28); the target is at most twice one read. On the faces
the default pipeline finds in three photos (found once), the stage runs ``plain`` and ``both``
alternately, ``--repeats`` times each, so a loaded machine slows both alike; the reported
figure is the ratio of the medians, beside the medians themselves (milliseconds per face:
crop, network, decode, mapping back and averaging included).

Usage::

    python benchmarks/bench_mirror.py                 # -> benchmarks/results/mirror_cost.json
    python benchmarks/bench_mirror.py --repeats 50 --out /tmp/mirror.json
"""

from __future__ import annotations

import argparse
import datetime as _dt
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import run_header, write_result  # noqa: E402
from benchmarks.bench_speed import IMAGES, shared_dir  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "mirror_cost.json"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    started = _dt.datetime.now(_dt.timezone.utc)

    from openheadpose import HeadPoseEstimator
    from openheadpose.io.images import read_image

    est = HeadPoseEstimator()
    media = shared_dir()
    work = []
    for name in IMAGES:
        img = read_image(media / name)
        faces = est.find_faces(img)
        if len(faces):
            work.append((name, img, faces))
    n_faces = sum(len(f) for _, _, f in work)
    times: dict[str, list[float]] = {"plain": [], "both": []}
    for r in range(args.repeats + 2):
        for view in ("plain", "both") if r % 2 == 0 else ("both", "plain"):
            t = time.perf_counter()
            for _, img, faces in work:
                est.pose(img, faces, view=view)
            if r >= 2:  # two warm-ups
                times[view].append(1000 * (time.perf_counter() - t) / n_faces)
    med = {k: statistics.median(v) for k, v in times.items()}
    doc = {
        **run_header("mirror_cost", 1, started),
        "pose_stage": est.names["pose"],
        "images": [n for n, _, _ in work],
        "faces": n_faces,
        "repeats": args.repeats,
        "ms_per_face": {k: round(v, 3) for k, v in med.items()},
        "ms_per_face_iqr": {k: [round(x, 3) for x in statistics.quantiles(v, n=4)[::2]] for k, v in times.items()},
        "ratio_both_over_plain": round(med["both"] / med["plain"], 3),
        "target": "two reads at most 2x one read",
    }
    write_result(args.out, doc)
    print(f"pose stage, {n_faces} faces: plain {med['plain']:.2f} ms/face, both {med['both']:.2f} ms/face, ratio {doc['ratio_both_over_plain']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
