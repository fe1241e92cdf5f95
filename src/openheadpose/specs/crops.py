"""Crop recipes: how a face box becomes the network's input picture.

Published head-pose numbers differ as much by crop as by model, so every recipe
that a model was trained with is a named, tested object here, and every model
declares its own (``model.crop``). A recipe answers three questions:

1. Which box does it start from? From labelled data it is the extent of the
   dataset's landmarks (``source``: the sparse ``landmarks``, e.g. AFLW2000's 21
   ``pt2d`` points with the invisible ones dropped, or the dense ``landmarks68``).
   At run time it is a face detector's box.
2. How is that box widened? (``expand_landmarks`` / ``expand_detection``.)
3. How are pixels taken? Outside the image either the box is clipped to the
   image or the missing part is filled with black, and the region is either
   squashed to the input size or resized on its short side and centre-cropped.

Boxes are ``(4,)`` float arrays ``[x1, y1, x2, y2]`` in pixels, x2/y2 exclusive.

>>> r = CROPS["fsanet"]
>>> r.from_detection(np.array([100.0, 100.0, 200.0, 180.0]), (450, 450)).tolist()
[40.0, 52.0, 260.0, 228.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from openheadpose.core.registry import Registry

Box = np.ndarray
Shape = tuple  # (H, W[, C])


def landmark_box(points: np.ndarray) -> Box:
    """Extent ``[x1, y1, x2, y2]`` of the finite 2D points ``(L, 2)`` (NaN rows = invisible).

    Raises:
        ValueError: fewer than two visible points.
    """
    p = np.asarray(points, np.float64).reshape(-1, 2)
    p = p[np.all(np.isfinite(p), axis=1)]
    if len(p) < 2:
        raise ValueError(f"a landmark box needs at least 2 visible points, got {len(p)}")
    return np.concatenate([p.min(0), p.max(0)])


def square_box(box: Box, scale: float = 1.0, shift_y: float = 0.0) -> Box:
    """Square of side ``scale * max(w, h)`` centred on the box, moved down by ``shift_y * side``."""
    x1, y1, x2, y2 = np.asarray(box, np.float64)
    side = scale * max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + shift_y * side
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])


_INTERP = {"linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA}


def take_pixels(image: np.ndarray, box: Box, size: int, outside: str = "pad", resize: str = "squash", interp: str = "area") -> np.ndarray:
    """Cut ``box`` out of ``image`` and resize it to ``(size, size)``.

    Args:
        box: integer-valued ``[x1, y1, x2, y2]`` (recipes round it their own way).
        outside: ``"pad"`` fills the part outside the image with black; ``"edge"``
            repeats the border pixels (``cv2.BORDER_REPLICATE``); ``"clip"``
            keeps only the part inside (the aspect ratio then changes).
        resize: ``"squash"`` resizes both sides to ``size``; ``"short-side"``
            resizes the short side to ``size`` and centre-crops the long one
            (torchvision's ``Resize(size)`` + ``CenterCrop(size)``).
        interp: ``"linear"`` (OpenCV's bilinear, what most research code calls)
            or ``"area"`` (averaging when shrinking, close to PIL's antialiased
            resize; bilinear when enlarging).
    """
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (int(v) for v in box)
    if outside == "clip":
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"empty crop box {[x1, y1, x2, y2]} for a {w}x{h} image")
    sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if outside == "edge" and sx2 > sx1 and sy2 > sy1:
        out = cv2.copyMakeBorder(image[sy1:sy2, sx1:sx2], sy1 - y1, y2 - sy2, sx1 - x1, x2 - sx2, cv2.BORDER_REPLICATE)
    else:
        out = np.zeros((y2 - y1, x2 - x1) + image.shape[2:], image.dtype)
        if sx2 > sx1 and sy2 > sy1:
            out[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = image[sy1:sy2, sx1:sx2]
    ch, cw = out.shape[:2]
    if interp not in _INTERP:
        raise ValueError(f"interp must be one of {sorted(_INTERP)}, not {interp!r}")
    if resize == "squash":
        flag = _INTERP[interp] if min(ch, cw) > size else cv2.INTER_LINEAR
        return cv2.resize(out, (size, size), interpolation=flag)
    if resize == "short-side":
        s = size / min(ch, cw)
        nw, nh = max(size, round(cw * s)), max(size, round(ch * s))
        r = cv2.resize(out, (nw, nh), interpolation=_INTERP[interp] if s < 1 else cv2.INTER_LINEAR)
        top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
        return r[top : top + size, left : left + size]
    raise ValueError(f"resize must be 'squash' or 'short-side', not {resize!r}")


@dataclass(frozen=True)
class CropRecipe:
    """A named way to go from a face box to a network input.

    Attributes:
        name: registry name.
        source: which labelled points give the starting box: ``"landmarks"``
            (the dataset's sparse points) or ``"landmarks68"``; falls back to
            the sample's ``box`` when the dataset has neither.
        expand_landmarks: visible landmarks ``(L, 2)``, image shape -> integer crop box
            (most recipes use only their extent, :func:`landmark_box`).
        expand_detection: face-detector box, image shape -> integer crop box.
        outside, resize, interp: see :func:`take_pixels`.
        reference: where the recipe comes from.
    """

    name: str
    source: str
    expand_landmarks: Callable[[np.ndarray, Shape], Box]
    expand_detection: Callable[[Box, Shape], Box]
    outside: str
    resize: str
    interp: str
    reference: str

    def start_points(self, sample) -> np.ndarray:
        """The visible landmarks ``(L, 2)`` a labelled sample is cropped from: the declared
        ``source``, else the other landmark set, else the two corners of ``sample.box``."""
        for field in (self.source, "landmarks68", "landmarks"):
            pts = getattr(sample, field, None)
            if pts is not None:
                pts = np.asarray(pts, np.float64).reshape(-1, 2)
                pts = pts[np.all(np.isfinite(pts), axis=1)]
                if len(pts) >= 2:
                    return pts
        return np.asarray(sample.box, np.float64).reshape(2, 2)

    def start_box(self, sample) -> Box:
        """The tight box of a labelled sample (a :class:`~openheadpose.datasets.base.PoseSample`)."""
        return landmark_box(self.start_points(sample))

    def from_sample(self, sample, image_shape: Shape) -> Box:
        """Crop box for a labelled sample (ground-truth crops)."""
        return self.expand_landmarks(self.start_points(sample), image_shape)

    def from_detection(self, box: Box, image_shape: Shape) -> Box:
        """Crop box for a face-detector box (the pipeline at run time)."""
        return self.expand_detection(np.asarray(box, np.float64), image_shape)

    def __call__(self, image: np.ndarray, crop_box: Box, size: int) -> np.ndarray:
        return take_pixels(image, crop_box, size, self.outside, self.resize, self.interp)


CROPS: Registry[CropRecipe] = Registry("crop recipe")


def _fsanet(box: Box, shape: Shape) -> Box:
    # TYY_create_db_type1.py: the box is truncated to int first, then widened by
    # 0.6 of its width/height on every side, truncated again and clipped to the image
    # (the last row/column is excluded by its `img_w - 1`).
    x1, y1, x2, y2 = (float(int(v)) for v in box)
    w, h = x2 - x1, y2 - y1
    H, W = shape[:2]
    return np.array([max(int(x1 - 0.6 * w), 0), max(int(y1 - 0.6 * h), 0), min(int(x2 + 0.6 * w), W - 1), min(int(y2 + 0.6 * h), H - 1)], np.float64)


def _hopenet_test(box: Box, shape: Shape) -> Box:
    # deep-head-pose datasets.AFLW2000 (also 6DRepNet's test set): k = 0.2, the
    # updates are sequential, so x2 grows by 0.4 of the already widened width.
    x1, y1, x2, y2 = np.asarray(box, np.float64)
    k = 0.20
    x1 -= 2 * k * abs(x2 - x1)
    y1 -= 2 * k * abs(y2 - y1)
    x2 += 2 * k * abs(x2 - x1)
    y2 += 0.6 * k * abs(y2 - y1)
    return np.array([int(x1), int(y1), int(x2), int(y2)], np.float64)


def _hopenet_detection(box: Box, shape: Shape) -> Box:
    # deep-head-pose test_on_video_dlib.py: half a width left and right, 3/4 of a
    # height above, 1/4 below (a dlib box is tight around brows..chin).
    x1, y1, x2, y2 = np.asarray(box, np.float64)
    w, h = x2 - x1, y2 - y1
    return np.array([int(x1 - w / 2), int(y1 - 3 * h / 4), int(x2 + w / 2), int(y2 + h / 4)], np.float64)


def _3ddfa_landmarks(box: Box, shape: Shape) -> Box:
    # 3DDFA_V2 parse_roi_box_from_landmark: a square with the side of the tight
    # box's longer edge, grown to its diagonal (x sqrt 2); corners rounded in crop_img.
    sq = square_box(box)
    side = np.hypot(sq[2] - sq[0], sq[3] - sq[1])
    cx, cy = (sq[0] + sq[2]) / 2, (sq[1] + sq[3]) / 2
    return np.round([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])


def _3ddfa_detection(box: Box, shape: Shape) -> Box:
    # 3DDFA_V2 parse_roi_box_from_bbox (tuned for FaceBoxes): side 1.58 x the mean
    # edge, truncated to int, centre moved down by 0.14 of the mean edge.
    x1, y1, x2, y2 = np.asarray(box, np.float64)
    old = (x2 - x1 + y2 - y1) / 2
    cx, cy = x2 - (x2 - x1) / 2, y2 - (y2 - y1) / 2 + old * 0.14
    size = int(old * 1.58)
    return np.round([cx - size / 2, cy - size / 2, cx - size / 2 + size, cy - size / 2 + size])


def _square(scale: float, shift_y: float = 0.0) -> Callable[[Box, Shape], Box]:
    def expand(box: Box, shape: Shape) -> Box:
        return np.round(square_box(box, scale, shift_y))

    return expand


def _on_extent(expand: Callable[[Box, Shape], Box]) -> Callable[[np.ndarray, Shape], Box]:
    """A box-based widening applied to the extent of landmarks."""

    def from_points(points: np.ndarray, shape: Shape) -> Box:
        return expand(landmark_box(points), shape)

    from_points.__name__ = expand.__name__
    return from_points


def _shaw_landmarks(points: np.ndarray, shape: Shape) -> Box:
    # Shaw-git/Lightweight-Head-Pose-Estimation utils/tools.py cropFace(scale=1.2): a
    # square of 1.2 x the landmarks' width centred on their MEAN (not the box centre),
    # corners truncated with int(); the slice is clipped to the image.
    p = np.asarray(points, np.float64).reshape(-1, 2)
    cx, cy = p.mean(0)
    side = 1.2 * (p[:, 0].max() - p[:, 0].min())
    x1, y1, x2, y2 = (int(v) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
    H, W = shape[:2]
    return np.array([max(x1, 0), max(y1, 0), min(x2, W), min(y2, H)], np.float64)


def _shaw_detection(box: Box, shape: Shape) -> Box:
    return _shaw_landmarks(np.asarray(box, np.float64).reshape(2, 2), shape)


CROPS.register("fsanet")(
    CropRecipe(
        "fsanet",
        "landmarks",
        _on_extent(_fsanet),
        _fsanet,  # its demos widen a detector box the same way
        outside="clip",
        resize="squash",
        interp="linear",
        reference="FSA-Net TYY_create_db_type1.py (train and test) and demo/*.py, ad = 0.6",
    )
)
CROPS.register("hopenet")(
    CropRecipe(
        "hopenet",
        "landmarks",
        _on_extent(_hopenet_test),
        _hopenet_detection,
        outside="pad",
        resize="short-side",
        interp="area",
        reference="deep-head-pose code/datasets.py AFLW2000 (k = 0.2) and test_on_video_dlib.py; the same crop in 6DRepNet. "
        "The original took the extent of all 21 AFLW2000 pt2d points, invisible ones stored as -1 included, which drags "
        "the box to the image corner; like FSA-Net's script we drop them (HopelessNet SqueezeNet 1.0 / 1.1 score "
        "5.49 / 5.23 with this crop, 7.56 / 8.06 with the original's, cf. its README 7.33 / 7.82)",
    )
)
CROPS.register("3ddfa")(
    CropRecipe(
        "3ddfa",
        "landmarks68",
        _on_extent(_3ddfa_landmarks),
        _3ddfa_detection,
        outside="pad",
        resize="squash",
        interp="linear",
        reference="3DDFA_V2 utils/functions.py parse_roi_box_from_landmark / parse_roi_box_from_bbox, crop_img",
    )
)
CROPS.register("square-1.5")(
    CropRecipe(
        "square-1.5",
        "landmarks",
        _on_extent(_square(1.5)),
        _square(1.5),
        outside="pad",
        resize="squash",
        interp="area",
        reference="openheadpose: a square 1.5 x the longer side of the box, black outside the image",
    )
)

CROPS.register("face-1.1")(
    CropRecipe(
        "face-1.1",
        "landmarks68",
        _on_extent(_square(1.1)),
        _square(1.1 * 0.953, 0.07 / (1.1 * 0.953)),  # BlazeFace box -> the same square, see reference
        outside="edge",
        resize="squash",
        interp="area",
        reference="openheadpose: a square 1.1 x the longer side of the 68-landmark extent (hidden contour points included, "
        "as AFLW2000's pt3d_68 and headpose synth's pt2d), border pixels repeated outside the image; for models trained "
        "on headpose synth's tight AFLW photos. From a detector box: the 68-point extent is 0.953 x the box's longer "
        "side and its centre 0.07 side lower (medians over 1476 aflw-yaw photos, BlazeFace, `python tools/fit_detection_crop.py "
        "/work/synth/aflw/val /work/synth/aflw/train --limit 1500`)",
    )
)

CROPS.register("shaw")(
    CropRecipe(
        "shaw",
        "landmarks68",
        _shaw_landmarks,
        _shaw_detection,
        outside="clip",
        resize="squash",
        interp="linear",
        reference="Shaw-git/Lightweight-Head-Pose-Estimation utils/tools.py cropFace (scale 1.2), cv2.resize to 224",
    )
)
