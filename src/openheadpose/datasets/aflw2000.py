"""AFLW2000-3D: ``image*.jpg`` with ``.mat`` labels (``Pose_Para``, ``pt2d``, ``pt3d_68``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from openheadpose.datasets.base import (
    DatasetError,
    DatasetReader,
    PoseSample,
    _extent,
    mat_labels,
)


class AFLW2000(DatasetReader):
    """AFLW2000-3D (Zhu et al. 2016): ``imageXXXXX.jpg`` + ``imageXXXXX.mat`` pairs.

    Convention:
        ``Pose_Para[0, :3]`` is (pitch, yaw, roll) in **radians**;
        ``R = (Rz(roll) @ Ry(yaw) @ Rx(pitch)).T`` in ``Frame.GL`` (3DDFA's
        ``angle2matrix``), i.e. exactly :func:`rotation.euler_to_matrix` of
        (yaw, pitch, roll); checked against ``pt3d_68`` in
        tests/test_conventions_data.py (median 1.3 deg). ``euler`` is the file's
        (yaw, pitch, roll) in degrees.

    Fields:
        box: extent of ``pt3d_68``'s image coordinates (the fitted 3D landmarks
        projected; it covers the whole face, occluded side included).
        landmarks: ``pt2d`` (21 AFLW points), its ``-1`` (invisible) entries NaN.
        landmarks68: ``pt3d_68[:2].T``.

    Args:
        root: folder holding the pairs.
        standard_filter: keep only faces with all angles within +-99 deg
            (983 of the 1000 images of aflw2000-dev, 1969 of the full 2000).
    """

    kind = "aflw2000"

    def __init__(self, root: str | Path, standard_filter: bool = True):
        super().__init__(Path(root), standard_filter)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: not a folder (expected AFLW2000-3D image*.jpg + image*.mat pairs)")
        self.files = sorted(self.root.glob("*.mat"))
        if not self.files:
            n_jpg = sum(1 for _ in self.root.glob("*.jpg"))
            raise DatasetError(
                f"{self.root}: expected AFLW2000-3D image*.jpg + image*.mat pairs; found 0 .mat and {n_jpg} .jpg files"
            )

    def _count(self) -> int:
        return len(self.files)

    def _samples(self) -> Iterator[PoseSample]:
        for f in self.files:
            img = f.with_suffix(".jpg")
            labels = self._labels(f, img, _aflw2000_labels)
            if labels is not None:
                euler, pt2d, pts68 = labels
                yield self._euler_sample(img, euler, _extent(pts68), landmarks=pt2d, landmarks68=pts68)


def _aflw2000_labels(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Euler angles, the 21 AFLW points and the 68 points of one AFLW2000 ``.mat``."""
    m, euler, pt2d = mat_labels(path)
    pts68 = np.asarray(m["pt3d_68"], np.float64)[:2].T.copy()
    if pts68.shape != (68, 2):
        raise ValueError(f"pt3d_68 has shape {np.shape(m['pt3d_68'])}, expected (3, 68)")
    return euler, pt2d, pts68
