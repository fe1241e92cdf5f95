"""6D-rotation heads on light backbones: our bridge to 6DRepNet.

Hempel, Abdelrahman, Al-Hamadi, "6D Rotation Representation for Unconstrained
Head Pose Estimation", ICIP 2022 (github.com/thohemp/6DRepNet). 6DRepNet puts one
``Linear(features, 6)`` after a global-average-pooled RepVGG-B1g2 (``sixdrepnet/model.py``),
turns the 6 numbers into a rotation by Gram-Schmidt and trains with the geodesic
distance (``sixdrepnet/loss.py``). Here the same head sits on backbones that run
fast on a CPU, and the network stops at the 6 numbers: the Gram-Schmidt step
lives in the codec (``Rot6DCodec``, numpy) and, for training, in
:func:`rotation_from_6d` (torch), so an exported graph ends at the raw head
output like every other codec's, and both decoders are tested against each other.

Input sizes (chosen for CPU speed; every backbone pools globally, so other sizes run):

- ``rot6d-tiny``: 112. Seven 3x3 conv-BN-ReLU layers, total stride 16 -> a 7 x 7
  grid; 0.21 M parameters (0.84 MB), 30 M multiply-adds.
- ``rot6d-mobilenetv3small``: 128, the smallest common face-crop side at which
  MobileNetV3's stride 32 ends on a whole 4 x 4 grid; 18 M multiply-adds, a third
  of its 224-pixel cost (55 M); 0.93 M parameters.
- ``rot6d-resnet18``: 224, what 6DRepNet and Hopenet train ResNets at (ResNet's
  7 x 7 final grid); 1.8 G multiply-adds, 11.2 M parameters -- the accurate,
  slow end of the three.

Backbones come from torchvision with ``weights=None``: nothing is downloaded.

Dimension legend: B crops, S input side.
"""

from __future__ import annotations

import torch
from torch import nn

from openheadpose.models._registry import register_model
from openheadpose.models.rotation_torch import (  # noqa: F401  (re-exported)
    geodesic_angle,
    geodesic_loss,
    rotation_from_6d,
)
from openheadpose.specs.spec import ModelSpec, Preprocessing

__all__ = ["Rot6DNet", "rotation_from_6d", "geodesic_angle", "geodesic_loss", "tiny_backbone", "mobilenetv3small_backbone"]

#: ImageNet normalisation on the 0..255 scale, RGB.
IMAGENET_MEAN = (0.485 * 255.0, 0.456 * 255.0, 0.406 * 255.0)
IMAGENET_STD = (0.229 * 255.0, 0.224 * 255.0, 0.225 * 255.0)


def _conv_bn_relu(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def tiny_backbone() -> tuple[nn.Module, int]:
    """Seven conv-BN-ReLU layers, stride 16, 96 output channels: ``(module, channels)``."""
    widths = [(3, 16, 2), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1), (64, 96, 2), (96, 96, 1)]
    return nn.Sequential(*(_conv_bn_relu(i, o, s) for i, o, s in widths)), widths[-1][1]


def mobilenetv3small_backbone() -> tuple[nn.Module, int]:
    """torchvision MobileNetV3-Small ``features`` (stride 32, 576 channels): ``(module, channels)``."""
    from torchvision.models import mobilenet_v3_small

    m = mobilenet_v3_small(weights=None)
    # ``features`` keeps torchvision's key names (features.*): ImageNet weights load by name.
    return m.features, m.classifier[0].in_features


def _resnet18_backbone() -> tuple[nn.Module, int]:
    from torchvision.models import resnet18

    m = resnet18(weights=None)
    width = m.fc.in_features
    # Everything but avgpool and fc, in order; keys become "features.<n>.*" (conv1 -> 0, bn1 -> 1, layer1 -> 4, ...).
    return nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3, m.layer4), width


class Rot6DNet(nn.Module):
    """Backbone -> global average pool -> ``Linear(C, 6)``: 6DRepNet's head.

    Args:
        features: a module mapping ``(B, 3, S, S)`` to ``(B, C, h, w)``.
        channels: C.

    Shapes: ``x`` ``(B, 3, S, S)`` ImageNet-normalised RGB -> ``{"rot6d": (B, 6)}``;
    decode with ``Rot6DCodec`` (numpy) or :func:`rotation_from_6d` (torch).
    """

    def __init__(self, features: nn.Module, channels: int):
        super().__init__()
        self.features = features
        self.head = nn.Linear(channels, 6)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.features(x).mean(dim=(2, 3))
        return {"rot6d": self.head(f)}


def _spec(name: str, size: int, backbone: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        codec="rot6d",
        preprocessing=Preprocessing(input_size=size, channels="rgb", mean=IMAGENET_MEAN, std=IMAGENET_STD, crop="square-1.5"),
        source="openheadpose: 6DRepNet's 6D head (thohemp/6DRepNet) on a light backbone; weights from our training",
        notes={"backbone": backbone, "loss": "geodesic (models.rot6d.geodesic_loss)"},
    )


@register_model("rot6d-tiny", _spec("rot6d-tiny", 112, "seven 3x3 conv-BN-ReLU, stride 16, 96 channels"))
def rot6d_tiny() -> Rot6DNet:
    """A < 1 MB 6D network for quick CPU training, 112 x 112 RGB."""
    return Rot6DNet(*tiny_backbone())


@register_model("rot6d-mobilenetv3small", _spec("rot6d-mobilenetv3small", 128, "torchvision mobilenet_v3_small features"))
def rot6d_mobilenetv3small() -> Rot6DNet:
    """MobileNetV3-Small features + the 6D head, 128 x 128 RGB."""
    return Rot6DNet(*mobilenetv3small_backbone())


@register_model("rot6d-resnet18", _spec("rot6d-resnet18", 224, "torchvision resnet18 up to layer4"))
def rot6d_resnet18() -> Rot6DNet:
    """ResNet-18 features + the 6D head, 224 x 224 RGB."""
    return Rot6DNet(*_resnet18_backbone())
