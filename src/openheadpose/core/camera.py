"""The camera a picture was taken with: intrinsics, lens distortion, and where they come from.

A :class:`Camera` is either a real calibration (OpenCV's camera matrix and distortion
coefficients at the image size it was measured at, read by :func:`read_calibration`) or a
field-of-view rule (a pinhole of a given field of view centred on the image, no
distortion; ``headpose predict --fov``, or the assumed default when nothing is said).
:meth:`Camera.intrinsics` gives the matrix for one image size: a calibration made at a
different size of the same aspect ratio is scaled (a camera that delivers a smaller
picture of the same sensor area); a different aspect ratio is refused, because it means a
crop whose offset the file does not say.

Pixel coordinates are OpenCV's (x right, y down); :mod:`openheadpose.core.placement`
turns them into ``Frame.GL`` rays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Horizontal field of view (degrees) assumed when neither ``--camera`` nor ``--fov`` is
#: given: the middle of the 50-75 degree range of webcams and phone main cameras.
ASSUMED_FOV_DEG = 60.0

#: Relative standard deviation of the focal length when it is assumed: 50-75 degrees
#: horizontally is a focal length of 0.65-1.07 image widths around 0.87, about +-25 %,
#: taken as a 2-sigma range.
ASSUMED_FOCAL_REL_SIGMA = 0.12

#: Two aspect ratios closer than this (relative) are the same sensor area.
_ASPECT_TOLERANCE = 0.01


@dataclass(frozen=True, eq=False)
class Camera:
    """Intrinsics of the camera that took the images.

    Attributes:
        matrix: ``(3, 3)`` OpenCV camera matrix ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``
            in pixels at ``size``, or ``None`` for a field-of-view rule.
        distortion: OpenCV distortion coefficients ``(k1, k2, p1, p2[, k3[, ...]])``, or ``None``.
        size: ``(width, height)`` the calibration was made at, or ``None``.
        fov_deg: the field of view of a rule, degrees, across ``across``.
        across: ``"width"`` (``headpose predict --fov``) or ``"longer"`` (``headpose interact --fov``).
        focal_rel_sigma: relative standard deviation of the focal length (0 when known).
        source: where it came from (a file name, ``--fov 70``, ``assumed``).
    """

    matrix: np.ndarray | None = None
    distortion: np.ndarray | None = None
    size: tuple[int, int] | None = None
    fov_deg: float | None = None
    across: str = "width"
    focal_rel_sigma: float = 0.0
    source: str = ""

    @staticmethod
    def from_fov(fov_deg: float, across: str = "width", assumed: bool = False) -> "Camera":
        """A pinhole of ``fov_deg`` across the image's width (or its longer side), centred on the image."""
        if not 0 < fov_deg < 180:
            raise ValueError(f"a field of view must be in (0, 180) degrees, got {fov_deg}")
        if across not in ("width", "longer"):
            raise ValueError(f"across must be 'width' or 'longer', got {across!r}")
        sigma = ASSUMED_FOCAL_REL_SIGMA if assumed else 0.0
        return Camera(fov_deg=float(fov_deg), across=across, focal_rel_sigma=sigma, source="assumed" if assumed else f"fov {fov_deg:g}")

    @staticmethod
    def assumed() -> "Camera":
        """The camera taken when none is named: :data:`ASSUMED_FOV_DEG` horizontally, its focal length uncertain."""
        return Camera.from_fov(ASSUMED_FOV_DEG, assumed=True)

    @property
    def calibrated(self) -> bool:
        return self.matrix is not None

    def intrinsics(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The camera matrix ``(3, 3)`` and distortion coefficients (or ``None``) for a ``width x height`` image.

        Raises:
            ValueError: a calibration for another aspect ratio.

        >>> K, d = Camera.from_fov(90.0).intrinsics(640, 480)
        >>> K.round(6).tolist(), d
        ([[320.0, 0.0, 320.0], [0.0, 320.0, 240.0], [0.0, 0.0, 1.0]], None)
        >>> cal = Camera(np.array([[1000.0, 0, 959.5], [0, 1000, 539.5], [0, 0, 1]]), np.zeros(5), (1920, 1080), source="cam.yaml")
        >>> cal.intrinsics(960, 540)[0][0].tolist()  # half the size: half the focal length
        [500.0, 0.0, 479.5]
        >>> cal.intrinsics(640, 480)
        Traceback (most recent call last):
        ...
        ValueError: cam.yaml: the calibration is for 1920x1080 images, this one is 640x480 (another aspect ratio: a crop, whose offset the calibration cannot know); calibrate the camera at 640x480
        """
        if self.matrix is None:
            side = width if self.across == "width" else max(width, height)
            f = 0.5 * side / math.tan(math.radians(self.fov_deg) / 2.0)
            return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]]), None
        cw, ch = self.size
        if (cw, ch) == (width, height):
            return self.matrix.copy(), self.distortion
        if abs((width / height) / (cw / ch) - 1.0) > _ASPECT_TOLERANCE:
            raise ValueError(
                f"{self.source}: the calibration is for {cw}x{ch} images, this one is {width}x{height} "
                f"(another aspect ratio: a crop, whose offset the calibration cannot know); calibrate the camera at {width}x{height}"
            )
        # Same sensor area at another resolution: pixel centres are at (i + 0.5) * scale - 0.5.
        sx, sy = width / cw, height / ch
        K = self.matrix.copy()
        K[0, 0] *= sx
        K[1, 1] *= sy
        K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
        K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
        return K, self.distortion

    def undistort(self, points: np.ndarray, width: int, height: int) -> np.ndarray:
        """Pixel positions ``(..., 2)`` as an ideal pinhole of the same matrix would have seen them."""
        K, dist = self.intrinsics(width, height)
        p = np.asarray(points, np.float64)
        if dist is None or not np.any(dist) or p.size == 0:
            return p.copy()
        import cv2

        flat = p.reshape(-1, 1, 2)
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 1e-6)
        if hasattr(cv2, "undistortPointsIter"):  # OpenCV 4
            out = cv2.undistortPointsIter(flat, K, dist, None, K, criteria)
        else:  # OpenCV 5 (the wheel Python 3.13 gets): the same iteration, under undistortPoints
            out = cv2.undistortPoints(flat, K, dist, R=None, P=K, criteria=criteria)
        return out.reshape(p.shape)

    def describe(self) -> str:
        return self.source or ("calibration" if self.calibrated else f"fov {self.fov_deg:g}")


# --------------------------------------------------------------------------- calibration files

_MATRIX_KEYS = ("camera_matrix", "cameraMatrix", "K", "intrinsic_matrix", "M")
_DIST_KEYS = ("distortion_coefficients", "dist_coeffs", "distCoeffs", "distortion", "D", "dist")


def read_calibration(path: str | Path) -> Camera:
    """A :class:`Camera` from an OpenCV calibration file (``.yaml``/``.yml``/``.xml``/``.json``).

    Reads what ``cv2.FileStorage`` writes -- the keys of OpenCV's calibration sample
    (``camera_matrix``, ``distortion_coefficients``, ``image_width``, ``image_height``;
    also ``cameraMatrix`` / ``K``, ``distCoeffs`` / ``D``, ``image_size`` ``[w, h]``) -- and
    ROS ``camera_info`` YAML (the same names, matrices as ``{rows, cols, data}``).

    Raises:
        ValueError: the file is missing, unreadable, or lacks the camera matrix or the image size.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such calibration file")
    values = _read_filestorage(p)
    if values is None:
        values = _read_plain(p)
    K = _first(values, _MATRIX_KEYS)
    if K is None:
        raise ValueError(f"{p}: no camera matrix (looked for {', '.join(_MATRIX_KEYS)})")
    K = np.asarray(K, np.float64).reshape(-1)
    if K.size != 9:
        raise ValueError(f"{p}: the camera matrix has {K.size} numbers, not 9")
    K = K.reshape(3, 3)
    if K[0, 0] <= 0 or K[1, 1] <= 0 or abs(K[2, 2] - 1.0) > 1e-6:
        raise ValueError(f"{p}: not a camera matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]: {K.tolist()}")
    d = _first(values, _DIST_KEYS)
    dist = None if d is None else np.asarray(d, np.float64).reshape(-1)
    if dist is not None and dist.size not in (4, 5, 8, 12, 14):
        raise ValueError(f"{p}: {dist.size} distortion coefficients; OpenCV's model has 4, 5, 8, 12 or 14")
    size = values.get("image_size")
    if size is not None:
        w, h = (int(round(float(v))) for v in np.asarray(size).reshape(-1)[:2])
    elif values.get("image_width") is not None and values.get("image_height") is not None:
        w, h = int(round(float(values["image_width"]))), int(round(float(values["image_height"])))
    else:
        raise ValueError(f"{p}: no image size (image_width and image_height, or image_size): the matrix means nothing without it")
    return Camera(K, dist, (w, h), source=p.name)


def _first(values: dict, keys):
    for k in keys:
        if values.get(k) is not None:
            return values[k]
    return None


def _read_filestorage(p: Path) -> dict | None:
    """The file's top-level nodes through ``cv2.FileStorage``; None when it cannot parse it."""
    import cv2

    try:
        fs = cv2.FileStorage(str(p), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError):  # not OpenCV's format (no %YAML:1.0 header, ...): the plain reader tries
        return None
    if not fs.isOpened():
        return None
    try:
        out = {}
        root = fs.root()
        for key in root.keys():
            node = fs.getNode(key)
            if node.isMap() and not node.getNode("data").empty():  # ROS-style {rows, cols, data} read as a map
                node = node.getNode("data")
            if node.isReal() or node.isInt():
                out[key] = node.real()
            elif node.isSeq():
                out[key] = [node.at(i).real() for i in range(node.size())]
            elif not node.empty() and not node.isString() and not node.isMap():
                out[key] = node.mat()
            elif node.isMap():
                m = node.mat()
                if m is not None:
                    out[key] = m
        return out
    finally:
        fs.release()


def _read_plain(p: Path) -> dict:
    """YAML or JSON without OpenCV's header (ROS ``camera_info``, hand-written files)."""
    import json

    text = p.read_text(encoding="utf-8", errors="replace")
    try:
        if p.suffix.lower() == ".json":
            raw = json.loads(text)
        else:
            try:
                import yaml
            except ImportError:
                raise ValueError(f"{p}: OpenCV cannot read it (no '%YAML:1.0' header?) and PyYAML is not installed: pip install pyyaml") from None
            raw = yaml.safe_load(text)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser error is a bad file
        raise ValueError(f"{p}: not a calibration file OpenCV or a YAML/JSON reader can read ({exc})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{p}: not a calibration file (its top level is not a mapping)")
    return {k: (v["data"] if isinstance(v, dict) and "data" in v else v) for k, v in raw.items()}
