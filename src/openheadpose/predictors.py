"""The one surface every image pose model shows to the pipeline and the evaluator.

A crop model takes face crops that its own recipe cut (``model.crop`` names a
:data:`openheadpose.crops.CROPS` entry, ``model.input_size`` their side) and returns
rotations in ``Frame.GL`` -- never bare Euler tuples. Colour order and
normalisation stay inside the model: callers always pass RGB ``uint8``.

Dimension legend: B crops, S input side.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .results import Estimator
from .rotation import is_rotation

#: Version of the metadata we write into exported ONNX files.
SPEC_VERSION = 1


@dataclass(frozen=True)
class PosePrediction:
    """Model output for a batch.

    Attributes:
        rotations: ``(B, 3, 3)`` in ``Frame.GL``.
        sigma: ``(B, 3)`` per-angle standard deviation in degrees (yaw, pitch,
            roll), or ``None`` when the model gives no uncertainty.
    """

    rotations: np.ndarray
    sigma: np.ndarray | None = None

    def __post_init__(self):
        R = np.asarray(self.rotations)
        if R.ndim != 3 or R.shape[1:] != (3, 3):
            raise ValueError(f"rotations must be (B, 3, 3), got {R.shape}")
        if self.sigma is not None and np.shape(self.sigma) != (len(R), 3):
            raise ValueError(f"sigma must be (B, 3), got {np.shape(self.sigma)}")

    def __len__(self) -> int:
        return len(self.rotations)

    def valid(self) -> bool:
        """All rotations orthonormal with det +1 (tolerance 1e-4 for float32 models)."""
        return bool(np.all(is_rotation(self.rotations, atol=1e-4)))


@runtime_checkable
class CropModel(Protocol):
    """What the evaluator and pipeline need from an image pose model.

    Attributes:
        name: a display name.
        crop: the crop recipe it was trained with (a ``CROPS`` name).
        input_size: side ``S`` of the square input.
    """

    name: str
    crop: str
    input_size: int

    def predict(self, crops: np.ndarray) -> PosePrediction:
        """``crops``: ``(B, S, S, 3)`` RGB uint8 -> one prediction per crop."""
        ...



@dataclass(frozen=True)
class Preprocessing:
    """How a network wants its input; stored next to the weights and in ONNX metadata.

    Attributes:
        input_size: side of the square input.
        channels: ``"rgb"``, ``"bgr"`` or ``"gray"``.
        mean, std: per-channel normalisation on the 0..255 scale: ``(x - mean) / std``.
        crop: the :data:`~openheadpose.crops.CROPS` recipe it was trained with.
        layout: ``"nchw"`` (PyTorch) or ``"nhwc"`` (Keras).
        minmax: stretch each crop to 0..255 first (``cv2.normalize(..., NORM_MINMAX)``, FSA-Net's demos).
    """

    input_size: int
    channels: str = "rgb"
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    crop: str = "square-1.5"
    layout: str = "nchw"
    minmax: bool = False

    @property
    def num_channels(self) -> int:
        """Channels of the network input: 3 for colour, 1 for gray, 6 for keypoint heatmaps (5 + background)."""
        return {"rgb": 3, "bgr": 3, "gray": 1, "heatmaps": 6}[self.channels]

    @property
    def takes_images(self) -> bool:
        """False for networks fed keypoints (HHP-Net, the heatmap CNN) rather than face crops."""
        return self.channels in ("rgb", "bgr", "gray")

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """``(B, S, S, 3)`` RGB uint8 -> float32 network input."""
        import cv2

        if not self.takes_images:
            raise ValueError(f"a {self.channels!r} network takes keypoints, not image crops")

        x = np.asarray(crops)
        if x.ndim != 4 or x.shape[-1] != 3 or x.shape[1:3] != (self.input_size, self.input_size):
            raise ValueError(f"expected crops (B, {self.input_size}, {self.input_size}, 3), got {x.shape}")
        if self.channels == "bgr":
            x = x[..., ::-1]
        elif self.channels == "gray":
            x = np.stack([cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) for c in x])[..., None]
        x = x.astype(np.float32)
        if self.minmax:
            lo = x.min(axis=(1, 2, 3), keepdims=True)
            hi = x.max(axis=(1, 2, 3), keepdims=True)
            x = (x - lo) * (255.0 / np.maximum(hi - lo, 1e-6))
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if self.layout == "nchw" else x)


@dataclass(frozen=True)
class ModelSpec:
    """Everything that travels with a set of weights (timm's PretrainedCfg, torchvision's Weights).

    Attributes:
        name: registered model name (e.g. ``"fsanet-capsule"``).
        codec: a :data:`~openheadpose.codecs.CODECS` name; how raw outputs become rotations.
        preprocessing: the input recipe.
        source: where the weights came from (an original checkpoint, our training run).
        trained_on: training data / protocol.
        notes: anything a user must know (e.g. measured accuracy and its command).
    """

    name: str
    codec: str
    preprocessing: Preprocessing
    source: str = ""
    trained_on: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, str]:
        """ONNX ``metadata_props``: one JSON value under ``openheadpose``."""
        d = asdict(self)
        d["spec_version"] = SPEC_VERSION
        return {"openheadpose": json.dumps(d, sort_keys=True)}

    @staticmethod
    def from_metadata(meta: dict[str, str], where: str = "model") -> "ModelSpec":
        raw = meta.get("openheadpose")
        if raw is None:
            raise ValueError(f"{where}: no openheadpose metadata (export it with `headpose export` / `headpose convert`)")
        d = json.loads(raw)
        version = d.pop("spec_version", None)
        if version != SPEC_VERSION:
            raise ValueError(f"{where}: metadata version {version}, this openheadpose reads version {SPEC_VERSION}")
        pre = d.pop("preprocessing")
        pre["mean"], pre["std"] = tuple(pre["mean"]), tuple(pre["std"])
        return ModelSpec(preprocessing=Preprocessing(**pre), **d)


class OnnxPoseModel:
    """A pose network run by ONNX Runtime; preprocessing and decoding come from the file's metadata.

    Image networks take RGB uint8 crops (:meth:`predict`); keypoint networks
    (``channels`` ``"keypoints"``: HHP-Net, ``"heatmaps"``: the heatmap CNN) take
    five head keypoints (:meth:`predict_keypoints`). ``takes_keypoints`` tells which.

    Args:
        path: an ``.onnx`` file written by ``headpose export`` / ``headpose convert``.
        threads: intra-op threads (default: ONNX Runtime's choice).
    """

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        from .codecs import get_codec

        self.path = Path(path)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ValueError(f"{self.path}: not a readable ONNX model ({exc})") from None
        self.spec = ModelSpec.from_metadata(self.session.get_modelmeta().custom_metadata_map, str(self.path))
        self.codec = get_codec(self.spec.codec)
        self.name = self.spec.name
        self.crop = self.spec.preprocessing.crop
        self.input_size = self.spec.preprocessing.input_size
        self._input = self.session.get_inputs()[0].name
        self._outputs = [o.name for o in self.session.get_outputs()]
        missing = set(self.codec.outputs) - set(self._outputs)
        if missing:
            raise ValueError(f"{self.path}: codec {self.codec.name!r} needs outputs {sorted(missing)}, the file has {self._outputs}")
        from .calibration import SourceCalibration

        try:
            #: Per-keypoint-source sigma factors the file carries (``notes["calibration"]``), or ``None``.
            self.calibration = SourceCalibration.from_dict(self.spec.notes.get("calibration"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{self.path}: unreadable sigma calibration in its metadata ({exc})") from None

    @property
    def takes_keypoints(self) -> bool:
        """True for networks fed head keypoints (HHP-Net, the heatmap CNN) rather than image crops."""
        return self.spec.preprocessing.channels in ("keypoints", "heatmaps")

    def _run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        values = self.session.run(self._outputs, {self._input: np.ascontiguousarray(x, np.float32)})
        return dict(zip(self._outputs, values))

    def raw(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """Named raw outputs for RGB uint8 crops."""
        return self._run(self.spec.preprocessing(crops))

    def predict(self, crops: np.ndarray) -> PosePrediction:
        """``crops`` ``(B, S, S, 3)`` RGB uint8 -> one prediction per crop (image networks only)."""
        if self.takes_keypoints:
            raise ValueError(
                f"{self.name!r} ({self.path.name}) reads head keypoints, not image crops: call "
                "predict_keypoints(points, conf, boxes), or run it behind a keypoint source "
                "(openheadpose.keypoints.KeypointPoseEstimator; `headpose predict --keypoints ...`)"
            )
        if len(crops) == 0:
            return PosePrediction(np.zeros((0, 3, 3)))
        return self.codec.decode(self.raw(crops))

    def keypoint_input(self, points: np.ndarray, conf: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """The network input for B heads' keypoints (see :meth:`predict_keypoints`)."""
        from .crops import CROPS
        from .keypoint_input import HEATMAP_CROP, keypoints_to_input, render_heatmaps, to_map_coordinates

        pre = self.spec.preprocessing
        p = np.asarray(points, np.float64)
        c = np.asarray(conf, np.float64)
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        if p.ndim != 3 or p.shape[1:] != (5, 2) or c.shape != p.shape[:2] or len(b) != len(p):
            raise ValueError(f"expected points (B, 5, 2), conf (B, 5) and boxes (B, 4), got {p.shape}, {c.shape} and {np.shape(boxes)}")
        if pre.channels == "keypoints":
            return keypoints_to_input(p, c)
        if pre.channels == "heatmaps":
            # The maps span the crop the network was trained on: a face box widened by the
            # HEATMAP_CROP recipe (square-1.5 ignores the image shape, so none is needed).
            recipe = CROPS[HEATMAP_CROP]
            crop_boxes = np.array([recipe.from_detection(bb, (0, 0)) for bb in b]).reshape(-1, 4)
            hm = render_heatmaps(to_map_coordinates(p, crop_boxes, pre.input_size), c, size=pre.input_size)
            hm = (hm - np.asarray(pre.mean, np.float32)[:, None, None]) / np.asarray(pre.std, np.float32)[:, None, None]
            return np.ascontiguousarray(hm if pre.layout == "nchw" else hm.transpose(0, 2, 3, 1), np.float32)
        raise ValueError(f"{self.name!r} ({self.path.name}) reads {pre.channels!r} image crops, not keypoints: call predict(crops)")

    def predict_keypoints(self, points: np.ndarray, conf: np.ndarray, boxes: np.ndarray, source: str | None = None) -> PosePrediction:
        """Pose of B heads from their five keypoints (keypoint networks only).

        Args:
            points: ``(B, 5, 2)`` image pixels of nose, left eye, right eye, left ear,
                right ear (COCO order; "left" is the person's left; see
                :mod:`openheadpose.keypoint_input`).
            conf: ``(B, 5)`` confidences in [0, 1]; 0 marks an invisible point.
            boxes: ``(B, 4)`` face boxes ``[x1, y1, x2, y2]``. HHP-Net ignores them
                (its input is centred and scaled by the points themselves); the
                heatmap CNN renders its maps over the box widened by
                :data:`~openheadpose.keypoint_input.HEATMAP_CROP`, as in training.
            source: the :data:`~openheadpose.keypoints.KEYPOINT_SOURCES` name the
                keypoints came from (or ``"labels"``: read off hand-labelled
                landmarks). When the file carries per-source sigma factors
                (:attr:`calibration`, :class:`~openheadpose.calibration.SourceCalibration`),
                sigma is calibrated for that source; ``None`` or an unknown name
                keeps the factor baked into the file.

        Raises:
            ValueError: an image network, or badly shaped arrays.
        """
        x = self.keypoint_input(points, conf, boxes)
        if len(x) == 0:
            return PosePrediction(np.zeros((0, 3, 3)), np.zeros((0, 3)) if "log_var" in self.codec.outputs else None)
        pred = self.codec.decode(self._run(x))
        if self.calibration is not None and pred.sigma is not None:
            pred = PosePrediction(pred.rotations, self.calibration.apply(pred.sigma, source))
        return pred


#: Detector score a face needs when no landmarker confirms it (image networks). The default
#: pipeline multiplies the detector score by FaceMesh's face-presence score instead. Set from
#: BlazeFace's scores on ../shared/media/group-t1.jpg: real faces >= 0.93, chips and cards
#: 0.52-0.71 (../shared/README.md); never tuned on an evaluation set.
MIN_DETECTION_SCORE = 0.75


class CropPoseEstimator(Estimator):
    """Detector -> the model's crop recipe -> a crop model: the pipeline for image pose networks.

    Same surface as :class:`~openheadpose.pipeline.HeadPoseEstimator` (``__call__``,
    ``predict``, ``process``), so ``headpose predict --model ... --weights ...`` and
    the evaluator treat both alike.

    Args:
        model: a :class:`CropModel`.
        detector: a ``DETECTORS`` name or callable (default: the pipeline's default).
        min_score: keep detections scoring at least this (default :data:`MIN_DETECTION_SCORE`).
    """

    def __init__(self, model: CropModel, detector=None, min_score: float | None = None, max_detect_side: int = 1920):
        from .crops import CROPS
        from .detectors import DETECTORS
        from .pipeline import default_detector

        detector = default_detector() if detector is None else detector
        self.detector = DETECTORS.create(detector) if isinstance(detector, str) else detector
        self.model = model
        self.recipe = CROPS[model.crop]
        self.min_score = MIN_DETECTION_SCORE if min_score is None else min_score
        self.max_detect_side = max_detect_side
        self.names = {"detector": detector if isinstance(detector, str) else type(detector).__name__, "model": model.name}

    def predict(self, image: np.ndarray):
        import time

        from .pipeline import as_rgb_uint8, detect_scaled
        from .results import Heads

        image = as_rgb_uint8(image)
        t0 = time.perf_counter()
        det = detect_scaled(self.detector, image, self.max_detect_side)
        keep = np.flatnonzero(det.scores >= self.min_score)
        t1 = time.perf_counter()
        timings = {"detect": t1 - t0}
        if len(keep) == 0:
            timings["pose"] = 0.0
            return Heads.empty(), timings
        boxes = det.boxes[keep]
        crops = np.stack([self.recipe(image, self.recipe.from_detection(b, image.shape), self.model.input_size) for b in boxes])
        pred = self.model.predict(crops)
        timings["pose"] = time.perf_counter() - t1
        order = np.argsort(boxes[:, 0], kind="stable")
        return Heads(boxes, det.scores[keep], pred.rotations, pred.sigma)[order], timings


#: Image networks trained here on ``headpose synth`` data only and packaged as
#: ``openheadpose/data/<name>.onnx`` (recipe in ``<name>.json``): name -> what it is.
#: Each is also a pose stage of the pipeline (``--pose <name>``).
SHIPPED_IMAGE_NETWORKS = {
    "hopenet-synth": "Hopenet-lite: 66-bin heads on MobileNetV3-Small, 128 px (4.2 MB)",
    "fsanet-synth": "FSA-Net capsule (1 MB)",
}

#: The pipeline's default pose stage (:func:`openheadpose.pipeline.default_pose`).
DEFAULT_POSE_NETWORK = "hopenet-synth"

#: Weights shipped inside the package (``openheadpose/data``), used when a model is named
#: without ``--weights``: name -> file.
SHIPPED_WEIGHTS = {"hhpnet": "hhpnet-synth.onnx", **{n: f"{n}.onnx" for n in SHIPPED_IMAGE_NETWORKS}}


def shipped_weights(name: str) -> Path | None:
    """The packaged ``.onnx`` for ``name`` if openheadpose ships one and it is installed, else ``None``."""
    from importlib import resources

    file = SHIPPED_WEIGHTS.get(name)
    if file is None:
        return None
    path = Path(str(resources.files("openheadpose.data").joinpath(file)))
    return path if path.is_file() else None


def load_model(name: str = "default", weights=None, *, detector=None, landmarker="facemesh", pose=None):
    """A model by name, ready for :func:`openheadpose.evaluate.evaluate` or prediction.

    Args:
        name: ``"default"``: the landmark pipeline (:class:`~openheadpose.pipeline.HeadPoseEstimator`
            with ``detector``, ``landmarker`` and ``pose``; ``None``: the pipeline's defaults). Any other name needs
            ``weights``: an ``.onnx`` file whose metadata names that model (or
            ``"onnx"`` to accept whatever the file declares) -- except names in
            :data:`SHIPPED_WEIGHTS` (``hhpnet``, ``hopenet-synth``, ``fsanet-synth``), which fall back
            to the weights packaged with openheadpose.
        weights: a weights file.

    Raises:
        KeyError: an unknown name (the message lists the known ones).
        ValueError: missing, wrong or unreadable weights.
    """
    if name == "default":
        if weights is not None:
            raise ValueError("the default model (detector + landmarks + pose stage) takes no --weights")
        from .pipeline import HeadPoseEstimator

        return HeadPoseEstimator(detector=detector, landmarker=landmarker, pose=pose)
    packaged = False
    if weights is None:
        weights = shipped_weights(name)
        packaged = weights is not None
        if weights is None and name in SHIPPED_WEIGHTS:
            raise ValueError(
                f"model {name!r}: its packaged weights (openheadpose/data/{SHIPPED_WEIGHTS[name]}) are not installed; "
                "pass --weights FILE.onnx (from `headpose export` or `headpose convert`)"
            )
    if weights is None:
        raise ValueError(f"model {name!r} needs --weights (an .onnx file from `headpose convert` or `headpose export`)")
    weights = Path(weights)
    if weights.suffix.lower() != ".onnx":
        raise ValueError(f"{weights}: expected an .onnx file (convert original checkpoints with `headpose convert`)")
    m = OnnxPoseModel(weights)
    if name != "onnx" and not packaged and not (m.spec.name == name or m.spec.name.startswith(name + "-")):
        raise ValueError(f"{weights}: holds model {m.spec.name!r}, not {name!r} (pass --model onnx to take it as it is)")
    return m
