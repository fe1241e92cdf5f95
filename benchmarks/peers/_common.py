"""Small helpers shared by the peer adapters: input checks, normalisation, bin decoding.

Dimension legend: B crops, S input side, K bins.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: ImageNet statistics for RGB inputs scaled to [0, 1] (torchvision's ``Normalize``).
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)

#: Threads for every PyTorch peer: benchmarks compare models on the same two CPU cores.
TORCH_THREADS = 2


def check_crops(crops: np.ndarray, size: int, name: str) -> np.ndarray:
    """Validate ``(B, S, S, 3)`` RGB uint8 crops and return them as an array.

    Raises:
        ValueError: wrong shape or dtype; the message names the model and what it expects.
    """
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[1:] != (size, size, 3) or crops.dtype != np.uint8:
        raise ValueError(f"{name} expects (B, {size}, {size}, 3) RGB uint8 crops, got {crops.shape} {crops.dtype}")
    return crops


def to_nchw(crops: np.ndarray, mean, std, bgr: bool = False, scale: float = 1.0) -> np.ndarray:
    """``(B, S, S, 3)`` uint8 RGB -> ``(B, 3, S, S)`` float32 ``(x * scale - mean) / std``.

    Args:
        mean, std: scalars or per-channel ``(3,)`` in the *output* channel order.
        bgr: reverse the channels first (models trained on ``cv2.imread`` pictures).
        scale: applied before the mean, e.g. ``1 / 255`` for ImageNet statistics.
    """
    x = crops[..., ::-1] if bgr else crops
    x = x.astype(np.float32) * np.float32(scale)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def softmax_expectation(logits: np.ndarray, first: float, step: float) -> np.ndarray:
    """Expected value ``(B,)`` of a binned angle head ``(B, K)``: ``sum(softmax * (first + step * i))``.

    Hopenet-style heads are decoded this way (softmax over the bins, then the
    mean of the bin values ``first + step * i``, i = 0..K-1).
    """
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    values = first + step * np.arange(z.shape[1])
    return p @ values


def require_file(path: Path) -> Path:
    """``path`` if it is a file, else a ``FileNotFoundError`` that says where it was looked for."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"peer weights not found: {path} (pass the shared weights folder, e.g. ../shared/weights)")
    return path


def torch_setup():
    """Import torch for CPU inference with :data:`TORCH_THREADS` threads and return the module."""
    import torch

    torch.set_num_threads(TORCH_THREADS)
    return torch
