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
    (the ``aflw-yaw`` and ``aflw-extra`` folders of ../shared), and 68-point
    landmarks from ``landmarks68.csv`` where the folder has one.

    ``labels.csv`` columns: ``image, yaw_deg, roi_x1, roi_y1, roi_x2, roi_y2,
    x1, y1, ..., x21, y21``. Each crop is ``photo[roi_y1:roi_y2, roi_x1:roi_x2]``
    resized to ``crop_size`` (120 x 120); the 21 AFLW landmarks are in the
    original photo's pixels, empty where not visible.

    ``landmarks68.csv`` (optional) columns: ``image, residual_px, x1, y1, v1, ...,
    x68, y68, v68``: iBUG 68-point landmarks (MERL-RAV's re-annotation of AFLW) for
    some of the crops, in the same photo frame as ``labels.csv``'s points; ``v`` =
    1 visible, 2 externally occluded (position given), 0 self-occluded (position
    unknown, left empty).

    Convention:
        ``yaw_deg`` has the AFLW2000 sign (positive: nose towards the image's
        left); checked on the labels themselves: for |yaw| > 20 deg the nose
        tip (point 15) lies on the side of the eye centres' midpoint (points 8,
        11) that the sign predicts in 98% of 3024 faces. Only yaw is labelled:
        ``euler = [yaw, nan, nan]`` and ``rotation = None``.
        Both point sets map into crop pixels by the same transform,
        ``u = (x - roi_x1 + 0.5) * crop / (roi_x2 - roi_x1) - 0.5`` (pixel
        centres, as ``cv2.resize`` samples; ``v`` likewise with ``y``, ``roi_y1``).
        ``landmarks68`` rows follow the iBUG order (0-16 jaw from the image's
        left, 17-26 brows, 27-35 nose, 36-47 eyes, 48-67 mouth); a self-occluded
        point (``v = 0``) is NaN, an externally occluded one (``v = 2``) keeps its
        annotated position unless ``occluded68=False``. Checked on the real crops:
        the 68-point nose tip (30) and outer eye corners (36, 45) lie within a
        few pixels of AFLW's points 15, 7 and 12.

    Fields:
        landmarks: (21, 2) AFLW's points in crop pixels, NaN where empty.
        landmarks68: (68, 2) in crop pixels for the crops that have a
        ``landmarks68.csv`` row, else None.
        box: extent of the visible 21 landmarks when at least 2 are visible, else
        the whole crop (AFLW's 21 points span brows to chin, so this box is
        tighter than the crop, which was cut with a margin).

    After (or during) iteration, ``visibility68`` maps a sample's ``name`` to its
    ``(68,)`` uint8 ``v`` flags. A malformed ``landmarks68.csv`` row (wrong
    column count, a non-number, a flag outside 0-2, a placed point without
    coordinates, a repeated image) becomes a ``failures`` entry naming the file
    and line; its crop is still read, without ``landmarks68``.

    Args:
        root: the folder holding ``labels.csv`` and ``images/``.
        crop_size: the crops' side in pixels.
        standard_filter: drop faces with |yaw| > 99 deg (122 of the 10,000 rows).
        occluded68: keep the externally occluded (``v = 2``) 68-point positions;
            False makes them NaN like the self-occluded ones.
    """

    kind = "aflw-yaw"

    def __init__(self, root: str | Path, crop_size: int = 120, standard_filter: bool = True, occluded68: bool = True):
        super().__init__(Path(root), standard_filter)
        self.csv = self.root / "labels.csv"
        self.csv68 = self.root / "landmarks68.csv"
        self.occluded68 = bool(occluded68)
        self.visibility68: dict[str, np.ndarray] = {}
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
        lm68 = self._read68() if self.csv68.is_file() else {}
        self.visibility68 = {}
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
                name = f"{self.images.name}/{row['image']}"
                crop68 = None
                if row["image"] in lm68:
                    pts68, vis = lm68[row["image"]]
                    crop68 = (pts68 - np.array([x1, y1]) + 0.5) * scale - 0.5
                    self.visibility68[name] = vis
                yield PoseSample(
                    name=name,
                    rotation=None,
                    euler=np.array([yaw, np.nan, np.nan]),
                    box=_extent(crop_pts) if visible.sum() >= 2 else whole.copy(),
                    landmarks=crop_pts,
                    landmarks68=crop68,
                    image_path=self.images / row["image"],
                )

    def _read68(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``landmarks68.csv`` as image -> ((68, 2) photo pixels, NaN where not placed; (68,) uint8 flags)."""
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        with open(self.csv68, newline="") as fh:
            rows = csv.reader(fh)
            header = next(rows, [])
            cols = ["image", "residual_px"] + [f"{a}{i}" for i in range(1, 69) for a in "xyv"]
            if header != cols:
                missing = [c for c in cols if c not in header]
                why = f"missing column(s) {', '.join(missing[:6])}" if missing else "columns not in the order image, residual_px, x1, y1, v1, ..."
                self._fail(self.csv68, f"not read ({why})")
                return out
            for line, row in enumerate(rows, start=2):
                if not row:
                    continue
                where = f"{self.csv68}:{line}"
                try:
                    if len(row) != len(cols):
                        raise ValueError(f"{len(row)} fields, expected {len(cols)}")
                    vals = np.array(row[2:], dtype=object).reshape(68, 3)
                    vis = np.array([int(v) for v in vals[:, 2]])
                    if not np.isin(vis, (0, 1, 2)).all():
                        raise ValueError(f"visibility flag {vis[~np.isin(vis, (0, 1, 2))][0]} (expected 0, 1 or 2)")
                    xy = np.array([[float(a or "nan"), float(b or "nan")] for a, b in vals[:, :2]])
                    placed = vis > 0
                    bad = placed & ~np.all(np.isfinite(xy), axis=1)
                    if bad.any():
                        raise ValueError(f"point {int(np.flatnonzero(bad)[0]) + 1} has v={vis[bad][0]} but no coordinates")
                    if row[0] in out:
                        raise ValueError(f"{row[0]} appears twice")
                except ValueError as exc:
                    self._fail(where, f"bad row ({exc})")
                    continue
                keep = (vis == 1) | ((vis == 2) & self.occluded68)
                xy[~keep] = np.nan
                out[row[0]] = (xy, vis.astype(np.uint8))
        return out
