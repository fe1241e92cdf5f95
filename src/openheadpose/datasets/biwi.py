"""BIWI Kinect Head Pose: raw frames with ``frame_XXXXX_pose.txt`` and ``rgb.cal``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

from openheadpose.core.rotation import (
    Frame,
    change_frame,
    matrix_to_euler,
)
from openheadpose.datasets.base import (
    DatasetError,
    DatasetReader,
    PoseSample,
    _numbers,
    _rel,
)

BIWI_HEAD_BOX_MM = 220.0


"""Side of BIWI's square face box in millimetres at the head centre's depth."""


@dataclass(frozen=True, eq=False)
class _BiwiCalibration:
    K: np.ndarray  # (3, 3) RGB intrinsics
    dist: np.ndarray  # (4,) distortion
    R: np.ndarray  # (3, 3) depth -> RGB rotation
    t: np.ndarray  # (3,) depth -> RGB translation, mm
    size: tuple[int, int] | None  # (width, height)


def _read_biwi_cal(path: Path) -> _BiwiCalibration:
    """Parse ``rgb.cal``: 3 rows of K, a row of 4 distortion values, 3 rows of R, a row of t, then "W H"."""
    rows = [_numbers(line) for line in path.read_text().splitlines() if line.strip()]
    if len(rows) < 8 or [len(r) for r in rows[:8]] != [3, 3, 3, 4, 3, 3, 3, 3]:
        raise ValueError(f"expected 3x3 intrinsics, 4 distortion values, 3x3 rotation, translation; got rows of {[len(r) for r in rows]}")
    size = (int(rows[8][0]), int(rows[8][1])) if len(rows) > 8 and len(rows[8]) == 2 else None
    return _BiwiCalibration(np.array(rows[0:3]), np.array(rows[3]), np.array(rows[4:7]), np.array(rows[7]), size)


class BIWI(DatasetReader):
    """BIWI Kinect Head Pose database (Fanelli et al. 2013), raw frames:
    ``hpdb/NN/frame_XXXXX_rgb.png`` + ``frame_XXXXX_pose.txt`` + ``NN/rgb.cal``.

    ``pose.txt``: three rows of a rotation matrix ``M``, then the head centre
    ``c`` in mm, both in the **depth** camera's frame (OpenCV axes: x right,
    y down, z forward). ``rgb.cal``: the RGB camera's intrinsics ``K`` (3 rows),
    4 distortion values (0 in the database), then ``R_ext`` (3 rows) and
    ``t_ext`` (mm), then "640 480".

    Convention:
        ``X_rgb = R_ext @ X_depth + t_ext`` (the extrinsics map depth-camera
        points into the RGB camera). Checked on the three shared frames: with
        this reading the head centre of the near-frontal frame 01/00003
        projects onto the nose tip found by FaceMesh (0.1 px away); the inverse
        reading ``R_ext.T @ (X - t_ext)`` lands 28 px off, and ignoring the
        extrinsics (as fast.ai's BIWI lesson does) 15 px.

        ``M`` maps head-model axes to camera axes, both in OpenCV axes, so the
        pose in the RGB image is ``R_cv = R_ext @ M`` and
        ``rotation = change_frame(R_ext @ M, Frame.OPENCV, Frame.GL)``; ``euler``
        is its AFLW angles. The (yaw, pitch, roll) that Hopenet and FSA-Net
        publish for BIWI are exactly the AFLW angles of ``M`` alone
        (``camera="depth"``); ``R_ext`` turns them by about 1 deg.

    Fields:
        box: a square of side ``f * 220 mm / z`` centred on the projected head
        centre (``z`` its depth in the RGB camera). On the three shared frames
        FaceMesh's landmarks span 140-147 mm x 170-179 mm and their centre lies
        within 11 px of the projected head centre, so the box holds the face
        with some margin; it follows the head, not a landmark extent.

    Args:
        root: the ``hpdb`` folder, its parent, or one ``NN`` sequence folder.
        camera: ``"rgb"`` (pose as seen by the RGB camera, the picture's) or
            ``"depth"`` (``M`` as stored, the published angles).
        standard_filter: drop faces beyond +-99 deg (BIWI stays within about
            +-75 deg yaw, +-60 deg pitch).
    """

    kind = "biwi"

    def __init__(self, root: str | Path, camera: Literal["rgb", "depth"] = "rgb", standard_filter: bool = True):
        super().__init__(Path(root), standard_filter)
        if camera not in ("rgb", "depth"):
            raise ValueError(f"camera must be 'rgb' or 'depth', not {camera!r}")
        self.camera = camera
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: not a folder (expected BIWI's hpdb/NN/frame_XXXXX_rgb.png + _pose.txt + rgb.cal)")
        self.files = sorted(self.root.glob("frame_*_pose.txt"))
        self.base = self.root.parent  # names are "NN/frame_XXXXX_rgb.png" whichever root form is given
        if not self.files:
            for base in (self.root, self.root / "hpdb", self.root / "kinect_head_pose_db" / "hpdb"):
                if base.is_dir():
                    self.files = sorted(f for d in sorted(base.iterdir()) if d.is_dir() for f in d.glob("frame_*_pose.txt"))
                if self.files:
                    self.base = base
                    break
        if not self.files:
            sub = [p for p in self.root.iterdir() if p.is_dir()]
            n_png = sum(1 for d in [self.root, *sub] for _ in d.glob("*_rgb.png"))
            raise DatasetError(
                f"{self.root}: expected BIWI sequences NN/frame_XXXXX_rgb.png + frame_XXXXX_pose.txt + rgb.cal "
                f"(root may be hpdb, its parent, or one NN folder); found {len(sub)} subfolder(s), "
                f"{n_png} *_rgb.png and 0 *_pose.txt files"
            )
        self._cal: dict[Path, _BiwiCalibration | str] = {}

    def _count(self) -> int:
        return len(self.files)

    def _calibration(self, folder: Path) -> _BiwiCalibration | str:
        if folder not in self._cal:
            cal = folder / "rgb.cal"
            try:
                self._cal[folder] = _read_biwi_cal(cal)
            except FileNotFoundError:
                self._cal[folder] = f"{cal}: missing"
            except Exception as exc:  # noqa: BLE001
                self._cal[folder] = f"{cal}: unreadable ({exc})"
        return self._cal[folder]

    @staticmethod
    def _project(cal: _BiwiCalibration, X: np.ndarray) -> np.ndarray:
        """Pixel of an RGB-camera point ``X`` (mm), with OpenCV's (k1, k2, p1, p2) distortion."""
        x, y = X[0] / X[2], X[1] / X[2]
        k1, k2, p1, p2 = cal.dist
        if np.any(cal.dist):
            r2 = x * x + y * y
            radial = 1 + k1 * r2 + k2 * r2 * r2
            x, y = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x), y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        K = cal.K
        return np.array([K[0, 0] * x + K[0, 1] * y + K[0, 2], K[1, 1] * y + K[1, 2]])

    def _samples(self) -> Iterator[PoseSample]:
        for f in self.files:
            img = f.with_name(f.name.replace("_pose.txt", "_rgb.png"))
            cal = self._calibration(f.parent)
            if isinstance(cal, str):
                self._fail(f, f"no usable calibration ({cal})")
                continue
            labels = self._labels(f, img, _biwi_pose)
            if labels is None:
                continue
            M, c = labels
            X = cal.R @ c + cal.t
            if X[2] <= 0:
                self._fail(f, f"head centre behind the RGB camera (z = {X[2]:.0f} mm)")
                continue
            centre = self._project(cal, X)
            half = 0.5 * cal.K[0, 0] * BIWI_HEAD_BOX_MM / X[2]
            R_cv = cal.R @ M if self.camera == "rgb" else M
            R = change_frame(R_cv, Frame.OPENCV, Frame.GL)
            yield PoseSample(
                name=_rel(img, self.base),
                rotation=R,
                euler=matrix_to_euler(R).stack(),
                box=np.concatenate([centre - half, centre + half]),
                image_path=img,
            )


def _biwi_pose(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The rotation (depth camera frame, OpenCV axes) and head centre (mm) of a ``frame_XXXXX_pose.txt``."""
    rows = [_numbers(line) for line in path.read_text().splitlines() if line.strip()]
    if len(rows) < 4 or any(len(r) != 3 for r in rows[:4]):
        raise ValueError("expected 3 rows of a rotation matrix, then the head centre (3 numbers)")
    M, c = np.array(rows[:3]), np.array(rows[3])
    if not np.allclose(M @ M.T, np.eye(3), atol=1e-3) or np.linalg.det(M) < 0:
        raise ValueError("the matrix is not a rotation")
    return M, c
