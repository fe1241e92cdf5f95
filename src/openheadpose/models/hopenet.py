"""Hopenet (Ruiz et al., CVPRW 2018) and HopelessNet's light backbones.

A backbone followed by three 66-way classifiers, one per Euler angle, over 3-degree
bins from -99 to +99 degrees (codec ``"binned"``: the angle is the softmax
expectation ``3 * sum_i p_i * i - 99``).

* ``hopenet-resnet{18,34,50,101,152}``: torchvision ResNet trunk (``conv1`` ...
  ``layer4``), global average pooling, linear heads ``fc_yaw``/``fc_pitch``/``fc_roll``
  -- the parameter names of deep-head-pose ``code/hopenet.py`` (ResNet50 is the
  original Hopenet; the others are HopelessNet's ``--arch`` choices).
* ``hopenet-squeezenet1_{0,1}``: torchvision SqueezeNet ``features``, heads
  ``classifier_{yaw,pitch,roll}`` = dropout, 1x1 convolution to 66 channels,
  ReLU, global average pooling (HopelessNet's ``Hopeless_Squeezenet``; the ReLU
  makes its logits non-negative).
* ``hopenet-mobilenetv2``: torchvision MobileNetV2 ``features``, global average
  pooling, heads ``classifier_{yaw,pitch,roll}`` = dropout + linear
  (HopelessNet's ``Hopeless_MobileNetV2``).
* ``hopenet-mobilenetv3small``: our Hopenet-lite -- the same heads on torchvision
  MobileNetV3-Small ``features`` at 128 px, the trunk and input size of
  ``rot6d-mobilenetv3small``, so the two differ only in the head (66-bin
  classification + expectation regression vs 6D rotation). 18 M multiply-adds
  where SqueezeNet 1.1 at 224 px takes 350 M.

Keeping the original parameter names means the authors' snapshots load after
:func:`openheadpose.convert.hopenet.checkpoint_filter_fn` drops only what our
networks lack. Constructors never download ImageNet weights (``weights=None``).

Input ``(B, 3, 224, 224)`` (Hopenet-lite: 128) RGB, ImageNet normalisation on the 0..255 scale;
crop recipe ``"hopenet"`` (deep-head-pose's AFLW2000 test crop, then torchvision's
``Resize(224)`` + ``CenterCrop(224)``). All heads end in global pooling, so smaller
inputs run too (used by the tests).

Convention:
    Output (yaw, pitch, roll) are the 300W-LP ``Pose_Para`` angles the networks
    were trained on (deep-head-pose ``datasets.Pose_300W_LP``: pitch, yaw, roll =
    ``Pose_Para[:3]`` in degrees), i.e. the AFLW convention of
    :mod:`openheadpose.core.rotation`: positive yaw turns the nose towards the image's
    left, positive pitch looks up, positive roll is clockwise on screen. Checked
    by evaluation: the HopelessNet SqueezeNet snapshots score AFLW2000 MAE
    close to the published numbers with no sign change (``tests/test_models_hopenet.py``).
    (Hopenet's ``utils.draw_axis`` negates yaw for drawing only.)

Dimension legend: B images, K = 66 bins.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from openheadpose.models._registry import register_model
from openheadpose.specs.spec import ModelSpec, Preprocessing

#: Number of 3-degree bins from -99 to +99.
NUM_BINS = 66

#: ImageNet normalisation on the 0..255 scale (torchvision's ``Normalize`` x 255).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

ANGLES = ("yaw", "pitch", "roll")


def _spec(name: str, backbone: str, size: int = 224) -> ModelSpec:
    return ModelSpec(
        name=name,
        codec="binned",
        preprocessing=Preprocessing(input_size=size, channels="rgb", mean=IMAGENET_MEAN, std=IMAGENET_STD, crop="hopenet", layout="nchw"),
        source="",
        trained_on="",
        notes={
            "backbone": backbone,
            "output": "yaw, pitch, roll logits over 66 bins of 3 deg from -99; AFLW (300W-LP Pose_Para) convention",
            "paper": "Ruiz et al., Fine-Grained Head Pose Estimation Without Keypoints, CVPRW 2018; HopelessNet (shahroudy/deep-head-pose)",
        },
    )


class HopenetResNet(nn.Module):
    """Hopenet on a torchvision ResNet trunk.

    Args:
        depth: 18, 34, 50, 101 or 152.
        num_bins: bins per angle.
    """

    def __init__(self, depth: int = 50, num_bins: int = NUM_BINS):
        super().__init__()
        import torchvision

        builders = {18: torchvision.models.resnet18, 34: torchvision.models.resnet34, 50: torchvision.models.resnet50,
                    101: torchvision.models.resnet101, 152: torchvision.models.resnet152}  # fmt: skip
        if depth not in builders:
            raise ValueError(f"ResNet depth must be one of {sorted(builders)}, not {depth}")
        trunk = builders[depth](weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4
        # deep-head-pose uses AvgPool2d(7): the same at 224 px input, adaptive allows others.
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        width = trunk.fc.in_features
        self.fc_yaw = nn.Linear(width, num_bins)
        self.fc_pitch = nn.Linear(width, num_bins)
        self.fc_roll = nn.Linear(width, num_bins)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward_head(self, f: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"yaw": self.fc_yaw(f), "pitch": self.fc_pitch(f), "roll": self.fc_roll(f)}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x`` ``(B, 3, S, S)`` -> ``{"yaw", "pitch", "roll"}`` logits ``(B, K)``."""
        return self.forward_head(self.forward_features(x))


class HopenetSqueezeNet(nn.Module):
    """HopelessNet on torchvision SqueezeNet 1.0 / 1.1 ``features``.

    Args:
        version: ``"1_0"`` or ``"1_1"``.
        num_bins: bins per angle.
    """

    def __init__(self, version: str = "1_0", num_bins: int = NUM_BINS):
        super().__init__()
        import torchvision

        if version not in ("1_0", "1_1"):
            raise ValueError(f"SqueezeNet version must be '1_0' or '1_1', not {version!r}")
        self.features = torchvision.models.squeezenet.SqueezeNet(version).features
        self.classifier_yaw = self._head(num_bins)
        self.classifier_pitch = self._head(num_bins)
        self.classifier_roll = self._head(num_bins)

    @staticmethod
    def _head(num_bins: int) -> nn.Sequential:
        conv = nn.Conv2d(512, num_bins, kernel_size=1)
        nn.init.normal_(conv.weight, mean=0.0, std=0.01)  # SqueezeNet's init of its final convolution
        nn.init.zeros_(conv.bias)
        return nn.Sequential(nn.Dropout(p=0.5), conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, f: torch.Tensor) -> dict[str, torch.Tensor]:
        return {a: torch.flatten(getattr(self, f"classifier_{a}")(f), 1) for a in ANGLES}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x`` ``(B, 3, S, S)`` -> ``{"yaw", "pitch", "roll"}`` logits ``(B, K)`` (non-negative)."""
        return self.forward_head(self.forward_features(x))


class HopenetMobileNetV2(nn.Module):
    """HopelessNet on torchvision MobileNetV2 ``features`` (width 1.0), or with
    ``trunk="mobilenetv3small"`` our Hopenet-lite on MobileNetV3-Small ``features``.

    Args:
        num_bins: bins per angle.
        trunk: ``"mobilenetv2"`` or ``"mobilenetv3small"``.
    """

    def __init__(self, num_bins: int = NUM_BINS, trunk: str = "mobilenetv2"):
        super().__init__()
        if trunk == "mobilenetv2":
            import torchvision

            net = torchvision.models.mobilenet_v2(weights=None)
            self.features, width = net.features, net.last_channel
        elif trunk == "mobilenetv3small":
            from openheadpose.models.rot6d import mobilenetv3small_backbone

            self.features, width = mobilenetv3small_backbone()
        else:
            raise ValueError(f"trunk must be 'mobilenetv2' or 'mobilenetv3small', not {trunk!r}")
        self.classifier_yaw = nn.Sequential(nn.Dropout(0.2), nn.Linear(width, num_bins))
        self.classifier_pitch = nn.Sequential(nn.Dropout(0.2), nn.Linear(width, num_bins))
        self.classifier_roll = nn.Sequential(nn.Dropout(0.2), nn.Linear(width, num_bins))
        for head in (self.classifier_yaw, self.classifier_pitch, self.classifier_roll):
            nn.init.normal_(head[1].weight, 0.0, 0.01)
            nn.init.zeros_(head[1].bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean((2, 3))

    def forward_head(self, f: torch.Tensor) -> dict[str, torch.Tensor]:
        return {a: getattr(self, f"classifier_{a}")(f) for a in ANGLES}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x`` ``(B, 3, S, S)`` -> ``{"yaw", "pitch", "roll"}`` logits ``(B, K)``."""
        return self.forward_head(self.forward_features(x))


#: registered name -> backbone label (the converter infers one of these names from a snapshot).
ARCHS: dict[str, str] = {}


def _register(name: str, backbone: str, build, size: int = 224) -> None:
    def builder(**kwargs) -> nn.Module:
        return build(**kwargs)

    builder.__name__ = name.replace("-", "_")
    builder.__doc__ = f"Hopenet with a {backbone} backbone (66 bins per angle)."
    register_model(name, _spec(name, backbone, size))(builder)
    ARCHS[name] = backbone


for _depth in (18, 34, 50, 101, 152):
    _register(f"hopenet-resnet{_depth}", f"ResNet{_depth}", partial(HopenetResNet, _depth))
_register("hopenet-squeezenet1_0", "SqueezeNet 1.0", partial(HopenetSqueezeNet, "1_0"))
_register("hopenet-squeezenet1_1", "SqueezeNet 1.1", partial(HopenetSqueezeNet, "1_1"))
_register("hopenet-mobilenetv2", "MobileNetV2", HopenetMobileNetV2)
_register("hopenet-mobilenetv3small", "MobileNetV3-Small (Hopenet-lite)", partial(HopenetMobileNetV2, trunk="mobilenetv3small"), size=128)
