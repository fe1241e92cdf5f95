"""Dataset readers. Each converts its labels to rotation matrices once, here, at the boundary.

Every reader is an iterable of :class:`PoseSample` with the same surface:

* ``Reader(root, ...)`` only lists files (fast); labels are parsed while iterating.
* ``len(reader)``: entries listed (label files, rows, npz records), before the
  standard filter and before failures.
* ``iter(reader)`` yields :class:`PoseSample` lazily and, as it goes, fills
  ``reader.failures`` (``"<file>: <problem>"``; the rest is still read) and
  ``reader.n_filtered`` (faces dropped by the standard filter); ``reader.n_read``
  counts the samples yielded. Iterating again starts the counts afresh.
* ``reader.summary()``: one line saying how many were listed, read, filtered, failed.
* A wrong root raises :class:`DatasetError` naming what was expected there and
  counting what was found.

Standard filter (the AFLW2000 protocol, also used for BIWI): keep a face only
when every *labelled* angle (yaw, pitch, roll in degrees, AFLW convention) is
within +-99 deg.

Conventions: ``PoseSample.rotation`` is the head-to-camera rotation in
``Frame.GL`` and ``PoseSample.euler`` its (yaw, pitch, roll) in the AFLW
convention of :mod:`openheadpose.rotation`. Each reader's class docstring has a
"Convention:" block saying how its file format maps onto them.

>>> sorted(DATASETS.names())
['300wlp', 'aflw-yaw', 'aflw2000', 'biwi', 'biwi-npz', 'csv', 'pointing04']
"""

from __future__ import annotations

import importlib.resources

import csv
import json
import difflib
import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Literal

import numpy as np

from .io import InputError, read_image
from .registry import Registry
from .rotation import Frame, change_frame, euler_to_matrix, matrix_to_euler, rot_x, rot_y

__all__ = [
    "PoseSample",
    "DatasetError",
    "DatasetReader",
    "AFLW2000",
    "W300LP",
    "BIWI",
    "BIWINpz",
    "AFLWYaw",
    "Pointing04",
    "Pointing04Name",
    "GenericCSV",
    "DATASETS",
    "open_dataset",
    "STANDARD_FILTER_DEG",
]

STANDARD_FILTER_DEG = 99.0
"""The standard filter keeps faces whose labelled angles are all within this many degrees."""


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays element-wise is meaningless here
class PoseSample:
    """One labelled face. Dimension legend: L sparse landmarks of the dataset.

    Attributes:
        name: id unique within the dataset: the image path relative to the
            dataset root (``"AFW/AFW_134212_1_0.jpg"``), or ``"<file>.npz:<index>"``.
        rotation: ``(3, 3)`` true head-to-camera rotation in ``Frame.GL``;
            ``None`` when the label is partial (e.g. yaw only).
        euler: ``(3,)`` the label's (yaw, pitch, roll) in degrees, AFLW convention
            (see :mod:`openheadpose.rotation`); NaN where the dataset has no label.
        box: ``(4,)`` float face box ``[x1, y1, x2, y2]`` in image pixels, in the
            dataset's own sense (each reader documents it).
        landmarks: ``(L, 2)`` the dataset's sparse 2D landmarks in image pixels,
            NaN where not visible, or ``None``.
        landmarks68: ``(68, 2)`` 68-point landmarks in image pixels (the 3D
            landmarks projected, as 3DDFA fits them), or ``None``.
        image_path: the image file, when the dataset stores files.
        image: ``(H, W, 3)`` uint8 RGB, when the dataset stores pixels (npz).
    """

    name: str
    rotation: np.ndarray | None
    euler: np.ndarray
    box: np.ndarray
    landmarks: np.ndarray | None = None
    landmarks68: np.ndarray | None = None
    image_path: Path | None = None
    image: np.ndarray | None = None

    def load_image(self) -> np.ndarray:
        """The picture as ``(H, W, 3)`` uint8 RGB (a fresh copy each call).

        Raises:
            InputError: the file is missing or unreadable (the message names it).
        """
        if self.image is not None:
            return self.image.copy()
        if self.image_path is None:
            raise InputError(f"{self.name}: the sample has no image")
        return read_image(self.image_path)

    @property
    def labelled(self) -> np.ndarray:
        """``(3,)`` bool: which of (yaw, pitch, roll) the dataset labels."""
        return ~np.isnan(self.euler)


class DatasetError(RuntimeError):
    """A dataset root or spec is wrong; the message says what was expected there."""


# --------------------------------------------------------------------------- helpers
def _passes_filter(euler: np.ndarray) -> bool:
    e = euler[~np.isnan(euler)]
    return bool(np.all(np.abs(e) <= STANDARD_FILTER_DEG))


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _extent(points: np.ndarray) -> np.ndarray:
    """``[x1, y1, x2, y2]`` of the finite rows of ``(L, 2)`` points (NaN rows ignored)."""
    p = points[np.all(np.isfinite(points), axis=1)]
    return np.concatenate([p.min(0), p.max(0)]).astype(np.float64)


def _pt2d(m: dict, key: str = "pt2d") -> np.ndarray:
    """``(L, 2)`` from a 3DDFA-style ``(2, L)`` array; AFLW2000's invisible marker
    (x = -1; y = -1 is treated alike) becomes NaN."""
    pts = np.asarray(m[key], np.float64)
    if pts.ndim != 2 or pts.shape[0] != 2:
        raise ValueError(f"{key} has shape {pts.shape}, expected (2, L)")
    pts = pts.T.copy()
    pts[np.any(pts == -1.0, axis=1)] = np.nan
    return pts


def _pose_para(m: dict) -> np.ndarray:
    """(yaw, pitch, roll) in degrees from 3DDFA's ``Pose_Para`` (pitch, yaw, roll in radians first)."""
    p = np.asarray(m["Pose_Para"], np.float64).ravel()
    if p.size < 3:
        raise ValueError(f"Pose_Para has {p.size} values, expected 7")
    pitch, yaw, roll = np.rad2deg(p[:3])
    return np.array([yaw, pitch, roll])


def _loadmat(path: Path) -> dict:
    import scipy.io as sio

    return sio.loadmat(str(path))


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) as :func:`io.read_image` would return the image, reading
    the header only where Pillow can (EXIF rotations by 90 deg swap the two)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow ships with scikit-image
        h, w = read_image(path).shape[:2]
        return w, h
    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(274, 1)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except Exception as exc:  # noqa: BLE001 - any unreadable header is reported
        raise InputError(f"{path}: not a readable image ({exc})") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def _numbers(text: str) -> list[float]:
    return [float(t) for t in text.split()]


class DatasetReader:
    """Base of the readers: counts, failures, the standard filter, ``summary()``.

    Subclasses list their entries in ``__init__`` and implement ``_count`` and
    ``_samples`` (which yields every readable sample, before the filter).
    """

    kind: str = ""
    standard_filter: bool

    def __init__(self, root: Path, standard_filter: bool):
        self.root = root
        self.standard_filter = standard_filter
        self.failures: list[str] = []
        self.n_filtered = 0
        self.n_read = 0
        self._n_listed: int | None = None

    # subclasses implement
    def _count(self) -> int:
        raise NotImplementedError

    def _samples(self) -> Iterator[PoseSample]:
        raise NotImplementedError

    def __len__(self) -> int:
        if self._n_listed is None:
            self._n_listed = self._count()
        return self._n_listed

    def __iter__(self) -> Iterator[PoseSample]:
        self.failures.clear()  # in place: callers holding the list see this run's failures
        self.n_filtered, self.n_read = 0, 0
        for s in self._samples():
            if self.standard_filter and not _passes_filter(s.euler):
                self.n_filtered += 1
                continue
            self.n_read += 1
            yield s

    def _fail(self, where: object, problem: object) -> None:
        self.failures.append(f"{where}: {problem}")

    def summary(self) -> str:
        """One line: entries listed, read, dropped by the filter, failed (so far)."""
        filt = f"{self.n_filtered} outside +-{STANDARD_FILTER_DEG:g} deg dropped" if self.standard_filter else "no angle filter"
        return f"{self.kind} {self.root}: {len(self)} listed, {self.n_read} read, {filt}, {len(self.failures)} failed"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, {len(self)} entries)"


# --------------------------------------------------------------------------- AFLW2000
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
            try:
                m = _loadmat(f)
                euler = _pose_para(m)
                pts68 = np.asarray(m["pt3d_68"], np.float64)[:2].T.copy()
                if pts68.shape != (68, 2):
                    raise ValueError(f"pt3d_68 has shape {np.shape(m['pt3d_68'])}, expected (3, 68)")
                pt2d = _pt2d(m)
            except Exception as exc:  # noqa: BLE001 - an unreadable label is reported, the rest read
                self._fail(f, f"unreadable label ({exc})")
                continue
            if not img.is_file():
                self._fail(img, "missing image")
                continue
            yield PoseSample(
                name=_rel(img, self.root),
                rotation=euler_to_matrix(*euler),
                euler=euler,
                box=_extent(pts68),
                landmarks=pt2d,
                landmarks68=pts68,
                image_path=img,
            )


# --------------------------------------------------------------------------- 300W-LP
W300LP_SUBSETS: tuple[str, ...] = ("AFW", "HELEN", "IBUG", "LFPW")


class W300LP(DatasetReader):
    """300W-LP (Zhu et al. 2016): ``<SUBSET>/<name>.jpg`` + ``.mat`` for the subsets
    AFW, HELEN, IBUG, LFPW and their mirrored twins ``<SUBSET>_Flip``, plus the
    optional ``landmarks/<SUBSET>/<name>_pts.mat``.

    Convention:
        Same ``Pose_Para`` as :class:`AFLW2000`: (pitch, yaw, roll) in radians,
        ``R = euler_to_matrix(yaw, pitch, roll)`` in ``Frame.GL``.

        ``_Flip`` folders: each image is the left-right mirror of its twin and
        its ``.mat`` already describes the **mirrored** face (pose with yaw and
        roll negated, i.e. ``R' = S R S`` with ``S = diag(-1, 1, 1)``;
        ``pt2d`` in the mirrored image's pixels), so the reader takes the file
        as is and never negates anything. Reasoning: Hopenet, FSA-Net
        (``data/type1/run_created_db_type1.sh`` builds ``AFW_Flip.npz`` etc.
        with the same script as ``AFW.npz``) and 6DRepNet all read the
        ``_Flip`` ``.mat`` files unchanged and crop with their ``pt2d``; with the
        un-mirrored pose stored there, half their training labels would have
        the wrong yaw sign and their crops would miss the face.

    Fields:
        box: extent of ``pt2d`` (68 points that follow the visible contour).
        landmarks: ``pt2d.T`` (68, 2) (no invisible marker in 300W-LP).
        landmarks68: ``pts_3d`` of ``landmarks/<SUBSET>/<name>_pts.mat`` (the 3D
        landmarks projected, as AFLW2000's ``pt3d_68``), else its ``pts_2d``,
        else ``None`` (the archive ships no landmark files for ``_Flip``).

    Args:
        root: the ``300W_LP`` folder (holding the subset folders), or one
            subset folder itself.
        subsets: which of AFW, HELEN, IBUG, LFPW to read (default: every one present).
        include_flip: also read the ``_Flip`` twins.
        standard_filter: drop faces beyond +-99 deg (off by default: this is
            training data, and the filter is an evaluation protocol).
    """

    kind = "300wlp"

    def __init__(
        self,
        root: str | Path,
        subsets: Iterable[str] | None = None,
        include_flip: bool = True,
        standard_filter: bool = False,
    ):
        root = Path(root)
        if subsets is not None:
            subsets = list(subsets)
            for s in subsets:
                if s not in W300LP_SUBSETS:
                    close = difflib.get_close_matches(s, W300LP_SUBSETS, n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise DatasetError(f"unknown 300W-LP subset {s!r}{hint} Choices: {', '.join(W300LP_SUBSETS)}")
        if root.is_dir() and (root.name in W300LP_SUBSETS + tuple(s + "_Flip" for s in W300LP_SUBSETS) or any(root.glob("*.mat"))):
            folders = [root.name]  # one subset folder given directly (or any folder of .jpg + .mat, e.g. `headpose synth`'s): read just that one
            root = root.parent
            explicit = True
        else:
            wanted = subsets if subsets is not None else list(W300LP_SUBSETS)
            folders = [n for s in wanted for n in ((s, s + "_Flip") if include_flip else (s,))]
            explicit = subsets is not None
        super().__init__(root, standard_filter)
        self.include_flip = include_flip
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: not a folder (expected the 300W_LP folder with AFW, HELEN, IBUG, LFPW[, _Flip] subfolders)")
        self.subsets = [n for n in folders if (self.root / n).is_dir()]
        missing = [n for n in folders if n not in self.subsets and not (n.endswith("_Flip") and len(folders) > 1)]
        if explicit and missing:  # a requested subset is missing (an absent _Flip twin is not an error)
            raise DatasetError(f"{self.root}: missing 300W-LP subset folder(s) {', '.join(missing)}")
        self.files = [f for n in self.subsets for f in sorted((self.root / n).glob("*.mat"))]
        if not self.files:
            sub = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            raise DatasetError(
                f"{self.root}: expected 300W-LP subset folders ({', '.join(W300LP_SUBSETS)}, each also as _Flip) "
                f"holding .jpg + .mat pairs; found {len(sub)} subfolder(s) ({', '.join(sub[:8]) or 'none'}) and 0 .mat files in the expected ones"
            )

    def _count(self) -> int:
        return len(self.files)

    def _landmarks68(self, mat: Path) -> np.ndarray | None:
        lm = self.root / "landmarks" / mat.parent.name / f"{mat.stem}_pts.mat"
        if not lm.is_file():
            return None
        try:
            m = _loadmat(lm)
            key = "pts_3d" if "pts_3d" in m else "pts_2d"
            pts = np.asarray(m[key], np.float64)
            if pts.shape == (2, 68):
                pts = pts.T
            if pts.shape != (68, 2):
                raise ValueError(f"{key} has shape {pts.shape}, expected (68, 2)")
            return pts.copy()
        except Exception as exc:  # noqa: BLE001 - the optional landmarks are reported, the sample kept
            self._fail(lm, f"unreadable landmarks, sample kept without them ({exc})")
            return None

    def _samples(self) -> Iterator[PoseSample]:
        for f in self.files:
            img = f.with_suffix(".jpg")
            try:
                m = _loadmat(f)
                euler = _pose_para(m)
                pt2d = _pt2d(m)
            except Exception as exc:  # noqa: BLE001
                self._fail(f, f"unreadable label ({exc})")
                continue
            if not img.is_file():
                self._fail(img, "missing image")
                continue
            yield PoseSample(
                name=_rel(img, self.root),
                rotation=euler_to_matrix(*euler),
                euler=euler,
                box=_extent(pt2d),
                landmarks=pt2d,
                landmarks68=self._landmarks68(f),
                image_path=img,
            )


# --------------------------------------------------------------------------- BIWI
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
            try:
                rows = [_numbers(line) for line in f.read_text().splitlines() if line.strip()]
                if len(rows) < 4 or any(len(r) != 3 for r in rows[:4]):
                    raise ValueError("expected 3 rows of a rotation matrix, then the head centre (3 numbers)")
                M, c = np.array(rows[:3]), np.array(rows[3])
                if not np.allclose(M @ M.T, np.eye(3), atol=1e-3) or np.linalg.det(M) < 0:
                    raise ValueError("the matrix is not a rotation")
            except Exception as exc:  # noqa: BLE001
                self._fail(f, f"unreadable label ({exc})")
                continue
            if not img.is_file():
                self._fail(img, "missing image")
                continue
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


# --------------------------------------------------------------------------- FSA-Net npz
def _npz_header(zf: zipfile.ZipFile, key: str) -> tuple[tuple[int, ...], np.dtype]:
    with zf.open(key + ".npy") as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(fh)
    return shape, dtype


def _npz_array(path: Path, key: str) -> np.ndarray:
    """One array of an ``.npz``; memory-mapped when stored uncompressed (``np.savez``), else loaded."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(key + ".npy")
        if info.compress_type == zipfile.ZIP_STORED:
            with open(path, "rb") as fh:
                fh.seek(info.header_offset)
                local = fh.read(30)
                if local[:4] != b"PK\x03\x04":
                    raise ValueError(f"{key}.npy: bad zip local header")
                n_name, n_extra = struct.unpack("<HH", local[26:30])
                fh.seek(info.header_offset + 30 + n_name + n_extra)
                version = np.lib.format.read_magic(fh)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read(fh)
                offset = fh.tell()
            if not dtype.hasobject:
                return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")
    with np.load(path, allow_pickle=False) as d:
        return d[key]


class BIWINpz(DatasetReader):
    """FSA-Net's preprocessed ``.npz`` files: ``BIWI.npz``, ``BIWI_noTrack.npz``,
    ``BIWI_train.npz`` / ``BIWI_test.npz``, and, in the same layout, its 300W-LP
    (``AFW.npz``, ``AFW_Flip.npz``, ...) and ``AFLW2000.npz`` files.

    Layout (read in shamangary/FSA-Net: ``data/TYY_create_db_biwi.py``,
    ``data/type1/TYY_create_db_type1.py``, ``training_and_testing/FSANET_test.py``
    ``load_data_npz``): ``np.savez(out, image=..., pose=..., img_size=...)``
    with ``image`` ``(N, 64, 64, 3)`` uint8 in **BGR** order (``cv2.imread``
    crops, never converted) and ``pose`` ``(N, 3)`` (yaw, pitch, roll) in degrees.

    Convention:
        ``pose`` is AFLW (yaw, pitch, roll): for 300W-LP / AFLW2000 it is
        ``Pose_Para`` in degrees reordered; for BIWI FSA-Net computes it from
        the depth-frame ``pose.txt`` matrix ``M`` as
        ``R = M.T; roll = -atan2(R[1,0], R[0,0]); yaw = -atan2(-R[2,0], hypot(R[2,1], R[2,2]));
        pitch = atan2(R[2,1], R[2,2])``, which equals
        ``matrix_to_euler(change_frame(M, OPENCV, GL))`` (checked to 1e-5 deg on
        the three shared BIWI frames). So ``rotation = euler_to_matrix(yaw, pitch, roll)``.

    Fields:
        image: the crop converted to RGB; box: the whole crop ``[0, 0, W, H]``.

    Args:
        path: the ``.npz`` file.
        standard_filter: drop faces beyond +-99 deg (FSA-Net applies it to its
            300W-LP-trained tests; BIWI has no such faces).
    """

    kind = "biwi-npz"

    def __init__(self, path: str | Path, standard_filter: bool = True):
        super().__init__(Path(path), standard_filter)
        if not self.root.is_file():
            raise DatasetError(f"{self.root}: no such file (expected an FSA-Net .npz with 'image' (N,H,W,3) uint8 BGR and 'pose' (N,3))")
        try:
            with zipfile.ZipFile(self.root) as zf:
                keys = sorted(n.removesuffix(".npy") for n in zf.namelist())
                if "image" not in keys or "pose" not in keys:
                    raise DatasetError(f"{self.root}: expected arrays 'image' and 'pose' (FSA-Net layout); found {', '.join(keys) or 'none'}")
                img_shape, img_dtype = _npz_header(zf, "image")
                pose_shape, _ = _npz_header(zf, "pose")
        except zipfile.BadZipFile as exc:
            raise DatasetError(f"{self.root}: not an .npz file ({exc})") from None
        if len(img_shape) != 4 or img_shape[3] != 3 or img_dtype != np.uint8:
            raise DatasetError(f"{self.root}: 'image' is {img_dtype} {img_shape}, expected uint8 (N, H, W, 3)")
        if len(pose_shape) != 2 or pose_shape[1] != 3 or pose_shape[0] != img_shape[0]:
            raise DatasetError(f"{self.root}: 'pose' has shape {pose_shape}, expected ({img_shape[0]}, 3)")
        self.n = int(img_shape[0])
        self.crop_size = (int(img_shape[2]), int(img_shape[1]))  # (W, H)

    def _count(self) -> int:
        return self.n

    def _samples(self) -> Iterator[PoseSample]:
        try:
            images = _npz_array(self.root, "image")
            poses = np.asarray(_npz_array(self.root, "pose"), np.float64)
        except Exception as exc:  # noqa: BLE001 - the one file is the dataset: nothing else to read
            self._fail(self.root, f"unreadable ({exc})")
            return
        W, H = self.crop_size
        box = np.array([0.0, 0.0, W, H])
        for i in range(self.n):
            euler = poses[i].copy()
            yield PoseSample(
                name=f"{self.root.name}:{i}",
                rotation=euler_to_matrix(*euler) if np.all(np.isfinite(euler)) else None,
                euler=euler,
                box=box.copy(),
                image=np.ascontiguousarray(images[i][..., ::-1]),
            )


# --------------------------------------------------------------------------- AFLW yaw crops
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


# --------------------------------------------------------------------------- Pointing'04
@dataclass(frozen=True)
class Pointing04Name:
    """The fields of a Pointing'04 file name ``person[ne]<PP><S><NN><tilt><pan>``.

    Attributes:
        person: 1..15. series: 1 or 2. index: 0..92 within the series.
        tilt: vertical angle in degrees (-90 looks at the floor, +90 at the ceiling).
        pan: horizontal angle in degrees.
    """

    person: int
    series: int
    index: int
    tilt: int
    pan: int


_P04_NAME = re.compile(r"^person(?:ne)?(\d{2})(\d)(\d{2})([+-]\d{1,2})([+-]\d{1,2})$")


class Pointing04(DatasetReader):
    """Head Pose Image Database of Pointing'04 (Gourier, Hall, Crowley 2004):
    ``PersonPP/personPPSNN<tilt><pan>.jpg`` (``personne...`` in the first
    release) with a ``.txt`` of the same name holding the face box.

    File name (crowley-coutaz.fr "Head Pose Image Database" page): person 01-15,
    series 1-2, index 00-92, then tilt (vertical angle: -90, -60, -30, -15, 0,
    +15, +30, +60, +90) and pan (horizontal angle: -90 .. +90 in 15 deg
    steps), e.g. ``personne01146-15+30.jpg``: person 1, series 1, index 46,
    tilt -15, pan +30. The ``.txt``: the image name, ``Face``, then the face
    centre x, y, width, height (one number a line). The ``Front`` folder
    (copies of frontal images) is skipped.

    Convention:
        tilt: the page says tilt -90 / +90 means "looking at the bottom / the
        top", so ``pitch = +tilt`` (AFLW: positive pitch looks up).

        pan: the sign is drawn only in a picture on the database page and could
        not be established from any text source. We follow the usage of code
        that trains on AFLW and Pointing'04 together (rafabs97/headpose_final
        stores AFLW yaw and Pointing'04 pan as one quantity, mirroring both
        alike), i.e. ``yaw = pan_sign * pan`` with ``pan_sign = +1`` (positive
        pan: nose towards the image's left). Check it on a real image before
        trusting yaw signs; ``pan_sign=-1`` flips it.

        angles="aflw" (default): the labels are read as AFLW Euler angles,
        ``euler = (pan_sign*pan, tilt, 0)``, ``rotation = euler_to_matrix(*euler)``:
        what published Pointing'04 errors compare against.
        angles="fick": the subjects stared at markers placed at azimuth pan and
        elevation tilt on a half sphere (pan is undefined at tilt +-90, as the
        database's grid reflects), so the face direction is that ray: yaw about
        the vertical, then tilt about the turned head's left-right axis,
        ``rotation = Ry(-pan_sign*pan) @ Rx(-tilt)`` and ``euler`` its AFLW
        angles. The two readings agree when pan or tilt is 0 and differ by up
        to about 40 deg when both are large (pan 60, tilt 30 -> AFLW 48.6 / 49.1 / 40.9).

    Fields:
        box: the ``.txt`` face box ``[cx - w/2, cy - h/2, cx + w/2, cy + h/2]``;
        without a readable ``.txt`` the whole image (its size read from the
        file header) and the problem is recorded in ``failures``.

    Args:
        root: the database folder (``Person01`` ... ``Person15``), one person
            folder, or any folder holding such images.
        pan_sign: +1 or -1, see Convention.
        angles: ``"aflw"`` or ``"fick"``, see Convention.
        standard_filter: drop faces beyond +-99 deg (none: angles stop at 90).
    """

    kind = "pointing04"

    def __init__(
        self,
        root: str | Path,
        pan_sign: int = 1,
        angles: Literal["aflw", "fick"] = "aflw",
        standard_filter: bool = True,
    ):
        super().__init__(Path(root), standard_filter)
        if pan_sign not in (1, -1):
            raise ValueError(f"pan_sign must be +1 or -1, not {pan_sign!r}")
        if angles not in ("aflw", "fick"):
            raise ValueError(f"angles must be 'aflw' or 'fick', not {angles!r}")
        self.pan_sign, self.angles = pan_sign, angles
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: not a folder (expected Pointing'04 PersonPP/person*.jpg + .txt)")
        files = sorted(self.root.rglob("person*.jpg"))
        self.files = [f for f in files if "Front" not in f.relative_to(self.root).parts[:-1]]
        if not self.files:
            n_jpg = sum(1 for _ in self.root.rglob("*.jpg"))
            raise DatasetError(
                f"{self.root}: expected Pointing'04 images person[ne]PPSNN<tilt><pan>.jpg (e.g. personne01146-15+30.jpg) "
                f"with .txt face boxes; found {n_jpg} .jpg file(s), none named so (outside Front/)"
            )

    @staticmethod
    def parse_name(name: str) -> Pointing04Name:
        """The fields of a Pointing'04 file name.

        >>> Pointing04.parse_name("personne01146-15+30.jpg")
        Pointing04Name(person=1, series=1, index=46, tilt=-15, pan=30)

        Raises:
            ValueError: the name does not follow the database's grammar.
        """
        m = _P04_NAME.match(Path(name).stem)
        if not m:
            raise ValueError(f"{name!r} is not a Pointing'04 name person[ne]PPSNN<tilt><pan> (e.g. personne01146-15+30.jpg)")
        person, series, index, tilt, pan = (int(g) for g in m.groups())
        if abs(tilt) > 90 or abs(pan) > 90:
            raise ValueError(f"{name!r}: Pointing'04 angles stop at 90 deg")
        return Pointing04Name(person, series, index, tilt, pan)

    def _count(self) -> int:
        return len(self.files)

    def _box(self, img: Path) -> np.ndarray:
        txt = img.with_suffix(".txt")
        try:
            tokens = txt.read_text(errors="replace").split()
            after = tokens[tokens.index("Face") + 1 :] if "Face" in tokens else tokens[-4:]
            cx, cy, w, h = (float(t) for t in after[:4])
            if w <= 0 or h <= 0:
                raise ValueError(f"face size {w:g} x {h:g}")
            return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        except Exception as exc:  # noqa: BLE001 - the box falls back to the whole image
            problem = "missing" if isinstance(exc, FileNotFoundError) else f"unreadable ({exc})"
            self._fail(txt, f"{problem}; box = the whole image")
            W, H = _image_size(img)
            return np.array([0.0, 0.0, W, H])

    def _samples(self) -> Iterator[PoseSample]:
        for img in self.files:
            try:
                p = self.parse_name(img.name)
            except ValueError as exc:
                self._fail(img, exc)
                continue
            yaw, tilt = float(self.pan_sign * p.pan), float(p.tilt)
            if self.angles == "aflw":
                euler = np.array([yaw, tilt, 0.0])
                R = euler_to_matrix(*euler)
            else:
                R = rot_y(np.deg2rad(-yaw)) @ rot_x(np.deg2rad(-tilt))
                euler = matrix_to_euler(R).stack()
            try:
                box = self._box(img)
            except InputError as exc:
                self._fail(img, exc)
                continue
            yield PoseSample(name=_rel(img, self.root), rotation=R, euler=euler, box=box, image_path=img)


# --------------------------------------------------------------------------- generic CSV
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


# --------------------------------------------------------------------------- registry
DATASETS: Registry[DatasetReader] = Registry("dataset")
DATASETS.register("aflw2000", help="AFLW2000-3D folder of image*.jpg + .mat")(AFLW2000)
DATASETS.register("300wlp", help="300W-LP folder (AFW, HELEN, IBUG, LFPW and _Flip subsets)")(W300LP)
DATASETS.register("biwi", help="BIWI Kinect hpdb folder (raw frames + pose.txt + rgb.cal)")(BIWI)
DATASETS.register("biwi-npz", help="FSA-Net .npz (BIWI, or its 300W-LP / AFLW2000 files)")(BIWINpz)
DATASETS.register("aflw-yaw", help="AFLW crops with yaw labels (labels.csv + images/)")(AFLWYaw)
DATASETS.register("pointing04", help="Pointing'04 Head Pose Image Database folder")(Pointing04)
DATASETS.register("csv", help="CSV of image,yaw,pitch,roll[,x1,y1,x2,y2]")(GenericCSV)


def open_dataset(spec: str, **kwargs) -> DatasetReader:
    """Open a dataset from ``"kind:path"`` (e.g. ``"aflw2000:data/AFLW2000"``).

    Args:
        spec: a registered kind (see ``DATASETS.names()``), a colon, the path.
        **kwargs: passed to the reader (e.g. ``standard_filter=False``).

    Raises:
        DatasetError: no ``kind:`` prefix, an unknown kind (with the closest
            valid one), or a wrong path.

    Example:
        >>> open_dataset("aflw200:/data/AFLW2000")
        Traceback (most recent call last):
        ...
        openheadpose.datasets.DatasetError: unknown dataset kind 'aflw200'; did you mean 'aflw2000'? Kinds: 300wlp, aflw-yaw, aflw2000, biwi, biwi-npz, csv, pointing04 (spec: kind:path)
    """
    kinds = ", ".join(DATASETS.names())
    kind, sep, path = spec.partition(":")
    if not sep or not kind or not path:
        raise DatasetError(f"dataset spec {spec!r} is not kind:path; kinds: {kinds} (e.g. aflw2000:data/AFLW2000)")
    kind = kind.strip().lower()
    if kind not in DATASETS:
        close = difflib.get_close_matches(kind, DATASETS.names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DatasetError(f"unknown dataset kind {kind!r}{hint} Kinds: {kinds} (spec: kind:path)")
    return DATASETS.create(kind, **({"root" if kind not in ("biwi-npz", "csv") else "path": path} | kwargs))


# --------------------------------------------------------------------------- named splits
def _split_file() -> dict:
    with importlib.resources.files("openheadpose.data").joinpath("biwi_protocol2.json").open("r") as fh:
        return json.load(fh)


def biwi_protocol2() -> dict[str, list[str]]:
    """The committed BIWI Protocol 2 video split: ``{"train": [16 ids], "test": [8 ids]}``."""
    d = _split_file()
    return {"train": list(d["train"]), "test": list(d["test"])}


SPLITS = ("protocol2-train", "protocol2-test")


def select_split(samples: Sequence[PoseSample], split: str, kind: str, spec: str = "") -> list[PoseSample]:
    """Keep the samples of a named split.

    ``protocol2-train`` / ``protocol2-test``: BIWI (raw ``biwi`` reader, names
    ``"NN/frame_XXXXX_rgb.png"``) frames of the videos listed in
    ``openheadpose/data/biwi_protocol2.json``.

    Raises:
        DatasetError: an unknown split, or a dataset kind without BIWI videos.
    """
    if split not in SPLITS:
        import difflib

        close = difflib.get_close_matches(split, SPLITS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DatasetError(f"unknown split {split!r}{hint} Choices: {', '.join(SPLITS)}")
    if kind != "biwi":
        raise DatasetError(f"{spec or kind}: split {split!r} selects BIWI videos; it applies to biwi:PATH datasets only")
    videos = set(biwi_protocol2()["train" if split.endswith("train") else "test"])
    return [s for s in samples if s.name.split("/")[0] in videos]


class SplitView:
    """The samples of ``reader`` in a named split, as a reader (``failures``, ``n_filtered``, ``summary()``).

    Args:
        reader: a dataset reader.
        split: a name from :data:`SPLITS`.
        kind: the reader's kind (``"biwi"``...), to refuse splits that do not apply.
    """

    def __init__(self, reader, split: str, kind: str):
        select_split([], split, kind, str(getattr(reader, "root", kind)))  # validates split and kind
        self.reader, self.split, self.kind = reader, split, kind

    @property
    def failures(self) -> list[str]:
        return self.reader.failures

    @property
    def n_filtered(self) -> int:
        return self.reader.n_filtered

    def __iter__(self) -> Iterator[PoseSample]:
        for s in self.reader:
            if select_split([s], self.split, self.kind):
                yield s

    def summary(self) -> str:
        return f"{self.reader.summary()} (split {self.split})"
