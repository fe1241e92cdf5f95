"""Score a model on a labelled dataset, on ground-truth crops, behind a face detector, or behind a keypoint source.

Three kinds of model are scored the same way:

* a :class:`~openheadpose.inference.pipeline.HeadPoseEstimator` (detector -> landmarks ->
  pose): with ``crop="gt"`` its detector is replaced by the labelled face box;
* a :class:`~openheadpose.specs.spec.CropModel`: each face is cut with the
  model's own crop recipe -- from the labelled landmarks (``"gt"``) or from a
  detector box (``"detect"``) -- and the crops are predicted in batches;
* a keypoint network (HHP-Net, the heatmap CNN: ``model.takes_keypoints``, or a
  :class:`~openheadpose.inference.keypoint_sources.KeypointPoseEstimator`): a keypoint source
  (``keypoints=``, a :data:`~openheadpose.inference.keypoint_sources.KEYPOINT_SOURCES` name) runs on
  the full image and the head whose box overlaps the labelled box most (IoU >=
  :data:`KEYPOINT_MIN_IOU`) is scored -- or, with ``keypoints="labels"``, the five
  keypoints are read off the dataset's hand-labelled landmarks
  (:func:`~openheadpose.inference.keypoint_sources.label_keypoints`). :func:`collect_keypoints` and
  :func:`score_keypoints` are the two halves (``benchmarks/eval_hhpnet.py`` scores
  two networks on one collection). When the model gives a sigma, the result also
  holds the share of errors within +-1 sigma and +-2 sigma (Gaussian: 68.3 / 95.4 %).

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

from openheadpose.core.calibration import GAUSS_1SIGMA, GAUSS_2SIGMA, coverage
from openheadpose.core.geometry import box_iou
from openheadpose.core.metrics import (
    PoseMetrics,
    euler_errors,
    geodesic_error,
    pose_metrics,
)
from openheadpose.core.rotation import matrix_to_euler, wrap_degrees
from openheadpose.inference.keypoint_sources import (
    DEFAULT_SOURCE,
    KEYPOINT_SOURCES,
    LABELS,
    label_keypoints,
)
from openheadpose.inference.pipeline import HeadPoseEstimator, keypoint_finder
from openheadpose.inference.pose_stages import KeypointPose, NetworkPose, read_crops, resolve_view
from openheadpose.inference.results import Detections, HeadKeypoints
from openheadpose.io.images import InputError
from openheadpose.specs.crops import CROPS, square_box, take_pixels

#: |yaw| ranges (degrees) reported separately: near-frontal, turned, profile.
YAW_BINS = ((0, 30), (30, 60), (60, 100))

#: Side of the thumbnails kept for the worst-case contact sheet.
THUMB = 160

#: A keypoint source's head counts as the labelled face when its box overlaps the labelled
#: box this much. Lower than the detectors' 0.3: the pose source's box is built from five
#: points (:func:`~openheadpose.inference.keypoint_sources.keypoint_boxes`) and matches a face box loosely.
KEYPOINT_MIN_IOU = 0.2

#: IoU a detection needs in ``crop="detect"`` mode.
DETECT_MIN_IOU = 0.3


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
        sigma: ``(M, 3)`` the model's per-angle sigma (deg), or ``None``.
        keypoints: the keypoint source of a keypoint network, else ``None``.
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
    sigma: np.ndarray | None = None
    keypoints: str | None = None

    def errors(self) -> np.ndarray:
        """Signed errors ``(M, 3)`` predicted - true (deg), wrapped at 360 only; NaN where unlabelled."""
        return wrap_degrees(self.pred_deg - self.true_deg, 360.0)

    def sigma_coverage(self) -> dict[str, Any] | None:
        """Share of errors within +-1 and +-2 sigma per angle (``None`` for an angle without labels), or ``None`` without sigma."""
        if self.sigma is None:
            return None
        e = self.errors()
        labelled = np.isfinite(e).any(0)

        def per_angle(v):
            return {a: (round(float(x), 4) if ok else None) for a, x, ok in zip(("yaw", "pitch", "roll"), v, labelled)}

        return {
            "within_1sigma": per_angle(coverage(e, self.sigma, 1.0)),
            "within_2sigma": per_angle(coverage(e, self.sigma, 2.0)),
            "gaussian": {"within_1sigma": round(GAUSS_1SIGMA, 4), "within_2sigma": round(GAUSS_2SIGMA, 4)},
            "mean_sigma": {a: round(float(x), 3) for a, x in zip(("yaw", "pitch", "roll"), self.sigma.mean(0) if len(self.sigma) else [np.nan] * 3)},
        }

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
        if self.keypoints is not None:
            d["keypoints"] = self.keypoints
        cov = self.sigma_coverage()
        if cov is not None:
            d["sigma_coverage"] = cov
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
    min_iou: float | None = None,
    min_det_score: float | None = None,
    progress: bool = True,
    keep_worst: int = 16,
    keypoints=None,
    mirror: bool | None = None,
) -> EvalResult:
    """Run ``model`` over ``dataset`` and score it.

    Args:
        model: a ``HeadPoseEstimator``, a ``CropModel``, or a keypoint network
            (``model.takes_keypoints``; or a ``KeypointPoseEstimator``, whose source is used).
        dataset: a reader from :mod:`openheadpose.datasets` (iterable of ``PoseSample``).
        crop: ``"gt"`` (labelled faces) or ``"detect"`` (a detector on the full image);
            not used by keypoint networks (``keypoints`` says where their input comes from).
        batch_size: crops (or keypoint sets) per model call; does not change results.
        detector: for crop models with ``crop="detect"``: a ``DETECTORS`` name or
            callable (default: the pipeline's default detector); for keypoint
            networks, the ``blazeface`` / ``facemesh`` sources' detector.
        min_iou: a detection (or a keypoint source's head) must overlap the labelled
            box this much to count (default :data:`DETECT_MIN_IOU`, for keypoint
            sources :data:`KEYPOINT_MIN_IOU`).
        min_det_score: detections below this score are ignored (crop models; default
            the run-time pipeline's :data:`~openheadpose.inference.pipeline.MIN_DETECTION_SCORE`).
        keep_worst: how many worst cases to keep for the contact sheet.
        keypoints: for keypoint networks: a :data:`~openheadpose.inference.keypoint_sources.KEYPOINT_SOURCES`
            name, ``"labels"`` (the dataset's labelled landmarks) or a callable source
            (default :data:`~openheadpose.inference.keypoint_sources.DEFAULT_SOURCE`).
        mirror: for a bare network: read each face as it is and mirrored, averaged
            (``None``: its pose stage's default, on for image networks). An estimator
            keeps its own pose stage's setting.

    Raises:
        ValueError: a bad ``crop`` / ``batch_size``, or ``keypoints`` for a model that reads images.
    """
    from tqdm import tqdm

    if crop not in ("detect", "gt"):
        raise ValueError(f"crop must be 'detect' or 'gt', not {crop!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    est = model if isinstance(model, HeadPoseEstimator) else _estimator_for_network(model, detector, keypoints, mirror)
    if isinstance(est.pose, KeypointPose):
        if est.pose.mirror:
            raise ValueError("the evaluator scores a keypoint network on one read of its keypoints: leave --mirror out")
        # A named source was already built into the estimator of a bare network: run that one
        # rather than load its models again.
        named = isinstance(keypoints, str) and keypoints != LABELS
        source = est if keypoints is None or (named and est is not model) else keypoints
        kps = collect_keypoints(
            dataset, source, detector=detector, min_iou=KEYPOINT_MIN_IOU if min_iou is None else min_iou, progress=progress, name=name
        )
        return score_keypoints(est.pose.model, kps, name=name, batch_size=batch_size, keep_worst=keep_worst)
    if keypoints is not None:
        raise ValueError(f"keypoints={keypoints!r} is for keypoint networks (hhpnet, heatmap-cnn); {getattr(est.pose, 'model', est.pose)!r} reads images")
    min_iou = DETECT_MIN_IOU if min_iou is None else min_iou
    # An image network alone (no landmarker): scored on its own crops, batched.
    is_crop_model = est.landmarker is None and isinstance(est.pose, NetworkPose)
    min_det_score = est.min_score if min_det_score is None else min_det_score
    scorer = _Scorer(keep_worst)
    missed: list[str] = []
    sigmas: list = []  # per scored face: (3,) or None
    n = 0
    bar = tqdm(dataset, disable=not progress, desc=f"{name} ({crop} crops)", unit="img")

    if is_crop_model:
        model = est.pose.model
        recipe = CROPS[model.crop]
        model_name, recipe_name = model.name, recipe.name
        detector = est.detector
        pending: list[tuple] = []

        def flush():
            if not pending:
                return
            pred = read_crops(model, np.stack([p[3] for p in pending]), resolve_view(None, est.pose.mirror))
            for (nm, s, img, _, box), R in zip(pending, pred.rotations):
                scorer.add(nm, s, np.asarray(R, np.float64), img, box)
            sigmas.extend([None] * len(pending) if pred.sigma is None else list(pred.sigma))
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
        model = est
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
            sigmas.append(None if heads.sigma is None else heads.sigma[best])

    return _result(
        dataset,
        name=name,
        model=model_name,
        crop=crop,
        crop_recipe=recipe_name,
        batch_size=batch_size if is_crop_model else 1,
        n_images=n,
        names=scorer.names,
        true_deg=scorer.true_deg,
        R_true=scorer.R_true,
        R_pred=scorer.R_pred,
        missed=missed,
        worst=scorer.worst(),
        sigma=np.array(sigmas, np.float64) if sigmas and all(x is not None for x in sigmas) else None,
    )


def _result(dataset, *, name, model, crop, crop_recipe, batch_size, n_images, names, true_deg, R_true, R_pred, missed, worst, sigma=None, keypoints=None) -> EvalResult:
    """The metrics of M scored faces (``true_deg`` / ``R_true`` / ``R_pred`` lists or arrays in dataset order)."""
    true_deg = np.array(true_deg, np.float64).reshape(-1, 3)
    R_pred = np.array(R_pred, np.float64).reshape(-1, 3, 3)
    full = all(r is not None for r in R_true)
    R_true = np.array(list(R_true), np.float64).reshape(-1, 3, 3) if full else None
    metrics = pose_metrics(R_pred, R_true, true_deg)
    by_yaw = {}
    for lo, hi in YAW_BINS:
        sel = (np.abs(true_deg[:, 0]) >= lo) & (np.abs(true_deg[:, 0]) < hi)
        by_yaw[f"{lo}-{hi}"] = pose_metrics(R_pred[sel], None if R_true is None else R_true[sel], true_deg[sel])
    return EvalResult(
        dataset=name,
        model=model,
        crop=crop,
        crop_recipe=crop_recipe,
        batch_size=batch_size,
        n_images=n_images,
        n_detected=len(R_pred),
        n_filtered=getattr(dataset, "n_filtered", 0),
        metrics=metrics,
        by_yaw=by_yaw,
        failures=list(getattr(dataset, "failures", [])),
        names=list(names),
        true_deg=true_deg,
        pred_deg=matrix_to_euler(R_pred).stack() if len(R_pred) else np.zeros((0, 3)),
        R_pred=R_pred,
        R_true=R_true,
        missed=missed,
        worst=worst,
        sigma=None if sigma is None else np.asarray(sigma, np.float64).reshape(-1, 3),
        keypoints=keypoints,
    )


# --------------------------------------------------------------------------- keypoint networks
def _estimator_for_network(net, detector, keypoints, mirror: bool | None = None) -> HeadPoseEstimator:
    """The estimator a bare network runs in: behind a keypoint source, or on the detector's box."""
    kw = {} if mirror is None else {"mirror": mirror}
    if getattr(net, "takes_keypoints", False):
        src = KEYPOINT_SOURCES.create(keypoints if isinstance(keypoints, str) and keypoints != LABELS else DEFAULT_SOURCE)
        return HeadPoseEstimator(detector, src.landmarker, KeypointPose(net, **kw), keypoints=src)
    if keypoints is not None:
        raise ValueError(f"keypoints={keypoints!r} is for keypoint networks (hhpnet, heatmap-cnn); {getattr(net, 'name', net)!r} reads images")
    return HeadPoseEstimator(detector, None, NetworkPose(net, **kw))


def match_head(kp: HeadKeypoints, box: np.ndarray, min_iou: float) -> int | None:
    """Index of the head whose box overlaps ``box`` ``(4,)`` most, if that IoU is at least ``min_iou``."""
    if len(kp) == 0:
        return None
    iou = box_iou(np.asarray(kp.boxes, np.float64), np.asarray(box, np.float64).reshape(1, 4))[:, 0]
    j = int(np.argmax(iou))
    return j if iou[j] >= min_iou else None


@dataclass
class KeypointSet:
    """The five head keypoints of every labelled face, from one keypoint source (or the labels).

    Dimension legend: N readable labelled faces (dataset order).

    Attributes:
        source: the source's name (``"labels"``, a ``KEYPOINT_SOURCES`` name, or
            ``None`` for a callable without a ``name``).
        samples: the N ``PoseSample``.
        points: ``(N, 5, 2)`` pixels, COCO order; zeros where not found.
        conf: ``(N, 5)`` confidences (0: hidden or not found).
        boxes: ``(N, 4)`` the matched head's box (the labelled box for ``"labels"``).
        found: ``(N,)`` whether the source gave this face a head (IoU >= ``min_iou``).
    """

    source: str | None
    samples: list
    points: np.ndarray
    conf: np.ndarray
    boxes: np.ndarray
    found: np.ndarray
    n_filtered: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.samples]


def collect_keypoints(dataset, source="facemesh", *, detector=None, min_iou: float = KEYPOINT_MIN_IOU, progress: bool = True, name: str = "dataset") -> KeypointSet:
    """Run a keypoint source over a labelled dataset and keep, per face, the matching head's keypoints.

    The source runs on the whole image; the head whose box overlaps the labelled
    ``sample.box`` most counts if that IoU is at least ``min_iou``, else the face is
    missed. ``source="labels"`` reads the keypoints off the labelled landmarks
    instead (:func:`~openheadpose.inference.keypoint_sources.label_keypoints`; AFLW's 21 points) and
    decodes no image.

    Args:
        dataset: a reader (iterable of ``PoseSample``).
        source: a :data:`~openheadpose.inference.keypoint_sources.KEYPOINT_SOURCES` name, ``"labels"``,
            or a callable ``image -> HeadKeypoints``.
        detector: the ``blazeface`` / ``facemesh`` sources' face detector.
    """
    from tqdm import tqdm

    samples, P, C, B, found = [], [], [], [], []
    if isinstance(source, str) and source == LABELS:
        for s in dataset:
            p, c = label_keypoints(s.landmarks)
            samples.append(s)
            P.append(p[0])
            C.append(c[0])
            B.append(np.asarray(s.box, np.float64))
            found.append(True)  # every labelled face is scored, as with crop="gt" (also the few with one visible keypoint)
        src_name = LABELS
    else:
        est = source if isinstance(source, HeadPoseEstimator) else keypoint_finder(source, detector)
        n = getattr(est.keypoints, "name", None)
        src_name = n if isinstance(n, str) else None
        src = est.keypoints
        bar = tqdm(dataset, disable=not progress, desc=f"{name} (keypoints: {src_name or type(src).__name__})", unit="img")
        for s, img in _readable(bar, dataset):
            kp = est.find_keypoints(img)
            j = match_head(kp, s.box, min_iou)
            samples.append(s)
            if j is None:
                P.append(np.zeros((5, 2)))
                C.append(np.zeros(5))
                B.append(np.asarray(s.box, np.float64))
                found.append(False)
            else:
                P.append(kp.points[j])
                C.append(kp.conf[j])
                B.append(kp.boxes[j])
                found.append(True)
    return KeypointSet(
        source=src_name,
        samples=samples,
        points=np.array(P, np.float64).reshape(-1, 5, 2),
        conf=np.array(C, np.float64).reshape(-1, 5),
        boxes=np.array(B, np.float64).reshape(-1, 4),
        found=np.array(found, bool),
        n_filtered=getattr(dataset, "n_filtered", 0),
        failures=list(getattr(dataset, "failures", [])),
    )


def score_keypoints(model, kps: KeypointSet, *, name: str = "dataset", batch_size: int = 64, keep_worst: int = 16, source: str | None = "same") -> EvalResult:
    """Score a keypoint network on a :class:`KeypointSet` (faces the source missed count as missed).

    Args:
        model: an ``OnnxPoseModel`` of a keypoint network (anything with ``predict_keypoints``).
        kps: from :func:`collect_keypoints`.
        batch_size: keypoint sets per model call; does not change results.
        source: the source name handed to ``predict_keypoints`` for its sigma
            calibration; ``"same"`` (default) is ``kps.source``, ``None`` the file's baked factor.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    cal_source = kps.source if source == "same" else source
    idx = np.flatnonzero(kps.found)
    rotations, sigmas = [], []
    for i in range(0, len(idx), batch_size):
        j = idx[i : i + batch_size]
        pred = model.predict_keypoints(kps.points[j], kps.conf[j], kps.boxes[j], source=cal_source)
        rotations.append(np.asarray(pred.rotations, np.float64))
        sigmas.append(None if pred.sigma is None else np.asarray(pred.sigma, np.float64))
    R_pred = np.concatenate(rotations) if rotations else np.zeros((0, 3, 3))
    sigma = np.concatenate(sigmas) if sigmas and all(x is not None for x in sigmas) else None
    scored = [kps.samples[i] for i in idx]
    worst: list[WorstCase] = []
    if keep_worst > 0 and len(idx):
        err = np.array(
            [
                float(geodesic_error(R, s.rotation)) if s.rotation is not None else float(np.nansum(euler_errors(matrix_to_euler(R).stack(), s.euler)))
                for R, s in zip(R_pred, scored)
            ]
        )
        for k in np.argsort(-err, kind="stable")[:keep_worst]:
            s = scored[k]
            try:
                img = s.load_image()
            except InputError:
                continue
            worst.append(WorstCase(float(err[k]), s.name, _thumb(img, np.asarray(s.box, np.float64)), R_pred[k], s.rotation, matrix_to_euler(R_pred[k]).stack(), s.euler))
    return _result(
        kps,
        name=name,
        model=f"{kps.source or 'keypoints'}+{model.name}",
        crop="keypoints",
        crop_recipe=f"keypoints:{kps.source or 'custom'}",
        batch_size=batch_size,
        n_images=len(kps.samples),
        names=[s.name for s in scored],
        true_deg=[s.euler for s in scored],
        R_true=[s.rotation for s in scored],
        R_pred=R_pred,
        missed=[kps.samples[i].name for i in np.flatnonzero(~kps.found)],
        worst=worst,
        sigma=sigma,
        keypoints=kps.source,
    )

