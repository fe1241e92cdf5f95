"""Shaw et al.'s 0.9 MB lightweight head-pose network ("model-b66"), rebuilt in PyTorch.

Source:
    https://github.com/Shaw-git/Lightweight-Head-Pose-Estimation (MIT): ``network/network.py``
    (architecture, decoding), ``test_network.py`` / ``test_network_mtcnn.py`` (inference),
    ``utils/camera_normalize.py`` and ``utils/tools.py`` (angle convention, crop helper).
    Paper: "Accurate Head Pose Estimation Using Image Rectification and Lightweight
    Convolutional Neural Network" (IEEE TMM 2022).
Weights:
    ``peers/shaw-lightweight-b66.pkl`` (the repo's ``models/model-b66.pkl``): a plain
    ``state_dict``, loaded strictly into :class:`ShawNet`. Trained on 300W-LP.
Architecture (rebuilt from ``Network(num_bins=66, M=99, base=16, width_mult=1)``):
    ``features.0`` = conv3x3/2 (3->16) + BN + ReLU, then 7 inverted-bottleneck blocks
    (1x1 grouped expansion x2 with 4 groups -> depthwise kxk -> 1x1 projection, each
    followed by BN and the activation, no residual), channels 16-32-64-96-96-128-128-128,
    kernels 3,3,3,5,5,5,3, strides 2,2,1,2,1,2,1, ReLU in the first three blocks and
    h-swish after; global average pool, ReLU, three ``Linear(128, 66)`` heads.
Input:
    224 x 224, **RGB** (PIL image from ``cv2.cvtColor(BGR2RGB)``), ``ToTensor`` (/255)
    then ImageNet mean/std. The demos squash the crop to 224 x 224 with ``cv2.resize``
    (their ``CenterCrop(224)`` is then a no-op).
Crop:
    The repo ships no AFLW2000 / 300W-LP cropping script (its datasets read pre-cut
    pictures from ``label.txt`` folders). Its only landmark crop helper is
    ``utils/tools.py::cropFace(image, landmark, scale=1.2)`` on the 68 landmarks, our
    ``CROPS["shaw"]``: a square of side ``1.2 * (max_x - min_x)`` centred on the
    landmarks' *mean*, corners truncated with ``int()``, clipped at the image border.
    That it is the training crop is our best reading of the code, not a confirmed fact.
Output convention:
    ``forward`` returns ``(roll, yaw, pitch)`` in degrees: for each head a softmax over
    66 bins and the expectation of the bin centres ``3 * i - 97.5`` (``gen_bins``:
    ``i * 2M / K + M / K - M`` with M = 99, K = 66). The repo draws a pose as
    ``EulerToMatrix(-roll, -yaw, -pitch) = Rx(-pitch) Ry(-yaw) Rz(-roll)`` with y up,
    i.e. ``(Rz(roll) Ry(yaw) Rx(pitch))^T`` in ``Frame.GL`` -- exactly the AFLW
    convention -- and its flip augmentation negates roll and yaw only. So the rotation
    is ``euler_to_matrix(yaw, pitch, roll)`` with the outputs reordered, no sign change.
Verified:
    ``python -m benchmarks.peers.check --peers shaw-b66 --variants --limit 50`` re-scores the
    predictions under all 48 sign flips / orders of (yaw, pitch, roll) and as R^T, F R F,
    F R^T F on the first 50 usable aflw2000-dev faces: the reading above scores MAE 2.91,
    the next best variant 7.17 (then with the ``3ddfa`` crop). ../shared's README measured
    ~4.85 with an unnamed landmark crop; our numbers are in docs/RESULTS.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openheadpose.specs.spec import PosePrediction
from openheadpose.core.rotation import euler_to_matrix

from ._common import IMAGENET_MEAN, IMAGENET_STD, check_crops, require_file, softmax_expectation, to_nchw, torch_setup

FILE = "peers/shaw-lightweight-b66.pkl"

NUM_BINS = 66
BIN_FIRST, BIN_STEP = -97.5, 3.0  # gen_bins(): i * 2 * 99 / 66 + 99 / 66 - 99


def _build(torch):
    nn = torch.nn

    class Bottleneck(nn.Module):
        # exp_conv / dw_conv / pw_conv, each conv + BN + activation (names as in the checkpoint)
        def __init__(self, cin, cout, kernel, stride, act):
            super().__init__()
            exp = 2 * cin
            self.exp_conv = nn.Sequential(nn.Conv2d(cin, exp, 1, 1, 0, bias=False, groups=4), nn.BatchNorm2d(exp), act())
            self.dw_conv = nn.Sequential(
                nn.Conv2d(exp, exp, kernel, stride, (kernel - 1) // 2, groups=exp, bias=False), nn.BatchNorm2d(exp), act()
            )
            self.pw_conv = nn.Sequential(nn.Conv2d(exp, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout), act())

        def forward(self, x):
            return self.pw_conv(self.dw_conv(self.exp_conv(x)))

    class ShawNet(nn.Module):
        """``Network(num_bins=66, base=16, width_mult=1)``; ``forward`` gives the raw
        (yaw, pitch, roll) logits ``(B, 66)`` each."""

        def __init__(self):
            super().__init__()
            width = [16 * m for m in (1, 2, 4, 6, 6, 8, 8, 8)]
            kernel = (3, 3, 3, 5, 5, 5, 3)
            stride = (2, 2, 1, 2, 1, 2, 1)
            layers = [nn.Sequential(nn.Conv2d(3, width[0], 3, 2, 1, bias=False), nn.BatchNorm2d(width[0]), nn.ReLU())]
            for i in range(7):
                act = nn.ReLU if i < 3 else nn.Hardswish  # h_swish(x) = x * relu6(x + 3) / 6
                layers.append(Bottleneck(width[i], width[i + 1], kernel[i], stride[i], act))
            layers += [nn.AdaptiveAvgPool2d(1), nn.ReLU()]
            self.features = nn.Sequential(*layers)
            self.fc_yaw = nn.Linear(width[-1], NUM_BINS)
            self.fc_pitch = nn.Linear(width[-1], NUM_BINS)
            self.fc_roll = nn.Linear(width[-1], NUM_BINS)

        def forward(self, x):
            f = self.features(x).flatten(1)
            return self.fc_yaw(f), self.fc_pitch(f), self.fc_roll(f)

    return ShawNet


class ShawB66:
    """The ``model-b66`` checkpoint behind the CropModel surface.

    Args:
        path: the ``state_dict`` file.
    """

    name = "shaw-b66"
    crop = "shaw"
    input_size = 224
    channels = "rgb"  # the colour order its network reads

    def __init__(self, path):
        self._torch = torch = torch_setup()
        self.net = _build(torch)()
        state = torch.load(require_file(path), map_location="cpu", weights_only=True)
        self.net.load_state_dict(state, strict=True)
        self.net.eval()

    def angles(self, crops: np.ndarray) -> np.ndarray:
        """``(B, 3)`` (yaw, pitch, roll) degrees, reordered from the network's (roll, yaw, pitch)."""
        crops = check_crops(crops, self.input_size, self.name)
        x = self._torch.from_numpy(to_nchw(crops, IMAGENET_MEAN, IMAGENET_STD, scale=1 / 255))
        with self._torch.no_grad():
            logits = [h.numpy() for h in self.net(x)]
        return np.stack([softmax_expectation(z, BIN_FIRST, BIN_STEP) for z in logits], axis=1)

    def predict(self, crops: np.ndarray) -> PosePrediction:
        a = self.angles(crops)
        return PosePrediction(euler_to_matrix(a[:, 0], a[:, 1], a[:, 2]))


def create(weights_dir: str | Path) -> ShawB66:
    return ShawB66(Path(weights_dir) / FILE)
