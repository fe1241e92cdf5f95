"""Typed result containers: what a detector and the whole pipeline return.

Dimension legend: N heads in a frame, K keypoints per head.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .rotation import EulerAngles, matrix_to_euler


def _select(arr: np.ndarray | None, idx) -> np.ndarray | None:
    return None if arr is None else arr[idx]


@dataclass(frozen=True)
class Detections:
    """Faces found by a detector.

    Attributes:
        boxes: ``(N, 4)`` float, ``[x1, y1, x2, y2]`` in pixels of the full image.
        scores: ``(N,)`` detector confidence in [0, 1].
        keypoints: ``(N, K, 2)`` pixel coordinates (BlazeFace: right eye, left eye,
            nose tip, mouth centre, right ear tragion, left ear tragion -- "right"
            meaning the person's right), or ``None`` when the detector gives none.
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray | None = None

    @staticmethod
    def empty(num_keypoints: int | None = None) -> "Detections":
        kp = None if num_keypoints is None else np.zeros((0, num_keypoints, 2))
        return Detections(np.zeros((0, 4)), np.zeros((0,)), kp)

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, idx) -> "Detections":
        idx = np.atleast_1d(np.arange(len(self))[idx])
        return Detections(self.boxes[idx], self.scores[idx], _select(self.keypoints, idx))


@dataclass(frozen=True)
class Heads:
    """The heads of one image or frame; every field has N rows.

    Attributes:
        boxes: ``(N, 4)`` face boxes ``[x1, y1, x2, y2]`` in pixels.
        scores: ``(N,)`` confidence that this is a face.
        rotations: ``(N, 3, 3)`` head-to-camera rotations in ``Frame.GL``
            (see :mod:`openheadpose.rotation`).
        sigma: ``(N, 3)`` per-angle standard deviation in degrees, ordered
            (yaw, pitch, roll), or ``None`` when the pose model gives none.
        landmarks: ``(N, L, 3)`` landmarks (x, y in pixels, z in pixels towards
            the viewer) when the pipeline computed them, else ``None``.
    """

    boxes: np.ndarray
    scores: np.ndarray
    rotations: np.ndarray
    sigma: np.ndarray | None = None
    landmarks: np.ndarray | None = None

    @staticmethod
    def empty() -> "Heads":
        return Heads(np.zeros((0, 4)), np.zeros((0,)), np.zeros((0, 3, 3)))

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, idx) -> "Heads":
        idx = np.atleast_1d(np.arange(len(self))[idx])
        return Heads(
            self.boxes[idx],
            self.scores[idx],
            self.rotations[idx],
            _select(self.sigma, idx),
            _select(self.landmarks, idx),
        )

    @property
    def euler(self) -> EulerAngles:
        """Yaw, pitch, roll in degrees (AFLW convention), each ``(N,)``."""
        return matrix_to_euler(self.rotations)

    def to_list(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per head (the ``heads`` field of the JSON Lines output)."""
        e = self.euler
        out = []
        for i in range(len(self)):
            out.append(
                {
                    "box": [round(float(v), 2) for v in self.boxes[i]],
                    "score": round(float(self.scores[i]), 4),
                    "yaw": round(float(e.yaw[i]), 3),
                    "pitch": round(float(e.pitch[i]), 3),
                    "roll": round(float(e.roll[i]), 3),
                    "rotation": [[round(float(v), 6) for v in row] for row in self.rotations[i]],
                    "sigma": None if self.sigma is None else [round(float(v), 3) for v in self.sigma[i]],
                }
            )
        return out


@dataclass(frozen=True)
class FrameResult:
    """Heads of one image or video frame, with where it came from and stage timings.

    Attributes:
        source: the file path, ``camera:N`` or ``example:NAME``.
        frame: frame index in a video or stream, 0 for a still image.
        width, height: size of the decoded image in pixels (after EXIF rotation).
        heads: the :class:`Heads` found.
        timings: seconds spent per stage (``detect``, ``landmarks``, ``pose``).
    """

    source: str
    frame: int
    width: int
    height: int
    heads: Heads
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "frame": self.frame,
            "width": self.width,
            "height": self.height,
            "heads": self.heads.to_list(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


class Estimator:
    """The surface every head-pose pipeline shares: subclasses define ``predict(image) -> (Heads, timings)``."""

    def predict(self, image: np.ndarray) -> tuple[Heads, dict[str, float]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, image: np.ndarray) -> Heads:
        return self.predict(image)[0]

    def process(self, image: np.ndarray, source: str = "", frame: int = 0) -> FrameResult:
        """Like ``__call__`` but returns a :class:`FrameResult` with source, size and timings."""
        heads, timings = self.predict(image)
        h, w = np.asarray(image).shape[:2]
        return FrameResult(source, frame, int(w), int(h), heads, timings)
