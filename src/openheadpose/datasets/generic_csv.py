"""Any labelled images as a CSV of ``image,yaw,pitch,roll[,x1,y1,x2,y2]``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

import numpy as np

from openheadpose.core.rotation import (
    euler_to_matrix,
)
from openheadpose.datasets.base import (
    DatasetError,
    DatasetReader,
    PoseSample,
    _image_size,
    _rel,
)
from openheadpose.io.images import InputError


class GenericCSV(DatasetReader):
    """Any labelled images listed in a CSV: ``image,yaw,pitch,roll[,x1,y1,x2,y2]``.

    Convention:
        yaw, pitch, roll in degrees, AFLW convention (positive yaw: nose towards
        the image's left; positive pitch: looks up; positive roll: clockwise on
        screen); ``rotation = euler_to_matrix(yaw, pitch, roll)`` when all three
        are given. An empty angle cell means "not labelled": NaN in ``euler``
        and ``rotation = None``.

    Fields:
        image paths are relative to the CSV's folder (absolute paths work too);
        box: the ``x1, y1, x2, y2`` columns in image pixels when present and
        filled, else the whole image (its size read from the file header, only
        then).

    Args:
        path: the CSV file (a header row is required; extra columns are ignored).
        standard_filter: drop faces with a labelled angle beyond +-99 deg.
    """

    kind = "csv"
    _BOX = ("x1", "y1", "x2", "y2")

    def __init__(self, path: str | Path, standard_filter: bool = True):
        super().__init__(Path(path), standard_filter)
        if not self.root.is_file():
            raise DatasetError(f"{self.root}: no such file (expected a CSV with columns image,yaw,pitch,roll[,x1,y1,x2,y2])")
        with open(self.root, newline="", encoding="utf-8-sig") as fh:
            self.columns = [c.strip() for c in next(csv.reader(fh), [])]
        missing = [c for c in ("image", "yaw", "pitch", "roll") if c not in self.columns]
        if missing:
            raise DatasetError(
                f"{self.root}: missing column(s) {', '.join(missing)}; expected a header image,yaw,pitch,roll[,x1,y1,x2,y2], "
                f"found {','.join(self.columns) or 'an empty file'}"
            )
        self.has_box = all(c in self.columns for c in self._BOX)

    def _count(self) -> int:
        with open(self.root, newline="", encoding="utf-8-sig") as fh:
            return max(0, sum(1 for row in csv.reader(fh) if any(c.strip() for c in row)) - 1)

    def _samples(self) -> Iterator[PoseSample]:
        base = self.root.parent
        with open(self.root, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            next(reader, None)
            for line, cells in enumerate(reader, start=2):
                if not any(c.strip() for c in cells):
                    continue
                row = {k: (cells[i].strip() if i < len(cells) else "") for i, k in enumerate(self.columns)}
                where = f"{self.root}:{line}"
                try:
                    if not row["image"]:
                        raise ValueError("empty image path")
                    euler = np.array([float(row[k]) if row[k] else np.nan for k in ("yaw", "pitch", "roll")])
                    box = None
                    if self.has_box and all(row[k] for k in self._BOX):
                        box = np.array([float(row[k]) for k in self._BOX])
                        if not (box[2] > box[0] and box[3] > box[1]):
                            raise ValueError(f"empty box {row['x1']},{row['y1']},{row['x2']},{row['y2']}")
                except ValueError as exc:
                    self._fail(where, f"bad row ({exc})")
                    continue
                img = Path(row["image"])
                img = img if img.is_absolute() else base / img
                if not img.is_file():
                    self._fail(img, f"missing image (row {line})")
                    continue
                if box is None:
                    try:
                        W, H = _image_size(img)
                    except InputError as exc:
                        self._fail(img, exc)
                        continue
                    box = np.array([0.0, 0.0, W, H])
                full = bool(np.all(np.isfinite(euler)))
                yield PoseSample(
                    name=_rel(img, base),
                    rotation=euler_to_matrix(*euler) if full else None,
                    euler=euler,
                    box=box,
                    image_path=img,
                )
