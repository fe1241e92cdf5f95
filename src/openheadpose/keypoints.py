"""Keypoint sources: the five COCO head keypoints (nose, eyes, ears), each with a confidence.

The keypoint pose networks (HHP-Net, the heatmap CNN) never see pixels; they read
the nose, eyes and ears that some other model found. A *keypoint source* is a
callable ``source(image_rgb) -> HeadKeypoints`` taking an ``(H, W, 3)`` uint8 RGB
image. Three are registered in :data:`KEYPOINT_SOURCES`:

``pose``
    MediaPipe Pose (BlazePose: a person detector, then 33 body landmarks per
    person), run with LiteRT on the ``.tflite`` files of the ``mediapipe`` wheel.
    It reads the whole body, so it is meant for people whose faces are too
    small or too turned away for a face detector (``../shared/media`` has no
    one seen from behind to check that on); on close, crowded faces its head
    points are coarser than the face models' (see :class:`MediaPipePose`).
    Confidence: each landmark's *visibility* times the self-occlusion rule.
``blazeface``
    The face detector's own six keypoints (:mod:`openheadpose.detectors`); the
    cheapest source. Confidence is the detection score, lowered by
    :class:`OcclusionRule` for the ear (and eye) on the far side of a
    turned face, which BlazeFace always places, visible or not.
``facemesh``
    MediaPipe FaceMesh's 468 landmarks on the detector's faces: the nose tip,
    the mean of each eye's contour, and the face-oval points at the ears; the
    same occlusion rule as ``blazeface``.

Keypoint order is :data:`~openheadpose.keypoint_input.KEYPOINTS` (COCO): nose,
left eye, right eye, left ear, right ear, where "left" is the **person's** left
(on a face looking at the camera the left eye has the larger image x).
``tests/test_keypoints.py`` checks this on real photos for every source.

Coordinates are image pixels, x right and y down, pixel centres at integers
(``blazeface`` and ``facemesh`` pass on their models' points as
:mod:`openheadpose.detectors` and :mod:`openheadpose.landmarks` report them).

Dimension legend: N heads, K = 5 keypoints.

>>> kp = HeadKeypoints.empty()
>>> len(kp), kp.points.shape, kp.conf.shape
(0, (0, 5, 2), (0, 5))
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import cv2
import numpy as np

from ._tflite import TFLiteModel, mediapipe_model
from .detectors import _sigmoid, _ssd_anchors, nms_indices, weighted_nms
from .keypoint_input import KEYPOINTS
from .registry import Registry
from .results import Detections, Estimator, Heads

KEYPOINT_SOURCES: Registry = Registry("keypoint source")

NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR = range(5)
assert KEYPOINTS == ("nose", "left_eye", "right_eye", "left_ear", "right_ear")


# --------------------------------------------------------------------------- container
@dataclass(frozen=True)
class HeadKeypoints:
    """The five head keypoints of N people.

    Attributes:
        points: ``(N, 5, 2)`` x, y in image pixels, in :data:`KEYPOINTS` order
            (nose, left eye, right eye, left ear, right ear; the person's left).
            Every point has coordinates, also a hidden one (its confidence says so).
        conf: ``(N, 5)`` confidence in [0, 1] that the point is there *and visible*.
        boxes: ``(N, 4)`` face boxes ``[x1, y1, x2, y2]`` (the source's own:
            detector box, landmark extent or :func:`keypoint_boxes`).
        scores: ``(N,)`` confidence that this is a head.
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
        idx = np.atleast_1d(np.arange(len(self))[idx])
        return HeadKeypoints(self.points[idx], self.conf[idx], self.boxes[idx], self.scores[idx])

    def left_to_right(self) -> "HeadKeypoints":
        """Sorted by the boxes' left edge (stable ids for a reader, as the pipelines do)."""
        return self[np.argsort(self.boxes[:, 0], kind="stable")]


def keypoint_boxes(points: np.ndarray, scale: float = 1.2, shift_y: float = 0.1) -> np.ndarray:
    """Square face boxes ``(N, 4)`` around head keypoints ``(N, 5, 2)``.

    The side is ``scale`` times the largest distance between two of the five
    points (ear to ear on a frontal face, ~14 cm; nose to ear on a profile,
    ~10 cm), so about a face's height; the centre is the middle of the points'
    extent moved down by ``shift_y`` of the side (the points lie between the
    eye line and the nose tip, a face box's centre is lower). Every point is
    used, hidden ones too: their positions are still the model's estimates.
    """
    p = np.asarray(points, np.float64).reshape(-1, 5, 2)
    if len(p) == 0:
        return np.zeros((0, 4))
    spread = np.linalg.norm(p[:, :, None] - p[:, None, :], axis=-1).max(axis=(1, 2))
    side = np.maximum(scale * spread, 1.0)
    c = (p.min(1) + p.max(1)) / 2.0
    c[:, 1] += shift_y * side
    return np.concatenate([c - side[:, None] / 2, c + side[:, None] / 2], axis=1)


# --------------------------------------------------------------------------- occlusion rule
@dataclass(frozen=True)
class OcclusionRule:
    """How visible the ears and eyes of a turned face are, from its 2D keypoints.

    A face detector or landmarker places every point, hidden or not: on a face
    turned to its left, BlazeFace's left-ear tragion and FaceMesh's left
    face-oval point slide onto the visible cheek. What tells how far the face is
    turned is the nose: with the eye axis ``u`` (right eye -> left eye) and the
    eyes' midpoint ``m``,

        ``t = <nose - m, u> / |left_eye - right_eye|``

    is 0 for a frontal face and grows like ``k * tan(yaw)`` as the face turns to
    its left (the nose moves towards the left eye); it is negative when the
    face turns to its right. (Geometry predicts ``k ~ 0.47`` for a nose 3 cm in
    front of eyes 6.4 cm apart; on aflw-yaw we measured k = 0.49 with FaceMesh
    points, 0.82 with BlazeFace's, and the sign of ``t`` agrees with the label's
    yaw on 97% of the faces turned by more than 10 deg.) Then

        ``left ear = sigmoid((ear_t0 - t) / ear_tau)``, ``right ear = sigmoid((ear_t0 + t) / ear_tau)``

    and the same for the eyes with ``eye_t0``, ``eye_tau``: the far side fades
    as the face turns, the near side stays near 1, and a frontal face gets
    ``sigmoid(t0 / tau)`` on both sides. The nose is always visible.

    ``t0`` and ``tau`` were fitted (maximum likelihood) to AFLW's visibility
    labels of the ear lobes and eyes (a hidden point has no coordinates) on
    2467 ``aflw-yaw`` crops, a training set (never an evaluation set), keeping
    only faces whose near-side ear is labelled visible so that hair over both
    ears does not count as self-occlusion. On those faces the far ear is
    labelled visible on 72% of frontal faces (``|t| < 0.05``), 30-45% at
    ``|t|`` 0.05-0.15 (yaw ~ 6-17 deg), under 7% beyond ``|t|`` 0.15; the far eye
    from ``|t|`` ~ 0.5 (yaw ~ 45 deg). Thresholded at 0.5, the fitted rules
    give the far ear's label on 91% of those faces (87% of all), the far eye's
    on 90% (88%), for BlazeFace and FaceMesh points alike.

    Attributes:
        ear_t0, ear_tau: where (in ``t``) the far ear is half visible, and how fast it fades.
        eye_t0, eye_tau: the same for the far eye.
    """

    ear_t0: float
    ear_tau: float
    eye_t0: float
    eye_tau: float

    def turn(self, points: np.ndarray) -> np.ndarray:
        """``t`` ``(N,)`` of keypoints ``(N, 5, 2)`` (COCO order): > 0 turned to the person's left."""
        p = np.asarray(points, np.float64).reshape(-1, 5, 2)
        axis = p[:, LEFT_EYE] - p[:, RIGHT_EYE]
        d = np.linalg.norm(axis, axis=-1)
        u = axis / np.maximum(d, 1e-9)[:, None]
        m = (p[:, LEFT_EYE] + p[:, RIGHT_EYE]) / 2.0
        return np.einsum("nk,nk->n", p[:, NOSE] - m, u) / np.maximum(d, 1e-9)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Visibility ``(N, 5)`` in (0, 1] of each keypoint ``(N, 5, 2)``, COCO order."""
        t = self.turn(points)
        vis = np.ones((len(t), 5))
        vis[:, LEFT_EAR] = _sigmoid((self.ear_t0 - t) / self.ear_tau)
        vis[:, RIGHT_EAR] = _sigmoid((self.ear_t0 + t) / self.ear_tau)
        vis[:, LEFT_EYE] = _sigmoid((self.eye_t0 - t) / self.eye_tau)
        vis[:, RIGHT_EYE] = _sigmoid((self.eye_t0 + t) / self.eye_tau)
        return vis


#: Fitted on BlazeFace (short range) keypoints of aflw-yaw crops (see :class:`OcclusionRule`):
#: a frontal face's ears get 0.80, the far ear 0.5 at t = 0.067 (yaw ~ 5 deg by BlazeFace's
#: k = 0.82) and 0.03 at t = 0.23; the far eye is half visible at t = 0.76 (yaw ~ 43 deg).
BLAZEFACE_OCCLUSION = OcclusionRule(ear_t0=0.067, ear_tau=0.048, eye_t0=0.755, eye_tau=0.159)

#: Fitted on FaceMesh keypoints (:func:`facemesh_head_keypoints`) of the same crops: ears 0.82
#: when frontal, the far ear half visible at t = 0.063 (yaw ~ 7 deg by k = 0.49), the far eye
#: at t = 0.62 (yaw ~ 52 deg).
FACEMESH_OCCLUSION = OcclusionRule(ear_t0=0.063, ear_tau=0.042, eye_t0=0.619, eye_tau=0.120)

#: For MediaPipe Pose's head points: FaceMesh's rule. BlazePose's own visibility ignores
#: self-occlusion (>= 0.92 for the far ear of a face turned ~50 deg in ``45-m7-di-ph.jpg``,
#: 0.98 on average for far ears that AFLW marks hidden), so it is multiplied by this rule.
#: Pose cannot be fitted on aflw-yaw's face crops (without a body its head points do not
#: follow the yaw); on 13 people of ../shared/media its ``t`` is 0.6 x FaceMesh's (r = 0.81),
#: so this hides a far ear somewhat later than FaceMesh's points would.
POSE_OCCLUSION = FACEMESH_OCCLUSION


# --------------------------------------------------------------------------- MediaPipe Pose
#: BlazePose landmark indices of the COCO head keypoints (MediaPipe's "left" is the person's left).
POSE_HEAD_LANDMARKS = np.array([0, 2, 5, 7, 8])  # nose, left eye, right eye, left ear, right ear


@dataclass(frozen=True)
class _RotatedSquare:
    """A square region of the image, turned by ``angle`` (radians, clockwise on screen, y down).

    Coordinates here are *continuous*: pixel ``j`` covers ``[j, j + 1)``, as
    MediaPipe's normalised coordinates times the image size.
    """

    centre: np.ndarray  # (2,)
    size: float
    angle: float

    @property
    def axes(self) -> np.ndarray:
        """``(2, 2)``: columns are the crop's x and y axes in image coordinates."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        return np.array([[c, -s], [s, c]])

    def crop_to_image(self, u: np.ndarray, side: int) -> np.ndarray:
        """Continuous crop coordinates ``(..., 2)`` on a ``side``-pixel crop -> continuous image coordinates."""
        A = self.axes * (self.size / side)
        return self.centre + (np.asarray(u, np.float64) - side / 2.0) @ A.T

    def warp(self, image: np.ndarray, side: int) -> np.ndarray:
        """The ``side x side`` crop (bilinear, black outside the image)."""
        A = self.axes * (self.size / side)
        # crop pixel index i has continuous centre i + 0.5; image index = continuous - 0.5
        t = self.centre - A @ np.full(2, side / 2.0 - 0.5) - 0.5
        M = np.concatenate([A, t[:, None]], axis=1)
        return cv2.warpAffine(image, M, (side, side), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)


def _alignment_roi(centre: np.ndarray, scale_point: np.ndarray, scale: float = 1.25) -> _RotatedSquare:
    """MediaPipe's ``AlignmentPointsRectsCalculator`` + ``RectTransformationCalculator``.

    A square centred on ``centre`` (the hips' middle), side twice the distance to
    ``scale_point`` times ``scale`` (1.25 in ``pose_detection_to_roi.pbtxt`` and
    ``pose_landmarks_to_roi.pbtxt``), turned so ``scale_point`` is straight up:
    ``angle = 90deg - atan2(-(y1 - y0), x1 - x0)``.
    """
    d = np.asarray(scale_point, np.float64) - np.asarray(centre, np.float64)
    size = 2.0 * float(np.hypot(*d)) * scale
    angle = np.pi / 2 - np.arctan2(-d[1], d[0])
    return _RotatedSquare(np.asarray(centre, np.float64), max(size, 1.0), float(angle))


class MediaPipePose:
    """MediaPipe Pose (BlazePose GHUM 3D, "full") for every person in an image, without MediaPipe's runtime.

    Stages, as in MediaPipe's ``pose_detection_cpu`` / ``pose_landmark_by_roi_cpu``
    graphs (``google-ai-edge/mediapipe``, ``mediapipe/modules/pose_*``), but for
    several people (MediaPipe follows only the first):

    1. ``pose_detection.tflite``: the image letterboxed to 224 x 224, values in
       [-1, 1]; 2254 SSD anchors (strides 8, 16, 32, 32, 32; two anchors a cell
       and layer; fixed size; offset 0.5); each row holds a face box (whose size
       is a constant) and four keypoints: the hips' middle, a point whose
       distance sets the body's size and whose direction its rotation, then the
       same pair for the upper body (shoulders' middle and its scale point).
       Scores are sigmoids (logits clipped to +-100), kept from 0.2 (the
       graph's threshold), then weighted NMS at IoU 0.3.
    2. Tiles: one 224-pixel look at a group photo misses people (on
       ``group-t1.jpg`` it finds 3 of 6). The detector also runs on square tiles
       of ``tiles`` times the image's short side (half-tile stride) when they are
       at least ``min_tile`` pixels; a candidate is dropped when the square
       around its shoulders' middle (side: the upper-body scale distance)
       overlaps a better one's by IoU > 0.5, before any landmark model runs.
    3. For each candidate, the region of interest of :func:`_alignment_roi`
       (hips' middle, scale point, x1.25), cut rotated to 256 x 256, values in
       [0, 1], goes through ``pose_landmark_full.tflite``: 39 landmarks (33 body
       points + 6 auxiliary) of (x, y, z, visibility, presence) in crop pixels,
       a person-presence probability, and 64 x 64 heatmaps. As MediaPipe does,
       x and y are refined to the heatmap's weighted mean over a 7 x 7 window
       when its peak (sigmoid) is >= 0.5 (on our photos this cuts the eyes'
       distance to FaceMesh's eye centres by a quarter to a half); visibility is the sigmoid of its logit.
       ``passes=2`` repeats this from the region the auxiliary landmarks 33 and
       34 give (what MediaPipe does on the next video frame; no better on our
       photos, so off by default, as in MediaPipe's still-image mode).
    4. The score is detection score x presence; heads scoring under
       ``min_score`` are dropped (the table of ``group-t1.jpg`` yields "people"
       with presence up to 0.9 but detection scores under 0.55, products <= 0.38;
       the real people score >= 0.7), then heads whose boxes overlap by IoU > 0.5
       are merged (the better score wins).

    The head keypoints are landmarks 0, 2, 5, 7, 8 (nose, left eye, right
    eye, left ear, right ear; MediaPipe's "left" is the person's left) with
    confidence = visibility x :data:`POSE_OCCLUSION` (BlazePose's visibility
    alone calls a hidden far ear visible); the box is :func:`keypoint_boxes`.

    Accuracy: the face covers a few percent of a full-body region, so on a
    portrait the head points are coarse (on 9 faces of ../shared/media, nose and
    eyes lie 0.1-0.2 of the eye distance from FaceMesh's on average). The
    landmark model reads one person per region: in a tight group
    (``multi_face.jpg``) two of its four heads get points spread between
    neighbouring faces. Prefer ``blazeface`` / ``facemesh`` where faces are visible.

    Args:
        min_score: keep heads whose score (detection x presence) is at least this.
        min_detection: person-detector threshold.
        min_presence: person-presence threshold of the landmark model (0.5 in MediaPipe).
        passes: 1 (from the detection) or 2 (then from the first pass's landmarks).
        tiles: tile sides as fractions of the image's short side; ``()`` for the whole image only.
        min_tile: smallest tile side in pixels (smaller tiles are skipped).
        max_people: at most this many candidates go through the landmark model (best first).
        occlusion: the self-occlusion rule multiplied into the visibility (``None``: visibility alone).
    """

    detector_side = 224
    landmark_side = 256
    heatmap_kernel = 7
    #: The :data:`KEYPOINT_SOURCES` name (keypoint networks calibrate sigma per source).
    name = "pose"

    def __init__(
        self,
        min_score: float = 0.5,
        min_detection: float = 0.2,
        min_presence: float = 0.5,
        passes: int = 1,
        tiles: tuple[float, ...] = (0.5,),
        min_tile: int = 320,
        max_people: int = 30,
        occlusion: OcclusionRule | None = POSE_OCCLUSION,
    ):
        if passes not in (1, 2):
            raise ValueError(f"passes must be 1 or 2, got {passes}")
        self.detector = TFLiteModel(mediapipe_model("pose_detection/pose_detection.tflite"))
        self.landmarker = TFLiteModel(mediapipe_model("pose_landmark/pose_landmark_full.tflite"))
        self.anchors = _ssd_anchors(self.detector_side, (8, 16, 32, 32, 32))
        self.min_score = min_score
        self.min_detection = min_detection
        self.min_presence = min_presence
        self.passes = passes
        self.tiles = tuple(tiles)
        self.min_tile = min_tile
        self.max_people = max_people
        self.occlusion = occlusion

    # ---- stage 1
    def detect(self, image: np.ndarray) -> Detections:
        """People in one 224-pixel look: face boxes ``(P, 4)``, scores, and the four alignment keypoints ``(P, 4, 2)``.

        Coordinates are continuous (pixel ``j`` spans ``[j, j + 1)``).
        """
        h, w = image.shape[:2]
        s = self.detector_side
        scale = s / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        canvas = np.zeros((s, s, 3), np.uint8)
        ox, oy = (s - nw) // 2, (s - nh) // 2
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        canvas[oy : oy + nh, ox : ox + nw] = cv2.resize(image, (nw, nh), interpolation=interp)
        reg, cls = self.detector(canvas.astype(np.float32)[None] / 127.5 - 1.0)
        scores = _sigmoid(np.clip(cls[0, :, 0], -100.0, 100.0))
        keep = scores >= self.min_detection
        if not keep.any():
            return Detections.empty(4)
        reg, scores, anc = reg[0][keep].astype(np.float64), scores[keep], self.anchors[keep]
        centre = reg[:, :2] / s + anc
        half = reg[:, 2:4] / s / 2.0
        boxes = np.concatenate([centre - half, centre + half], axis=1) * s
        kps = (reg[:, 4:12].reshape(-1, 4, 2) / s + anc[:, None, :]) * s
        # letterboxed square -> image (each axis with its own resize factor)
        off, f = np.array([ox, oy], np.float64), np.array([nw / w, nh / h])
        boxes = ((boxes.reshape(-1, 2, 2) - off) / f).reshape(-1, 4)
        return weighted_nms(Detections(boxes, scores, (kps - off) / f), iou_threshold=0.3)

    def candidates(self, image: np.ndarray) -> Detections:
        """People from the whole image and the tiles, one candidate per person (best first)."""
        h, w = image.shape[:2]
        dets = [self.detect(image)]
        for frac in self.tiles:
            t = int(round(frac * min(h, w)))
            if t < self.min_tile or t >= max(h, w):
                continue
            for y0 in _tile_starts(h, t):
                for x0 in _tile_starts(w, t):
                    d = self.detect(image[y0 : y0 + t, x0 : x0 + t])
                    if len(d):
                        off = np.array([x0, y0], np.float64)
                        dets.append(Detections(d.boxes + np.tile(off, 2), d.scores, d.keypoints + off))
        dets = [d for d in dets if len(d)]
        if not dets:
            return Detections.empty(4)
        det = Detections(np.concatenate([d.boxes for d in dets]), np.concatenate([d.scores for d in dets]), np.concatenate([d.keypoints for d in dets]))
        # The same person seen in several tiles: compare upper bodies (the face box's size is a constant).
        kp = det.keypoints
        side = np.linalg.norm(kp[:, 3] - kp[:, 2], axis=1)[:, None]
        upper = np.concatenate([kp[:, 2] - side / 2, kp[:, 2] + side / 2], axis=1)
        return det[nms_indices(upper, det.scores, 0.5)[: self.max_people]]

    # ---- stage 3
    def landmarks(self, image: np.ndarray, roi: _RotatedSquare) -> tuple[np.ndarray, np.ndarray, float]:
        """Landmarks ``(39, 2)`` (continuous image coordinates), visibility ``(39,)`` and presence of one region."""
        side = self.landmark_side
        x = roi.warp(image, side).astype(np.float32)[None] / 255.0
        raw, flag, _segmentation, heatmap, _world = self.landmarker(x)
        lm = raw.reshape(-1, 5).astype(np.float64)  # (39, x/y/z/visibility/presence), crop pixels
        uv = self._refine(lm[:, :2] / side, heatmap[0]) * side
        return roi.crop_to_image(uv, side), _sigmoid(lm[:, 3]), float(np.ravel(flag)[0])

    def _refine(self, uv: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
        """MediaPipe's ``RefineLandmarksFromHeatmapCalculator`` (kernel 7, min confidence 0.5); ``uv`` normalised."""
        hh, hw, _ = heatmap.shape
        out = uv.copy()
        r = (self.heatmap_kernel - 1) // 2
        for k in range(len(uv)):
            col, row = int(uv[k, 0] * hw), int(uv[k, 1] * hh)
            if not (0 <= col < hw and 0 <= row < hh):
                continue
            r0, r1, c0, c1 = max(0, row - r), min(hh, row + r + 1), max(0, col - r), min(hw, col + r + 1)
            conf = _sigmoid(heatmap[r0:r1, c0:c1, k])
            total = conf.sum()
            if conf.max() >= 0.5 and total > 0:
                rows, cols = np.mgrid[r0:r1, c0:c1]
                # MediaPipe maps heatmap cell i to i / size, not to its centre (i + 0.5) / size;
                # on our photos the centre gives 2-3x larger errors against FaceMesh, so as MediaPipe.
                out[k] = [(conf * cols).sum() / total / hw, (conf * rows).sum() / total / hh]
        return out

    def __call__(self, image: np.ndarray) -> HeadKeypoints:
        det = self.candidates(image)
        pts, conf, scores = [], [], []
        for i in range(len(det)):
            lm, vis, presence = self.landmarks(image, _alignment_roi(det.keypoints[i, 0], det.keypoints[i, 1]))
            if self.passes == 2 and presence >= self.min_presence:
                lm2, vis2, presence2 = self.landmarks(image, _alignment_roi(lm[33], lm[34]))
                if presence2 >= self.min_presence:
                    lm, vis, presence = lm2, vis2, presence2
            score = float(det.scores[i]) * presence
            if presence < self.min_presence or score < self.min_score:
                continue
            pts.append(lm[POSE_HEAD_LANDMARKS] - 0.5)  # continuous -> pixel centres at integers
            conf.append(vis[POSE_HEAD_LANDMARKS])
            scores.append(score)
        if not pts:
            return HeadKeypoints.empty()
        points, scores_a, conf_a = np.stack(pts), np.array(scores), np.stack(conf)
        if self.occlusion is not None:
            conf_a = conf_a * self.occlusion(points)
        boxes = keypoint_boxes(points)
        keep = nms_indices(boxes, scores_a, 0.5)
        return HeadKeypoints(points[keep], conf_a[keep], boxes[keep], scores_a[keep])


def _tile_starts(length: int, tile: int) -> list[int]:
    """Tile origins with a half-tile stride; the last tile ends at the border."""
    step = max(1, tile // 2)
    starts = list(range(0, max(length - tile, 0) + 1, step))
    if starts[-1] + tile < length:
        if length - tile - starts[-1] > step // 4:
            starts.append(length - tile)
        else:  # nearly the same tile: move it instead
            starts[-1] = length - tile
    return starts


# --------------------------------------------------------------------------- face-detector sources
def _make_detector(detector):
    from .detectors import DETECTORS
    from .pipeline import default_detector

    detector = default_detector() if detector is None else detector
    name = detector if isinstance(detector, str) else type(detector).__name__
    return (DETECTORS.create(detector) if isinstance(detector, str) else detector), name


#: BlazeFace keypoint rows (right eye, left eye, nose tip, mouth centre, right ear
#: tragion, left ear tragion; the person's right/left) in COCO order.
BLAZEFACE_TO_COCO = np.array([2, 1, 0, 5, 4])


class BlazeFaceKeypoints:
    """The face detector's keypoints: BlazeFace's nose tip, eyes and ear tragions in COCO order.

    BlazeFace's rows are right eye, left eye, nose tip, mouth centre, right ear
    tragion, left ear tragion (the person's right and left), so COCO's nose,
    left eye, right eye, left ear, right ear are rows 2, 1, 0, 5, 4
    (:data:`BLAZEFACE_TO_COCO`). Each keypoint's confidence is the detection
    score times :data:`BLAZEFACE_OCCLUSION`'s visibility (the far ear of a
    turned face is hidden, though BlazeFace still places it). The box is the
    detector's.

    Args:
        detector: a ``DETECTORS`` name or callable giving BlazeFace's six keypoints
            (default: the pipeline's, BlazeFace over the image and tiles).
        min_score: keep detections scoring at least this (default
            :data:`~openheadpose.predictors.MIN_DETECTION_SCORE`: no landmarker confirms the face).
        max_detect_side: images larger than this are detected on a downscaled copy.
        occlusion: the visibility rule.
    """

    #: The :data:`KEYPOINT_SOURCES` name (keypoint networks calibrate sigma per source).
    name = "blazeface"

    def __init__(self, detector=None, min_score: float | None = None, max_detect_side: int = 1920, occlusion: OcclusionRule = BLAZEFACE_OCCLUSION):
        from .predictors import MIN_DETECTION_SCORE

        self.detector, self.detector_name = _make_detector(detector)
        self.min_score = MIN_DETECTION_SCORE if min_score is None else min_score
        self.max_detect_side = max_detect_side
        self.occlusion = occlusion

    def __call__(self, image: np.ndarray) -> HeadKeypoints:
        from .pipeline import detect_scaled

        det = detect_scaled(self.detector, image, self.max_detect_side)
        if det.keypoints is None or det.keypoints.shape[1:] != (6, 2):
            raise ValueError(f"the blazeface keypoint source needs a detector with BlazeFace's six keypoints; {self.detector_name!r} gives none")
        keep = np.flatnonzero(det.scores >= self.min_score)
        if len(keep) == 0:
            return HeadKeypoints.empty()
        points = det.keypoints[keep][:, BLAZEFACE_TO_COCO].astype(np.float64)
        scores = det.scores[keep].astype(np.float64)
        conf = scores[:, None] * self.occlusion(points)
        return HeadKeypoints(points, conf, det.boxes[keep].astype(np.float64), scores)


#: FaceMesh indices. Nose tip (pronasale): 1. Eye contours (16 points each; the
#: person's left eye is MediaPipe's LEFT_EYE, around 263 / 362). Ears: the
#: face-oval points at the tragion's height, 454 (person's left) and 234 (right).
FACEMESH_NOSE = 1
FACEMESH_LEFT_EYE = np.array([263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466])
FACEMESH_RIGHT_EYE = np.array([33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246])
FACEMESH_LEFT_EAR, FACEMESH_RIGHT_EAR = 454, 234


def facemesh_head_keypoints(points: np.ndarray) -> np.ndarray:
    """``(N, 5, 2)`` COCO head keypoints from FaceMesh landmarks ``(N, 468, 2+)``."""
    p = np.asarray(points, np.float64)[..., :2]
    return np.stack(
        [
            p[:, FACEMESH_NOSE],
            p[:, FACEMESH_LEFT_EYE].mean(1),
            p[:, FACEMESH_RIGHT_EYE].mean(1),
            p[:, FACEMESH_LEFT_EAR],
            p[:, FACEMESH_RIGHT_EAR],
        ],
        axis=1,
    )


class FaceMeshKeypoints:
    """FaceMesh's nose tip, eye centres and ear-level face-oval points on the detector's faces.

    Keypoints: landmark 1 (nose tip), the mean of each eye's 16 contour points,
    and the face-oval points 454 / 234 beside the left / right ear tragion (see
    :func:`facemesh_head_keypoints`). The score is the detection score times
    FaceMesh's face presence (as :class:`~openheadpose.pipeline.HeadPoseEstimator`
    scores a head); each keypoint's confidence is that score times
    :data:`FACEMESH_OCCLUSION`'s visibility (FaceMesh always places the face
    oval, so on a turned face the far "ear" lies on the visible cheek). The box
    is the extent of the 468 landmarks.

    Args:
        detector: a ``DETECTORS`` name or callable (default: the pipeline's).
        landmarker: a ``LANDMARKERS`` name or callable (FaceMesh by default).
        min_score: keep heads whose score is at least this (0.5, as the default pipeline).
        max_detect_side: images larger than this are detected on a downscaled copy.
        occlusion: the visibility rule.
    """

    #: The :data:`KEYPOINT_SOURCES` name (keypoint networks calibrate sigma per source).
    name = "facemesh"

    def __init__(
        self, detector=None, landmarker: Any = "facemesh", min_score: float = 0.5, max_detect_side: int = 1920, occlusion: OcclusionRule = FACEMESH_OCCLUSION
    ):
        from .landmarks import LANDMARKERS

        self.detector, self.detector_name = _make_detector(detector)
        self.landmarker = LANDMARKERS.create(landmarker) if isinstance(landmarker, str) else landmarker
        self.min_score = min_score
        self.max_detect_side = max_detect_side
        self.occlusion = occlusion

    def __call__(self, image: np.ndarray) -> HeadKeypoints:
        from .pipeline import _landmark_boxes, detect_scaled

        det = detect_scaled(self.detector, image, self.max_detect_side)
        if len(det) == 0:
            return HeadKeypoints.empty()
        lm = self.landmarker(image, det)
        scores = det.scores * lm.presence
        keep = np.flatnonzero(scores >= self.min_score)
        if len(keep) == 0:
            return HeadKeypoints.empty()
        keep = keep[nms_indices(_landmark_boxes(lm.points[keep]), scores[keep], 0.5)]  # two detections that converged on one face
        points = facemesh_head_keypoints(lm.points[keep])
        s = scores[keep].astype(np.float64)
        return HeadKeypoints(points, s[:, None] * self.occlusion(points), _landmark_boxes(lm.points[keep]), s)


@KEYPOINT_SOURCES.register("pose", help="MediaPipe Pose (BlazePose): people seen from afar or from behind; visibility as confidence")
def _make_pose(detector=None, **kw):
    if detector is not None:
        raise ValueError("the pose keypoint source has its own person detector: leave --detector out")
    return MediaPipePose(**kw)


@KEYPOINT_SOURCES.register("blazeface", help="BlazeFace's own keypoints (fastest); far ear by the occlusion rule")
def _make_blazeface(**kw):
    return BlazeFaceKeypoints(**kw)


@KEYPOINT_SOURCES.register("facemesh", help="FaceMesh nose tip, eye centres, ear-level face oval; far ear by the occlusion rule")
def _make_facemesh(**kw):
    return FaceMeshKeypoints(**kw)


# --------------------------------------------------------------------------- keypoints from labels, matching
#: Name of the "source" that reads the five keypoints off a dataset's hand-labelled landmarks
#: (``headpose evaluate --keypoints labels``; :func:`label_keypoints`).
LABELS = "labels"

#: AFLW's 21 landmarks (1-based) of the COCO head keypoints: nose tip 15, the person's left eye
#: centre 11 (on the image's right), right eye centre 8, left ear 17, right ear 13. AFLW's "ears"
#: are the ear lobes, lower than the tragion the sources place.
AFLW_TO_COCO = np.array([15, 11, 8, 17, 13])


def label_keypoints(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO head keypoints from AFLW's 21 labelled landmarks (AFLW2000 ``pt2d``, ``aflw-yaw``).

    Args:
        landmarks: ``(21, 2)`` or ``(N, 21, 2)`` image pixels, NaN where not visible
            (extra points after the 21st are ignored).

    Returns:
        points ``(N, 5, 2)`` and conf ``(N, 5)``: a hidden point gets x = y = c = 0
        (HHP-Net's convention for an absent point), a visible one c = 1.

    >>> lm = np.full((21, 2), np.nan); lm[14] = (50.0, 60.0); lm[10] = (70.0, 40.0)
    >>> p, c = label_keypoints(lm)
    >>> p[0, :2].tolist(), c.tolist()
    ([[50.0, 60.0], [70.0, 40.0]], [[1.0, 1.0, 0.0, 0.0, 0.0]])
    """
    if landmarks is None:
        raise ValueError("keypoints from labels need the dataset's AFLW 21-point landmarks; this sample has none")
    lm = np.asarray(landmarks, np.float64)
    lm = lm[None] if lm.ndim == 2 else lm
    if lm.ndim != 3 or lm.shape[2] != 2 or lm.shape[1] < 21:  # (a couple of AFLW2000 files carry 23 points; the first 21 are AFLW's)
        raise ValueError(f"keypoints from labels need AFLW's 21 landmarks (21, 2); got {lm.shape[1:]}")
    k = lm[:, AFLW_TO_COCO - 1]
    hidden = ~np.isfinite(k).all(-1)
    return np.where(hidden[..., None], 0.0, k), np.where(hidden, 0.0, 1.0)


def match_head(kp: HeadKeypoints, box: np.ndarray, min_iou: float) -> int | None:
    """Index of the head whose box overlaps ``box`` ``(4,)`` most, if that IoU is at least ``min_iou``."""
    from .detectors import box_iou

    if len(kp) == 0:
        return None
    iou = box_iou(np.asarray(kp.boxes, np.float64), np.asarray(box, np.float64).reshape(1, 4))[:, 0]
    j = int(np.argmax(iou))
    return j if iou[j] >= min_iou else None


# --------------------------------------------------------------------------- the pipeline
def _takes_source(model) -> bool:
    """Whether ``model.predict_keypoints`` accepts ``source=`` (per-source sigma calibration)."""
    import inspect

    try:
        return "source" in inspect.signature(model.predict_keypoints).parameters
    except (TypeError, ValueError):
        return False


class KeypointPoseEstimator(Estimator):
    """Keypoint source -> a keypoint pose network (HHP-Net, the heatmap CNN): heads and their rotations.

    Same surface as :class:`~openheadpose.pipeline.HeadPoseEstimator` (``__call__``,
    ``predict``, ``process``, ``names``). ``Heads.landmarks`` holds the five
    keypoints ``(N, 5, 3)`` with z = 0 (``Heads`` documents z as depth in pixels,
    which no keypoint source gives; the confidences are in :meth:`predict_keypoints`).

    Sigma is calibrated for the source: the estimator hands the source's name
    (``source_name``: the registry name, or a callable's ``name`` attribute) to
    ``model.predict_keypoints(..., source=...)``, which applies the file's
    per-source factors (:class:`~openheadpose.calibration.SourceCalibration`); a
    callable without a known name gets the factor baked into the file.

    Args:
        model: a model with ``predict_keypoints(points, conf, boxes[, source])``
            (:class:`~openheadpose.predictors.OnnxPoseModel` of a keypoint network).
        source: a :data:`KEYPOINT_SOURCES` name or callable ``image -> HeadKeypoints``.
        detector: the face detector of the ``blazeface`` / ``facemesh`` sources.
        min_score: keep heads scoring at least this (default: the source's own,
            0.5 for ``pose`` and ``facemesh``, 0.75 for ``blazeface``).
        min_keypoints: heads with fewer keypoints of confidence > 0.1 are dropped
            (a single point gives the network nothing to read: it normalises to (0, 0)).
    """

    def __init__(self, model, source: str | Callable = "blazeface", detector=None, min_score: float | None = None, min_keypoints: int = 2):
        if not callable(getattr(model, "predict_keypoints", None)):
            raise ValueError(f"{getattr(model, 'name', model)!r} is not a keypoint model (it has no predict_keypoints)")
        if isinstance(source, str):
            kw: dict[str, Any] = {}
            if detector is not None:
                kw["detector"] = detector
            if min_score is not None:
                kw["min_score"] = min_score
            self.source = KEYPOINT_SOURCES.create(source, **kw)
            self.source_name: str | None = source
        else:
            self.source = source
            name = getattr(source, "name", None)
            self.source_name = name if isinstance(name, str) else None
        self.model = model
        self.min_keypoints = min_keypoints
        self._model_takes_source = _takes_source(model)
        self.names = {"keypoints": self.source_name or type(self.source).__name__, "model": model.name}
        if hasattr(self.source, "detector_name"):
            self.names["detector"] = self.source.detector_name

    def predict_keypoints(self, image: np.ndarray) -> tuple[Heads, HeadKeypoints, dict[str, float]]:
        """Heads, their keypoints (same order) and the seconds spent in each stage."""
        from .pipeline import as_rgb_uint8

        image = as_rgb_uint8(image)
        t0 = time.perf_counter()
        kp = self.source(image)
        if len(kp):
            kp = kp[np.flatnonzero((kp.conf > 0.1).sum(1) >= self.min_keypoints)]
        kp = kp.left_to_right()
        t1 = time.perf_counter()
        timings = {"keypoints": t1 - t0}
        if len(kp) == 0:
            timings["pose"] = 0.0
            return Heads.empty(), kp, timings
        if self._model_takes_source:
            pred = self.model.predict_keypoints(kp.points, kp.conf, kp.boxes, source=self.source_name)
        else:
            pred = self.model.predict_keypoints(kp.points, kp.conf, kp.boxes)
        timings["pose"] = time.perf_counter() - t1
        landmarks = np.concatenate([kp.points, np.zeros((len(kp), 5, 1))], axis=2)
        return Heads(kp.boxes, kp.scores, pred.rotations, pred.sigma, landmarks), kp, timings

    def predict(self, image: np.ndarray) -> tuple[Heads, dict[str, float]]:
        """Heads of one image (sorted left to right) and the seconds spent in each stage."""
        heads, _, timings = self.predict_keypoints(image)
        return heads, timings


#: The keypoint source ``headpose predict`` uses for keypoint networks when ``--keypoints`` is not given.
DEFAULT_SOURCE = "facemesh"


def build_estimator(model_name: str, weights=None, keypoints: str | None = None, detector=None, min_score: float | None = None):
    """The estimator behind ``headpose predict --model NAME [--weights FILE] [--keypoints SOURCE]``.

    Keypoint networks (HHP-Net, the heatmap CNN) run behind a keypoint source
    (:class:`KeypointPoseEstimator`); image networks behind the detector and their
    crop recipe (:class:`~openheadpose.predictors.CropPoseEstimator`), which take no
    ``keypoints``.

    Args:
        model_name: a network name (``hhpnet``, ``heatmap-cnn``, ``fsanet``, ``onnx``, ...).
        weights: its ``.onnx`` file; ``None`` takes weights shipped with openheadpose
            where there are some (see :func:`~openheadpose.predictors.load_model`).
        keypoints: a :data:`KEYPOINT_SOURCES` name; ``None``: :data:`DEFAULT_SOURCE`
            for keypoint networks.
        detector: face detector (of the ``blazeface`` / ``facemesh`` sources, or of an
            image network); the ``pose`` source has its own person detector and refuses one.
        min_score: minimum head score (default: the source's or the pipeline's own).

    Raises:
        KeyError: an unknown source (the message lists them).
        ValueError: missing or wrong weights, ``keypoints`` for an image network,
            or a detector given to ``pose``.
    """
    from .predictors import CropPoseEstimator, load_model

    if keypoints is not None:
        KEYPOINT_SOURCES.get(keypoints)  # a typo fails here (KeyError with a suggestion), before any model loads
    model = load_model(model_name, weights)
    if not getattr(model, "takes_keypoints", False):
        if keypoints is not None:
            raise ValueError(f"--keypoints is for keypoint networks (hhpnet, heatmap-cnn); {model.name!r} reads image crops")
        return CropPoseEstimator(model, detector=detector, min_score=min_score)
    return KeypointPoseEstimator(model, keypoints or DEFAULT_SOURCE, detector=detector, min_score=min_score)
