"""Re-rendering a fitted photo at a new head pose (300W-LP-style face profiling).

The photo becomes a 2.5D scene, one vertex per pixel centre, each with a depth:

* **face**: the fitted morphable model's dense vertices (53,215) splatted into
  a depth buffer (the nearest vertex per pixel wins; small holes closed);
* **head**: around the face (forehead, hair, ears, the back of the head) the
  front surface of a head ellipsoid fixed in head axes (:data:`HEAD_ELLIPSOID`);
* **background**: beyond the head's outline, the depth of the ray's closest
  approach to the ellipsoid centre -- continuous with the head at its outline.

Every vertex keeps its own pixel as its texture coordinate. A new pose ``R_t``
moves the head part rigidly about the ellipsoid centre by ``R_t R_0^T``; the
motion fades out over the background (weight 1 on the head, Gaussian decay with
the distance from its outline, 0 far away), so the picture stays a whole photo:
the region a turning head uncovers is filled by the stretched surroundings (as
in 300W-LP), what it covers is hidden by the z-buffer.

The rasteriser (:func:`rasterize`) is plain numpy: per-triangle bounding boxes,
barycentric coordinates at pixel centres, nearest fragment per pixel.

Conventions: image pixels ``(u, v)`` with integer pixel centres, y down; camera
millimetres ``(x, y, z)`` in ``Frame.GL`` (y up, z towards the viewer) with
``u = tx + s x``, ``v = ty - s y`` (see :mod:`openheadpose.synth.fit`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from openheadpose.synth.bfm import MorphableModel
from openheadpose.synth.fit import FitResult, project

__all__ = ["HEAD_ELLIPSOID", "Scene", "build_scene", "rasterize", "render", "shift_at", "grid_triangles"]

#: Head ellipsoid in head axes (mm): centre and semi-axes (x: half breadth with hair,
#: y: half height, z: half length). In these axes the eyes are at y = 38, the ears
#: (BFM contour vertices 0 / 16) at y = 30, z = -71 and the nose tip at z = 41: the
#: centre sits 15 mm above the ear line, in the middle of the skull; the semi-axes
#: follow adult head breadth (~150 mm + hair), length (~200 mm) and the
#: vertex-to-chin height (~235 mm), so the bottom reaches the chin, not the neck.
HEAD_ELLIPSOID = (np.array([0.0, 45.0, -70.0]), np.array([80.0, 118.0, 100.0]))


@dataclass
class Scene:
    """A photo turned into a per-pixel 2.5D mesh.

    Attributes:
        image: ``(H, W, 3)`` uint8 photo.
        points: ``(H, W, 3)`` camera mm of every pixel centre.
        weight: ``(H, W)`` how much each pixel follows the head (1 head, 0 static).
        face: ``(H, W)`` bool, pixels covered by the fitted face.
        fit: the fit the scene came from.
        pivot: ``(3,)`` camera mm, the head ellipsoid centre (the centre of rotation).
    """

    image: np.ndarray
    points: np.ndarray
    weight: np.ndarray
    face: np.ndarray
    fit: FitResult
    pivot: np.ndarray


def _face_depth(model: MorphableModel, fit: FitResult, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Depth ``(H, W)`` (mm, -inf where no face) and mask of the fitted face, by splatting its vertices."""
    h, w = shape
    uvz = project(model.vertices(fit.coeffs), fit.rotation, fit.scale, fit.shift)
    iu, iv = np.rint(uvz[:, 0]).astype(np.int64), np.rint(uvz[:, 1]).astype(np.int64)
    ok = (iu >= 0) & (iu < w) & (iv >= 0) & (iv < h)
    depth = np.full(h * w, -np.inf, np.float32)
    np.maximum.at(depth, iv[ok] * w + iu[ok], uvz[ok, 2].astype(np.float32))
    depth = depth.reshape(h, w)
    hit = np.isfinite(depth)
    # close pinholes (a vertex spacing above a pixel): fill from the neighbourhood's nearest surface
    k = min(max(3, int(2 * np.ceil(fit.scale * 2.5)) + 1), 31)  # ~ 2.5 mm, the BFM vertex spacing
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    mask = cv2.morphologyEx(hit.astype(np.uint8), cv2.MORPH_CLOSE, kernel).astype(bool)
    filled = cv2.dilate(np.where(hit, depth, -1e6).astype(np.float32), kernel)
    depth = np.where(hit, depth, np.where(mask, filled, -np.inf))
    return depth, mask & np.isfinite(depth)


def _ellipsoid_depth(points_xy: np.ndarray, fit: FitResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For camera ``(x, y)`` ``(N, 2)``: front-surface depth of the head ellipsoid, whether the ray hits it, and the centre (camera mm)."""
    c_h, radii = HEAD_ELLIPSOID
    R = fit.rotation
    c = R @ c_h
    A = R @ np.diag(1.0 / radii**2) @ R.T
    dx, dy = points_xy[:, 0] - c[0], points_xy[:, 1] - c[1]
    a = A[2, 2]
    b = A[2, 0] * dx + A[2, 1] * dy
    q = A[0, 0] * dx**2 + 2 * A[0, 1] * dx * dy + A[1, 1] * dy**2 - 1.0
    disc = b * b - a * q
    hit = disc >= 0
    z = c[2] + (-b + np.sqrt(np.maximum(disc, 0.0))) / a  # at the outline the root is -b/a: continuous
    return z, hit, c


def build_scene(image: np.ndarray, fit: FitResult, model: MorphableModel, fade: float = 0.5) -> Scene:
    """Turn ``image`` (BGR uint8) and its fit into a :class:`Scene`.

    Args:
        fade: the head's motion decays over the background as ``exp(-(d / (fade r))^2)``,
            ``d`` the distance from the head outline and ``r`` the head's half width (both pixels).
    """
    h, w = image.shape[:2]
    s, t = fit.scale, fit.shift
    vv, uu = np.mgrid[0:h, 0:w].astype(np.float64)
    xy = np.stack([(uu - t[0]) / s, -(vv - t[1]) / s], -1).reshape(-1, 2)
    z_head, on_head, centre = _ellipsoid_depth(xy, fit)
    z_face, face = _face_depth(model, fit, (h, w))
    z = np.where(face.ravel(), z_face.ravel(), z_head)
    head = (on_head.reshape(h, w) | face).astype(np.uint8)
    dist = cv2.distanceTransform(1 - head, cv2.DIST_L2, 5)
    r = HEAD_ELLIPSOID[1][0] * s
    weight = np.exp(-((dist / (fade * r)) ** 2)).astype(np.float64)
    points = np.concatenate([xy, z[:, None]], 1).reshape(h, w, 3)
    return Scene(image, points, weight, face, fit, centre)


def grid_triangles(h: int, w: int) -> np.ndarray:
    """``(2 (h-1)(w-1), 3)`` triangles over an ``h x w`` grid of vertices (row-major)."""
    i = (np.arange(h - 1)[:, None] * w + np.arange(w - 1)[None, :]).ravel()
    return np.concatenate([np.stack([i, i + 1, i + w], 1), np.stack([i + 1, i + w + 1, i + w], 1)])


def rasterize(
    uv: np.ndarray, depth: np.ndarray, triangles: np.ndarray, shape: tuple[int, int], attributes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Z-buffered rasterisation of a triangle mesh at integer pixel centres.

    Args:
        uv: ``(N, 2)`` vertex pixel positions; depth: ``(N,)`` (larger = nearer).
        triangles: ``(T, 3)`` vertex indices.
        shape: ``(H, W)`` of the output.
        attributes: ``(N, A)`` per-vertex values interpolated barycentrically.

    Returns:
        ``(H, W, A)`` interpolated attributes of the nearest surface, and the
        ``(H, W)`` bool coverage mask.
    """
    h, w = shape
    p = uv[triangles]  # (T, 3, 2)
    lo = np.ceil(p.min(1) - 1e-6).astype(np.int64)  # a vertex 1e-13 px off a pixel centre still covers it
    hi = np.floor(p.max(1) + 1e-6).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [w - 1, h - 1])
    bw, bh = hi[:, 0] - lo[:, 0] + 1, hi[:, 1] - lo[:, 1] + 1
    (a, b, c) = (p[:, 0], p[:, 1], p[:, 2])
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    keep = (bw > 0) & (bh > 0) & (np.abs(area) > 1e-9)
    tri = np.flatnonzero(keep)
    count = (bw * bh)[tri]
    out = np.zeros((h, w, attributes.shape[1]), np.float64)
    if len(tri) == 0:
        return out, np.zeros((h, w), bool)
    f_tri = np.repeat(tri, count)
    start = np.repeat(np.cumsum(count) - count, count)
    local = np.arange(len(f_tri)) - start
    fx = lo[f_tri, 0] + local % bw[f_tri]
    fy = lo[f_tri, 1] + local // bw[f_tri]
    A, B, Cc = a[f_tri], b[f_tri], c[f_tri]
    ar = area[f_tri]
    l1 = ((Cc[:, 0] - B[:, 0]) * (fy - B[:, 1]) - (Cc[:, 1] - B[:, 1]) * (fx - B[:, 0])) / ar
    l2 = ((A[:, 0] - Cc[:, 0]) * (fy - Cc[:, 1]) - (A[:, 1] - Cc[:, 1]) * (fx - Cc[:, 0])) / ar
    l3 = 1.0 - l1 - l2
    eps = -1e-7
    inside = (l1 >= eps) & (l2 >= eps) & (l3 >= eps)
    f_tri, fx, fy, l1, l2, l3 = f_tri[inside], fx[inside], fy[inside], l1[inside], l2[inside], l3[inside]
    vi = triangles[f_tri]
    z = l1 * depth[vi[:, 0]] + l2 * depth[vi[:, 1]] + l3 * depth[vi[:, 2]]
    pix = fy * w + fx
    # nearest fragment first within each pixel: one float sort key, pixel + rank of -z in [0, 1)
    zr = (z.max() - z) / max(float(np.ptp(z)), 1e-12) * 0.999
    order = np.argsort(pix + zr, kind="stable")
    first = np.ones(len(order), bool)
    first[1:] = pix[order][1:] != pix[order][:-1]
    sel = order[first]
    vals = (
        l1[sel, None] * attributes[vi[sel, 0]] + l2[sel, None] * attributes[vi[sel, 1]] + l3[sel, None] * attributes[vi[sel, 2]]
    )
    flat = out.reshape(-1, attributes.shape[1])
    flat[pix[sel]] = vals
    mask = np.zeros(h * w, bool)
    mask[pix[sel]] = True
    return out, mask.reshape(h, w)


def shift_at(scene: Scene, rotation: np.ndarray) -> np.ndarray:
    """Where the model origin appears ``(2,)`` pixels once the head is turned to ``rotation``.

    The head turns about the skull centre (:attr:`Scene.pivot`), not about the model
    origin, so the origin moves: ``X_cam = R_t X + p - (R_t R_0^T) p``.
    """
    delta = np.asarray(rotation, np.float64) @ scene.fit.rotation.T
    d = scene.pivot - delta @ scene.pivot
    return scene.fit.shift + scene.fit.scale * np.array([d[0], -d[1]])


def render(scene: Scene, rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The scene with the head turned to ``rotation`` ``(3, 3)`` (``Frame.GL``, AFLW convention).

    Returns:
        ``(H, W, 3)`` uint8 image and the ``(H, W)`` bool mask of pixels that
        had to be filled (nothing rendered there: folds at the border), filled by inpainting.
    """
    h, w = scene.image.shape[:2]
    delta = np.asarray(rotation, np.float64) @ scene.fit.rotation.T
    P = scene.points.reshape(-1, 3)
    moved = (P - scene.pivot) @ delta.T + scene.pivot
    wgt = scene.weight.reshape(-1, 1)
    Q = P + wgt * (moved - P)
    s, t = scene.fit.scale, scene.fit.shift
    uv = np.stack([t[0] + s * Q[:, 0], t[1] - s * Q[:, 1]], 1)
    vv, uu = np.mgrid[0:h, 0:w]
    src = np.stack([uu.ravel(), vv.ravel()], 1).astype(np.float64)
    tex, covered = rasterize(uv, Q[:, 2], grid_triangles(h, w), (h, w), src)
    mapx = np.where(covered, tex[..., 0], uu).astype(np.float32)
    mapy = np.where(covered, tex[..., 1], vv).astype(np.float32)
    out = cv2.remap(scene.image, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    holes = ~covered
    if holes.any():
        out = cv2.inpaint(out, holes.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    return out, holes
