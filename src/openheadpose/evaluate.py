"""Evaluate a pipeline on a labelled dataset, with ground-truth crops or its own detector."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .detectors import box_iou
from .io import InputError, read_image
from .metrics import PoseMetrics, pose_metrics
from .results import Detections


#: |yaw| ranges (degrees) reported separately: near-frontal, turned, profile.
YAW_BINS = ((0, 30), (30, 60), (60, 100))


@dataclass
class EvalResult:
    dataset: str
    crop: str
    n_images: int
    n_detected: int
    metrics: PoseMetrics
    per_image: list[dict] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    n_filtered: int = 0
    by_yaw: dict[str, PoseMetrics] = field(default_factory=dict)

    def to_dict(self) -> dict:
        m = self.metrics
        return {
            "dataset": self.dataset,
            "crop": self.crop,
            "n_images": self.n_images,
            "n_detected": self.n_detected,
            "n_missed": self.n_images - self.n_detected,
            "n_filtered_out": self.n_filtered,
            "mae": {"yaw": m.mae_yaw, "pitch": m.mae_pitch, "roll": m.mae_roll, "mean": m.mae},
            "maev": m.maev,
            "geodesic": m.geodesic,
            "within": {"5": m.within_5, "10": m.within_10, "15": m.within_15},
            "by_abs_yaw": {k: {"n": v.n, "mae": v.mae, "mae_yaw": v.mae_yaw} for k, v in self.by_yaw.items()},
            "failures": self.failures,
        }


class _GivenBox:
    """A 'detector' that returns the ground-truth box (for --crop gt)."""

    def __init__(self):
        self.box = None

    def __call__(self, image):
        return Detections(self.box[None].astype(np.float64), np.ones(1))


def evaluate_pipeline(estimator, dataset, crop: str = "detect", name: str = "aflw2000", progress: bool = True, min_iou: float = 0.3) -> EvalResult:
    """Run ``estimator`` over ``dataset`` and score it.

    Args:
        crop: ``"detect"``: the whole pipeline on the full image; the head whose
            box overlaps the labelled box most (IoU >= ``min_iou``) is scored and
            images without one count as missed. ``"gt"``: the detector is replaced
            by the labelled face box.
    """
    from tqdm import tqdm

    if crop not in ("detect", "gt"):
        raise ValueError(f"crop must be 'detect' or 'gt', not {crop!r}")
    given = _GivenBox()
    if crop == "gt":
        # Same landmarker and pose stages, the labelled box as the detection; that box
        # is a face by definition, so every one is scored (no score threshold).
        from .pipeline import HeadPoseEstimator

        estimator = HeadPoseEstimator(
            detector=given, landmarker=estimator.landmarker, pose=estimator.pose, min_score=0.0, max_detect_side=2**31  # the box is in full-image pixels
        )
    R_pred, R_true, eul, per_image = [], [], [], []
    n = 0
    for s in tqdm(dataset, disable=not progress, desc=f"{name} ({crop} crops)", unit="img"):
        n += 1
        try:
            img = read_image(s.image_path)
        except InputError as exc:
            dataset.failures.append(str(exc))
            continue
        given.box = s.box
        heads = estimator(img)
        rec = {"image": s.image_path.name, "true": s.euler.tolist(), "pred": None}
        if len(heads):
            iou = box_iou(heads.boxes, s.box[None])[:, 0]
            best = int(np.argmax(iou))
            if iou[best] >= min_iou:
                R_pred.append(heads.rotations[best])
                R_true.append(s.rotation)
                eul.append(s.euler)
                rec["pred"] = heads.euler.stack()[best].tolist()
        per_image.append(rec)
    R_pred, R_true, eul = np.array(R_pred).reshape(-1, 3, 3), np.array(R_true).reshape(-1, 3, 3), np.array(eul).reshape(-1, 3)
    m = pose_metrics(R_pred, R_true, eul)
    by_yaw = {}
    for lo, hi in YAW_BINS:
        sel = (np.abs(eul[:, 0]) >= lo) & (np.abs(eul[:, 0]) < hi)
        by_yaw[f"{lo}-{hi}"] = pose_metrics(R_pred[sel], R_true[sel], eul[sel])
    return EvalResult(name, crop, n, len(R_pred), m, per_image, list(dataset.failures), dataset.n_filtered, by_yaw)
