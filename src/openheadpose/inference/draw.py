"""Draw head poses on images: axes, cubes, boxes and angle labels.

Pure OpenCV + numpy. Images are RGB ``uint8`` arrays ``(H, W, 3)``; every public
function returns a new array and never writes into the caller's one.

Dimension legend: N heads, P points.

Projection:
    Drawing is orthographic (weak perspective): a head-frame vector ``v`` is
    rotated into the camera with ``R @ v`` (``Frame.GL``, see
    :mod:`openheadpose.core.rotation`), its depth is dropped, and GL axes map to the
    image as ``u = cx + s * x``, ``v = cy - s * y`` (image y points down, GL y up).
    Good enough to show a direction; it is not the camera's true perspective.

Colours (RGB):
    head x axis (the person's left) red, y axis (top of the head) green,
    z axis (out through the nose, the facing direction) blue.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from openheadpose.inference.results import Heads

__all__ = [
    "AXIS_COLOURS",
    "project_points",
    "project_axes",
    "draw_axes",
    "draw_cube",
    "draw_box",
    "draw_label",
    "annotate",
    "POSE_LEGEND",
    "distance_text",
]

Colour = tuple[int, int, int]

AXIS_COLOURS: tuple[Colour, Colour, Colour] = ((230, 40, 40), (40, 200, 40), (40, 90, 255))
"""RGB colours of the head's x, y and z axes."""

_BOX_COLOUR: Colour = (255, 200, 0)
_CUBE_COLOUR: Colour = (200, 200, 200)
_CUBE_FRONT_COLOUR: Colour = (255, 60, 200)

# Unit cube corners (head frame, GL axes) and its 12 edges; corners 4..7 are the
# front face (z = +1/2, the side the nose points out of).
_CUBE = np.array(
    [[x, y, z] for z in (-0.5, 0.5) for (x, y) in ((-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5))]
)
_CUBE_BACK_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0)]
_CUBE_SIDE_EDGES = [(0, 4), (1, 5), (2, 6), (3, 7)]
_CUBE_FRONT_EDGES = [(4, 5), (5, 6), (6, 7), (7, 4)]


# --------------------------------------------------------------------------- geometry


def project_points(points: np.ndarray, R: np.ndarray, centre_xy: Sequence[float], scale: float) -> np.ndarray:
    """Orthographically project head-frame points into the image.

    Args:
        points: ``(P, 3)`` points in head axes (``Frame.GL``), any unit.
        R: ``(3, 3)`` head-to-camera rotation in ``Frame.GL``.
        centre_xy: image position ``(x, y)`` in pixels of the head origin.
        scale: pixels per point unit.

    Returns:
        ``(P, 2)`` float image coordinates ``(x right, y down)``.

    Convention:
        ``X = R @ p`` (camera GL axes); ``u = cx + scale * X_x``,
        ``v = cy - scale * X_y`` (image y is down, GL y is up).
    """
    cam = np.asarray(points, dtype=np.float64) @ np.asarray(R, dtype=np.float64).T
    cx, cy = float(centre_xy[0]), float(centre_xy[1])
    return np.stack([cx + scale * cam[:, 0], cy - scale * cam[:, 1]], axis=-1)


def project_axes(R: np.ndarray, centre_xy: Sequence[float], length_px: float) -> np.ndarray:
    """Image points of the tips of the head's x, y and z axes.

    Args:
        R: ``(3, 3)`` head-to-camera rotation in ``Frame.GL``.
        centre_xy: image position ``(x, y)`` of the axes' origin, pixels.
        length_px: length in pixels of an axis lying in the image plane.

    Returns:
        ``(3, 2)`` float pixel coordinates of the x (red, person's left),
        y (green, top of head) and z (blue, facing direction) tips.
        Orthographic projection (see the module docstring): an axis pointing at
        the camera shrinks to the centre.

    Example:
        >>> from openheadpose.core.rotation import euler_to_matrix
        >>> tips = project_axes(euler_to_matrix(30.0, 0.0, 0.0), (100, 100), 50)
        >>> bool(tips[2, 0] < 100)   # positive yaw: the nose points to the image's left
        True
    """
    return project_points(np.eye(3), R, centre_xy, length_px)


# --------------------------------------------------------------------------- helpers


def check_image(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(
            f"expected an RGB uint8 image of shape (H, W, 3), got dtype {img.dtype} shape {img.shape}; "
            "convert with np.asarray(..., np.uint8) and cv2.cvtColor(..., cv2.COLOR_GRAY2RGB) if needed"
        )
    return img


def line_thickness(img: np.ndarray) -> int:
    """Line thickness that stays visible from thumbnails to 4K frames."""
    return max(1, int(round(min(img.shape[:2]) / 300)))


def font_scale(img: np.ndarray) -> float:
    return max(0.35, min(img.shape[:2]) / 900)


def to_point(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]))), int(round(float(p[1])))


def _axes_inplace(img: np.ndarray, R: np.ndarray, centre, length: float, thickness: int) -> None:
    tips = project_axes(R, centre, length)
    o = to_point(np.asarray(centre, dtype=np.float64))
    depth = np.asarray(R, dtype=np.float64)[2, :]  # camera z of each axis: larger = nearer the viewer
    for i in np.argsort(depth):  # far axes first, so nearer ones are drawn on top
        cv2.arrowedLine(img, o, to_point(tips[i]), AXIS_COLOURS[i], thickness, cv2.LINE_AA, tipLength=0.15)


def _cube_inplace(img: np.ndarray, R: np.ndarray, centre, size: float, thickness: int) -> None:
    pts = project_points(_CUBE, R, centre, size)
    depth = (_CUBE @ np.asarray(R, dtype=np.float64).T)[:, 2]
    edges = _CUBE_BACK_EDGES + _CUBE_SIDE_EDGES
    for a, b in sorted(edges, key=lambda e: depth[e[0]] + depth[e[1]]):
        cv2.line(img, to_point(pts[a]), to_point(pts[b]), _CUBE_COLOUR, thickness, cv2.LINE_AA)
    # The face side last and thicker, so it reads as "the front" at any pose.
    for a, b in _CUBE_FRONT_EDGES:
        cv2.line(img, to_point(pts[a]), to_point(pts[b]), _CUBE_FRONT_COLOUR, thickness + 1, cv2.LINE_AA)


def box_inplace(img: np.ndarray, box, colour: Colour, thickness: int) -> None:
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    cv2.rectangle(img, to_point((x1, y1)), to_point((x2, y2)), tuple(int(c) for c in colour), thickness, cv2.LINE_AA)


def _label_size(lines: Sequence[str], scale: float, thickness: int) -> tuple[int, int]:
    """``(width, height)`` in pixels of the text block :func:`label_inplace` draws."""
    sizes = [cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness) for t in lines]
    line_h = max(h + base for (_, h), base in sizes)
    gap = pad = max(2, line_h // 4)
    return max(w for (w, _), _ in sizes) + 2 * pad, len(lines) * line_h + (len(lines) - 1) * gap + 2 * pad


def label_inplace(
    img: np.ndarray, lines: Sequence[str], anchor_xy, colour: Colour, scale: float, thickness: int, top_left: bool = False
) -> None:
    """Text lines on a dark translucent block; ``anchor_xy`` is its bottom-left corner (top-left
    with ``top_left``), moved to keep the block inside the image."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    if not lines:
        return
    sizes = [cv2.getTextSize(t, font, scale, thickness) for t in lines]
    line_h = max(h + base for (_, h), base in sizes)
    gap = pad = max(2, line_h // 4)
    block_w, block_h = _label_size(lines, scale, thickness)
    H, W = img.shape[:2]
    top = float(anchor_xy[1]) if top_left else float(anchor_xy[1]) - block_h
    x0 = int(np.clip(round(float(anchor_xy[0])), 0, max(0, W - block_w)))
    y0 = int(np.clip(round(top), 0, max(0, H - block_h)))
    x1, y1 = min(W - 1, x0 + block_w), min(H - 1, y0 + block_h)
    # Dark translucent background so the text reads on any picture.
    roi = img[y0 : y1 + 1, x0 : x1 + 1]
    roi[...] = (roi.astype(np.float32) * 0.35).astype(np.uint8)
    y = y0 + pad
    for text, ((_, h), base) in zip(lines, sizes):
        y += h
        cv2.putText(img, text, (x0 + pad, y), font, scale, colour, thickness, cv2.LINE_AA)
        y += base + gap


def _overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection areas of box ``a`` ``(4,)`` with boxes ``b`` ``(M, 4)``."""
    w = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    return w * h


def place_labels(
    boxes: np.ndarray, sizes: Sequence[tuple[int, int]], image_wh: tuple[int, int], margin: int = 3, avoid: np.ndarray | None = None
) -> np.ndarray:
    """Top-left corners ``(N, 2)`` for N labels of ``sizes`` ``(w, h)`` beside N face ``boxes`` ``(N, 4)``.

    Each label goes to the first of its candidate places -- above its box, below it, beside
    it, then further above -- that lies in the image and overlaps neither a face box, nor a
    label placed before, nor a box of ``avoid`` ``(M, 4)`` (the axes' arrowheads, weighted
    four times: small, but they carry the pose); where no place is free, to the one that
    covers least. Labels are placed top to bottom.

    >>> place_labels(np.array([[10.0, 50, 60, 100], [30.0, 60, 80, 110]]), [(40, 10), (40, 10)], (200, 200)).tolist()
    [[10.0, 37.0], [30.0, 113.0]]
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    W, H = image_wh
    corners = np.zeros((len(boxes), 2))
    placed: list[np.ndarray] = []
    for i in np.argsort(boxes[:, 1], kind="stable"):
        x1, y1, x2, y2 = boxes[i]
        w, h = sizes[i]
        cands = [(x1, y1 - h - margin), (x2 - w, y1 - h - margin), (x1, y2 + margin), (x2 - w, y2 + margin),
                 (x2 + margin, y1), (x1 - w - margin, y1), (x2 + margin, y2 - h), (x1 - w - margin, y2 - h)]
        cands += [(x1, y1 - (k + 1) * (h + margin)) for k in range(1, 4)] + [(x1, y2 + margin + k * (h + margin)) for k in range(1, 4)]
        best, best_cost = None, np.inf
        for cx, cy in cands:
            cx, cy = float(np.clip(cx, 0, max(0, W - w))), float(np.clip(cy, 0, max(0, H - h)))
            rect = np.array([cx, cy, cx + w, cy + h])
            cost = _overlap(rect, boxes).sum() + (_overlap(rect, np.array(placed)).sum() if placed else 0.0)
            if avoid is not None and len(avoid):
                cost += 4.0 * _overlap(rect, avoid).sum()
            if cost < best_cost:
                best, best_cost = rect, cost
            if cost == 0:
                break
        placed.append(best)
        corners[i] = best[:2]
    return corners


# --------------------------------------------------------------------------- public drawing


def draw_axes(img: np.ndarray, R: np.ndarray, centre: Sequence[float], length: float) -> np.ndarray:
    """Draw the head's x (red), y (green) and z (blue, facing) axes as arrows.

    Args:
        img: RGB ``uint8`` image ``(H, W, 3)``; not modified.
        R: ``(3, 3)`` head-to-camera rotation in ``Frame.GL``.
        centre: ``(x, y)`` pixel position of the axes' origin.
        length: axis length in pixels (orthographic, see :func:`project_axes`).

    Returns:
        A new image with the axes drawn.
    """
    out = check_image(img).copy()
    _axes_inplace(out, R, centre, length, line_thickness(out))
    return out


def draw_cube(img: np.ndarray, R: np.ndarray, centre: Sequence[float], size: float) -> np.ndarray:
    """Draw a cube turned with the head; its front face (the face side, +z) is magenta.

    Args:
        img: RGB ``uint8`` image ``(H, W, 3)``; not modified.
        R: ``(3, 3)`` head-to-camera rotation in ``Frame.GL``.
        centre: ``(x, y)`` pixel position of the cube's centre.
        size: edge length in pixels.

    Returns:
        A new image with the cube drawn (orthographic projection).
    """
    out = check_image(img).copy()
    _cube_inplace(out, R, centre, size, line_thickness(out))
    return out


def draw_box(img: np.ndarray, box: Sequence[float], colour: Colour = _BOX_COLOUR) -> np.ndarray:
    """Draw an ``[x1, y1, x2, y2]`` pixel box in ``colour`` (RGB).

    Returns:
        A new image with the rectangle drawn.
    """
    out = check_image(img).copy()
    box_inplace(out, box, colour, line_thickness(out))
    return out


def draw_label(
    img: np.ndarray,
    text_lines: Sequence[str] | str,
    anchor_xy: Sequence[float],
    colour: Colour = (255, 255, 255),
) -> np.ndarray:
    """Write lines of text on a dark background box, sized to the image.

    Args:
        img: RGB ``uint8`` image ``(H, W, 3)``; not modified.
        text_lines: one string per line (a single string is one line). OpenCV's
            Hershey fonts are ASCII only: write ``+/-``, not ``±``.
        anchor_xy: bottom-left corner ``(x, y)`` of the text block in pixels;
            the block is shifted to stay inside the image.
        colour: RGB text colour.

    Returns:
        A new image with the label drawn.
    """
    out = check_image(img).copy()
    lines = [text_lines] if isinstance(text_lines, str) else list(text_lines)
    scale = font_scale(out)
    label_inplace(out, lines, anchor_xy, colour, scale, max(1, int(round(scale * 1.5))))
    return out


def _angle_text(yaw: float, pitch: float, roll: float, sigma: np.ndarray | None, angles=("yaw", "pitch", "roll")) -> str:
    """Short: ``y+29 p-19 r-32`` (whole degrees), each with ``~sigma`` when there is one; an
    angle the model does not estimate (RealHePoNet's roll) is left out.

    >>> _angle_text(28.7, -19.2, -31.7, None), _angle_text(1.0, 2.0, 3.0, np.array([5.2, 6.0, 3.4]))
    ('y+29 p-19 r-32', 'y+1~5 p+2~6 r+3~3')
    >>> _angle_text(1.0, 2.0, 0.0, np.array([5.2, 6.0, 18.0]), ("yaw", "pitch"))
    'y+1~5 p+2~6'
    """
    s = None if sigma is None else np.asarray(sigma, dtype=np.float64)
    parts = []
    for k, (letter, name, v) in enumerate((("y", "yaw", yaw), ("p", "pitch", pitch), ("r", "roll", roll))):
        if name in angles:
            parts.append(f"{letter}{v:+.0f}" + ("" if s is None else f"~{s[k]:.0f}"))
    return " ".join(parts)


def distance_text(position: np.ndarray | None, sigma: np.ndarray | None) -> str:
    """A head's distance from the camera, short: ``1.45m~0.19`` (metres, with sigma along the
    line of sight); empty when the head has no position.

    >>> distance_text(np.array([0.3, 0.0, -0.4]), np.array([0.03, 0.01, 0.04]))
    '0.50m~0.04'
    >>> distance_text(None, None), distance_text(np.full(3, np.nan), None)
    ('', '')
    """
    if position is None or not np.isfinite(position).all():
        return ""
    p = np.asarray(position, np.float64)
    d = float(np.linalg.norm(p))
    if sigma is None or not np.isfinite(sigma).all():
        return f"{d:.2f}m"
    s = float(np.sqrt(np.sum((p / max(d, 1e-9)) ** 2 * np.asarray(sigma, np.float64) ** 2)))
    return f"{d:.2f}m~{s:.2f}"


def annotate(img: np.ndarray, heads: Heads, style: str = "axes", show_angles: bool = True, show_distance: bool = False, legend: bool = False) -> np.ndarray:
    """Draw every head: its box, its pose (axes or cube) and its angles.

    Args:
        img: RGB ``uint8`` image ``(H, W, 3)``; not modified.
        heads: the N heads to draw (boxes ``(N, 4)``, rotations ``(N, 3, 3)``,
            optional sigma ``(N, 3)`` in degrees).
        style: ``"axes"`` (x red, y green, z blue) or ``"cube"`` (front face magenta).
        show_angles: write each head's angles, short (``y+29 p-19 r-32``: yaw,
            pitch, roll in whole AFLW degrees, each ``~sigma`` when the heads carry it;
            ``#id`` first on a tracked stream) beside its box, placed so that no label
            covers another label, a face or an axis's arrowhead; written smaller where the
            image is narrower than the label.
        legend: write :data:`POSE_LEGEND` in the corner that covers no face
            (``headpose predict --save`` does), where it fits.
        show_distance: add each head's distance from the camera to its label
            (:func:`distance_text`; ``Heads.positions``).

    Returns:
        A new image of the same shape and dtype.

    The pose glyph is centred on the box centre with length 0.6 x the box's
    mean side, drawn orthographically.
    """
    if style not in ("axes", "cube"):
        raise ValueError(f"style must be 'axes' or 'cube', got {style!r}")
    out = check_image(img).copy()
    if len(heads) == 0:
        return out
    thick = line_thickness(out)
    scale = font_scale(out)
    text_thick = max(1, int(round(scale * 1.5)))
    tips = []  # the arrowheads, which no label may hide
    for i in range(len(heads)):
        box = np.asarray(heads.boxes[i], dtype=np.float64)
        centre = ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)
        side = 0.5 * ((box[2] - box[0]) + (box[3] - box[1]))
        box_inplace(out, box, _BOX_COLOUR, thick)
        if style == "axes":
            _axes_inplace(out, heads.rotations[i], centre, 0.6 * side, thick)
            r = max(3.0, 0.15 * 0.6 * side)  # the arrowhead's size (tipLength 0.15)
            tips.append(np.array([[x - r, y - r, x + r, y + r] for x, y in project_axes(heads.rotations[i], centre, 0.6 * side)]))
        else:
            _cube_inplace(out, heads.rotations[i], centre, 0.6 * side, thick)
    if show_angles or show_distance:
        e = heads.euler
        texts = [
            _angle_text(float(e.yaw[i]), float(e.pitch[i]), float(e.roll[i]), None if heads.sigma is None else heads.sigma[i], heads.angles)
            if show_angles else ""
            for i in range(len(heads))
        ]
        if show_distance and heads.positions is not None:
            sig = heads.position_sigma
            texts = [(t + " " + distance_text(heads.positions[i], None if sig is None else sig[i])).strip() for i, t in enumerate(texts)]
        if heads.track_ids is not None:
            texts = [f"#{int(t)} {text}" for t, text in zip(heads.track_ids, texts)]
        # a label wider than the image (a 112 px photo) is written smaller, then on more lines: never cut off
        scales = [fit_scale(t, scale, text_thick, out.shape[1]) for t in texts]
        blocks = [wrap_label(t, sc, text_thick, out.shape[1]) for t, sc in zip(texts, scales)]
        sizes = [_label_size(b, sc, text_thick) for b, sc in zip(blocks, scales)]
        corners = place_labels(heads.boxes, sizes, (out.shape[1], out.shape[0]), margin=thick + 1, avoid=np.concatenate(tips) if tips else None)
        for block, corner, sc in zip(blocks, corners, scales):
            label_inplace(out, block, corner, (255, 255, 255), sc, text_thick, top_left=True)
    if legend:
        draw_legend_inplace(out, [POSE_LEGEND if show_angles and heads.sigma is not None and len(heads.sigma) else POSE_LEGEND.split(", ~")[0]], heads.boxes)
    return out


#: What an angle label says (``annotate``'s legend; README "Reading the pictures").
POSE_LEGEND = "y yaw  p pitch  r roll (deg), ~ 1 sigma"


def fit_scale(text: str, scale: float, thickness: int, width: int, min_scale: float = 0.25) -> float:
    """``scale``, or the smaller one at which ``text``'s label fits ``width`` pixels (not below ``min_scale``)."""
    w = _label_size([text], scale, thickness)[0]
    if w <= width:
        return scale
    return max(min_scale, scale * (width - 2) / w)


def wrap_label(text: str, scale: float, thickness: int, width: int) -> list[str]:
    """``text`` as lines whose label fits ``width`` pixels, broken between words (one word a line at most).

    >>> wrap_label("#0 y-19~4 p-17~5 r+1~2", 0.35, 1, 80)
    ['#0 y-19~4', 'p-17~5', 'r+1~2']
    """
    lines: list[str] = []
    for word in text.split():
        if lines and _label_size([lines[-1] + " " + word], scale, thickness)[0] <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [text]


def draw_legend_inplace(img: np.ndarray, lines: Sequence[str], boxes: np.ndarray | None = None) -> bool:
    """A legend in the image corner (of the four) that covers the least of ``boxes`` ``(N, 4)``,
    written smaller where the image is narrow; left out (returns False) where it would not
    fit at a readable size or would cover a face more than a corner's share."""
    scale = font_scale(img) * 0.85
    thick = max(1, int(round(scale * 1.2)))
    H, W = img.shape[:2]
    scale = min(fit_scale(t, scale, thick, W) for t in lines)
    w, h = _label_size(list(lines), scale, thick)
    if w > W or h > H / 4 or scale < 0.3:
        return False
    b = np.zeros((0, 4)) if boxes is None else np.asarray(boxes, np.float64).reshape(-1, 4)
    corners = [(0, H - h), (W - w, H - h), (0, 0), (W - w, 0)]
    costs = [_overlap(np.array([x, y, x + w, y + h], np.float64), b).sum() if len(b) else 0.0 for x, y in corners]
    x, y = corners[int(np.argmin(costs))]
    label_inplace(img, list(lines), (x, y), (235, 235, 235), scale, thick, top_left=True)
    return True
