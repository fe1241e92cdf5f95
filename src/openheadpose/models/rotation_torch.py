"""PyTorch twins of the few :mod:`openheadpose.core.rotation` functions that training needs.

Each one is tested against its numpy original (``tests/test_models_small.py``,
``tests/test_train.py``); the conventions are those of :mod:`openheadpose.core.rotation`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rotation_from_6d(d6: torch.Tensor) -> torch.Tensor:
    """Gram-Schmidt the 6D representation ``(*, 6)`` into rotations ``(*, 3, 3)``.

    Convention:
        The same as :func:`openheadpose.core.rotation.from_6d`: ``d6 = [a, b]``, the
        first column is ``a / |a|``, the second the normalised part of ``b``
        orthogonal to it, the third their cross product (det +1). 6DRepNet's
        ``compute_rotation_matrix_from_ortho6d`` gives the same matrix.
    """
    a, b = d6[..., :3], d6[..., 3:]
    # F.normalize divides by max(|v|, eps): a zero vector gives zeros, not NaN.
    x = F.normalize(a, dim=-1)
    y = F.normalize(b - (x * b).sum(-1, keepdim=True) * x, dim=-1)
    z = torch.linalg.cross(x, y, dim=-1)
    return torch.stack([x, y, z], dim=-1)


def geodesic_angle(R1: torch.Tensor, R2: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Angle in radians of ``R1.T @ R2`` for rotations ``(*, 3, 3)``, shape ``(*)``.

    ``cos = (trace(R1.T R2) - 1) / 2`` is clamped to ``[-1 + eps, 1 - eps]`` before
    ``acos``: its gradient ``-1 / sqrt(1 - cos^2)`` is infinite at +-1, which is
    exactly where a perfect (or a 180-degree) prediction sits. The price is an
    angle floor of ``acos(1 - eps)`` (0.026 degrees for eps = 1e-7). For an
    accurate distance use :func:`openheadpose.core.rotation.geodesic_distance`.
    """
    cos = ((R1 * R2).sum(dim=(-2, -1)) - 1.0) / 2.0  # trace(R1.T @ R2) without the matmul
    return torch.acos(torch.clamp(cos, -1.0 + eps, 1.0 - eps))


def geodesic_loss(R_pred: torch.Tensor, R_true: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Mean geodesic angle in radians between predicted and true rotations (6DRepNet's loss)."""
    return geodesic_angle(R_pred, R_true, eps).mean()


def matrix_to_euler_torch(R: torch.Tensor) -> torch.Tensor:
    """Differentiable AFLW Euler angles ``(*, 3)`` (yaw, pitch, roll) in degrees from rotations ``(*, 3, 3)``.

    The torch twin of :func:`openheadpose.core.rotation.matrix_to_euler` (AFLW) away from
    gimbal lock (|yaw| = 90 deg, where the numpy version sets roll to 0; here the
    angles stay finite and the gradient of yaw stays finite too).

    Convention:
        ``R = (Rz(roll) @ Ry(yaw) @ Rx(pitch)).T`` in ``Frame.GL``, so with
        ``M = R.T``: ``yaw = atan2(-M[2,0], hypot(M[0,0], M[1,0]))``,
        ``pitch = atan2(M[2,1], M[2,2])``, ``roll = atan2(M[1,0], M[0,0])``.
        Yaw in [-90, 90], pitch and roll in (-180, 180].
    """
    m20, m00, m10 = R[..., 0, 2], R[..., 0, 0], R[..., 0, 1]  # M[i, j] = R[j, i]
    m21, m22 = R[..., 1, 2], R[..., 2, 2]
    # sqrt with a floor: its gradient at exactly 0 (gimbal lock) would be infinite.
    cy = torch.sqrt(m00 * m00 + m10 * m10 + 1e-12)
    yaw = torch.atan2(-m20, cy)
    pitch = torch.atan2(m21, m22)
    roll = torch.atan2(m10, m00)
    return torch.rad2deg(torch.stack([yaw, pitch, roll], dim=-1))
