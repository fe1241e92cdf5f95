"""What travels with a set of weights (:class:`ModelSpec`: codec and :class:`Preprocessing`), and the
surface every pose network shows (:class:`CropModel` returning a :class:`PosePrediction`).

Dimension legend: B crops, S input side.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from openheadpose.core.rotation import is_rotation

#: Version of the metadata we write into exported ONNX files.
SPEC_VERSION = 1


@dataclass(frozen=True)
class PosePrediction:
    """Model output for a batch.

    Attributes:
        rotations: ``(B, 3, 3)`` in ``Frame.GL``.
        sigma: ``(B, 3)`` per-angle standard deviation in degrees (yaw, pitch,
            roll), or ``None`` when the model gives no uncertainty.
        angles: the Euler angles the model estimates (:attr:`ModelSpec.angles`).
    """

    rotations: np.ndarray
    sigma: np.ndarray | None = None
    angles: tuple[str, ...] = ("yaw", "pitch", "roll")

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
        crop: the :data:`~openheadpose.specs.crops.CROPS` recipe it was trained with.
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
        codec: a :data:`~openheadpose.specs.codecs.CODECS` name; how raw outputs become rotations.
        preprocessing: the input recipe.
        source: where the weights came from (an original checkpoint, our training run).
        trained_on: training data / protocol.
        notes: anything a user must know (e.g. measured accuracy and its command).
        angles: the Euler angles the network estimates (RealHePoNet: pan and tilt, i.e.
            ``("yaw", "pitch")``); the others are a placeholder 0 inside its rotations and
            are reported as ``null``.
    """

    name: str
    codec: str
    preprocessing: Preprocessing
    source: str = ""
    trained_on: str = ""
    notes: dict[str, Any] = field(default_factory=dict)
    angles: tuple[str, ...] = ("yaw", "pitch", "roll")

    def __post_init__(self):
        angles = tuple(self.angles)
        if not angles or any(a not in ("yaw", "pitch", "roll") for a in angles):
            raise ValueError(f"{self.name}: angles must name some of yaw, pitch, roll, not {self.angles!r}")
        object.__setattr__(self, "angles", angles)

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
        return ModelSpec.from_dict(d)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON- and checkpoint-safe); :meth:`from_dict` reads it back."""
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "ModelSpec":
        """The spec :meth:`to_dict` wrote (the one decoder of ONNX metadata and checkpoints)."""
        d = dict(d)
        pre = dict(d.pop("preprocessing"))
        pre["mean"], pre["std"] = tuple(pre["mean"]), tuple(pre["std"])
        return ModelSpec(preprocessing=Preprocessing(**pre), **d)
