"""Does reading each face turned upright (``NetworkPose(upright=True)``) pay? Checked off AFLW2000.

The selection rule, declared before AFLW2000-dev was looked at with upright crops: the upright
read becomes the default if, on ``aflw-extra`` (real AFLW faces with yaw labels, disjoint from
AFLW2000 and from the network's training source ``aflw-yaw``; crops upscaled 3x to 360 px),
the end-to-end yaw MAE of ``build_estimator(track=False)``

* is no worse than the axis-aligned crop's by more than 0.05 degrees on the photos as they are,
* and is lower on the same photos turned in the image plane by +-15 and +-30 degrees
  (a head tilted, or a camera held askew; the prediction is turned back before it is compared,
  which is exact: ``Rz(-a) @ R(turned photo)`` is the pose of the photo as it was).

The angle a face is turned level by: its eye line (outer corners) or the screen angle of the
template fitted to its landmarks (its up axis drawn vertical: AFLW roll 0); the one with the lower
yaw MAE over the five turns below ships (declared, like the rule above, before any AFLW2000-dev run
of either).

Usage:
    python benchmarks/upright_check.py --limit 600
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import bench_video as bv

ANGLES = (0.0, -15.0, 15.0, -30.0, 30.0)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--limit", type=int, default=600, help="faces, spread evenly over aflw-extra by name")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    from openheadpose.core.rotation import matrix_to_euler, rotate_in_plane
    from openheadpose.datasets.aflw_yaw import AFLWYaw
    from openheadpose.inference.builder import build_estimator

    samples = sorted(AFLWYaw(bv.shared_dir() / "data/aflw-extra"), key=lambda s: s.name)
    samples = [samples[i] for i in np.linspace(0, len(samples) - 1, a.limit).round().astype(int)]
    ests = {"axis-aligned": build_estimator(track=False, upright=False), "eyes": build_estimator(track=False, upright=True),
            "roll": build_estimator(track=False, upright=True)}
    ests["eyes"].pose.upright_by = "eyes"
    err = {(u, ang): [] for u in ests for ang in ANGLES}
    found = {(u, ang): 0 for u in ests for ang in ANGLES}
    for s in samples:
        img = cv2.resize(s.load_image(), None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
        h, w = img.shape[:2]
        for ang in ANGLES:
            M = cv2.getRotationMatrix2D((w / 2, h / 2), ang, 1.0)
            turned = cv2.warpAffine(img, M, (w, h), borderMode=cv2.BORDER_REPLICATE) if ang else img
            for u, est in ests.items():
                heads, _ = est.predict(turned)
                if len(heads) == 0:
                    continue
                c = np.array([w / 2, h / 2])
                j = int(np.argmin(np.linalg.norm((heads.boxes[:, :2] + heads.boxes[:, 2:]) / 2 - c, axis=1)))
                R = rotate_in_plane(np.asarray(heads.rotations[j]), -ang)
                found[(u, ang)] += 1
                err[(u, ang)].append(abs(float(matrix_to_euler(R).yaw) - float(s.euler[0])))
    rows = {f"{u} {ang:+.0f}": {"faces": found[(u, ang)], "yaw_mae": round(float(np.mean(e)), 3)} for (u, ang), e in err.items()}
    rows |= {f"{u} mean": round(float(np.mean([rows[f"{u} {ang:+.0f}"]["yaw_mae"] for ang in ANGLES])), 3) for u in ests}
    print(json.dumps(rows, indent=1))
    if a.out:
        a.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
