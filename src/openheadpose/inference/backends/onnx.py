"""Pose networks run by ONNX Runtime; preprocessing and decoding come from the file's metadata.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openheadpose.assets import SHIPPED_WEIGHTS, shipped_weights
from openheadpose.specs.spec import ModelSpec, PosePrediction


class OnnxPoseModel:
    """A pose network run by ONNX Runtime; preprocessing and decoding come from the file's metadata.

    Image networks take RGB uint8 crops (:meth:`predict`); keypoint networks
    (``channels`` ``"keypoints"``: HHP-Net, ``"heatmaps"``: the heatmap CNN) take
    five head keypoints (:meth:`predict_keypoints`). ``takes_keypoints`` tells which.

    Args:
        path: an ``.onnx`` file written by ``headpose export`` / ``headpose convert``.
        threads: intra-op threads (default: :func:`~openheadpose.inference.backends.model_threads`).
    """

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        from openheadpose.specs.codecs import get_codec

        self.path = Path(path)
        from openheadpose.inference.backends import model_threads

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads or model_threads(), 1
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
        from openheadpose.core.calibration import Calibration, SourceCalibration

        try:
            #: Per-keypoint-source sigma factors the file carries (``notes["calibration"]``), or ``None``.
            self.calibration = SourceCalibration.from_dict(self.spec.notes.get("calibration"))
            #: For a binned image network: the factors that turn its bins' spread into sigma
            #: (``notes["sigma"]``, fitted by ``tools/calibrate_sigma.py``), or ``None`` (no sigma).
            self.spread_calibration = Calibration.from_dict(self.spec.notes.get("sigma"))
            #: The factors that turn the single-read sigma into that of the mean of a plain and a
            #: mirrored read (``notes["sigma_both"]``, measured by ``tools/calibrate_sigma.py``), or
            #: ``None`` (see :func:`~openheadpose.inference.pose_stages.both_sigma_factor`).
            self.both_calibration = Calibration.from_dict(self.spec.notes.get("sigma_both"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{self.path}: unreadable sigma calibration in its metadata ({exc})") from None
        if self.spread_calibration is not None and not hasattr(self.codec, "spread"):
            raise ValueError(f"{self.path}: a sigma calibration for the bins' spread, but codec {self.codec.name!r} has no bins")

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
                "(openheadpose.inference.keypoint_sources.KeypointPoseEstimator; `headpose predict --keypoints ...`)"
            )
        if len(crops) == 0:
            return PosePrediction(np.zeros((0, 3, 3)), None if self.spread_calibration is None else np.zeros((0, 3)), self.spec.angles)
        out = self.raw(crops)
        pred = self.codec.decode(out)
        sigma = self.spread_calibration.apply(self.codec.spread(out)) if self.spread_calibration is not None else pred.sigma
        return PosePrediction(pred.rotations, sigma, self.spec.angles)

    def keypoint_input(self, points: np.ndarray, conf: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """The network input for B heads' keypoints (see :meth:`predict_keypoints`)."""
        from openheadpose.specs.crops import CROPS
        from openheadpose.specs.keypoint_input import (
            HEATMAP_CROP,
            keypoints_to_input,
            render_heatmaps,
            to_map_coordinates,
        )

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
                :mod:`openheadpose.specs.keypoint_input`).
            conf: ``(B, 5)`` confidences in [0, 1]; 0 marks an invisible point.
            boxes: ``(B, 4)`` face boxes ``[x1, y1, x2, y2]``. HHP-Net ignores them
                (its input is centred and scaled by the points themselves); the
                heatmap CNN renders its maps over the box widened by
                :data:`~openheadpose.specs.keypoint_input.HEATMAP_CROP`, as in training.
            source: the :data:`~openheadpose.inference.keypoint_sources.KEYPOINT_SOURCES` name the
                keypoints came from (or ``"labels"``: read off hand-labelled
                landmarks). When the file carries per-source sigma factors
                (:attr:`calibration`, :class:`~openheadpose.core.calibration.SourceCalibration`),
                sigma is calibrated for that source; ``None`` or an unknown name
                keeps the factor baked into the file.

        Raises:
            ValueError: an image network, or badly shaped arrays.
        """
        x = self.keypoint_input(points, conf, boxes)
        if len(x) == 0:
            return PosePrediction(np.zeros((0, 3, 3)), np.zeros((0, 3)) if "log_var" in self.codec.outputs else None, self.spec.angles)
        pred = self.codec.decode(self._run(x))
        if self.calibration is not None and pred.sigma is not None:
            pred = PosePrediction(pred.rotations, self.calibration.apply(pred.sigma, source))
        return PosePrediction(pred.rotations, pred.sigma, self.spec.angles)


def load_network(name: str, weights=None) -> OnnxPoseModel:
    """A pose network by name, run by ONNX Runtime.

    Args:
        name: a network name; ``weights`` must be an ``.onnx`` file whose metadata
            names that model (or ``name="onnx"`` to accept whatever the file declares),
            except for names in :data:`~openheadpose.assets.SHIPPED_WEIGHTS`
            (``hhpnet``, ``hopenet-synth``, ``fsanet-synth``), which fall back to the
            weights packaged with openheadpose.
        weights: a weights file.

    Raises:
        ValueError: missing, wrong or unreadable weights.
    """
    packaged = False
    if weights is None:
        weights = shipped_weights(name)
        packaged = weights is not None
        if weights is None and name in SHIPPED_WEIGHTS:
            raise ValueError(
                f"model {name!r}: its packaged weights (openheadpose/assets/{SHIPPED_WEIGHTS[name]}) are not installed; "
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
