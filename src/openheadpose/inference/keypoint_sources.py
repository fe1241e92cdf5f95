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
    The face detector's own six keypoints (:mod:`openheadpose.inference.detectors`); the
    cheapest source. Confidence is the detection score, lowered by
    :class:`OcclusionRule` for the ear (and eye) on the far side of a
    turned face, which BlazeFace always places, visible or not.
``facemesh``
    MediaPipe FaceMesh's 468 landmarks on the detector's faces: the nose tip,
    the mean of each eye's contour, and the face-oval points at the ears; the
    same occlusion rule as ``blazeface``.

Keypoint order is :data:`~openheadpose.specs.keypoint_input.KEYPOINTS` (COCO): nose,
left eye, right eye, left ear, right ear, where "left" is the **person's** left
(on a face looking at the camera the left eye has the larger image x).
``tests/test_keypoints.py`` checks this on real photos for every source.

Coordinates are image pixels, x right and y down, pixel centres at integers
(``blazeface`` and ``facemesh`` pass on their models' points as
:mod:`openheadpose.inference.detectors` and :mod:`openheadpose.inference.landmarkers` report them).

Dimension legend: N heads, K = 5 keypoints.

>>> kp = HeadKeypoints.empty()
>>> len(kp), kp.points.shape, kp.conf.shape
(0, (0, 5, 2), (0, 5))
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from openheadpose.core.geometry import RotatedSquare, nms_indices, tile_starts
from openheadpose.core.registry import Registry
from openheadpose.inference.backends.litert import TFLiteModel, model_path, sigmoid
from openheadpose.inference.detectors import ssd_anchors, weighted_nms
from openheadpose.inference.results import Detections, Faces, HeadKeypoints
from openheadpose.specs.keypoint_input import KEYPOINTS

KEYPOINT_SOURCES: Registry = Registry("keypoint source")


NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR = range(5)


assert KEYPOINTS == ("nose", "left_eye", "right_eye", "left_ear", "right_ear")


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
        vis[:, LEFT_EAR] = sigmoid((self.ear_t0 - t) / self.ear_tau)
        vis[:, RIGHT_EAR] = sigmoid((self.ear_t0 + t) / self.ear_tau)
        vis[:, LEFT_EYE] = sigmoid((self.eye_t0 - t) / self.eye_tau)
        vis[:, RIGHT_EYE] = sigmoid((self.eye_t0 + t) / self.eye_tau)
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
BODY_OCCLUSION = FACEMESH_OCCLUSION


#: BlazePose landmark indices of the COCO head keypoints (MediaPipe's "left" is the person's left).
BODY_HEAD_LANDMARKS = np.array([0, 2, 5, 7, 8])  # nose, left eye, right eye, left ear, right ear


def _alignment_roi(centre: np.ndarray, scale_point: np.ndarray, scale: float = 1.25) -> RotatedSquare:
    """MediaPipe's ``AlignmentPointsRectsCalculator`` + ``RectTransformationCalculator``.

    A square centred on ``centre`` (the hips' middle), side twice the distance to
    ``scale_point`` times ``scale`` (1.25 in ``pose_detection_to_roi.pbtxt`` and
    ``pose_landmarks_to_roi.pbtxt``), turned so ``scale_point`` is straight up:
    ``angle = 90deg - atan2(-(y1 - y0), x1 - x0)``.
    """
    d = np.asarray(scale_point, np.float64) - np.asarray(centre, np.float64)
    size = 2.0 * float(np.hypot(*d)) * scale
    angle = np.pi / 2 - np.arctan2(-d[1], d[0])
    return RotatedSquare.from_angle(centre, max(size, 1.0), float(angle))


class MediaPipeBody:
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
    confidence = visibility x :data:`BODY_OCCLUSION` (BlazePose's visibility
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
    name = "body"
    #: It finds people itself: the pipeline runs it instead of a face detector.
    finds_heads = True

    def __init__(
        self,
        min_score: float = 0.5,
        min_detection: float = 0.2,
        min_presence: float = 0.5,
        passes: int = 1,
        tiles: tuple[float, ...] = (0.5,),
        min_tile: int = 320,
        max_people: int = 30,
        occlusion: OcclusionRule | None = BODY_OCCLUSION,
    ):
        if passes not in (1, 2):
            raise ValueError(f"passes must be 1 or 2, got {passes}")
        self.detector = TFLiteModel(model_path("pose_detection"))
        self.landmarker = TFLiteModel(model_path("pose_landmark_full"))
        self.anchors = ssd_anchors(self.detector_side, (8, 16, 32, 32, 32))
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
        scores = sigmoid(np.clip(cls[0, :, 0], -100.0, 100.0))
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
            for y0 in tile_starts(h, t, snap=0.25):
                for x0 in tile_starts(w, t, snap=0.25):
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
    def landmarks(self, image: np.ndarray, roi: RotatedSquare) -> tuple[np.ndarray, np.ndarray, float]:
        """Landmarks ``(39, 2)`` (continuous image coordinates), visibility ``(39,)`` and presence of one region."""
        side = self.landmark_side
        x = roi.warp(image, side, continuous=True).astype(np.float32)[None] / 255.0
        raw, flag, _segmentation, heatmap, _world = self.landmarker(x)
        lm = raw.reshape(-1, 5).astype(np.float64)  # (39, x/y/z/visibility/presence), crop pixels
        uv = self._refine(lm[:, :2] / side, heatmap[0]) * side
        return roi.crop_to_image(uv, side), sigmoid(lm[:, 3]), float(np.ravel(flag)[0])

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
            conf = sigmoid(heatmap[r0:r1, c0:c1, k])
            total = conf.sum()
            if conf.max() >= 0.5 and total > 0:
                rows, cols = np.mgrid[r0:r1, c0:c1]
                # MediaPipe maps heatmap cell i to i / size, not to its centre (i + 0.5) / size;
                # on our photos the centre gives 2-3x larger errors against FaceMesh, so as MediaPipe.
                out[k] = [(conf * cols).sum() / total / hw, (conf * rows).sum() / total / hh]
        return out

    def __call__(self, image: np.ndarray, faces: Faces | None = None) -> HeadKeypoints:
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
            pts.append(lm[BODY_HEAD_LANDMARKS] - 0.5)  # continuous -> pixel centres at integers
            conf.append(vis[BODY_HEAD_LANDMARKS])
            scores.append(score)
        if not pts:
            return HeadKeypoints.empty()
        points, scores_a, conf_a = np.stack(pts), np.array(scores), np.stack(conf)
        if self.occlusion is not None:
            conf_a = conf_a * self.occlusion(points)
        boxes = keypoint_boxes(points)
        keep = nms_indices(boxes, scores_a, 0.5)
        return HeadKeypoints(points[keep], conf_a[keep], boxes[keep], scores_a[keep])



# --------------------------------------------------------------------------- face-based sources
#: BlazeFace keypoint rows (right eye, left eye, nose tip, mouth centre, right ear
#: tragion, left ear tragion; the person's right/left) in COCO order.
BLAZEFACE_TO_COCO = np.array([2, 1, 0, 5, 4])


class BlazeFaceKeypoints:
    """The face detector's keypoints: BlazeFace's nose tip, eyes and ear tragions in COCO order.

    BlazeFace's rows are right eye, left eye, nose tip, mouth centre, right ear
    tragion, left ear tragion (the person's right and left), so COCO's nose,
    left eye, right eye, left ear, right ear are rows 2, 1, 0, 5, 4
    (:data:`BLAZEFACE_TO_COCO`). Each keypoint's confidence is the head's score
    times :data:`BLAZEFACE_OCCLUSION`'s visibility (the far ear of a turned face
    is hidden, though BlazeFace still places it). The pipeline runs it on the
    detector's faces, without a landmarker; no landmarker confirms a face, so
    heads need the detector-alone score (:data:`~openheadpose.inference.pipeline.MIN_DETECTION_SCORE`).
    """

    name = "blazeface"
    landmarker = None

    def __init__(self, occlusion: OcclusionRule = BLAZEFACE_OCCLUSION):
        self.occlusion = occlusion

    def __call__(self, image: np.ndarray, faces: Faces) -> HeadKeypoints:
        if len(faces) == 0:
            return HeadKeypoints.empty()
        if faces.detector_points is None or faces.detector_points.shape[1:] != (6, 2):
            raise ValueError("the blazeface keypoint source needs a detector with BlazeFace's six keypoints; this detector gives none")
        points = faces.detector_points[:, BLAZEFACE_TO_COCO].astype(np.float64)
        scores = faces.scores.astype(np.float64)
        return HeadKeypoints(points, scores[:, None] * self.occlusion(points), faces.boxes.astype(np.float64), scores)


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
    """FaceMesh's nose tip, eye centres and ear-level face-oval points on the pipeline's faces.

    Keypoints: landmark 1 (nose tip), the mean of each eye's 16 contour points,
    and the face-oval points 454 / 234 beside the left / right ear tragion (see
    :func:`facemesh_head_keypoints`). Each keypoint's confidence is the head's
    score (detection score times FaceMesh's face presence) times
    :data:`FACEMESH_OCCLUSION`'s visibility (FaceMesh always places the face
    oval, so on a turned face the far "ear" lies on the visible cheek). The box
    is the extent of the 468 landmarks.
    """

    name = "facemesh"
    landmarker = "facemesh"

    def __init__(self, occlusion: OcclusionRule = FACEMESH_OCCLUSION):
        self.occlusion = occlusion

    def __call__(self, image: np.ndarray, faces: Faces) -> HeadKeypoints:
        if len(faces) == 0:
            return HeadKeypoints.empty()
        if faces.mesh is None:
            raise ValueError("the facemesh keypoint source reads FaceMesh's landmarks: the pipeline needs --landmarker facemesh")
        points = facemesh_head_keypoints(faces.mesh)
        s = faces.scores.astype(np.float64)
        return HeadKeypoints(points, s[:, None] * self.occlusion(points), faces.boxes, s)


@KEYPOINT_SOURCES.register("body", help="MediaPipe Pose (BlazePose): people found by their body, seen from afar or from behind; visibility as confidence")
def _make_body(**kw):
    return MediaPipeBody(**kw)


@KEYPOINT_SOURCES.register("pose", help="the body source's former name (kept for old command lines)")
def _make_body_alias(**kw):
    return MediaPipeBody(**kw)


@KEYPOINT_SOURCES.register("blazeface", help="BlazeFace's own keypoints (fastest); far ear by the occlusion rule")
def _make_blazeface(**kw):
    return BlazeFaceKeypoints(**kw)


@KEYPOINT_SOURCES.register("facemesh", help="FaceMesh nose tip, eye centres, ear-level face oval; far ear by the occlusion rule")
def _make_facemesh(**kw):
    return FaceMeshKeypoints(**kw)


#: The keypoint source keypoint networks get when none is named.
DEFAULT_SOURCE = "facemesh"


# --------------------------------------------------------------------------- keypoints from labels
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



