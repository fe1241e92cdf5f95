"""RealHePoNet: a plain grayscale ConvNet for tilt and pan after a head detector.

Berral-Soler, Madrid-Cuevas, Muñoz-Salinas, Marín-Jiménez, "RealHePoNet: a robust
single-stage ConvNet for head pose estimation in the wild", accepted at Neural Computing and
Applications (arXiv:2011.01890, 2020); code github.com/rafabs97/headpose_final (Keras).

What the original does (read in its ``architectures.py`` ``mpatacchiola_generic``,
``train.py`` / ``demo_image.py`` for the chosen configuration, ``pose_estimator_utils.py``
for the output, ``head_detector_utils.py`` for the crop):

- Input: a 64 x 64 grayscale crop, ``(x / 255 - 0.408808) / 0.237583``.
- Six blocks of ``Conv 3x3 'same' + ReLU -> MaxPool 2``, filters 32, 64, ..., 1024
  (doubling), so 64 -> 1 x 1 x 1024; ``Flatten -> Dense 512`` with **no activation**
  (Keras' default, linear) ``-> Dense 2`` (tilt, pan). No dropout (rate 0), no BN.
- The two outputs were trained on labels ``(angle / 90 - mean) / std`` and are
  decoded as ``tilt = (y0 * 0.323931 - 0.041212) * 90``,
  ``pan = (y1 * 0.540958 - 0.000276) * 90`` degrees.
- Crop: an SSD *head* detector box (whole head, hair included), made square with
  side ``min(w, h)`` about its centre, no widening, moved (not padded) to lie
  inside the image, resized with bilinear interpolation.
- Trained on AFLW + Pointing'04 (tilt, pan only; horizontal flips negate pan).

Here: the same layers and constants, so the Keras weights (if ever found) load
by transposing kernels; the final map is 1 x 1, so Keras' NHWC flatten order
needs no permutation. Our detectors give *face* boxes, so the closest recipe is
``square-1.5`` (a head box is roughly 1.5 x a face box, and square).

``realheponet-w16`` (the weights we ship as ``--model realheponet``,
``openheadpose/assets/realheponet-synth.onnx``, int8: ``tools/ship_realheponet.py``) is
the same generic ConvNet with two declared changes: half the width (``num_filters_start``
16 instead of 32: 1.8 M parameters instead of 6.8 M, because the seed's 6.8 M weights
stay 6.8 MB even in int8, over the 5 MB a shipped network may take, and it trains 4x
faster on a CPU) and a second dense layer beside the (tilt, pan) one that gives their
log-variances from the same hidden layer (codec ``heteroscedastic``; trained with
beta-NLL), so each answer says how far to trust it.

Conventions: the output is the codec's ``euler`` ``(yaw, pitch, roll)`` with
yaw = pan, pitch = tilt and roll a constant 0 (the original has no roll: a
non-learned zero, not a parameter). With ``sigma=True`` there is also ``log_var``
``(yaw, pitch, roll)``, the log-variance in deg^2; roll's is the constant
:data:`ROLL_LOG_VAR` (roll is not predicted: 0 +- the spread of roll in our
training faces). Signs follow the original's demo drawing
(positive pan moves the arrow to the image's left, positive tilt moves it up),
which matches this package's AFLW convention (positive yaw turns the nose to
the image's left, positive pitch looks up).

Dimension legend: B crops, S = 64 input side.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from openheadpose.models._registry import register_model
from openheadpose.specs.spec import ModelSpec, Preprocessing

#: The original's input normalisation on the 0..1 scale (train.py, demo_image.py).
INPUT_MEAN, INPUT_STD = 0.408808, 0.237583
#: The original's label normalisation: label / 90 = y * std + mean, per (tilt, pan).
TILT_MEAN, TILT_STD = -0.041212, 0.323931
PAN_MEAN, PAN_STD = -0.000276, 0.540958
#: Roll is not predicted (0): its sigma is the root mean square of roll over the training
#: faces (every 10th image of the headpose synth train split: 18.2 deg), a constant log-variance.
ROLL_SIGMA_DEG = 18.2
ROLL_LOG_VAR = float(2.0 * math.log(ROLL_SIGMA_DEG))
#: Initial log-variance of (tilt, pan): a 20 deg sigma, about the spread of the labels.
INIT_LOG_VAR = float(2.0 * math.log(20.0))


class RealHePoNet(nn.Module):
    """Patacchiola-style ConvNet (``mpatacchiola_generic``) in RealHePoNet's configuration.

    Args:
        in_size: input side S (64).
        num_conv_blocks: conv + pool blocks (6); filters double from ``num_filters_start``.
        num_filters_start: filters of the first block (32).
        dense_size: width of the hidden dense layer (512), linear as in the original.
        sigma: add the log-variance layer (not in the original) and the ``log_var`` output.

    Shapes: ``x`` ``(B, 1, S, S)`` normalised gray -> ``{"euler": (B, 3)}`` degrees,
    (yaw = pan, pitch = tilt, roll = 0), and with ``sigma`` ``"log_var"`` ``(B, 3)`` deg^2.
    """

    def __init__(self, in_size: int = 64, num_conv_blocks: int = 6, num_filters_start: int = 32, dense_size: int = 512, sigma: bool = False):
        super().__init__()
        if in_size % 2**num_conv_blocks:
            raise ValueError(f"in_size {in_size} must be divisible by 2**{num_conv_blocks}")
        layers: list[nn.Module] = []
        cin = 1
        for i in range(num_conv_blocks):
            cout = num_filters_start * 2**i
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            cin = cout
        self.features = nn.Sequential(*layers)
        side = in_size // 2**num_conv_blocks
        # The hidden dense layer has no activation in the original (Keras' default).
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(cin * side * side, dense_size), nn.Linear(dense_size, 2))
        self.log_var = None
        if sigma:
            # log-variances of (tilt, pan) from the hidden layer; starts at a 20 deg sigma
            self.log_var = nn.Linear(dense_size, 2)
            nn.init.zeros_(self.log_var.weight)
            nn.init.constant_(self.log_var.bias, INIT_LOG_VAR)
        # Fixed de-normalisation of (tilt, pan): constants, not parameters, and not
        # in the state dict (they are part of the architecture, not of the weights).
        self.register_buffer("out_mean", torch.tensor([TILT_MEAN, PAN_MEAN]), persistent=False)
        self.register_buffer("out_std", torch.tensor([TILT_STD, PAN_STD]), persistent=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        hidden = self.head[1](self.head[0](self.features(x)))
        tilt_pan = (self.head[2](hidden) * self.out_std + self.out_mean) * 90.0
        tilt, pan = tilt_pan[:, 0], tilt_pan[:, 1]
        out = {"euler": torch.stack([pan, tilt, torch.zeros_like(pan)], dim=-1)}
        if self.log_var is not None:
            lv = self.log_var(hidden)
            out["log_var"] = torch.stack([lv[:, 1], lv[:, 0], torch.full_like(pan, ROLL_LOG_VAR)], dim=-1)
        return out


REALHEPONET_SPEC = ModelSpec(
    name="realheponet",
    codec="euler",
    preprocessing=Preprocessing(
        input_size=64,
        channels="gray",
        mean=(INPUT_MEAN * 255.0,),
        std=(INPUT_STD * 255.0,),
        crop="square-1.5",
    ),
    source="architecture of github.com/rafabs97/headpose_final (architectures.py, train.py); no original weights",
    notes={
        "paper": "Berral-Soler et al., RealHePoNet, Neural Computing and Applications (accepted), arXiv:2011.01890",
        "outputs": "tilt and pan only: euler = (pan, tilt, 0); roll is a constant 0",
        "original_crop": "SSD head-detector box, square of side min(w, h), no widening, shifted inside the image, bilinear to 64x64 gray",
    },
    angles=("yaw", "pitch"),
)


@register_model("realheponet", REALHEPONET_SPEC)
def realheponet(**kwargs) -> RealHePoNet:
    """RealHePoNet on 64 x 64 grayscale crops (tilt, pan; roll 0)."""
    return RealHePoNet(**kwargs)


REALHEPONET_W16_SPEC = ModelSpec(
    name="realheponet-w16",
    codec="heteroscedastic",
    preprocessing=REALHEPONET_SPEC.preprocessing,
    source="RealHePoNet's generic ConvNet at half width (16 first filters) with a log-variance layer; trained here on headpose synth data",
    notes={
        **REALHEPONET_SPEC.notes,
        "outputs": "tilt and pan only: euler = (pan, tilt, 0), log_var = (pan, tilt, constant); roll is not predicted "
        f"(0, sigma {ROLL_SIGMA_DEG} deg: the spread of roll in the training faces)",
        "changes": "num_filters_start 16 (the seed's 32 gives 6.8 M weights, 6.8 MB even in int8, over the 5 MB limit); "
        "a Dense(512 -> 2) log-variance layer beside the (tilt, pan) layer",
    },
    angles=("yaw", "pitch"),
)


@register_model("realheponet-w16", REALHEPONET_W16_SPEC)
def realheponet_w16(**kwargs) -> RealHePoNet:
    """RealHePoNet at half width with a sigma for tilt and pan (the shipped ``realheponet``)."""
    return RealHePoNet(**{"num_filters_start": 16, "sigma": True, **kwargs})
