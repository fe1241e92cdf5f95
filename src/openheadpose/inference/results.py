"""Typed containers passed between the pipeline's stages and returned to the user.

The stages hand each other one object per step:

    detector  -> :class:`Detections`   boxes, scores (and BlazeFace's six points)
    landmarker -> :class:`Landmarks`   468 FaceMesh points per face
    keypoint source -> :class:`HeadKeypoints`   nose, eyes, ears with confidences
    (all of it, per face kept) -> :class:`Faces`   what a pose stage reads
    pose stage -> :class:`~openheadpose.specs.spec.PosePrediction`   rotations (+ sigma)
    -> :class:`Heads` in a :class:`FrameResult`   what the user gets

Every container has N rows in every field, supports ``len`` and index / mask
selection, and never mutates the caller's arrays.

Dimension legend: N heads in a frame; 468 FaceMesh points; 5 head keypoints
(COCO order: nose, left eye, right eye, left ear, right ear -- the person's left).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from openheadpose.core.rotation import EulerAngles, matrix_to_euler


def _select(arr: np.ndarray | None, idx) -> np.ndarray | None:
    return None if arr is None else arr[idx]


def _rows(obj, idx):
    """``type(obj)`` with every array field indexed by ``idx`` (an index, slice, list or mask)."""
    idx = np.atleast_1d(np.arange(len(obj))[idx])
    values = {}
    for name in obj.__dataclass_fields__:
        v = getattr(obj, name)
        values[name] = v[idx] if isinstance(v, np.ndarray) else v
    return type(obj)(**values)


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
        return _rows(self, idx)


@dataclass(frozen=True)
class Landmarks:
    """FaceMesh landmarks of N faces.

    Attributes:
        points: ``(N, 468, 3)``; x, y in image pixels, z in pixels towards the viewer
            (``Frame.GL`` depth, relative to the face; same scale as x).
        presence: ``(N,)`` the landmarker's confidence that a face is there.
    """

    points: np.ndarray
    presence: np.ndarray

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, idx) -> "Landmarks":
        return _rows(self, idx)


@dataclass(frozen=True)
class HeadKeypoints:
    """The five head keypoints of N people.

    Attributes:
        points: ``(N, 5, 2)`` x, y in image pixels, COCO order (nose, left eye,
            right eye, left ear, right ear; the person's left). Every point has
            coordinates, also a hidden one (its confidence says so).
        conf: ``(N, 5)`` confidence in [0, 1] that the point is there *and visible*.
        boxes: ``(N, 4)`` face boxes ``[x1, y1, x2, y2]`` (the source's own:
            detector box, landmark extent or keypoint box).
        scores: ``(N,)`` confidence that this is a head.

    >>> kp = HeadKeypoints.empty()
    >>> len(kp), kp.points.shape, kp.conf.shape
    (0, (0, 5, 2), (0, 5))
    """

    points: np.ndarray
    conf: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray

    def __post_init__(self):
        n = len(self.points)
        if np.shape(self.points) != (n, 5, 2) or np.shape(self.conf) != (n, 5):
            raise ValueError(f"points must be (N, 5, 2) and conf (N, 5), got {np.shape(self.points)} and {np.shape(self.conf)}")
        if np.shape(self.boxes) != (n, 4) or np.shape(self.scores) != (n,):
            raise ValueError(f"boxes must be ({n}, 4) and scores ({n},), got {np.shape(self.boxes)} and {np.shape(self.scores)}")

    @staticmethod
    def empty() -> "HeadKeypoints":
        return HeadKeypoints(np.zeros((0, 5, 2)), np.zeros((0, 5)), np.zeros((0, 4)), np.zeros((0,)))

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, idx) -> "HeadKeypoints":
        return _rows(self, idx)

    def left_to_right(self) -> "HeadKeypoints":
        """Sorted by the boxes' left edge (stable ids for a reader, as the pipeline does)."""
        return self[np.argsort(self.boxes[:, 0], kind="stable")]


@dataclass(frozen=True)
class Faces:
    """The heads a pipeline kept in one image, before their pose: what a pose stage reads.

    Which optional fields are filled depends on the stages in front of the pose
    stage: ``mesh`` when a landmarker ran, ``keypoints`` / ``keypoint_conf`` when a
    keypoint source ran, ``detector_points`` when the detector gives them.

    Attributes:
        boxes: ``(N, 4)`` the boxes reported to the user (landmark extent when there
            are landmarks, else the detector's or the keypoint source's box).
        scores: ``(N,)`` confidence that this is a head.
        detection_boxes: ``(N, 4)`` the detector's own boxes (a network without
            landmarks places its crop from these, with its detector-box recipe).
        detector_points: ``(N, 6, 2)`` BlazeFace's points, or ``None``.
        mesh: ``(N, 468, 3)`` FaceMesh landmarks, or ``None``.
        keypoints: ``(N, 5, 2)`` COCO head keypoints, or ``None``.
        keypoint_conf: ``(N, 5)`` their confidences, or ``None``.
        keypoint_source: the keypoint source's name (sigma is calibrated per source), or ``None``.
        crop_boxes: ``(N, 4)`` crop boxes an image network should use as they are (a
            tracker following a head it has no landmarks for), or ``None``.
    """

    boxes: np.ndarray
    scores: np.ndarray
    detection_boxes: np.ndarray
    detector_points: np.ndarray | None = None
    mesh: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    keypoint_conf: np.ndarray | None = None
    keypoint_source: str | None = None
    crop_boxes: np.ndarray | None = None

    @staticmethod
    def empty() -> "Faces":
        return Faces(np.zeros((0, 4)), np.zeros((0,)), np.zeros((0, 4)))

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, idx) -> "Faces":
        return _rows(self, idx)

    def with_keypoints(self, kp: HeadKeypoints, source: str | None) -> "Faces":
        """These faces with the keypoint source's points (same rows, same order)."""
        if len(kp) != len(self):
            raise ValueError(f"a keypoint source gave {len(kp)} rows for {len(self)} faces")
        return replace(self, keypoints=kp.points, keypoint_conf=kp.conf, keypoint_source=source)

    @staticmethod
    def from_keypoints(kp: HeadKeypoints, source: str | None) -> "Faces":
        """Heads found by a keypoint source that is its own detector (the body source)."""
        return Faces(kp.boxes, kp.scores, kp.boxes, keypoints=kp.points, keypoint_conf=kp.conf, keypoint_source=source)


@dataclass(frozen=True)
class Heads:
    """The heads of one image or frame; every field has N rows.

    Attributes:
        boxes: ``(N, 4)`` face boxes ``[x1, y1, x2, y2]`` in pixels.
        scores: ``(N,)`` confidence that this is a face.
        rotations: ``(N, 3, 3)`` head-to-camera rotations in ``Frame.GL``
            (see :mod:`openheadpose.core.rotation`).
        sigma: ``(N, 3)`` per-angle standard deviation in degrees, ordered
            (yaw, pitch, roll), or ``None`` when the pose model gives none.
        mesh: ``(N, 468, 3)`` FaceMesh landmarks (x, y in pixels, z in pixels
            towards the viewer) when the pipeline ran a landmarker, else ``None``.
        keypoints: ``(N, 5, 2)`` the COCO head keypoints a keypoint network read, else ``None``.
        keypoint_conf: ``(N, 5)`` their confidences, else ``None``.
        track_ids: ``(N,)`` int, each head's identity within a stream (never reused in
            it), when a tracker ran; else ``None``.
        raw_rotations: ``(N, 3, 3)`` the pose stage's own estimate for this frame when
            ``rotations`` were smoothed over time; else ``None``.
        angles: the Euler angles the pose stage estimates; the others (RealHePoNet's
            roll) are written as ``null`` with a ``null`` sigma.
        positions: ``(N, 3)`` where each head is, metres, in the camera frame's
            ``Frame.GL`` axes (x right, y up, z towards the viewer: a head in front of the
            camera has z < 0); the face template's origin (the centre of its 68 landmarks).
            A NaN row where the head could not be placed; ``None`` when nothing placed the heads.
            See :mod:`openheadpose.core.placement`.
        position_sigma: ``(N, 3)`` per-axis standard deviation of ``positions``, metres.
        transforms: ``(N, 4, 4)`` head-to-camera transforms ``[[R_cam, t], [0, 1]]``, with
            ``R_cam`` the rotation in the camera's frame (equal to ``rotations`` with
            ``--fov`` or ``--camera``; without them ``rotations`` are relative to the line of
            sight and ``R_cam`` turns them by it).
    """

    boxes: np.ndarray
    scores: np.ndarray
    rotations: np.ndarray
    sigma: np.ndarray | None = None
    mesh: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    keypoint_conf: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    raw_rotations: np.ndarray | None = None
    angles: tuple[str, ...] = ("yaw", "pitch", "roll")
    positions: np.ndarray | None = None
    position_sigma: np.ndarray | None = None
    transforms: np.ndarray | None = None

    @staticmethod
    def empty() -> "Heads":
        """No heads: every array field has 0 rows (``sigma`` too, so code reading it needs no ``None`` case)."""
        return Heads(np.zeros((0, 4)), np.zeros((0,)), np.zeros((0, 3, 3)), sigma=np.zeros((0, 3)))

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, idx) -> "Heads":
        return _rows(self, idx)

    @property
    def euler(self) -> EulerAngles:
        """Yaw, pitch, roll in degrees (AFLW convention), each ``(N,)``."""
        return matrix_to_euler(self.rotations)

    def to_list(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per head (the ``heads`` field of the JSON Lines output)."""
        e = self.euler
        known = [a in self.angles for a in ("yaw", "pitch", "roll")]
        out = []
        for i in range(len(self)):
            angle = {a: round(float(v[i]), 3) if k else None for a, v, k in zip(("yaw", "pitch", "roll"), (e.yaw, e.pitch, e.roll), known)}
            out.append(
                {
                    "box": [round(float(v), 2) for v in self.boxes[i]],
                    "score": round(float(self.scores[i]), 4),
                    **angle,
                    "rotation": [[round(float(v), 6) for v in row] for row in self.rotations[i]],
                    "sigma": None if self.sigma is None else [round(float(v), 3) if k else None for v, k in zip(self.sigma[i], known)],
                    "track_id": None if self.track_ids is None else int(self.track_ids[i]),
                    **self._placement(i),
                }
            )
        return out

    def _placement(self, i: int) -> dict[str, Any]:
        """``position`` (m), ``position_sigma`` (m) and ``transform`` (4x4) of head ``i``; ``null`` where it has none."""
        if self.positions is None or not np.isfinite(self.positions[i]).all():
            return {"position": None, "position_sigma": None, "transform": None}
        sig = None if self.position_sigma is None else [round(float(v), 4) for v in self.position_sigma[i]]
        T = None if self.transforms is None else [[round(float(v), 6) for v in row] for row in self.transforms[i]]
        return {"position": [round(float(v), 4) for v in self.positions[i]], "position_sigma": sig, "transform": T}


@dataclass(frozen=True)
class FrameResult:
    """Heads of one image or video frame, with where it came from and stage timings.

    Attributes:
        source: the file path, ``camera:N`` or ``example:NAME``.
        frame: frame index in a video or stream, 0 for a still image.
        width, height: size of the decoded image in pixels (after EXIF rotation).
        heads: the :class:`Heads` found.
        timings: seconds spent per stage (``detect``, ``landmarks``, ``keypoints``, ``pose``).
        image: the decoded ``(H, W, 3)`` uint8 RGB frame when the producer keeps it
            (:meth:`~openheadpose.inference.pipeline.HeadPoseEstimator.stream` does,
            for drawing); never serialised.
        error: ``"<source>: <reason>"`` when this input could not be decoded or
            processed (then ``heads`` is empty), else ``None``.
        fps: frames per second of a video or camera, when known.
        warning: a notice with no frame behind it (``heads`` empty, ``image`` None):
            a video that ended before the frame count its header promises, or the count of
            frames a live camera source dropped.
        dropped: live sources: frames skipped just before this one to keep up with the camera.
    """

    source: str
    frame: int
    width: int
    height: int
    heads: Heads
    timings: dict[str, float] = field(default_factory=dict)
    image: np.ndarray | None = field(default=None, repr=False, compare=False)
    error: str | None = None
    fps: float | None = None
    warning: str | None = None
    dropped: int = 0

    @property
    def ok(self) -> bool:
        """A processed frame (not an error, not a frame-less warning)."""
        return self.error is None and self.warning is None

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
