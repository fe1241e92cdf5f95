"""A head detector from body keypoints: every person MediaPipe Pose finds gets a head box.

Face detectors need a face. RealHePoNet's seed system (``headpose_final``) runs a
*head* detector instead, so that people seen from the side or from behind still
count. Here the heads come from MediaPipe Pose (BlazePose), which
:class:`~openheadpose.inference.keypoint_sources.MediaPipeBody` already runs over the
whole image and its tiles to find several people: each person's nose, eyes, ears and
shoulders place one box.

The box is a *face-detector box* (where BlazeFace would put the face of that head,
about brow to chin), not a box around the hair: then every crop recipe meant for
a face detector's box (``square-1.5`` for RealHePoNet) widens it the same way, and
where a face is visible the box agrees with the face pipeline's. From behind it
is the same region of the head, seen from the back.

* Head points: BlazePose places the nose, eyes and ears of every person, visible or
  not (from behind they are its guesses, which follow the skull). The box is a square
  of ``scale`` x the largest distance between two of the five points (ear to ear on
  a frontal or back view, nose to ear on a profile), centred on their extent moved
  down by ``shift_y`` of the side (:func:`~openheadpose.inference.keypoint_sources.keypoint_boxes`).
* Shoulders: when the head points collapse (their spread is under
  ``min_spread`` x the shoulder width, e.g. a head bent far forward) the square
  sits ``shoulder_up`` x the shoulder width above the shoulders' middle, with a
  side of ``shoulder_scale`` x the shoulder width.
* Score: the person detector's score x the landmark model's person presence (as
  the ``body`` keypoint source). BlazePose's per-point visibility is no help: it is
  >= 0.97 for the head points of real people and of false ones alike (measured on
  ``group-t1.jpg``, ``multi_face.jpg`` and ``free-mountain-vector-01.jpg``).

``scale``, ``shift_y``, ``shoulder_*`` were fitted to BlazeFace's boxes on video frames of
``../shared/media`` (``benchmarks/fit_head_boxes.py``: ``WolfgangLanger_Pexels.mp4``,
``single_face.mp4``, ``face_noface.mov``); the agreement with the face pipeline is
measured on the photos (``benchmarks/eval_realheponet.py``). The fit (77 frames, every 8th,
``python benchmarks/fit_head_boxes.py --step 8``): scale 1.331, shift_y 0.157,
shoulder_scale 0.571, shoulder_up 0.526; on those frames the boxes then overlap
BlazeFace's by a median IoU of 0.85 (least 0.68).

Limits, measured by ``benchmarks/eval_realheponet.py`` (docs/RESULTS.md): BlazePose's
person detector is itself trained to key on the face (its anchor box is a face box), so
it is no general person detector: with every face of three photos painted over with
the person's own hair (a stand-in for people turned away; ../shared/media has no real
back view) it found 3 of 12 heads, BlazeFace 1. On ``group-t1.jpg`` it finds 5 of 6 people
(the sixth, cut by the top edge, scores 0.44); on portraits with little body in view
(AFLW2000-dev) 854 of 983 faces, BlazeFace 936. It placed 9 false heads in 95 frames of
``no_face.mp4`` (on lettering), none on ``free-mountain-vector-01.jpg``.

Needs the BlazePose model files of ``mediapipe==0.10.21`` (``pip install "openheadpose[body]"``,
Python 3.10-3.12); without them building the detector raises
:class:`~openheadpose.inference.backends.litert.MissingBackendError` saying so.

Dimension legend: P people, N heads.
"""

from __future__ import annotations

import numpy as np

from openheadpose.core.geometry import nms_indices
from openheadpose.inference.backends.litert import MissingBackendError
from openheadpose.inference.detectors import DETECTORS
from openheadpose.inference.keypoint_sources import (
    BODY_HEAD_LANDMARKS,
    MediaPipeBody,
    _alignment_roi,
    keypoint_boxes,
)
from openheadpose.inference.results import Detections

#: Minimum head score (person detection x presence) the pipeline keeps when no one
#: passes ``--min-score``: the ``body`` keypoint source's threshold (its false "people"
#: on ``group-t1.jpg``'s table score <= 0.38, real people >= 0.7).
HEAD_MIN_SCORE = 0.5

#: BlazePose landmark indices of the shoulders (the person's left, right) and of the mouth corners.
SHOULDERS = np.array([11, 12])
MOUTH = np.array([9, 10])

#: BlazeFace's keypoint order (right eye, left eye, nose, mouth centre, right ear, left ear)
#: from (nose, left eye, right eye, left ear, right ear) of :data:`BODY_HEAD_LANDMARKS`, then the mouth centre.
_TO_BLAZEFACE = np.array([2, 1, 0, 5, 4, 3])


def head_boxes(
    landmarks: np.ndarray, scale: float, shift_y: float, shoulder_scale: float, shoulder_up: float, min_spread: float
) -> tuple[np.ndarray, np.ndarray]:
    """Face-sized head boxes ``(P, 4)`` from BlazePose landmarks ``(P, >= 13, 2)``, and whether each came from the shoulders ``(P,)``.

    From the five head points (:func:`~openheadpose.inference.keypoint_sources.keypoint_boxes`
    with ``scale`` and ``shift_y``), unless their spread is under ``min_spread`` x the
    shoulder width: then a square of ``shoulder_scale`` x that width whose centre is
    ``shoulder_up`` x that width above the shoulders' middle (image up).
    """
    lm = np.asarray(landmarks, np.float64)
    lm = lm.reshape((-1,) + lm.shape[-2:])
    head = lm[:, BODY_HEAD_LANDMARKS]
    boxes = keypoint_boxes(head, scale, shift_y)
    spread = np.linalg.norm(head[:, :, None] - head[:, None, :], axis=-1).max(axis=(1, 2)) if len(lm) else np.zeros(0)
    sh = lm[:, SHOULDERS]
    width = np.linalg.norm(sh[:, 0] - sh[:, 1], axis=-1)
    collapsed = spread < min_spread * width
    if collapsed.any():
        mid = sh[collapsed].mean(1)
        w = width[collapsed]
        centre = mid - np.stack([np.zeros_like(w), shoulder_up * w], 1)
        half = (shoulder_scale * w / 2)[:, None]
        boxes[collapsed] = np.concatenate([centre - half, centre + half], 1)
    return boxes, collapsed


class HeadDetector:
    """Head boxes (face-box sized) of every person MediaPipe Pose finds.

    Args:
        min_score: drop heads scoring under this (the pipeline's ``min_score`` filters again).
        scale, shift_y: the face box from the five head points (see the module docstring).
        shoulder_scale, shoulder_up: the box from the shoulders when the head points collapse.
        min_spread: head points spread under this x the shoulder width count as collapsed.
        tiles, min_tile, max_people: passed to :class:`MediaPipeBody` (how people are found).

    Returns (``__call__``): :class:`~openheadpose.inference.results.Detections` with
    ``(N, 4)`` boxes, ``(N,)`` scores and BlazeFace-ordered keypoints ``(N, 6, 2)``
    (right eye, left eye, nose, mouth centre, right ear, left ear; hidden ones are
    BlazePose's estimates).
    """

    name = "heads"

    def __init__(
        self,
        min_score: float = 0.3,
        scale: float = 1.331,
        shift_y: float = 0.157,
        shoulder_scale: float = 0.571,
        shoulder_up: float = 0.526,
        min_spread: float = 0.2,
        tiles: tuple[float, ...] = (0.5,),
        min_tile: int = 320,
        max_people: int = 30,
    ):
        try:
            self.body = MediaPipeBody(min_score=min_score, tiles=tiles, min_tile=min_tile, max_people=max_people)
        except MissingBackendError as exc:
            raise MissingBackendError(f"the heads detector finds people with MediaPipe Pose: {exc}; or choose a face detector (--detector blazeface)") from None
        self.min_score = min_score
        self.scale, self.shift_y = scale, shift_y
        self.shoulder_scale, self.shoulder_up, self.min_spread = shoulder_scale, shoulder_up, min_spread

    def people(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every person's 39 BlazePose landmarks ``(P, 39, 2)`` (pixel centres at integers) and scores ``(P,)``."""
        det = self.body.candidates(image)
        lms, scores = [], []
        for i in range(len(det)):
            lm, _vis, presence = self.body.landmarks(image, _alignment_roi(det.keypoints[i, 0], det.keypoints[i, 1]))
            score = float(det.scores[i]) * presence
            if presence < self.body.min_presence or score < self.min_score:
                continue
            lms.append(lm - 0.5)  # continuous -> pixel centres at integers
            scores.append(score)
        if not lms:
            return np.zeros((0, 39, 2)), np.zeros(0)
        return np.stack(lms), np.array(scores)

    def boxes(self, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Face boxes ``(P, 4)`` from landmarks ``(P, 39, 2)`` (:func:`head_boxes` with this detector's constants)."""
        return head_boxes(landmarks, self.scale, self.shift_y, self.shoulder_scale, self.shoulder_up, self.min_spread)

    def __call__(self, image: np.ndarray) -> Detections:
        lm, scores = self.people(image)
        if len(lm) == 0:
            return Detections.empty(6)
        boxes, _ = self.boxes(lm)
        head = lm[:, BODY_HEAD_LANDMARKS]
        mouth = lm[:, MOUTH].mean(1, keepdims=True)
        kps = np.concatenate([head, mouth], 1)[:, _TO_BLAZEFACE]
        keep = nms_indices(boxes, scores, 0.5)
        return Detections(boxes[keep], scores[keep], kps[keep])


@DETECTORS.register("heads", help="head boxes from MediaPipe Pose body keypoints: people seen from the side or behind count (needs mediapipe)")
def _make_heads(**kw):
    return HeadDetector(**kw)
