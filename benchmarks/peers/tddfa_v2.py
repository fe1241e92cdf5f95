"""3DDFA_V2 MobileNetV1-0.5 (120 x 120): 62 3DMM parameters, of which the 3 x 4 camera gives the pose.

Source:
    https://github.com/cleardusk/3DDFA_V2 (MIT): ``models/mobilenet_v1.py`` (architecture),
    ``TDDFA.py`` + ``utils/tddfa_util.py`` (preprocessing, de-normalisation,
    ``_parse_param``, ``similar_transform``), ``utils/pose.py`` (``P2sRt``, ``calc_pose``),
    ``utils/functions.py`` (crops).
Weights:
    ``peers/3ddfa_v2/mb05_120x120.pth`` (``{'epoch', 'state_dict'}``, keys prefixed
    ``module.``) and ``peers/3ddfa_v2/param_mean_std_62d_120x120.pkl`` (``mean``, ``std``
    of the 62 parameters). As in the repo's ``load_model``: the prefix is stripped,
    ``fc_param.*`` becomes ``fc.*``, and the unused 68-landmark head ``fc_lm.*``
    (136 outputs) is dropped; everything else loads strictly.
Input:
    120 x 120, **BGR** (``cv2.imread`` pictures), ``(x - 127.5) / 128``.
Crop:
    ``"3ddfa"`` -- ``parse_roi_box_from_landmark`` on the 68 landmarks (square of the
    landmark box's longer side, grown to its diagonal), ``crop_img`` (rounded corners,
    black outside), squashed to 120 x 120: what the repo does when it is given
    landmarks, and what its AFLW2000 numbers use (bilinear resize in both).
Output convention:
    ``param = net(x) * std + mean``; ``P = param[:12].reshape(3, 4)`` is a weak-perspective
    camera mapping BFM model coordinates (x to the person's left, y up, z out of the face)
    to the 120 x 120 crop with **y up** (``similar_transform`` flips y with
    ``size - y`` only when it goes to pixels). Its first two rows are ``s * R[:2]``;
    ``P2sRt`` normalises them and appends their cross product. That ``R`` maps head
    to camera coordinates in GL axes, i.e. it already is our ``Frame.GL`` rotation --
    no transpose, no axis flip. (The repo's ``matrix2angle`` names ``asin(R[2, 0])``
    "yaw"; we never go through its angles.) The two rows are not exactly orthogonal,
    so the matrix is projected onto the nearest rotation (SVD).
Verified:
    ``python -m benchmarks.peers.check --peers 3ddfa-v2-mb05 --variants --limit 50`` re-scores
    the predictions as R^T, F R F, F R^T F (F = diag(1, -1, -1)) and under all 48 sign
    flips / orders of their (yaw, pitch, roll) on the first 50 usable aflw2000-dev faces:
    R as is scores MAE 2.94, the next best variant 7.49. On all 983 faces: MAE 4.01
    (yaw 2.94, pitch 5.46, roll 3.63), against 3.90 that ../shared's README measured on AFLW2000.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from openheadpose.specs.spec import PosePrediction
from openheadpose.core.rotation import orthonormalize

from ._common import check_crops, require_file, to_nchw, torch_setup

FILES = ("peers/3ddfa_v2/mb05_120x120.pth", "peers/3ddfa_v2/param_mean_std_62d_120x120.pkl")


def _build(torch, widen: float = 0.5, num_params: int = 62):
    nn = torch.nn

    class DepthWiseBlock(nn.Module):
        def __init__(self, cin, cout, stride=1):
            super().__init__()
            cin, cout = int(cin), int(cout)
            self.conv_dw = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False)
            self.bn_dw = nn.BatchNorm2d(cin)
            self.conv_sep = nn.Conv2d(cin, cout, 1, 1, 0, bias=False)
            self.bn_sep = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()

        def forward(self, x):
            x = self.relu(self.bn_dw(self.conv_dw(x)))
            return self.relu(self.bn_sep(self.conv_sep(x)))

    class MobileNetV1(nn.Module):
        """MobileNetV1 with 3DDFA's layer names (conv1, bn1, dw2_1 ... dw6, fc)."""

        # (name, output channels at width 1, stride)
        BLOCKS = (
            ("dw2_1", 64, 1), ("dw2_2", 128, 2), ("dw3_1", 128, 1), ("dw3_2", 256, 2),
            ("dw4_1", 256, 1), ("dw4_2", 512, 2), ("dw5_1", 512, 1), ("dw5_2", 512, 1),
            ("dw5_3", 512, 1), ("dw5_4", 512, 1), ("dw5_5", 512, 1), ("dw5_6", 1024, 2),
            ("dw6", 1024, 1),
        )  # fmt: skip

        def __init__(self):
            super().__init__()
            c = int(32 * widen)
            self.conv1 = nn.Conv2d(3, c, 3, 2, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.relu = nn.ReLU()
            for name, cout, stride in self.BLOCKS:
                setattr(self, name, DepthWiseBlock(c, cout * widen, stride))
                c = int(cout * widen)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(c, num_params)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            for name, _, _ in self.BLOCKS:
                x = getattr(self, name)(x)
            return self.fc(self.avgpool(x).flatten(1))

    return MobileNetV1


def camera_to_rotation(P: np.ndarray) -> np.ndarray:
    """Rotations ``(B, 3, 3)`` in ``Frame.GL`` from 3DDFA cameras ``(B, 3, 4)``.

    ``P2sRt``: unit first and second rows, third = their cross product; then the
    nearest proper rotation, because the network's two rows are only nearly orthogonal.
    """
    r1 = P[:, 0, :3] / np.linalg.norm(P[:, 0, :3], axis=1, keepdims=True)
    r2 = P[:, 1, :3] / np.linalg.norm(P[:, 1, :3], axis=1, keepdims=True)
    return orthonormalize(np.stack([r1, r2, np.cross(r1, r2)], axis=1))


class TDDFAv2:
    """3DDFA_V2 pose from the camera part of its 62 parameters.

    Args:
        checkpoint: the ``.pth`` file (``{'state_dict': ...}``).
        mean_std: the parameter statistics pickle.
    """

    name = "3ddfa-v2-mb05"
    crop = "3ddfa"
    input_size = 120
    channels = "bgr"  # the colour order its network reads

    def __init__(self, checkpoint, mean_std):
        self._torch = torch = torch_setup()
        self.net = _build(torch)()
        ck = torch.load(require_file(checkpoint), map_location="cpu", weights_only=True)["state_dict"]
        state = {}
        for k, v in ck.items():
            k = k.removeprefix("module.")
            if k.startswith("fc_lm."):  # 68-landmark auxiliary head, unused by 3DDFA_V2's TDDFA
                continue
            state[k.replace("fc_param.", "fc.")] = v
        self.net.load_state_dict(state, strict=True)
        self.net.eval()
        with open(require_file(mean_std), "rb") as f:
            r = pickle.load(f)
        self.param_mean = np.asarray(r["mean"], np.float64)
        self.param_std = np.asarray(r["std"], np.float64)

    def params(self, crops: np.ndarray) -> np.ndarray:
        """De-normalised 3DMM parameters ``(B, 62)``: 12 camera, 40 shape, 10 expression."""
        crops = check_crops(crops, self.input_size, self.name)
        x = self._torch.from_numpy(to_nchw(crops, 127.5, 128.0, bgr=self.channels == "bgr"))
        with self._torch.no_grad():
            out = self.net(x).numpy().astype(np.float64)
        return out * self.param_std + self.param_mean

    def predict(self, crops: np.ndarray) -> PosePrediction:
        P = self.params(crops)[:, :12].reshape(-1, 3, 4)
        return PosePrediction(camera_to_rotation(P))


def create(weights_dir: str | Path) -> TDDFAv2:
    return TDDFAv2(*(Path(weights_dir) / f for f in FILES))
