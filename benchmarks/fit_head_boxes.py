"""Fit the head detector's box constants to BlazeFace's face boxes on video frames.

:class:`~openheadpose.inference.head_detector.HeadDetector` turns MediaPipe Pose's
head points (or shoulders) into a face-sized box. Its constants are fitted here so
that, where a face is visible, the box is where the face pipeline's detector puts
it: on every ``--step``-th frame of the videos of ../shared/media with one face
(not on the photos, on which ``benchmarks/eval_realheponet.py`` measures the agreement),
each person's box is matched to the best-overlapping BlazeFace box (IoU > 0.3) and

* ``scale``  = median of (BlazeFace side) / (largest distance between two head points),
* ``shift_y`` = median of (BlazeFace centre y - head points' extent centre y) / BlazeFace side,
* ``shoulder_scale`` = median of (BlazeFace side) / (shoulder width),
* ``shoulder_up`` = median of (shoulders' middle y - BlazeFace centre y) / shoulder width.

Prints the constants and the IoU they give on the same frames::

    python benchmarks/fit_head_boxes.py --step 4
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

SHARED = Path(os.environ.get("OPENHEADPOSE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
VIDEOS = ("WolfgangLanger_Pexels.mp4", "single_face.mp4", "face_noface.mov")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--step", type=int, default=4, help="every N-th frame")
    args = ap.parse_args(argv)

    from openheadpose.core.geometry import box_iou
    from openheadpose.inference.detectors import DETECTORS
    from openheadpose.inference.head_detector import SHOULDERS, HeadDetector
    from openheadpose.inference.keypoint_sources import BODY_HEAD_LANDMARKS
    from openheadpose.io.sources import expand_sources

    heads = HeadDetector()
    faces = DETECTORS.create("blazeface")

    def sampled():
        """(video, frame, the face detector's sure boxes) for every --step-th decoded frame."""
        for video in VIDEOS:
            for src in expand_sources(str(SHARED / "media" / video)):
                for fr in src.frames():
                    if fr.error or fr.warning or fr.index % args.step:
                        continue
                    f = faces(fr.image)
                    yield video, fr, f[np.flatnonzero(f.scores >= 0.75)]

    rows = []
    for video, fr, f in sampled():
        lm, _ = heads.people(fr.image)
        if len(f) == 0 or len(lm) == 0:
            continue
        own, _ = heads.boxes(lm)
        iou = box_iou(own, f.boxes)
        for i in range(len(lm)):
            j = int(iou[i].argmax())
            if iou[i, j] <= 0.3:
                continue
            b = f.boxes[j]
            side = float(np.sqrt((b[2] - b[0]) * (b[3] - b[1])))
            head = lm[i, BODY_HEAD_LANDMARKS]
            spread = float(np.linalg.norm(head[:, None] - head[None], axis=-1).max())
            sh = lm[i, SHOULDERS]
            width = float(np.linalg.norm(sh[0] - sh[1]))
            cy = (b[1] + b[3]) / 2
            rows.append((video, fr.index, side / spread, (cy - (head[:, 1].min() + head[:, 1].max()) / 2) / side,
                         side / width, (sh[:, 1].mean() - cy) / width))
    r = np.array([x[2:] for x in rows], np.float64)
    fit = {"scale": float(np.median(r[:, 0])), "shift_y": float(np.median(r[:, 1])),
           "shoulder_scale": float(np.median(r[:, 2])), "shoulder_up": float(np.median(r[:, 3]))}
    fitted = HeadDetector(**{k: round(v, 3) for k, v in fit.items()})
    ious = []
    for _, fr, f in sampled():
        d = fitted(fr.image)
        if len(f) and len(d):
            ious.append(float(box_iou(d.boxes, f.boxes).max()))
    out = {"frames_matched": len(rows), "per_video": {v: sum(1 for x in rows if x[0] == v) for v in VIDEOS},
           "fit": {k: round(v, 3) for k, v in fit.items()},
           "iou_after_fit": {"median": float(np.median(ious)), "min": float(np.min(ious)), "n": len(ious)} if ious else None}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
