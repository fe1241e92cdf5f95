"""Face detectors: MediaPipe BlazeFace (short/full range, tiled) and OpenCV Haar cascades.

Every detector is a callable ``detector(image_rgb) -> Detections`` taking an
``(H, W, 3)`` uint8 RGB image and returning boxes in its pixel coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from openheadpose.core.geometry import box_iou, tile_starts
from openheadpose.core.registry import Registry
from openheadpose.inference.backends.litert import TFLiteModel, model_path, sigmoid
from openheadpose.inference.results import Detections
from openheadpose.specs.crops import square_box, take_pixels

DETECTORS: Registry = Registry("detector")


def weighted_nms(det: Detections, iou_threshold: float = 0.3) -> Detections:
    """MediaPipe's weighted non-maximum suppression.

    Boxes are visited by decreasing score; each keeps its score but its box and
    keypoints become the score-weighted mean of every box overlapping it by more
    than ``iou_threshold``, and those boxes are dropped.
    """
    if len(det) == 0:
        return det
    order = np.argsort(-det.scores, kind="stable")
    boxes, scores = det.boxes[order], det.scores[order]
    kps = None if det.keypoints is None else det.keypoints[order]
    iou = box_iou(boxes, boxes)
    alive = np.ones(len(boxes), bool)
    out_b, out_s, out_k = [], [], []
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        group = alive & (iou[i] > iou_threshold)
        group[i] = True
        w = scores[group][:, None]
        out_b.append((boxes[group] * w).sum(0) / w.sum())
        out_s.append(scores[i])
        if kps is not None:
            out_k.append((kps[group] * w[:, :, None]).sum(0) / w.sum())
        alive &= ~group
    return Detections(np.array(out_b), np.array(out_s), None if kps is None else np.array(out_k))


def _concat(dets: list[Detections]) -> Detections:
    dets = [d for d in dets if len(d)]
    if not dets:
        return Detections.empty(6)
    kp = None if any(d.keypoints is None for d in dets) else np.concatenate([d.keypoints for d in dets])
    return Detections(np.concatenate([d.boxes for d in dets]), np.concatenate([d.scores for d in dets]), kp)


@dataclass(frozen=True)
class _BlazeSpec:
    file: str
    size: int
    strides: tuple[int, ...]
    min_score: float


# Anchor and decoder settings of MediaPipe's face_detection_{short,full}_range graphs.
_SPECS = {
    "short": _BlazeSpec("face_detection_short_range", 128, (8, 16, 16, 16), 0.5),
    "full": _BlazeSpec("face_detection_full_range_sparse", 192, (4,), 0.6),
}


def ssd_anchors(size: int, strides: tuple[int, ...]) -> np.ndarray:
    """Anchor centres ``(A, 2)`` in [0, 1] (fixed anchor size 1, offset 0.5, one aspect ratio).

    Consecutive layers with the same stride share one grid, two anchors per layer.
    """
    out = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        n = 2 * (j - i) if len(strides) > 1 else 1
        g = int(np.ceil(size / strides[i]))
        ys, xs = np.mgrid[0:g, 0:g]
        centres = np.stack([(xs + 0.5) / g, (ys + 0.5) / g], -1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, n, axis=1).reshape(-1, 2))
        i = j
    return np.concatenate(out)


#: How a detector input is shrunk (:func:`shrink`).
RESIZE = "area"
RESIZES = ("area", "linear", "linear2x")


def shrink(image: np.ndarray, size: tuple[int, int], how: str = "area") -> np.ndarray:
    """``image`` resized to ``size`` ``(w, h)``; enlarging is always bilinear. Shrinking:

    * ``"area"``: OpenCV's pixel-area average (no aliasing; slow at a ratio that is no integer,
      about 1 ms for a 570 px photo to 192 px on one core);
    * ``"linear"``: bilinear, what MediaPipe's own CPU graphs do (aliases fine texture; 20x faster);
    * ``"linear2x"``: bilinear to twice ``size``, then the exact 2x2 average (OpenCV's fast
      integer-ratio area path): most of the anti-aliasing for about a tenth of the cost.
    """
    h, w = image.shape[:2]
    if how not in RESIZES:
        raise ValueError(f"resize must be one of {RESIZES}, got {how!r}")
    if size[0] >= w and size[1] >= h:
        return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    if how == "area":
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    if how == "linear" or 2 * size[0] >= w or 2 * size[1] >= h:
        return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    big = cv2.resize(image, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(big, size, interpolation=cv2.INTER_AREA)


class BlazeFace:
    """One MediaPipe BlazeFace model run on a whole image (letterboxed to a square).

    Args:
        range: ``"short"`` (faces filling a good part of the picture, 128x128 input)
            or ``"full"`` (smaller faces, 192x192 input).
        min_score: keep detections scoring at least this (model default if None).
    """

    def __init__(self, range: str = "short", min_score: float | None = None, resize: str | None = None):
        self.spec = _SPECS[range]
        self.resize = RESIZE if resize is None else resize
        self.range = range
        self.model = TFLiteModel(model_path(self.spec.file))
        self.anchors = ssd_anchors(self.spec.size, self.spec.strides)
        self.min_score = self.spec.min_score if min_score is None else min_score

    def __call__(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        side = max(h, w)
        s = self.spec.size
        scale = s / side
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        canvas = np.zeros((s, s, 3), np.uint8)
        ox, oy = (s - nw) // 2, (s - nh) // 2
        canvas[oy : oy + nh, ox : ox + nw] = shrink(image, (nw, nh), self.resize)
        x = canvas.astype(np.float32)[None] / 127.5 - 1.0
        reg, cls = self.model(x)
        reg, logits = reg[0], cls[0, :, 0]
        scores = sigmoid(logits)
        keep = scores >= self.min_score
        if not keep.any():
            return Detections.empty(6)
        reg, scores, anc = reg[keep], scores[keep], self.anchors[keep]
        c = reg[:, :2] / s + anc  # centres, normalised to the square input
        half = reg[:, 2:4] / s / 2
        boxes = np.concatenate([c - half, c + half], 1) * s
        kps = (reg[:, 4:16].reshape(-1, 6, 2) / s + anc[:, None, :]) * s
        # square input pixels -> original image pixels
        off = np.array([ox, oy], np.float64)
        boxes = (boxes.reshape(-1, 2, 2) - off) / scale
        kps = (kps - off) / scale
        return weighted_nms(Detections(boxes.reshape(-1, 4), scores.astype(np.float64), kps))


class TiledBlazeFace:
    """BlazeFace short- and full-range over the whole image plus overlapping tiles.

    Faces smaller than about a tenth of the image escape both models on a whole
    photo (a group at a table, a classroom); the short-range model run over
    square tiles (half-tile stride) finds them. Detections from all passes are
    merged with weighted NMS. (Huge images are downscaled before any detector
    runs, by :class:`~openheadpose.inference.pipeline.HeadPoseEstimator`.)

    Args:
        tiles: tile sides in pixels; a tile size is used only when the image's
            long side exceeds 1.5 times it.
        min_score: minimum detection score for every pass.
    """

    def __init__(self, tiles: tuple[int, ...] = (320, 480), min_score: float = 0.5):
        self.short = BlazeFace("short", min_score)
        self.full = BlazeFace("full", max(min_score, 0.6))
        self.tiles = tiles

    def __call__(self, image: np.ndarray) -> Detections:
        dets = [self.short(image), self.full(image)]
        h, w = image.shape[:2]
        for t in self.tiles:
            if max(h, w) < 1.5 * t:
                continue
            step = t // 2
            for y0 in tile_starts(h, t, step):
                for x0 in tile_starts(w, t, step):
                    d = self.short(image[y0 : y0 + t, x0 : x0 + t])
                    if len(d):
                        off = np.array([x0, y0], np.float64)
                        dets.append(Detections(d.boxes + np.tile(off, 2), d.scores, d.keypoints + off))
        return weighted_nms(_concat(dets))


#: Smallest face the default schedule looks for: side in pixels of the face's landmark box
#: (AFLW's 21 points, brow to chin, ear to ear). Faces this small are found where the image is
#: large; :data:`SHORT_REACH` x 480 (the larger tile of :class:`TiledBlazeFace`).
MIN_FACE = 72

#: Face side, as a fraction of the image's long side, from which BlazeFace short range on a whole
#: image finds >= 90 % of the faces, and full range >= 80 % (:data:`FULL_REACH`). Measured by
#: ``benchmarks/schedule_constants.py`` on aflw-yaw crops pasted at known sizes onto the
#: no-face ``free-mountain-vector-01.jpg`` (a training set and a no-face photo; never AFLW2000).
SHORT_REACH = 0.15
FULL_REACH = 0.10


def _scaled(d: Detections, f: float, off=(0.0, 0.0)) -> Detections:
    """Detections found on an image scaled by ``f`` (then shifted by ``off``), in the original's pixels."""
    o = np.asarray(off, np.float64)
    kp = None if d.keypoints is None else (d.keypoints + o) / f
    return Detections((d.boxes + np.tile(o, 2)) / f, d.scores, kp)


class BlazeFaceSchedule:
    """BlazeFace that pays for tiles only where a face the whole-image passes miss can be (the default detector).

    1. **Short and full range on the whole image**. Short
       range finds >= 90 % of the faces of side >= :data:`SHORT_REACH` of the image's long side
       ``L``, full range >= 80 % of those >= :data:`FULL_REACH` x ``L``; their boxes, averaged by
       weighted NMS, seed FaceMesh better than either alone (on 450 px portraits, where no tile
       runs, this is exactly what :class:`TiledBlazeFace` does, so the boxes are the same; where
       tiles run, both read the copy shrunk for the tiles, already larger than their inputs).
    2. **Short range on tiles** of side ``min_face / SHORT_REACH``, only where faces from
       ``min_face`` up to ``FULL_REACH * L`` can be (``L > min_face / FULL_REACH``): tiles
       overlap by ``FULL_REACH * L`` (a face the whole passes may miss lies whole inside one),
       are cut from one copy of the image shrunk to the model's input scale, and a tile is
       skipped when the faces already found leave no free square of ``min_face`` in it (faces
       do not sit inside faces).

    On a 1280 px group photo that is 12 tiles where :class:`TiledBlazeFace` runs 55.

    Args:
        min_face: smallest face side (pixels) looked for where the image is large enough to
            hold faces below the whole-image passes' reach.
        min_score: minimum detection score for every pass (full range: at least 0.6, its own).
    """

    def __init__(self, min_face: int = MIN_FACE, min_score: float = 0.5):
        self.short = BlazeFace("short", min_score)
        self.full = BlazeFace("full", max(min_score, 0.6))
        self.min_face = min_face
        #: what the last call ran: tiles run and tiles skipped
        self.last: dict[str, int] = {"tiles": 0, "skipped": 0}

    def __call__(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        reach = FULL_REACH * max(h, w)
        self.last = {"tiles": 0, "skipped": 0}
        if reach <= self.min_face:
            return weighted_nms(_concat([self.short(image), self.full(image)]))
        # one copy at the tiles' scale (a tile is the short-range input there) feeds every pass
        k = self.short.spec.size * SHORT_REACH / self.min_face
        small = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
        dets = [_scaled(self.short(small), k), _scaled(self.full(small), k)]
        dets += self._tiles(small, k, reach, _concat(dets).boxes)
        return weighted_nms(_concat(dets))

    def _tiles(self, small: np.ndarray, k: float, reach: float, found: np.ndarray) -> list[Detections]:
        """Short range over tiles of ``small`` (the image scaled by ``k``, so a tile is the model's
        input) that can hold a face from ``min_face`` to ``reach`` pixels of the image."""
        s = self.short.spec.size
        sh, sw = small.shape[:2]
        step = max(s // 4, int(s - np.ceil(reach * k)))  # overlap >= reach (the estimator caps L at 1920: reach <= 192 < t)
        # free: where a face of min_face would overlap no face found so far
        free = np.ones((sh, sw), np.uint8)
        for x1, y1, x2, y2 in np.round(found * k).astype(int):
            free[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)] = 0
        m = max(1, int(self.min_face * k))
        free = cv2.erode(free, np.ones((m, m), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=1)
        out = []
        for y0 in tile_starts(sh, s, step):
            for x0 in tile_starts(sw, s, step):
                if not free[y0 : y0 + s, x0 : x0 + s].any():
                    self.last["skipped"] += 1
                    continue
                self.last["tiles"] += 1
                d = self.short(small[y0 : y0 + s, x0 : x0 + s])
                if len(d):
                    out.append(_scaled(d, k, (x0, y0)))
        return out


class HaarCascade:
    """OpenCV Haar cascades (frontal + profile, the profile also run on the mirror image).

    Needs only ``opencv-contrib-python``; less accurate than BlazeFace and gives
    no keypoints. Scores are a squashed count of cascade neighbours.
    """

    def __init__(self, min_size: int = 24):
        if not hasattr(cv2, "CascadeClassifier"):
            raise RuntimeError("this OpenCV build has no CascadeClassifier: `pip install opencv-contrib-python`")
        root = cv2.data.haarcascades
        self.frontal = cv2.CascadeClassifier(root + "haarcascade_frontalface_default.xml")
        self.profile = cv2.CascadeClassifier(root + "haarcascade_profileface.xml")
        if self.frontal.empty() or self.profile.empty():
            raise RuntimeError(f"could not load the Haar cascades from {root}")
        self.min_size = min_size

    def _run(self, cascade, gray, mirror: bool):
        img = gray[:, ::-1] if mirror else gray
        rects, _, weights = cascade.detectMultiScale3(
            np.ascontiguousarray(img), scaleFactor=1.1, minNeighbors=5, minSize=(self.min_size,) * 2, outputRejectLevels=True
        )
        if len(rects) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        r = np.asarray(rects, np.float64)
        boxes = np.stack([r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3]], 1)
        if mirror:
            W = gray.shape[1]
            boxes = np.stack([W - boxes[:, 2], boxes[:, 1], W - boxes[:, 0], boxes[:, 3]], 1)
        scores = 1.0 / (1.0 + np.exp(-np.asarray(weights, np.float64).ravel()))
        return boxes, scores

    def __call__(self, image: np.ndarray) -> Detections:
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        parts = [self._run(self.frontal, gray, False), self._run(self.profile, gray, False), self._run(self.profile, gray, True)]
        boxes = np.concatenate([p[0] for p in parts])
        scores = np.concatenate([p[1] for p in parts])
        return weighted_nms(Detections(boxes, scores), iou_threshold=0.3)


@DETECTORS.register("blazeface", help="BlazeFace short+full range on the image, short range on tiles only where smaller faces can be (default)")
def _make_schedule(**kw):
    return BlazeFaceSchedule(**kw)


@DETECTORS.register("blazeface-tiled", help="BlazeFace short+full range and short range over every tile (every pass on every image; slower)")
def _make_tiled(**kw):
    return TiledBlazeFace(**kw)


@DETECTORS.register("blazeface-short", help="BlazeFace short-range on the whole image (close faces, fastest)")
def _make_short(**kw):
    return BlazeFace("short", **kw)


@DETECTORS.register("blazeface-full", help="BlazeFace full-range on the whole image")
def _make_full(**kw):
    return BlazeFace("full", **kw)


@DETECTORS.register("haar", help="OpenCV Haar frontal+profile cascades (needs only OpenCV)")
def _make_haar(**kw):
    return HaarCascade(**kw)


def mirror_scores(detector, image: np.ndarray, det: Detections, min_iou: float = 0.5) -> np.ndarray:
    """The score ``(N,)`` each of ``det``'s N boxes gets from ``detector`` run on ``image`` mirrored
    left to right: that of the mirror detection overlapping it most (IoU >= ``min_iou``, boxes mapped
    back), 0 where none does. A face stays a face in a mirror; the mean of a detection's score and
    this one is the detector's flip test-time augmentation (the pipeline's second look)."""
    if len(det) == 0:
        return np.zeros(0)
    m = detector(np.ascontiguousarray(image[:, ::-1]))
    if len(m) == 0:
        return np.zeros(len(det))
    w = image.shape[1]
    back = np.stack([w - m.boxes[:, 2], m.boxes[:, 1], w - m.boxes[:, 0], m.boxes[:, 3]], 1)
    iou = box_iou(det.boxes, back)
    best = iou.argmax(1)
    return np.where(iou[np.arange(len(det)), best] >= min_iou, m.scores[best], 0.0)


def zoom_scores(model: BlazeFace, image: np.ndarray, det: Detections, context: float = 2.0, min_iou: float = 0.5) -> np.ndarray:
    """The score ``(N,)`` ``model`` gives each of ``det``'s N boxes on a square of ``context`` x the box's
    side around it (resized to the model's input, the outside black): that of the detection there
    overlapping the box most (IoU >= ``min_iou``), 0 where none does. A face seen closer is still a
    face; with :func:`mirror_scores`, the pipeline's second look."""
    out = np.zeros(len(det))
    s = model.spec.size
    for i, b in enumerate(det.boxes):
        sq = np.round(square_box(b, context)).astype(int)
        d = model(take_pixels(image, sq, s))
        if len(d):
            back = d.boxes * (sq[2] - sq[0]) / s + np.tile(sq[:2], 2)
            iou = box_iou(back, b[None])[:, 0]
            out[i] = d.scores[iou >= min_iou].max(initial=0.0)
    return out


def detect_scaled(detector, image: np.ndarray, max_side: int) -> Detections:
    """Run ``detector`` on ``image``, on a copy shrunk to ``max_side`` when larger; boxes in the original's pixels."""
    h, w = image.shape[:2]
    f = min(1.0, max_side / max(h, w))
    if f == 1.0:
        return detector(image)
    small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    d = detector(small)
    return Detections(d.boxes / f, d.scores, None if d.keypoints is None else d.keypoints / f)
