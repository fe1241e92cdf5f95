"""Dataset readers. Each converts its labels to rotation matrices once, here, at the boundary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .rotation import euler_to_matrix


@dataclass(frozen=True)
class PoseSample:
    """One labelled face.

    Attributes:
        image_path: the picture.
        rotation: ``(3, 3)`` true rotation in ``Frame.GL``.
        euler: ``(3,)`` the label's own (yaw, pitch, roll) in degrees.
        landmarks: ``(L, 2)`` pixel landmarks of the label (may include invisible ones).
        box: ``(4,)`` face box [x1, y1, x2, y2] from the landmarks.
    """

    image_path: Path
    rotation: np.ndarray
    euler: np.ndarray
    landmarks: np.ndarray
    box: np.ndarray


class DatasetError(RuntimeError):
    """A dataset root or file is wrong; the message names it."""


class AFLW2000:
    """AFLW2000-3D: ``imageXXXXX.jpg`` + ``.mat`` pairs.

    Convention: ``Pose_Para[0, :3]`` is (pitch, yaw, roll) in radians, composed as
    ``R = (Rz(roll) Ry(yaw) Rx(pitch))^T`` in ``Frame.GL`` (3DDFA's angle2matrix);
    checked against the 3D landmarks in tests/test_conventions_data.py. The face
    box is the extent of ``pt3d_68``'s image coordinates.

    Args:
        root: folder holding the pairs.
        standard_filter: keep only faces with all angles within +-99 deg.
    """

    def __init__(self, root: str | Path, standard_filter: bool = True):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: not a folder")
        self.files = sorted(self.root.glob("*.mat"))
        if not self.files:
            raise DatasetError(f"{self.root}: no .mat files (expected AFLW2000-3D image*.jpg + image*.mat pairs)")
        self.standard_filter = standard_filter
        self.failures: list[str] = []
        self.n_filtered = 0

    def __iter__(self) -> Iterator[PoseSample]:
        import scipy.io as sio

        self.failures, self.n_filtered = [], 0
        for f in self.files:
            img = f.with_suffix(".jpg")
            try:
                m = sio.loadmat(f)
                pitch, yaw, roll = np.rad2deg(np.asarray(m["Pose_Para"], np.float64).ravel()[:3])
                pts = np.asarray(m["pt3d_68"], np.float64)[:2].T
            except Exception as exc:  # noqa: BLE001 - any unreadable label is reported, the rest read
                self.failures.append(f"{f}: {exc}")
                continue
            if not img.is_file():
                self.failures.append(f"{img}: missing image")
                continue
            euler = np.array([yaw, pitch, roll])
            if self.standard_filter and np.any(np.abs(euler) > 99.0):
                self.n_filtered += 1
                continue
            box = np.concatenate([pts.min(0), pts.max(0)])
            yield PoseSample(img, euler_to_matrix(yaw, pitch, roll), euler, pts, box)
