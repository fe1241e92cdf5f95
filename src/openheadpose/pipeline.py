"""The head-pose pipeline: decode -> detect -> landmarks -> pose, each stage swappable by name."""

from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np

from .detectors import DETECTORS, nms_indices
from .io import to_uint8
from .landmarks import LANDMARKERS, Landmarks
from .pose import POSE_ESTIMATORS
from .results import Detections, Estimator, Heads


def default_detector() -> str:
    """``blazeface`` when MediaPipe's models are installed, else the OpenCV-only ``haar``."""
    import importlib.util

    return "blazeface" if importlib.util.find_spec("mediapipe") is not None else "haar"


def default_pose() -> str:
    """:data:`~openheadpose.predictors.DEFAULT_POSE_NETWORK` (our network, on a crop placed by FaceMesh) when its
    weights are installed, else the ``geometric`` fit.

    Chosen on real photos no network was trained on (the aflw-yaw faces of
    ``headpose synth``'s held-out split, ``benchmarks/select_default_pose.py``):
    there the network's yaw error is lower than the fit's, most of all on
    profiles, where FaceMesh's landmarks flatten and the fit saturates.
    """
    from .predictors import DEFAULT_POSE_NETWORK, shipped_weights

    return DEFAULT_POSE_NETWORK if shipped_weights(DEFAULT_POSE_NETWORK) is not None else "geometric"


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Accept ``(H, W)`` or ``(H, W, 1|3|4)`` arrays of any depth; return ``(H, W, 3)`` uint8 RGB.

    A 4-channel image is taken as RGBA and its alpha dropped; depth follows
    :func:`openheadpose.io.to_uint8`.
    """
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or min(a.shape[:2]) < 1:
        raise ValueError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    a = to_uint8(a)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a[:, :, :3])


def detect_scaled(detector, image: np.ndarray, max_side: int) -> Detections:
    """Run ``detector`` on ``image``, on a copy shrunk to ``max_side`` when larger; boxes in the original's pixels."""
    h, w = image.shape[:2]
    f = min(1.0, max_side / max(h, w))
    if f == 1.0:
        return detector(image)
    small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    d = detector(small)
    return Detections(d.boxes / f, d.scores, None if d.keypoints is None else d.keypoints / f)


def _landmark_boxes(points: np.ndarray) -> np.ndarray:
    """``(N, 4)`` boxes around landmarks ``(N, L, 2+)``; tighter and steadier than detector boxes."""
    return np.concatenate([points[:, :, :2].min(1), points[:, :, :2].max(1)], axis=1)


class HeadPoseEstimator(Estimator):
    """Find every head in an RGB image and estimate its rotation.

    Args:
        detector: a name from ``DETECTORS`` (default: BlazeFace with tiles, or
            Haar cascades when MediaPipe is absent), or a callable.
        landmarker: a name from ``LANDMARKERS`` or a callable; FaceMesh by default.
        pose: a name from ``POSE_ESTIMATORS`` or a callable (default :func:`default_pose`:
            our ``hopenet-synth`` network on a crop placed by the landmarks).
        min_score: keep heads whose score -- detector score times the
            landmarker's face-presence score -- is at least this.
        max_detect_side: images larger than this are detected on a downscaled
            copy; boxes and landmarks are reported in the original's pixels.

    Example:
        >>> from skimage.data import astronaut
        >>> heads = HeadPoseEstimator()(astronaut())
        >>> len(heads)
        1
        >>> bool(abs(heads.euler.yaw[0]) < 30)
        True
    """

    def __init__(
        self,
        detector: str | Any | None = None,
        landmarker: str | Any = "facemesh",
        pose: str | Any | None = None,
        min_score: float = 0.5,
        max_detect_side: int = 1920,
    ):
        detector = default_detector() if detector is None else detector
        pose = default_pose() if pose is None else pose
        self.detector = DETECTORS.create(detector) if isinstance(detector, str) else detector
        self.landmarker = LANDMARKERS.create(landmarker) if isinstance(landmarker, str) else landmarker
        self.pose = POSE_ESTIMATORS.create(pose) if isinstance(pose, str) else pose
        self.names = {
            "detector": detector if isinstance(detector, str) else type(detector).__name__,
            "landmarker": landmarker if isinstance(landmarker, str) else type(landmarker).__name__,
            "pose": pose if isinstance(pose, str) else type(pose).__name__,
        }
        self.min_score = min_score
        self.max_detect_side = max_detect_side

    def detect(self, image: np.ndarray) -> Detections:
        """Run the detector, on a downscaled copy when the image is huge."""
        return detect_scaled(self.detector, image, self.max_detect_side)

    def predict(self, image: np.ndarray) -> tuple[Heads, dict[str, float]]:
        """Heads of one image and the seconds spent in each stage."""
        image = as_rgb_uint8(image)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        det = self.detect(image)
        t1 = time.perf_counter()
        timings["detect"] = t1 - t0
        if len(det) == 0:
            timings["landmarks"] = timings["pose"] = 0.0
            return Heads.empty(), timings
        lm = self.landmarker(image, det)
        scores = det.scores * lm.presence
        keep = np.flatnonzero(scores >= self.min_score)
        # Boxes from the landmarks fit the face better than the detector's, and two
        # detections that converged on one face collapse here.
        if len(keep):
            keep = keep[nms_indices(_landmark_boxes(lm.points[keep]), scores[keep], 0.5)]
        t2 = time.perf_counter()
        timings["landmarks"] = t2 - t1
        if len(keep) == 0:
            timings["pose"] = 0.0
            return Heads.empty(), timings
        sel = Landmarks(lm.points[keep], lm.presence[keep])
        out = self.pose(image, sel)
        timings["pose"] = time.perf_counter() - t2
        boxes = _landmark_boxes(sel.points)
        order = np.argsort(boxes[:, 0], kind="stable")  # left to right: stable ids for a reader
        heads = Heads(boxes, scores[keep], out.rotations, out.sigma, sel.points)[order]
        return heads, timings
