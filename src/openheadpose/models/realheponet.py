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

Conventions: the output is the codec's ``euler`` ``(yaw, pitch, roll)`` with
yaw = pan, pitch = tilt and roll a constant 0 (the original has no roll: a
non-learned zero, not a parameter). Signs follow the original's demo drawing
(positive pan moves the arrow to the image's left, positive tilt moves it up),
which matches this package's AFLW convention (positive yaw turns the nose to
the image's left, positive pitch looks up).

Dimension legend: B crops, S = 64 input side.
"""

from __future__ import annotations

import torch
from torch import nn

from openheadpose.models._registry import register_model
from openheadpose.specs.spec import ModelSpec, Preprocessing

#: The original's input normalisation on the 0..1 scale (train.py, demo_image.py).
INPUT_MEAN, INPUT_STD = 0.408808, 0.237583
#: The original's label normalisation: label / 90 = y * std + mean, per (tilt, pan).
TILT_MEAN, TILT_STD = -0.041212, 0.323931
PAN_MEAN, PAN_STD = -0.000276, 0.540958


class RealHePoNet(nn.Module):
    """Patacchiola-style ConvNet (``mpatacchiola_generic``) in RealHePoNet's configuration.

    Args:
        in_size: input side S (64).
        num_conv_blocks: conv + pool blocks (6); filters double from ``num_filters_start``.
        num_filters_start: filters of the first block (32).
        dense_size: width of the hidden dense layer (512), linear as in the original.

    Shapes: ``x`` ``(B, 1, S, S)`` normalised gray -> ``{"euler": (B, 3)}`` degrees,
    (yaw = pan, pitch = tilt, roll = 0).
    """

    def __init__(self, in_size: int = 64, num_conv_blocks: int = 6, num_filters_start: int = 32, dense_size: int = 512):
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
        # Fixed de-normalisation of (tilt, pan): constants, not parameters, and not
        # in the state dict (they are part of the architecture, not of the weights).
        self.register_buffer("out_mean", torch.tensor([TILT_MEAN, PAN_MEAN]), persistent=False)
        self.register_buffer("out_std", torch.tensor([TILT_STD, PAN_STD]), persistent=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        tilt_pan = (self.head(self.features(x)) * self.out_std + self.out_mean) * 90.0
        tilt, pan = tilt_pan[:, 0], tilt_pan[:, 1]
        return {"euler": torch.stack([pan, tilt, torch.zeros_like(pan)], dim=-1)}


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
)


@register_model("realheponet", REALHEPONET_SPEC)
def realheponet(**kwargs) -> RealHePoNet:
    """RealHePoNet on 64 x 64 grayscale crops (tilt, pan; roll 0)."""
    return RealHePoNet(**kwargs)
