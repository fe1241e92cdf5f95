"""Inputs of the keypoint pose networks, built from five head keypoints (numpy only, no PyTorch).

HHP-Net reads a 15-vector (:func:`keypoints_to_input`), the heatmap CNN reads
Gaussian maps over a face crop (:func:`to_map_coordinates` + :func:`render_heatmaps`).
The training code (PyTorch), the ONNX backend
(:meth:`openheadpose.inference.backends.onnx.OnnxPoseModel.predict_keypoints`) and the keypoint
sources (:mod:`openheadpose.inference.keypoint_sources`) all build them here, so there is one
rule per input. ``openheadpose.models.hhpnet`` and ``openheadpose.models.heatmap``
re-export these names.

Dimension legend: B heads, K = 5 keypoints, S map side.

Keypoint order (:data:`KEYPOINTS`): COCO's nose, left eye, right eye, left ear,
right ear, where "left" is the **person's** left (on a face looking at the
camera, the left eye has the larger image x).

>>> hm = render_heatmaps(np.array([[[48.0, 40.0], [40, 30], [56, 30], [30, 36], [66, 36]]]))
>>> hm.shape, float(hm[0, 0, 40, 48]), float(hm[0, 5, 40, 48])
((1, 6, 96, 96), 1.0, 0.0)
"""

from __future__ import annotations

import numpy as np

#: COCO head keypoints, in the order both networks read them ("left" is the person's left).
KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")

#: Each keypoint's partner in the mirror image (the left and right eye and ear swap): the one
#: table for training's flip augmentation and the pose stages' mirrored read ([0, 2, 1, 4, 3]).
MIRROR_KEYPOINTS = np.array([KEYPOINTS.index(k.replace("left", "@").replace("right", "left").replace("@", "right")) for k in KEYPOINTS])

#: Length of HHP-Net's input vector.
INPUT_LEN = 15

#: Side of the heatmaps the heatmap CNN reads.
MAP_SIZE = 96

#: Gaussian sigma in map pixels. OpenPose trains its part maps with sigma = 7
#: pixels of its 368-pixel-high input; a face crop run at that height and its
#: maps resized to 96 gives 7 * 96 / 368 ~= 1.83 map pixels.
OPENPOSE_SIGMA = 7.0 * MAP_SIZE / 368.0

#: The :data:`~openheadpose.specs.crops.CROPS` recipe whose box the heatmaps span: a face box
#: widened to a square 1.5 times its longer side, as ``openheadpose.training.data.KeypointInput``
#: trains the heatmap CNN (the spec says ``crop="keypoints"``: no pixels are cut).
HEATMAP_CROP = "square-1.5"


def keypoints_to_input(kps: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Head keypoints in pixels -> HHP-Net input, exactly as the official inference code builds it.

    Steps (``inference_image.py`` + ``utils.normalize_wrt_maximum_distance_point``):

    1. centroid: the mean of the x coordinates that are not 0, and separately of
       the y coordinates that are not 0 (confidence plays no part here);
    2. points with confidence 0 become ``(0, 0)``;
    3. the others are centred on the centroid and divided by the largest
       ``|x - cx|`` (resp. ``|y - cy|``) among them, so they lie in ``[-1, 1]``;
       a zero largest distance (a single point) gives 0;
    4. the vector is ``get_face_points``' interleaved ``(x1, y1, c1, ..., x5, y5, c5)``
       (what the released weights were trained on; see :mod:`openheadpose.models.hhpnet`).

    Args:
        kps: ``(B, 5, 2)`` or ``(5, 2)`` pixel ``(x, y)`` (x right, y down) of
            nose, left eye, right eye, left ear, right ear (the person's left).
            NaN marks a missing point (treated as ``(0, 0)`` with confidence 0).
            Give missing points coordinates 0 (or NaN) so they stay out of the centroid.
        conf: ``(B, 5)`` or ``(5,)`` detector scores in ``[0, 1]``; 0 = invisible.

    Returns:
        ``(B, 15)`` float32.

    >>> kps = np.array([[100.0, 100.0], [110.0, 90.0], [90.0, 90.0], [0.0, 0.0], [80.0, 95.0]])
    >>> x = keypoints_to_input(kps, np.array([0.9, 0.8, 0.8, 0.0, 0.5]))
    >>> x.astype(float).round(3).reshape(5, 3).tolist()
    [[0.333, 1.0, 0.9], [1.0, -0.6, 0.8], [-0.333, -0.6, 0.8], [0.0, 0.0, 0.0], [-1.0, 0.2, 0.5]]
    """
    p = np.asarray(kps, np.float64)
    c = np.asarray(conf, np.float64)
    if p.ndim == 2:
        p, c = p[None], c[None]
    if p.shape[1:] != (5, 2) or c.shape != p.shape[:2]:
        raise ValueError(f"expected keypoints (B, 5, 2) and confidences (B, 5), got {np.shape(kps)} and {np.shape(conf)}")
    missing = ~np.all(np.isfinite(p), axis=-1) | ~np.isfinite(c)
    p = np.where(missing[..., None], 0.0, p)
    c = np.where(missing, 0.0, c)
    if np.any(c < 0):
        raise ValueError("keypoint confidences must be >= 0 (0 marks an invisible point)")
    vis = c > 0.0
    out = np.zeros((len(p), 5, 3))  # (B, K, x/y/c)
    for a in range(2):
        v = p[..., a]  # (B, K)
        nz = v != 0.0
        n = nz.sum(1)
        centre = np.where(n > 0, (v * nz).sum(1) / np.maximum(n, 1), 0.0)[:, None]
        dist = np.where(vis, np.abs(v - centre), 0.0).max(1, initial=0.0)[:, None]
        out[..., a] = np.where(vis & (dist > 0), (v - centre) / np.where(dist > 0, dist, 1.0), 0.0)
    out[..., 2] = c
    return out.reshape(len(p), INPUT_LEN).astype(np.float32)


def render_heatmaps(
    keypoints: np.ndarray,
    confidence: np.ndarray | None = None,
    sigma: float = OPENPOSE_SIGMA,
    size: int = MAP_SIZE,
) -> np.ndarray:
    """Render K Gaussian keypoint maps plus a background map, as OpenPose outputs them.

    Args:
        keypoints: ``(B, K, 2)`` x, y in pixels of the ``size x size`` map
            (pixel centres at integers, x = column, y = row: OpenCV's convention;
            see :func:`to_map_coordinates`). Non-finite rows are invisible.
        confidence: ``(B, K)`` in [0, 1] (clipped), the peak height of each map;
            0 marks an invisible keypoint. ``None``: 1 for every finite keypoint.
        sigma: Gaussian standard deviation in map pixels.
        size: map side S.

    Returns:
        ``(B, K + 1, S, S)`` float32: channel k is ``c_k * exp(-d_k^2 / (2 sigma^2))``
        (``d_k`` the distance to keypoint k), the last channel is ``1 - max_k``
        of the others. An invisible keypoint gives an all-zero channel.
    """
    kp = np.asarray(keypoints, np.float64)
    if kp.ndim != 3 or kp.shape[-1] != 2 or kp.shape[1] == 0:
        raise ValueError(f"keypoints must be (B, K, 2) with K >= 1, got {kp.shape}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    visible = np.all(np.isfinite(kp), axis=-1)
    c = np.ones(kp.shape[:2]) if confidence is None else np.asarray(confidence, np.float64)
    if c.shape != kp.shape[:2]:
        raise ValueError(f"confidence must be {kp.shape[:2]}, got {c.shape}")
    c = np.where(visible & np.isfinite(c), np.clip(c, 0.0, 1.0), 0.0)
    kp = np.where(visible[..., None], kp, 0.0)
    grid = np.arange(size, dtype=np.float64)
    # Separable: the 2D Gaussian is the outer product of a row and a column profile.
    gx = np.exp(-((grid - kp[..., 0:1]) ** 2) / (2.0 * sigma**2))  # (B, K, S)
    gy = np.exp(-((grid - kp[..., 1:2]) ** 2) / (2.0 * sigma**2))
    maps = c[..., None, None] * gy[..., :, None] * gx[..., None, :]  # (B, K, S, S)
    background = 1.0 - maps.max(axis=1, keepdims=True)
    return np.concatenate([maps, background], axis=1).astype(np.float32)


def to_map_coordinates(points: np.ndarray, boxes: np.ndarray, size: int = MAP_SIZE) -> np.ndarray:
    """Image pixels -> pixels of the ``size x size`` map that spans each crop box.

    Matches :func:`openheadpose.specs.crops.take_pixels` with ``resize="squash"``: the
    box ``[x1, y1, x2, y2)`` (x2, y2 exclusive) is stretched onto the map, and a
    pixel centre ``u`` lands on ``(u - x1 + 0.5) * size / (x2 - x1) - 0.5``.

    Args:
        points: ``(B, K, 2)`` x, y in image pixels (NaN rows stay NaN).
        boxes: ``(B, 4)`` crop boxes.

    >>> to_map_coordinates(np.array([[[149.5, 99.5]]]), np.array([[100.0, 50.0, 200.0, 150.0]]), 96).tolist()
    [[[47.5, 47.5]]]
    """
    p = np.asarray(points, np.float64)
    b = np.asarray(boxes, np.float64).reshape(-1, 1, 4)
    scale = size / (b[..., 2:] - b[..., :2])
    return (p - b[..., :2] + 0.5) * scale - 0.5
