"""What every dataset reader shares: :class:`PoseSample`, :class:`DatasetReader`, the standard filter, label helpers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import numpy as np

from openheadpose.core.metrics import STANDARD_ANGLE_LIMIT, standard_filter
from openheadpose.core.rotation import euler_to_matrix
from openheadpose.io.images import InputError, read_image

#: The standard filter's limit (:data:`openheadpose.core.metrics.STANDARD_ANGLE_LIMIT`).
STANDARD_FILTER_DEG = STANDARD_ANGLE_LIMIT


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
            (see :mod:`openheadpose.core.rotation`); NaN where the dataset has no label.
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


def _passes_filter(euler: np.ndarray) -> bool:
    return bool(standard_filter(euler))


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


T = TypeVar("T")


def mat_labels(path: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    """An AFLW2000 / 300W-LP ``.mat`` label: ``(fields, euler (3,) degrees AFLW convention, pt2d (21, 2))``."""
    m = _loadmat(path)
    return m, _pose_para(m), _pt2d(m)


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

    def _labels(self, label_file: Path, image: Path, parse: Callable[[Path], T]) -> T | None:
        """``parse(label_file)``, or ``None`` after recording why it or ``image`` cannot be used
        (an unreadable label or a missing image is reported; the rest of the dataset is read)."""
        try:
            labels = parse(label_file)
        except Exception as exc:  # noqa: BLE001 - any parse failure names its file
            self._fail(label_file, f"unreadable label ({exc})")
            return None
        if not image.is_file():
            self._fail(image, "missing image")
            return None
        return labels

    def _euler_sample(self, image: Path, euler: np.ndarray, box: np.ndarray, **fields) -> PoseSample:
        """A sample labelled by AFLW-convention Euler angles (the rotation follows from them)."""
        return PoseSample(name=_rel(image, self.root), rotation=euler_to_matrix(*euler), euler=euler, box=box, image_path=image, **fields)

    def summary(self) -> str:
        """One line: entries listed, read, dropped by the filter, failed (so far)."""
        filt = f"{self.n_filtered} outside +-{STANDARD_FILTER_DEG:g} deg dropped" if self.standard_filter else "no angle filter"
        return f"{self.kind} {self.root}: {len(self)} listed, {self.n_read} read, {filt}, {len(self.failures)} failed"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, {len(self)} entries)"


W300LP_SUBSETS: tuple[str, ...] = ("AFW", "HELEN", "IBUG", "LFPW")


_P04_NAME = re.compile(r"^person(?:ne)?(\d{2})(\d)(\d{2})([+-]\d{1,2})([+-]\d{1,2})$")
