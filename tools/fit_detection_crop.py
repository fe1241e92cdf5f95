"""Fit how a face-detector box maps onto the 68-landmark extent, on data other than AFLW2000.

A crop recipe built on the 68-landmark extent (``face-1.1``) needs, at run time, the
same square from a detector box. This measures, on the photos of a ``headpose synth``
set (view 0 of each source: the real photo, padded by half its side so the detector
sees some surroundings; its ``pt2d`` are the fitted model's 68 landmarks), the median of

* ``side_ratio`` = longer side of the 68-point extent / longer side of the detector box,
* ``dx``, ``dy`` = extent centre - box centre, in units of the box's longer side,

over the faces where the detector's best box overlaps the extent (IoU >= 0.3).

Usage::

    python tools/fit_detection_crop.py /work/synth/aflw/val /work/synth/aflw/train --limit 3000
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path, help="headpose synth output folders (train / val)")
    ap.add_argument("--limit", type=int, default=3000)
    args = ap.parse_args(argv)

    from openheadpose.specs.crops import landmark_box
    from openheadpose.datasets.registry import open_dataset
    from openheadpose.inference.detectors import DETECTORS
    from openheadpose.core.geometry import box_iou
    from openheadpose.inference.pipeline import default_detector

    det = DETECTORS.create(default_detector())
    ratios, dxs, dys, tried = [], [], [], 0
    for folder in args.folders:
        for s in open_dataset(f"300wlp:{folder}"):
            if not s.name.endswith("_0.jpg"):
                continue
            if tried >= args.limit:
                break
            tried += 1
            img = s.load_image()
            pad = img.shape[0] // 2
            big = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            d = det(big)
            if len(d.boxes) == 0:
                continue
            ext = landmark_box(s.landmarks) + pad
            iou = box_iou(d.boxes, ext[None])[:, 0]
            j = int(np.argmax(iou))
            if iou[j] < 0.3:
                continue
            b = d.boxes[j]
            side_b = max(b[2] - b[0], b[3] - b[1])
            side_e = max(ext[2] - ext[0], ext[3] - ext[1])
            ratios.append(side_e / side_b)
            dxs.append(((ext[0] + ext[2]) - (b[0] + b[2])) / 2 / side_b)
            dys.append(((ext[1] + ext[3]) - (b[1] + b[3])) / 2 / side_b)
    out = {
        "detector": default_detector(), "tried": tried, "matched": len(ratios),
        "side_ratio": round(float(np.median(ratios)), 3), "dx": round(float(np.median(dxs)), 3), "dy": round(float(np.median(dys)), 3),
        "side_ratio_iqr": [round(float(v), 3) for v in np.percentile(ratios, [25, 75])],
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
