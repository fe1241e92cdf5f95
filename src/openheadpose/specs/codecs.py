"""Codecs join labels and network heads (mmpose-style).

A network returns named raw outputs (numpy arrays here, tensors in training);
its codec turns them into a :class:`~openheadpose.specs.spec.PosePrediction`
(rotations in ``Frame.GL`` + optional sigma) and turns labels into training
targets. The same codec object is used by the PyTorch model, the ONNX Runtime
backend and the trainer, so there is one decoding rule per head type.

Dimension legend: B faces, K bins.

Conventions: every codec's Euler angles are (yaw, pitch, roll) in degrees in the
AFLW convention of :mod:`openheadpose.core.rotation`; an importer whose original
network speaks another convention converts its weights or declares it here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from openheadpose.core.registry import Registry
from openheadpose.core.rotation import euler_to_matrix, from_6d, matrix_to_euler, to_6d  # noqa: F401  (matrix_to_euler: the doctests)
from openheadpose.specs.spec import PosePrediction

CODECS: Registry = Registry("codec")


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def _rot(euler: np.ndarray) -> np.ndarray:
    e = np.asarray(euler, np.float64).reshape(-1, 3)
    return euler_to_matrix(e[:, 0], e[:, 1], e[:, 2])


@dataclass(frozen=True)
class EulerCodec:
    """Direct regression of (yaw, pitch, roll) degrees: output ``euler`` ``(B, 3)``.

    FSA-Net, SSR-Net-MT, the keypoint-heatmap CNN. Training loss: L1 (FSA-Net's MAE).

    >>> p = EulerCodec().decode({"euler": np.array([[30.0, 0.0, 0.0]])})
    >>> round(float(matrix_to_euler(p.rotations).yaw[0]), 6)
    30.0
    """

    name: str = "euler"
    outputs: tuple = ("euler",)

    def decode(self, out: Mapping[str, np.ndarray]) -> PosePrediction:
        return PosePrediction(_rot(out["euler"]))

    def encode(self, euler_deg: np.ndarray) -> dict[str, np.ndarray]:
        return {"euler": np.asarray(euler_deg, np.float32).reshape(-1, 3)}


@dataclass(frozen=True)
class BinnedCodec:
    """Hopenet's binned classification: ``yaw``/``pitch``/``roll`` logits ``(B, K)``.

    Bins of ``width`` degrees starting at ``start`` (66 bins of 3 deg from -99:
    bin i covers [-99 + 3i, -96 + 3i)). Decoding is the softmax expectation
    ``sum_i p_i * i * width + start`` -- exactly Hopenet's, whose value for bin i is
    its left edge, a constant -1.5 deg shift on bin centres that its training
    (CE + MSE on the same expectation) absorbs. Training loss: cross-entropy on
    the bin + alpha * MSE on the expectation.

    >>> c = BinnedCodec()
    >>> t = c.encode(np.array([[0.0, -99.0, 98.9]]))
    >>> t["bins"].tolist()
    [[33, 0, 65]]
    """

    name: str = "binned"
    num_bins: int = 66
    width: float = 3.0
    start: float = -99.0
    outputs: tuple = ("yaw", "pitch", "roll")

    def expectation(self, logits: np.ndarray) -> np.ndarray:
        idx = np.arange(self.num_bins, dtype=np.float64)
        return (_softmax(np.asarray(logits, np.float64)) * idx).sum(-1) * self.width + self.start

    def decode(self, out: Mapping[str, np.ndarray]) -> PosePrediction:
        e = np.stack([self.expectation(out[k]) for k in self.outputs], axis=-1)
        return PosePrediction(_rot(e))

    def spread(self, out: Mapping[str, np.ndarray]) -> np.ndarray:
        """``(B, 3)`` standard deviation (deg) of each angle's bin distribution: the network's own
        doubt, uncalibrated (a file's ``notes["sigma"]`` scales it into a sigma).

        >>> c = BinnedCodec()
        >>> sure, torn = np.full(66, -50.0), np.full(66, -50.0)
        >>> sure[40] = 0.0; torn[[20, 40]] = 0.0
        >>> s = c.spread({"yaw": np.stack([sure, torn]), "pitch": np.stack([sure, torn]), "roll": np.stack([sure, torn])})
        >>> s[:, 0].round(2).tolist()   # one bin: no spread; two bins 60 deg apart: 30
        [0.0, 30.0]
        """
        idx = np.arange(self.num_bins, dtype=np.float64) * self.width
        cols = []
        for k in self.outputs:
            p = _softmax(np.asarray(out[k], np.float64))
            mean = (p * idx).sum(-1, keepdims=True)
            cols.append(np.sqrt(np.maximum((p * (idx - mean) ** 2).sum(-1), 0.0)))
        return np.stack(cols, axis=-1)

    def encode(self, euler_deg: np.ndarray) -> dict[str, np.ndarray]:
        e = np.asarray(euler_deg, np.float64).reshape(-1, 3)
        bins = np.clip(np.floor((e - self.start) / self.width), 0, self.num_bins - 1).astype(np.int64)
        return {"bins": bins, "euler": e.astype(np.float32)}


@dataclass(frozen=True)
class HeteroscedasticCodec:
    """HHP-Net: ``euler`` ``(B, 3)`` degrees and ``log_var`` ``(B, 3)`` (log of the variance in deg^2).

    sigma = sqrt(exp(log_var)). Training loss: the Gaussian negative log-likelihood
    ``0.5 * exp(-log_var) * (y - mu)^2 + 0.5 * log_var``.
    """

    name: str = "heteroscedastic"
    outputs: tuple = ("euler", "log_var")

    def decode(self, out: Mapping[str, np.ndarray]) -> PosePrediction:
        lv = np.asarray(out["log_var"], np.float64).reshape(-1, 3)
        return PosePrediction(_rot(out["euler"]), np.sqrt(np.exp(lv)))

    def encode(self, euler_deg: np.ndarray) -> dict[str, np.ndarray]:
        return {"euler": np.asarray(euler_deg, np.float32).reshape(-1, 3)}


@dataclass(frozen=True)
class Rot6DCodec:
    """6DRepNet's representation: ``rot6d`` ``(B, 6)``, Gram-Schmidt to a rotation. Loss: geodesic.

    >>> R = euler_to_matrix(20.0, -10.0, 5.0)[None]
    >>> p = Rot6DCodec().decode(Rot6DCodec().encode_rotation(R))
    >>> bool(np.allclose(p.rotations, R))
    True
    """

    name: str = "rot6d"
    outputs: tuple = ("rot6d",)

    def decode(self, out: Mapping[str, np.ndarray]) -> PosePrediction:
        return PosePrediction(from_6d(np.asarray(out["rot6d"], np.float64).reshape(-1, 6)))

    def encode(self, euler_deg: np.ndarray) -> dict[str, np.ndarray]:
        return {"rotation": _rot(euler_deg).astype(np.float32)}

    def encode_rotation(self, R: np.ndarray) -> dict[str, np.ndarray]:
        return {"rot6d": to_6d(np.asarray(R, np.float64))}


for _c in (EulerCodec(), BinnedCodec(), HeteroscedasticCodec(), Rot6DCodec()):
    CODECS.register(_c.name, help=(type(_c).__doc__ or "").strip().split("\n")[0])(_c)


def get_codec(name: str):
    """The codec registered as ``name`` (raises KeyError listing the choices)."""
    return CODECS[name]
