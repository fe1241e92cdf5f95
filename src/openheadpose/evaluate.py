"""Score a model on a labelled dataset, on ground-truth crops or behind a face detector.

Two kinds of model are scored the same way:

* a :class:`~openheadpose.pipeline.HeadPoseEstimator` (detector -> landmarks ->
  pose): with ``crop="gt"`` its detector is replaced by the labelled face box;
* a :class:`~openheadpose.predictors.CropModel`: each face is cut with the
  model's own crop recipe -- from the labelled landmarks (``"gt"``) or from a
  detector box (``"detect"``) -- and the crops are predicted in batches.

With ``crop="detect"`` the detector runs on the full image; the detection that
overlaps the labelled box most (IoU >= ``min_iou``) is scored and faces without
one are counted as missed, apart from the errors. Results are the same for any
``batch_size``: crops are cut per face and every metric is per face, then averaged.

Dimension legend: M scored faces.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .crops import CROPS, square_box, take_pixels
from .detectors import box_iou
from .io import InputError
from .metrics import PoseMetrics, euler_errors, geodesic_error, pose_metrics
from .predictors import MIN_DETECTION_SCORE, CropModel
from .results import Detections
from .rotation import matrix_to_euler

#: |yaw| ranges (degrees) reported separately: near-frontal, turned, profile.
YAW_BINS = ((0, 30), (30, 60), (60, 100))

#: Side of the thumbnails kept for the worst-case contact sheet.
THUMB = 160


@dataclass
class WorstCase:
    """A badly predicted face, kept for the contact sheet."""

    error: float
    name: str
    thumb: np.ndarray  # (THUMB, THUMB, 3) RGB
    R_pred: np.ndarray
    R_true: np.ndarray | None
    pred_deg: np.ndarray
    true_deg: np.ndarray


@dataclass
class EvalResult:
    """Everything an evaluation produced.

    Attributes:
        n_images: labelled faces after the standard filter (unreadable files excluded).
        n_detected: faces scored (all of them with ``crop="gt"``).
        names, true_deg, pred_deg, R_pred, R_true: the M scored faces, in dataset order.
    """

    dataset: str
    model: str
    crop: str
    crop_recipe: str
    batch_size: int
    n_images: int
    n_detected: int
    n_filtered: int
    metrics: PoseMetrics
    by_yaw: dict[str, PoseMetrics]
    failures: list[str]
    names: list[str]
    true_deg: np.ndarray
    pred_deg: np.ndarray
    R_pred: np.ndarray
    R_true: np.ndarray | None
    missed: list[str] = field(default_factory=list)
    worst: list[WorstCase] = field(default_factory=list)

    def to_dict(self, per_image: bool = False) -> dict[str, Any]:
        m = self.metrics
        d = {
            "dataset": self.dataset,
            "model": self.model,
            "crop": self.crop,
            "crop_recipe": self.crop_recipe,
            "batch_size": self.batch_size,
            "n_images": self.n_images,
            "n_detected": self.n_detected,
            "n_missed": self.n_images - self.n_detected,
            "n_filtered_out": self.n_filtered,
            "n_failed": len(self.failures),
            "mae": {"yaw": m.mae_yaw, "pitch": m.mae_pitch, "roll": m.mae_roll, "mean": m.mae},
            "mae_unwrapped": {"yaw": m.mae_plain_yaw, "pitch": m.mae_plain_pitch, "roll": m.mae_plain_roll, "mean": m.mae_plain},
            "maev": m.maev,
            "geodesic": m.geodesic,
            "within": {"5": m.within_5, "10": m.within_10, "15": m.within_15},
            "by_abs_yaw": {k: {"n": v.n, "mae": v.mae, "mae_yaw": v.mae_yaw} for k, v in self.by_yaw.items()},
            "failures": self.failures,
        }
        if per_image:  # copies the dataset's labels: keep such files out of public repositories
            d["per_image"] = [
                {"name": n, "true": t.tolist(), "pred": p.tolist()} for n, t, p in zip(self.names, self.true_deg, self.pred_deg)
            ] + [{"name": n, "pred": None} for n in self.missed]
        return d


class _GivenBox:
    """A 'detector' that returns the labelled box (for ``crop="gt"`` with a pipeline)."""

    def __init__(self):
        self.box = None

    def __call__(self, image):
        return Detections(self.box[None].astype(np.float64), np.ones(1))


def _thumb(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    return take_pixels(image, np.round(square_box(box, 1.4)), THUMB, "pad", "squash")


class _Scorer:
    """Collects predictions in dataset order and keeps the worst cases."""

    def __init__(self, keep_worst: int):
        self.names, self.true_deg, self.R_true, self.R_pred = [], [], [], []
        self.keep_worst = keep_worst
        self._heap: list = []
        self._tick = 0

    def add(self, name, sample, R_pred, image, box):
        self.names.append(name)
        self.true_deg.append(sample.euler)
        self.R_true.append(sample.rotation)
        self.R_pred.append(R_pred)
        if self.keep_worst <= 0:
            return
        pred_deg = matrix_to_euler(R_pred).stack()
        if sample.rotation is not None:
            err = float(geodesic_error(R_pred, sample.rotation))
        else:
            err = float(np.nansum(euler_errors(pred_deg, sample.euler)))
        self._tick += 1
        item = (err, self._tick, name, image, box, R_pred, sample)
        if len(self._heap) < self.keep_worst:
            heapq.heappush(self._heap, item)
        elif err > self._heap[0][0]:
            heapq.heapreplace(self._heap, item)

    def worst(self) -> list[WorstCase]:
        out = []
        for err, _, name, image, box, R, s in sorted(self._heap, key=lambda t: -t[0]):
            out.append(WorstCase(err, name, _thumb(image, box), R, s.rotation, matrix_to_euler(R).stack(), s.euler))
        return out


def _readable(samples, dataset):
    """``(sample, RGB image)`` of every sample whose picture reads; the others go to ``dataset.failures``
    (looked up at failure time: a reader may start a new list when iteration begins)."""
    for s in samples:
        try:
            yield s, s.load_image()
        except InputError as exc:
            dataset.failures.append(str(exc))


def evaluate(
    model,
    dataset,
    crop: str = "gt",
    *,
    name: str = "dataset",
    batch_size: int = 64,
    detector=None,
    min_iou: float = 0.3,
    min_det_score: float | None = None,
    progress: bool = True,
    keep_worst: int = 16,
) -> EvalResult:
    """Run ``model`` over ``dataset`` and score it.

    Args:
        model: a ``HeadPoseEstimator`` or a ``CropModel``.
        dataset: a reader from :mod:`openheadpose.datasets` (iterable of ``PoseSample``).
        crop: ``"gt"`` (labelled faces) or ``"detect"`` (a detector on the full image).
        batch_size: crops per model call (crop models only); does not change results.
        detector: for crop models with ``crop="detect"``: a ``DETECTORS`` name or
            callable (default: the pipeline's default detector).
        min_iou: a detection must overlap the labelled box this much to count.
        min_det_score: detections below this score are ignored (crop models; default
            the run-time pipeline's :data:`~openheadpose.predictors.MIN_DETECTION_SCORE`).
        keep_worst: how many worst cases to keep for the contact sheet.
    """
    from tqdm import tqdm

    if crop not in ("detect", "gt"):
        raise ValueError(f"crop must be 'detect' or 'gt', not {crop!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    is_crop_model = isinstance(model, CropModel)
    min_det_score = MIN_DETECTION_SCORE if min_det_score is None else min_det_score
    scorer = _Scorer(keep_worst)
    missed: list[str] = []
    n = 0
    bar = tqdm(dataset, disable=not progress, desc=f"{name} ({crop} crops)", unit="img")

    if is_crop_model:
        recipe = CROPS[model.crop]
        model_name, recipe_name = model.name, recipe.name
        if crop == "detect":
            from .detectors import DETECTORS
            from .pipeline import default_detector

            detector = detector or default_detector()
            detector = DETECTORS.create(detector) if isinstance(detector, str) else detector
        pending: list[tuple] = []

        def flush():
            if not pending:
                return
            pred = model.predict(np.stack([p[3] for p in pending]))
            for (nm, s, img, _, box), R in zip(pending, pred.rotations):
                scorer.add(nm, s, np.asarray(R, np.float64), img, box)
            pending.clear()

        for s, img in _readable(bar, dataset):
            n += 1
            if crop == "gt":
                box = recipe.from_sample(s, img.shape)
                face = recipe.start_box(s)
            else:
                det = detector(img)
                keep = np.flatnonzero(det.scores >= min_det_score)
                iou = box_iou(det.boxes[keep], s.box[None])[:, 0] if len(keep) else np.zeros(0)
                if len(iou) == 0 or iou.max() < min_iou:
                    missed.append(s.name)
                    continue
                face = det.boxes[keep[int(np.argmax(iou))]]
                box = recipe.from_detection(face, img.shape)
            pending.append((s.name, s, img, recipe(img, box, model.input_size), face))
            if len(pending) >= batch_size:
                flush()
        flush()
    else:
        from .pipeline import HeadPoseEstimator

        model_name = "+".join(model.names.values()) if crop == "detect" else f"gt-box+{model.names['landmarker']}+{model.names['pose']}"
        recipe_name = "landmarks" if crop == "gt" else "detector"
        estimator = model
        given = _GivenBox()
        if crop == "gt":
            # Same landmarker and pose stages, the labelled box as the detection; that box
            # is a face by definition, so every one is scored (no score threshold).
            estimator = HeadPoseEstimator(detector=given, landmarker=model.landmarker, pose=model.pose, min_score=0.0, max_detect_side=2**31)
        for s, img in _readable(bar, dataset):
            n += 1
            given.box = np.asarray(s.box, np.float64)
            heads = estimator(img)
            iou = box_iou(heads.boxes, s.box[None])[:, 0] if len(heads) else np.zeros(0)
            if len(iou) == 0 or (crop == "detect" and iou.max() < min_iou):
                missed.append(s.name)
                continue
            best = int(np.argmax(iou))
            scorer.add(s.name, s, heads.rotations[best], img, heads.boxes[best])

    true_deg = np.array(scorer.true_deg, np.float64).reshape(-1, 3)
    R_pred = np.array(scorer.R_pred, np.float64).reshape(-1, 3, 3)
    full = all(r is not None for r in scorer.R_true)
    R_true = np.array(scorer.R_true, np.float64).reshape(-1, 3, 3) if full else None
    metrics = pose_metrics(R_pred, R_true, true_deg)
    by_yaw = {}
    for lo, hi in YAW_BINS:
        sel = (np.abs(true_deg[:, 0]) >= lo) & (np.abs(true_deg[:, 0]) < hi)
        by_yaw[f"{lo}-{hi}"] = pose_metrics(R_pred[sel], None if R_true is None else R_true[sel], true_deg[sel])
    return EvalResult(
        dataset=name,
        model=model_name,
        crop=crop,
        crop_recipe=recipe_name,
        batch_size=batch_size if is_crop_model else 1,
        n_images=n,
        n_detected=len(R_pred),
        n_filtered=getattr(dataset, "n_filtered", 0),
        metrics=metrics,
        by_yaw=by_yaw,
        failures=list(getattr(dataset, "failures", [])),
        names=scorer.names,
        true_deg=true_deg,
        pred_deg=matrix_to_euler(R_pred).stack() if len(R_pred) else np.zeros((0, 3)),
        R_pred=R_pred,
        R_true=R_true,
        missed=missed,
        worst=scorer.worst(),
    )

