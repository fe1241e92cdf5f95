"""AFLW face crops with yaw labels: ``labels.csv`` + ``images/`` (and ``landmarks68.csv`` where present).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

import numpy as np

from openheadpose.datasets.base import (
    DatasetError,
    DatasetReader,
    PoseSample,
    _extent,
)


class AFLWYaw(DatasetReader):
    """Real AFLW face crops with yaw labels: ``labels.csv`` + ``images/``
    (the ``aflw-yaw`` folder of ../shared).

    ``labels.csv`` columns: ``image, yaw_deg, roi_x1, roi_y1, roi_x2, roi_y2,
    x1, y1, ..., x21, y21``. Each crop is ``photo[roi_y1:roi_y2, roi_x1:roi_x2]``
    resized to ``crop_size`` (120 x 120); the 21 AFLW landmarks are in the
    original photo's pixels, empty where not visible.

    Convention:
        ``yaw_deg`` has the AFLW2000 sign (positive: nose towards the image's
        left); checked on the labels themselves: for |yaw| > 20 deg the nose
        tip (point 15) lies on the side of the eye centres' midpoint (points 8,
        11) that the sign predicts in 98% of 3024 faces. Only yaw is labelled:
        ``euler = [yaw, nan, nan]`` and ``rotation = None``.

    Fields:
        landmarks: (21, 2) mapped into crop pixels,
        ``u = (x - roi_x1 + 0.5) * crop / (roi_x2 - roi_x1) - 0.5`` (pixel
        centres, as ``cv2.resize`` samples), NaN where empty.
        box: extent of the visible landmarks when at least 2 are visible, else
        the whole crop (AFLW's 21 points span brows to chin, so this box is
        tighter than the crop, which was cut with a margin).

    Args:
        root: the folder holding ``labels.csv`` and ``images/``.
        crop_size: the crops' side in pixels.
        standard_filter: drop faces with |yaw| > 99 deg (122 of the 10,000 rows).
    """

    kind = "aflw-yaw"

    def __init__(self, root: str | Path, crop_size: int = 120, standard_filter: bool = True):
        super().__init__(Path(root), standard_filter)
        self.csv = self.root / "labels.csv"
        self.images = self.root / "images"
        self.crop_size = int(crop_size)
        if not self.csv.is_file() or not self.images.is_dir():
            found = sorted(p.name for p in self.root.iterdir()) if self.root.is_dir() else []
            raise DatasetError(
                f"{self.root}: expected labels.csv and an images/ folder (aflw-yaw layout); "
                f"found {len(found)} entries ({', '.join(found[:8]) or 'none'})"
            )
        with open(self.csv, newline="") as fh:
            header = next(csv.reader(fh), [])
        need = ["image", "yaw_deg", "roi_x1", "roi_y1", "roi_x2", "roi_y2"]
        missing = [c for c in need + [f"{a}{i}" for i in range(1, 22) for a in "xy"] if c not in header]
        if missing:
            raise DatasetError(f"{self.csv}: missing column(s) {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}")

    def _count(self) -> int:
        with open(self.csv, newline="") as fh:
            return max(0, sum(1 for row in csv.reader(fh) if row) - 1)

    def _samples(self) -> Iterator[PoseSample]:
        S = float(self.crop_size)
        whole = np.array([0.0, 0.0, S, S])
        present = {p.name for p in self.images.iterdir()}  # one listing instead of a stat per row
        with open(self.csv, newline="") as fh:
            for line, row in enumerate(csv.DictReader(fh), start=2):
                where = f"{self.csv}:{line}"
                try:
                    yaw = float(row["yaw_deg"])
                    x1, y1, x2, y2 = (float(row[k]) for k in ("roi_x1", "roi_y1", "roi_x2", "roi_y2"))
                    if x2 <= x1 or y2 <= y1:
                        raise ValueError(f"empty roi {x1:g},{y1:g},{x2:g},{y2:g}")
                    pts = np.array(
                        [[float(row[f"x{i}"] or "nan"), float(row[f"y{i}"] or "nan")] for i in range(1, 22)]
                    )
                except (ValueError, TypeError, KeyError) as exc:
                    self._fail(where, f"bad row ({exc})")
                    continue
                if row["image"] not in present:
                    self._fail(self.images / row["image"], "missing image")
                    continue
                pts[np.any(np.isnan(pts), axis=1)] = np.nan
                scale = np.array([S / (x2 - x1), S / (y2 - y1)])
                crop_pts = (pts - np.array([x1, y1]) + 0.5) * scale - 0.5
                visible = np.all(np.isfinite(crop_pts), axis=1)
                yield PoseSample(
                    name=f"{self.images.name}/{row['image']}",
                    rotation=None,
                    euler=np.array([yaw, np.nan, np.nan]),
                    box=_extent(crop_pts) if visible.sum() >= 2 else whole.copy(),
                    landmarks=crop_pts,
                    image_path=self.images / row["image"],
                )
