"""FSA-Net (Yang et al., CVPR 2019) and SSR-Net-MT in PyTorch: every variant of the official release.

FSA-Net regresses (yaw, pitch, roll) with soft stagewise regression (SSR) on top
of *fine-grained structure aggregation*: a two-stream backbone gives three
``8 x 8 x 64`` feature maps, a scoring function weights their pixels into primary
capsules, an aggregation turns those into three 16-d features (one per SSR
stage), and small heads give each stage its bin probabilities and shifts.

Variants (the registered names; the official Keras names in brackets):

- aggregation: ``capsule`` (dynamic routing), ``netvlad``, ``metric`` (two learnt
  linear maps);
- scoring: a 1x1 convolution (plain; ``fsanet_capsule_3_16_2_21_5``), the
  per-pixel variance over channels (``var``), or none at all (``nos``: every
  pixel of the three maps is a primary capsule, 192 of them);
- ``ssrnet-mt``: SSR-Net's multi-task head on the same backbone, no aggregation;
- ``fsanet-capsfusion``: the paper's Caps-Fusion, the mean of the three capsule
  models' outputs.

Every model maps ``x`` ``(B, 3, 64, 64)`` float, BGR, raw 0..255 pixel values
(FSA-Net's test script; its demos min-max-normalise each crop first, see
:class:`~openheadpose.specs.spec.Preprocessing`), to ``{"euler": (B, 3)}`` =
(yaw, pitch, roll) in degrees. FSA-Net was trained on 300W-LP ``Pose_Para``
labels written as ``[yaw, pitch, roll]`` without any sign change, so its output
is already the AFLW convention of :mod:`openheadpose.core.rotation` (verified on
AFLW2000: MAE 5.15 on ``aflw2000-dev``, as with the original TensorFlow graphs;
see ``tests/test_models_fsanet.py``).

Layers are built so that the official Keras weights load without any
re-computation (:mod:`openheadpose.convert.fsanet`): BatchNorm uses Keras'
epsilon 1e-3, all convolutions are stride 1 with symmetric 'same' padding, and
flattening follows Keras' channels-last order where the original flattens.

Dimension legend: B images, N primary capsules (21, or 192 without scoring),
P = 64 positions of an 8 x 8 map, K = 3 aggregated capsules / SSR stages,
D = 16 capsule dimension, A = 3 angles (yaw, pitch, roll), S = 3 bins per stage.

>>> import torch
>>> m = FSANet("capsule", "conv").eval()
>>> tuple(m(torch.zeros(2, 3, 64, 64))["euler"].shape)
(2, 3)
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from openheadpose.models._registry import register_model
from openheadpose.specs.spec import ModelSpec, Preprocessing

__all__ = ["FSANet", "SSRNetMT", "FSANetCapsFusion", "CapsuleLayer", "NetVLAD", "soft_stagewise_regression"]

KERAS_BN_EPS = 1e-3  # keras.layers.BatchNormalization's default (PyTorch's is 1e-5)
KERAS_BN_MOMENTUM = 0.01  # Keras momentum 0.99 is PyTorch momentum 0.01
CAPSULE_EPS = 1e-7  # keras.backend.epsilon(), inside the capsule squash
ANGLE_RANGE = 99.0  # V in the SSR module: outputs span about +-99 deg


# --------------------------------------------------------------------------- building blocks
class SeparableConvBNAct(nn.Module):
    """Keras ``SeparableConv2D(3x3, 'same')`` -> ``BatchNormalization`` -> activation."""

    def __init__(self, cin: int, cout: int, act: str):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1)
        self.bn = nn.BatchNorm2d(cout, eps=KERAS_BN_EPS, momentum=KERAS_BN_MOMENTUM)
        self.act = nn.ReLU() if act == "relu" else nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.pointwise(self.depthwise(x))))


class TwoStreamBackbone(nn.Module):
    """SSR-Net's two streams: ReLU + average pooling, and tanh + max pooling.

    Each stream is seven separable-conv blocks (16, 32, 32, 64, 64, 128, 128
    channels) with a 2x2 pooling after the 1st, 3rd and 5th. ``forward`` returns
    both streams' maps at the three depths FSA-Net uses, deepest first:
    ``[(B, 128, 8, 8), (B, 64, 8, 8), (B, 32, 16, 16)]`` each for x and s.
    """

    widths = (16, 32, 32, 64, 64, 128, 128)
    pool_after = (0, 2, 4)

    def __init__(self):
        super().__init__()
        cins = (3,) + self.widths[:-1]
        self.x_blocks = nn.ModuleList(SeparableConvBNAct(i, o, "relu") for i, o in zip(cins, self.widths))
        self.s_blocks = nn.ModuleList(SeparableConvBNAct(i, o, "tanh") for i, o in zip(cins, self.widths))

    def _stream(self, x: torch.Tensor, blocks: nn.ModuleList, pool) -> list[torch.Tensor]:
        taps = []
        for i, block in enumerate(blocks):
            x = block(x)
            if i in self.pool_after:
                x = pool(x, 2)
                taps.append(x)
        return [x, taps[2], taps[1]]  # layer 4 (8x8x128), layer 3 (8x8x64), layer 2 (16x16x32)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return self._stream(x, self.x_blocks, F.avg_pool2d), self._stream(x, self.s_blocks, F.max_pool2d)


class StreamFusion(nn.Module):
    """Per stage: ``tanh(conv1x1(s)) * relu(conv1x1(x))`` with 64 channels (the SSR-Net fusion)."""

    def __init__(self, channels=(128, 64, 32), width: int = 64):
        super().__init__()
        self.s_convs = nn.ModuleList(nn.Conv2d(c, width, 1) for c in channels)
        self.x_convs = nn.ModuleList(nn.Conv2d(c, width, 1) for c in channels)

    def branches(self, xs, ss) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(torch.tanh(cs(s)), torch.relu(cx(x))) for cs, cx, s, x in zip(self.s_convs, self.x_convs, ss, xs)]


def soft_stagewise_regression(
    probs: list[torch.Tensor], shifts: list[torch.Tensor], scales: list[torch.Tensor], lambda_d: float = 1.0, span: float = ANGLE_RANGE
) -> torch.Tensor:
    """SSR-Net's stagewise soft regression, as in FSA-Net's ``SSR_module``.

    Stage k has S_k bins with centres ``i - S_k // 2`` (i = 0..S_k-1), each moved
    by the stage's shift eta_k in (-1, 1); the stage's bin width shrinks with every
    stage and is rescaled by (1 + lambda_d * delta_k):

        y = span * sum_k  sum_i p_k[i] * (i - S_k//2 + eta_k) / prod_{j<=k} (S_j * (1 + lambda_d * delta_j))

    Args:
        probs: per stage ``(B, A, S_k)`` non-negative bin weights (ReLU outputs, not a softmax).
        shifts: per stage ``(B, A)`` eta_k (tanh).
        scales: per stage ``(B, A)`` delta_k (tanh).
    Returns:
        ``(B, A)`` angles in degrees.
    """
    out = 0.0
    denom = 1.0
    for p, eta, delta in zip(probs, shifts, scales):
        s = p.shape[-1]
        denom = denom * (s * (1 + lambda_d * delta))
        stage = 0.0
        for i in range(s):  # S_k = 3: a loop keeps the ONNX graph free of index constants
            stage = stage + (i - s // 2 + eta) * p[..., i]
        out = out + stage / denom
    return out * span


# --------------------------------------------------------------------------- FSA-Net parts
class FineGrainedStructureMapping(nn.Module):
    """FSA-Net's scoring and fine-grained structure mapping: 3 maps -> N primary capsules.

    Each map's pixels get a score (``"conv"``: sigmoid of a 1x1 conv; ``"var"``: the
    variance over channels); from the scores, learnt maps ``S_k = SL @ SR_k`` of
    shape ``(N/3, 3P)`` pool the 3P pixels of all maps into N/3 capsules per map,
    each normalised by its row sum.
    """

    def __init__(self, score: str = "conv", num_primcaps: int = 21, m_dim: int = 5, positions: int = 64, channels: int = 64):
        super().__init__()
        if score not in ("conv", "var"):
            raise ValueError(f"score must be 'conv' or 'var', not {score!r}")
        if num_primcaps % 3:
            raise ValueError(f"num_primcaps must be a multiple of 3, got {num_primcaps}")
        self.score, self.n, self.m, self.p = score, num_primcaps // 3, m_dim, positions
        self.score_conv = nn.Conv2d(channels, 1, 1) if score == "conv" else None
        self.sr = nn.Linear(positions, m_dim * 3 * positions)  # shared by the three maps
        self.sl = nn.Linear(3 * positions, self.n * m_dim)

    def _score(self, m: torch.Tensor) -> torch.Tensor:
        if self.score_conv is not None:
            return torch.sigmoid(self.score_conv(m)).flatten(1)  # (B, P)
        centred = m - m.mean(dim=1, keepdim=True)
        return (centred * centred).mean(dim=1).flatten(1)  # population variance, tf.nn.moments

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        feats = torch.cat([m.flatten(2).transpose(1, 2) for m in maps], dim=1)  # (B, 3P, C), row-major pixels
        scores = [self._score(m) for m in maps]
        sl = torch.sigmoid(self.sl(torch.cat(scores, dim=1))).unflatten(1, (self.n, self.m))  # (B, N/3, m)
        caps = []
        for s in scores:
            sr = torch.sigmoid(self.sr(s)).unflatten(1, (self.m, 3 * self.p))  # (B, m, 3P)
            S = sl @ sr  # (B, N/3, 3P)
            caps.append((S @ feats) / S.sum(dim=-1, keepdim=True))
        return torch.cat(caps, dim=1)  # (B, N, C)


def _squash(s: torch.Tensor) -> torch.Tensor:
    n2 = (s * s).sum(dim=-1, keepdim=True)
    return s * (n2 / (1 + n2) / torch.sqrt(n2 + CAPSULE_EPS))


class CapsuleLayer(nn.Module):
    """Dynamic routing (Sabour et al.), as in CapsNet-Keras: ``(B, N, Din) -> (B, K, D)``.

    ``weight`` ``(K, N, D, Din)`` keeps the Keras layout: the prediction of input
    capsule n for output k is ``u_hat = weight[k, n] @ u_n``. Coupling coefficients
    are a softmax over the *output* capsules (axis K); ``routings`` iterations.
    """

    def __init__(self, num_in: int, dim_in: int = 64, num_caps: int = 3, dim_caps: int = 16, routings: int = 2):
        super().__init__()
        if routings < 1:
            raise ValueError("routings must be >= 1")
        self.routings = routings
        self.weight = nn.Parameter(torch.empty(num_caps, num_in, dim_caps, dim_in))
        nn.init.xavier_uniform_(self.weight.view(num_caps * num_in, dim_caps * dim_in))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        u_hat = (self.weight.unsqueeze(0) @ u[:, None, :, :, None]).squeeze(-1)  # (B, K, N, D)
        # First iteration: logits b = 0, so the couplings are uniform (1/K).
        v = _squash(u_hat.sum(dim=2) / self.weight.shape[0])
        b = None
        for _ in range(self.routings - 1):
            agreement = (v.unsqueeze(2) * u_hat).sum(dim=-1)  # (B, K, N)
            b = agreement if b is None else b + agreement
            c = torch.softmax(b, dim=1)
            v = _squash((c.unsqueeze(-1) * u_hat).sum(dim=2))
        return v


class NetVLAD(nn.Module):
    """NetVLAD pooling (LOUPE's Keras layer): ``(B, N, Din) -> (B, out)``.

    Soft assignment to K clusters, residuals to learnt centres, intra-normalised
    per cluster, flattened Din-major (index d * K + k), L2-normalised, then a
    bias-free linear map.
    """

    def __init__(self, dim_in: int = 64, clusters: int = 3, out: int = 48):
        super().__init__()
        self.assign = nn.Linear(dim_in, clusters)
        self.centres = nn.Parameter(torch.randn(dim_in, clusters) / dim_in**0.5)
        self.hidden = nn.Linear(dim_in * clusters, out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.softmax(self.assign(x), dim=-1)  # (B, N, K)
        vlad = x.transpose(1, 2) @ a - a.sum(dim=1, keepdim=True) * self.centres  # (B, Din, K)
        vlad = F.normalize(vlad, dim=1, eps=1e-6)  # tf.nn.l2_normalize's eps 1e-12 is on the squared norm
        vlad = F.normalize(vlad.flatten(1), dim=1, eps=1e-6)
        return self.hidden(vlad)


class MetricAggregation(nn.Module):
    """FSA-Net's metric-learning aggregation: two linear maps, ``(B, N, Din) -> (B, K, D)``."""

    def __init__(self, num_in: int, dim_in: int = 64, num_caps: int = 3, dim_caps: int = 16):
        super().__init__()
        self.features = nn.Linear(dim_in, dim_caps, bias=False)  # over capsule dimensions
        self.pool = nn.Linear(num_in, num_caps, bias=False)  # over capsules

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x).transpose(1, 2)).transpose(1, 2)


class _CapsuleStageHead(nn.Module):
    """One SSR stage from a 16-d capsule: dims 0:4 -> delta, 4:8 -> eta, 8:16 -> bins (``ssr_F_model``)."""

    def __init__(self, num_angles: int = 3, bins: int = 3):
        super().__init__()
        self.angles, self.bins = num_angles, bins
        self.delta = nn.Linear(4, num_angles)
        self.local = nn.Linear(4, num_angles)
        self.pred = nn.Linear(8, bins * num_angles)

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = torch.relu(self.pred(f[:, 8:16])).unflatten(1, (self.angles, self.bins))  # (B, A, S)
        return p, torch.tanh(self.local(f[:, 4:8])), torch.tanh(self.delta(f[:, 0:4]))


# --------------------------------------------------------------------------- the networks
class FSANet(nn.Module):
    """FSA-Net for 64 x 64 BGR crops: ``x (B, 3, 64, 64)`` raw pixel values -> ``{"euler": (B, 3)}``.

    Args:
        aggregation: ``"capsule"``, ``"netvlad"`` or ``"metric"``.
        score: ``"conv"`` (1x1 conv), ``"var"`` (channel variance) or ``None`` (no
            scoring: all 3 x 64 pixels are primary capsules).
        num_primcaps: primary capsules; default 21 with scoring, 192 without.
        num_capsule, dim_capsule, routings, m_dim: the rest of FSA-Net's ``S_set``
            (official weights: 3, 16, 2, 5; the ``_3_16_2_21_5`` in their names).
        stage_num: bins per SSR stage; lambda_d: SSR's delta weight.
    """

    def __init__(
        self,
        aggregation: str = "capsule",
        score: str | None = "conv",
        num_primcaps: int | None = None,
        num_capsule: int = 3,
        dim_capsule: int = 16,
        routings: int = 2,
        m_dim: int = 5,
        stage_num: tuple[int, int, int] = (3, 3, 3),
        lambda_d: float = 1.0,
        num_angles: int = 3,
    ):
        super().__init__()
        if aggregation not in ("capsule", "netvlad", "metric"):
            raise ValueError(f"aggregation must be 'capsule', 'netvlad' or 'metric', not {aggregation!r}")
        if num_capsule != 3 or dim_capsule != 16:
            raise ValueError("the SSR stage heads need 3 capsules of 16 dimensions (FSA-Net's F_shape)")
        n = num_primcaps if num_primcaps is not None else (21 if score else 3 * 64)
        if score is None and n != 3 * 64:
            raise ValueError(f"without scoring every pixel is a primary capsule: num_primcaps must be 192, got {n}")
        self.aggregation, self.score, self.lambda_d = aggregation, score, lambda_d
        self.backbone = TwoStreamBackbone()
        self.fusion = StreamFusion()
        self.mapping = FineGrainedStructureMapping(score, n, m_dim) if score else None
        if aggregation == "capsule":
            self.aggregate = CapsuleLayer(n, 64, num_capsule, dim_capsule, routings)
        elif aggregation == "netvlad":
            self.aggregate = NetVLAD(64, num_capsule, num_capsule * dim_capsule)
        else:
            self.aggregate = MetricAggregation(n, 64, num_capsule, dim_capsule)
        self.heads = nn.ModuleList(_CapsuleStageHead(num_angles, s) for s in stage_num)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The three fine-grained ``(B, 64, 8, 8)`` maps: from layers 4, 3 and 2 (pooled)."""
        xs, ss = self.backbone(x)
        maps = [s * a for s, a in self.fusion.branches(xs, ss)]
        maps[2] = F.avg_pool2d(maps[2], 2)
        return maps

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        maps = self.feature_maps(x)
        if self.mapping is not None:
            primcaps = self.mapping(maps)
        else:
            primcaps = torch.cat([m.flatten(2).transpose(1, 2) for m in maps], dim=1)  # (B, 192, 64)
        caps = self.aggregate(primcaps)
        if caps.dim() == 2:  # NetVLAD gives a flat (B, K*D)
            caps = caps.unflatten(1, (len(self.heads), -1))
        stages = [head(caps[:, k]) for k, head in enumerate(self.heads)]
        euler = soft_stagewise_regression([s[0] for s in stages], [s[1] for s in stages], [s[2] for s in stages], self.lambda_d)
        return {"euler": euler}


class _SSRStageHead(nn.Module):
    """SSR-Net-MT's stage head on a flat feature: two-layer tanh heads for delta and eta, ReLU bins."""

    def __init__(self, dim: int, num_angles: int = 3, bins: int = 3):
        super().__init__()
        self.angles, self.bins = num_angles, bins
        self.delta_hidden = nn.Linear(dim, 2 * num_angles)
        self.delta = nn.Linear(2 * num_angles, num_angles)
        self.local_hidden = nn.Linear(dim, 2 * num_angles)
        self.local = nn.Linear(2 * num_angles, num_angles)
        self.pred = nn.Linear(dim, bins * num_angles)

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = torch.relu(self.pred(f)).unflatten(1, (self.angles, self.bins))
        eta = torch.tanh(self.local(torch.tanh(self.local_hidden(f))))
        delta = torch.tanh(self.delta(torch.tanh(self.delta_hidden(f))))
        return p, eta, delta


class SSRNetMT(nn.Module):
    """SSR-Net-MT (FSA-Net's baseline): the two-stream backbone, fusion after pooling, SSR heads.

    Each stage pools the tanh stream with max and the ReLU stream with average
    (2x2), multiplies them and flattens channels-last (Keras' order, so imported
    dense weights need no reordering): 4x4x64, 4x4x64, 8x8x64 features.
    """

    def __init__(self, stage_num: tuple[int, int, int] = (3, 3, 3), lambda_d: float = 1.0, num_angles: int = 3):
        super().__init__()
        self.lambda_d = lambda_d
        self.backbone = TwoStreamBackbone()
        self.fusion = StreamFusion()
        self.heads = nn.ModuleList(_SSRStageHead(d, num_angles, s) for d, s in zip((1024, 1024, 4096), stage_num))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        xs, ss = self.backbone(x)
        feats = [(F.max_pool2d(s, 2) * F.avg_pool2d(a, 2)).permute(0, 2, 3, 1).flatten(1) for s, a in self.fusion.branches(xs, ss)]
        stages = [head(f) for head, f in zip(self.heads, feats)]
        euler = soft_stagewise_regression([s[0] for s in stages], [s[1] for s in stages], [s[2] for s in stages], self.lambda_d)
        return {"euler": euler}


class FSANetCapsFusion(nn.Module):
    """The paper's Caps-Fusion: the mean (yaw, pitch, roll) of the plain, var and noS capsule models."""

    def __init__(self):
        super().__init__()
        self.capsule = FSANet("capsule", "conv")
        self.var_capsule = FSANet("capsule", "var")
        self.nos_capsule = FSANet("capsule", None)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        e = (self.capsule(x)["euler"] + self.var_capsule(x)["euler"] + self.nos_capsule(x)["euler"]) / 3
        return {"euler": e}


# --------------------------------------------------------------------------- registration
PREPROCESSING = Preprocessing(input_size=64, channels="bgr", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), crop="fsanet", layout="nchw")

_NOTES = {
    "paper": "Yang et al., FSA-Net: Learning Fine-Grained Structure Aggregation for Head Pose Estimation from a Single Image, CVPR 2019",
    "code": "https://github.com/shamangary/FSA-Net (Keras, Apache-2.0)",
    "input": "BGR 64x64, raw pixel values 0..255 as FSA-Net's test script feeds them; "
    "its demos min-max-normalise each crop first (Preprocessing(minmax=True))",
    "output": "euler = (yaw, pitch, roll) deg, AFLW Pose_Para convention (300W-LP labels, no sign change)",
}
_SCORES = {"": "conv", "var-": "var", "nos-": None}
_SCORE_TEXT = {"conv": "1x1-conv scoring", "var": "variance scoring", None: "no scoring"}


def _spec(name: str, what: str) -> ModelSpec:
    return ModelSpec(name=name, codec="euler", preprocessing=PREPROCESSING, notes={"architecture": what, **_NOTES})


for _agg in ("capsule", "netvlad", "metric"):
    for _prefix, _score in _SCORES.items():
        _name = f"fsanet-{_prefix}{_agg}"
        register_model(_name, _spec(_name, f"FSA-Net, {_agg} aggregation, {_SCORE_TEXT[_score]}"))(partial(FSANet, aggregation=_agg, score=_score))

register_model("ssrnet-mt", _spec("ssrnet-mt", "SSR-Net-MT (FSA-Net's two-stream backbone + SSR heads, no aggregation)"))(SSRNetMT)
register_model(
    "fsanet-capsfusion",
    _spec("fsanet-capsfusion", "FSA-Net Caps-Fusion: mean of fsanet-capsule, fsanet-var-capsule, fsanet-nos-capsule"),
)(FSANetCapsFusion)
