"""Training losses, one per codec, masked so that unlabelled angles (NaN) contribute nothing.

Every loss takes the network's raw outputs (the codec's ``outputs``) and a batch of
targets made by :meth:`codec.encode` (see :mod:`openheadpose.training.data`) plus
the label mask, and returns :class:`LossTerms`: a list of ``(weight, sum, count)``
terms whose total is ``sum_k weight_k * sum_k / count_k``. Keeping numerator and
denominator apart lets the engine normalise by the *global* count under
DistributedDataParallel (each rank's share of labelled angles differs when
datasets with partial labels are mixed), so N processes with a global batch B
give the gradient of one process with batch B.

Dimension legend: B faces in the batch, K bins.

Units: Euler angles in degrees (yaw, pitch, roll; AFLW convention of
:mod:`openheadpose.core.rotation`), geodesic distances in radians (6DRepNet's loss).

=================  ==============================================================
codec              loss (per labelled angle or face, then averaged)
=================  ==============================================================
euler              L1 on degrees: FSA-Net / SSR-Net's ``loss="mae"``
binned             cross-entropy on the bin + alpha * MSE on the softmax-expectation
                   angle, per angle (Hopenet; alpha = 0.001, the default of
                   deep-head-pose ``code/train_hopenet.py``; its released 300W-LP
                   models used alpha 1 and 2)
heteroscedastic    Gaussian NLL ``0.5 exp(-s) (y - mu)^2 + 0.5 s``, s = log-variance (HHP-Net)
rot6d              geodesic angle (rad) between the Gram-Schmidt rotation and the label
                   for fully labelled faces; for partly labelled ones (e.g. yaw only)
                   L1 in radians on the labelled angles extracted from the predicted
                   rotation by :func:`matrix_to_euler_torch`
=================  ==============================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
import torch.nn.functional as F

from openheadpose.models.rotation_torch import (
    geodesic_angle,
    matrix_to_euler_torch,
    rotation_from_6d,
)
from openheadpose.specs.codecs import BinnedCodec, get_codec

__all__ = [
    "mirror_consistency",
    "LossTerms",
    "matrix_to_euler_torch",
    "rotation_from_6d",
    "geodesic_angle",
    "EulerL1Loss",
    "BinnedLoss",
    "HeteroscedasticNLL",
    "Rot6DLoss",
    "LOSSES",
    "make_loss",
    "HOPENET_ALPHA",
]

#: Hopenet's regression weight: ``--alpha`` default of deep-head-pose ``code/train_hopenet.py``.
HOPENET_ALPHA = 0.001

Tensor = torch.Tensor


@dataclass
class LossTerms:
    """Loss as ``(weight, sum, count)`` terms; ``total()`` is ``sum_k w_k * s_k / max(n_k, 1)``.

    ``counts`` are plain float tensors (no gradient) so a distributed engine can
    all-reduce them and pass the global counts to :meth:`total`.
    """

    names: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    sums: list[Tensor] = field(default_factory=list)
    counts: list[Tensor] = field(default_factory=list)

    def add(self, name: str, weight: float, s: Tensor, n: Tensor) -> None:
        self.names.append(name)
        self.weights.append(float(weight))
        self.sums.append(s)
        self.counts.append(n.detach().to(torch.float64))

    def count_tensor(self) -> Tensor:
        """``(T,)`` float64 counts, one per term."""
        return torch.stack(self.counts) if self.counts else torch.zeros(0, dtype=torch.float64)

    def total(self, counts: Tensor | None = None, scale: float = 1.0) -> Tensor:
        """The loss. ``counts``: global counts (default: this batch's); ``scale``: multiplies it
        (the world size under DDP, whose gradient averaging divides by it)."""
        counts = self.count_tensor() if counts is None else counts
        out = None
        for w, s, n in zip(self.weights, self.sums, counts):
            t = s * (w * scale / max(float(n), 1.0))
            out = t if out is None else out + t
        return out

    def components(self, counts: Tensor | None = None) -> dict[str, float]:
        """Each term's value (for logs)."""
        counts = self.count_tensor() if counts is None else counts
        return {k: float(w * s.detach() / max(float(n), 1.0)) for k, w, s, n in zip(self.names, self.weights, self.sums, counts)}


# --------------------------------------------------------------------------- rotation helpers (torch)


def _f32(x: Tensor) -> Tensor:
    return x.float()


def _mask(batch: Mapping[str, Tensor]) -> Tensor:
    """``(B, 3)`` float mask of labelled angles."""
    return batch["mask"].to(torch.float32)


# --------------------------------------------------------------------------- losses
class EulerL1Loss:
    """L1 on (yaw, pitch, roll) degrees over labelled angles (FSA-Net's MAE loss)."""

    codec = "euler"

    def __call__(self, out: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> LossTerms:
        m = _mask(batch)
        err = (_f32(out["euler"]) - batch["euler"]).abs() * m
        t = LossTerms()
        t.add("l1", 1.0, err.sum(), m.sum())
        return t


class BinnedLoss:
    """Hopenet: per angle, cross-entropy on the bin + ``alpha`` * MSE on the expectation.

    Both are means over the faces labelled for that angle, and the three angles
    are summed, as in deep-head-pose ``train_hopenet.py`` (which back-propagates
    ``loss_yaw``, ``loss_pitch`` and ``loss_roll`` together).

    Args:
        alpha: regression weight (default :data:`HOPENET_ALPHA` = 0.001).
        codec: the bins; the expectation is the codec's own rule
            ``sum_i softmax_i * i * width + start``.
    """

    codec = "binned"

    def __init__(self, alpha: float = HOPENET_ALPHA, codec: BinnedCodec | None = None):
        self.alpha = float(alpha)
        self.bins = codec or get_codec("binned")

    def expectation(self, logits: Tensor) -> Tensor:
        idx = torch.arange(self.bins.num_bins, device=logits.device, dtype=torch.float32)
        return (torch.softmax(_f32(logits), dim=-1) * idx).sum(-1) * self.bins.width + self.bins.start

    def __call__(self, out: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> LossTerms:
        m = _mask(batch)
        t = LossTerms()
        for k, name in enumerate(self.bins.outputs):
            logits = _f32(out[name])
            mk = m[:, k]
            target = torch.where(mk > 0, batch["bins"][:, k], torch.zeros_like(batch["bins"][:, k]))
            ce = F.cross_entropy(logits, target, reduction="none") * mk
            mse = (self.expectation(logits) - batch["euler"][:, k]) ** 2 * mk
            t.add(f"ce_{name}", 1.0, ce.sum(), mk.sum())
            t.add(f"mse_{name}", self.alpha, mse.sum(), mk.sum())
        return t


class HeteroscedasticNLL:
    """HHP-Net: Gaussian NLL per labelled angle, ``0.5 exp(-s) (y - mu)^2 + 0.5 s``.

    ``s`` is the predicted log-variance in deg^2 (codec ``heteroscedastic``).

    Args:
        beta: beta-NLL (Seitzer et al., ICLR 2022): each term is weighted by the
            stop-gradient of ``sigma^(2 beta)``. ``beta = 0`` is HHP-Net's plain NLL.
            From random initialisation the plain NLL explains the errors away by
            raising ``s`` and the mean never fits: HHP-Net on 3,000 aflw-yaw faces,
            10 epochs of Adam 1e-3, yaw MAE 30.7 deg with beta 0 or 0.5, 11.2 with
            beta 1 (whose mean gradient is MSE's). The minimiser stays the same
            Gaussian: for fixed ``mu`` the weighted term is still minimal at
            ``s = log (y - mu)^2``. Pass ``beta = 0`` to fine-tune imported weights
            with the original loss.
    """

    codec = "heteroscedastic"

    def __init__(self, beta: float = 1.0):
        self.beta = beta

    def __call__(self, out: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> LossTerms:
        m = _mask(batch)
        mu, s = _f32(out["euler"]), _f32(out["log_var"])
        nll = (0.5 * torch.exp(-s) * (batch["euler"] - mu) ** 2 + 0.5 * s) * m
        if self.beta:
            nll = nll * torch.exp(self.beta * s).detach()
        t = LossTerms()
        t.add("nll", 1.0, nll.sum(), m.sum())
        return t


class Rot6DLoss:
    """6DRepNet's geodesic loss, with an Euler fallback for partly labelled faces.

    Per face: the geodesic angle (rad) between the Gram-Schmidt rotation and the
    label when all three angles are labelled; otherwise the mean absolute
    difference, in radians, of the labelled angles extracted from the predicted
    rotation (AFLW convention, :func:`matrix_to_euler_torch`); e.g. yaw-only AFLW
    crops train on yaw. One term: the mean over faces with any label.
    """

    codec = "rot6d"

    def __call__(self, out: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> LossTerms:
        m = _mask(batch)
        R = rotation_from_6d(_f32(out["rot6d"]))
        n_lab = m.sum(-1)
        full = (n_lab == 3).float()
        partial = ((n_lab > 0) & (n_lab < 3)).float()
        geo = geodesic_angle(R, batch["rotation"])
        d = torch.deg2rad(matrix_to_euler_torch(R) - batch["euler"])
        d = torch.remainder(d + math.pi, 2 * math.pi) - math.pi  # wrap at 360 deg (roll near 180)
        l1 = (d.abs() * m).sum(-1) / n_lab.clamp_min(1.0)
        per_face = geo * full + l1 * partial
        t = LossTerms()
        t.add("geodesic", 1.0, per_face.sum(), full.sum() + partial.sum())
        return t


LOSSES: dict[str, Callable[..., object]] = {
    "euler": EulerL1Loss,
    "binned": BinnedLoss,
    "heteroscedastic": HeteroscedasticNLL,
    "rot6d": Rot6DLoss,
}


#: How each angle changes under a left-right flip of the crop: yaw and roll change sign, pitch keeps it
#: (``core.rotation.mirror_horizontal`` in AFLW angles).
MIRROR_SIGNS = (-1.0, 1.0, -1.0)


def _angles(loss_fn, out: Mapping[str, Tensor]) -> Tensor:
    """``(B, 3)`` decoded (yaw, pitch, roll) degrees of a binned or Euler network's outputs, with gradient."""
    if isinstance(loss_fn, BinnedLoss):
        return torch.stack([loss_fn.expectation(out[name]) for name in loss_fn.bins.outputs], dim=1)
    if isinstance(loss_fn, EulerL1Loss):
        return _f32(out["euler"])
    raise ValueError(f"the mirror-consistency term needs a binned or Euler network, not one trained with {type(loss_fn).__name__}")


def mirror_consistency(loss_fn, out: Mapping[str, Tensor], out_flipped: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    """``(sum, count)`` of the squared difference (degrees², summed over the three angles) between
    each crop's decoded angles and those of the same crop flipped left-right, mapped back
    (yaw and roll negated): zero for a mirror-symmetric network. Gradient flows through both reads.

    >>> loss = BinnedLoss()
    >>> z = {k: torch.zeros(2, 66) for k in loss.bins.outputs}
    >>> s, n = mirror_consistency(loss, z, z)   # uniform bins decode to -1.5 deg: off by 3 deg in yaw and roll
    >>> round(float(s), 3), int(n)
    (36.0, 2)
    """
    a, b = _angles(loss_fn, out), _angles(loss_fn, out_flipped)
    signs = torch.tensor(MIRROR_SIGNS, dtype=a.dtype, device=a.device)
    d = a - b * signs
    return (d**2).sum(), torch.tensor(float(a.shape[0]))


def make_loss(codec: str, alpha: float | None = None):
    """The loss for a codec name (``alpha`` is used by ``binned`` only)."""
    if codec not in LOSSES:
        raise KeyError(f"no training loss for codec {codec!r}; losses exist for {', '.join(sorted(LOSSES))}")
    if codec == "binned":
        return BinnedLoss(HOPENET_ALPHA if alpha is None else alpha, get_codec("binned"))
    return LOSSES[codec]()
