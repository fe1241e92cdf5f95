"""HHP-Net (Cantarini et al., WACV 2022): head pose with uncertainty from five keypoints.

A small alpha-scalable network over the COCO head keypoints of a body-pose
detector (nose, left eye, right eye, left ear, right ear; "left" is the person's
left). Three slices of the 15-vector each go through a 1x1 convolution (5
filters): two through LeakyReLU 0.1, gated by the sigmoid of the third after a
fixed normalisation ``(v - 0.5286831) * 3.1224258``; three dense layers (250,
200, 150 units times alpha, LeakyReLU 0.1) feed one (angle, log-variance) head
per angle.

Input layout -- read this before feeding the network:
    The official ``models.py`` slices its input as if it were
    ``(x1, y1, ..., x5, y5, c1, ..., c5)`` (``[0:10:2]`` -> "x", ``[1:11:2]`` -> "y",
    ``[10:15]`` -> "confidence"), but the official inference scripts
    (``inference_image.py``, ``fast_inference_*.py``) feed it the interleaved
    ``(x1, y1, c1, x2, y2, c2, ..., x5, y5, c5)`` of ``get_face_points`` -- and the
    released weights were evidently trained on that: on AFLW2000 keypoints
    (``tests/test_models_hhpnet.py``) the interleaved layout scores yaw MAE ~9 deg
    and the "documented" one ~32 deg. So the network input is the interleaved
    vector built by :func:`keypoints_to_input` (coordinates centred and scaled to
    ``[-1, 1]``; an invisible point is ``x = y = c = 0``). The network itself is
    the exact function of the SavedModels (parity < 1e-4 deg on
    ``hhpnet_tf_reference.npz``, whatever the meaning of its inputs).

Output: ``euler`` ``(B, 3)`` (yaw, pitch, roll) degrees and ``log_var`` ``(B, 3)``,
the log of each angle's variance in deg^2 (codec ``"heteroscedastic"``).

Convention:
    Trained on 300W-LP + BIWI in the AFLW ``Pose_Para`` convention of
    :mod:`openheadpose.core.rotation`: positive yaw turns the nose towards the image's
    left, positive pitch looks up, positive roll is clockwise on screen. Checked
    in ``tests/test_models_hhpnet.py`` with keypoints of the face template turned
    by known angles (each sign comes out right) and on AFLW2000 (negating yaw
    raises its MAE from ~9 to ~57 deg).

The preprocessing is not an image one: the spec says ``channels="keypoints"``
(``Preprocessing.takes_images`` is False), ``crop="keypoints"`` (no crop recipe),
``layout="nc"`` and ``input_size=15`` (the vector length);
:func:`~openheadpose.models.export.export_onnx` writes a ``(B, 15)`` input for it.

Dimension legend: B people, K = 5 head keypoints.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from openheadpose.models._registry import register_model

# The input builder and its constants live in the torch-free keypoint_input module
# (the ONNX backend and the keypoint sources use them too); re-exported here.
from openheadpose.specs.keypoint_input import INPUT_LEN, KEYPOINTS, keypoints_to_input
from openheadpose.specs.spec import ModelSpec, Preprocessing

__all__ = ["HHPNet", "CONF_MEAN", "CONF_SCALE", "INPUT_LEN", "KEYPOINTS", "keypoints_to_input", "hhpnet", "hhpnet_0_6", "hhpnet_0_2"]

#: Normalisation baked into the official SavedModels for input entries 10..14: ``(v - CONF_MEAN) * CONF_SCALE``
#: (meant for the five confidences; with the interleaved input the weights were trained on
#: those entries are y4, c4, x5, y5, c5).
CONF_MEAN = 0.5286831
CONF_SCALE = 3.1224258


def _spec(name: str, alpha: float) -> ModelSpec:
    return ModelSpec(
        name=name,
        codec="heteroscedastic",
        preprocessing=Preprocessing(input_size=INPUT_LEN, channels="keypoints", crop="keypoints", layout="nc"),
        source="",
        trained_on="",
        notes={
            "alpha": alpha,
            "input": "(x1, y1, c1, ..., x5, y5, c5) from keypoints_to_input(); COCO nose, left eye, right eye, left ear, right ear",
            "output": "euler = (yaw, pitch, roll) deg, AFLW Pose_Para convention; log_var = log variance (deg^2)",
            "paper": "Cantarini et al., HHP-Net, WACV 2022",
        },
    )


class HHPNet(nn.Module):
    """HHP-Net with width multiplier ``alpha`` (1, 0.6 and 0.2 were published).

    Args:
        alpha: scales the three hidden layers (250, 200, 150 units).
        filters: filters of each keypoint convolution (5 in the paper).
    """

    def __init__(self, alpha: float = 1.0, filters: int = 5):
        super().__init__()
        self.alpha = alpha
        # Keras Conv1D(filters, kernel_size=1) over 5 input entries; named after the official
        # code's intent (x, y, confidence), see the module docstring for what they receive.
        self.conv_x = nn.Conv1d(1, filters, 1)
        self.conv_y = nn.Conv1d(1, filters, 1)
        self.conv_c = nn.Conv1d(1, filters, 1, bias=False)
        w = [int(round(u * alpha)) for u in (250, 200, 150)]
        n_in = 2 * 5 * filters
        self.hidden = nn.Sequential(
            nn.Linear(n_in, w[0]), nn.LeakyReLU(0.1), nn.Linear(w[0], w[1]), nn.LeakyReLU(0.1), nn.Linear(w[1], w[2]), nn.LeakyReLU(0.1)
        )
        self.head_yaw = nn.Linear(w[2], 2)
        self.head_pitch = nn.Linear(w[2], 2)
        self.head_roll = nn.Linear(w[2], 2)

    @staticmethod
    def _per_keypoint(conv: nn.Conv1d, v: torch.Tensor) -> torch.Tensor:
        # (B, 5) -> (B, 5 keypoints, F) -> flattened keypoint-major, as Keras' Flatten does.
        return conv(v.unsqueeze(1)).transpose(1, 2).flatten(1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # The official slices; see the module docstring for what they hold.
        x = x.reshape(x.shape[0], INPUT_LEN)
        a, b, c = x[:, 0:10:2], x[:, 1:10:2], x[:, 10:15]
        gate = torch.sigmoid(self._per_keypoint(self.conv_c, (c - CONF_MEAN) * CONF_SCALE))
        fa = F.leaky_relu(self._per_keypoint(self.conv_x, a), 0.1) * gate
        fb = F.leaky_relu(self._per_keypoint(self.conv_y, b), 0.1) * gate
        return self.hidden(torch.cat([fa, fb], dim=1))

    def forward_head(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        out = torch.stack([self.head_yaw(h), self.head_pitch(h), self.head_roll(h)], dim=1)  # (B, 3, 2)
        return {"euler": out[..., 0], "log_var": out[..., 1]}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x`` ``(B, 15)`` from :func:`keypoints_to_input` -> ``{"euler": (B, 3) deg, "log_var": (B, 3)}``."""
        return self.forward_head(self.forward_features(x))


@register_model("hhpnet", _spec("hhpnet", 1.0))
def hhpnet(**kwargs) -> HHPNet:
    """HHP-Net, alpha = 1 (official ``model_w300_biwi``)."""
    return HHPNet(alpha=1.0, **kwargs)


@register_model("hhpnet-0.6", _spec("hhpnet-0.6", 0.6))
def hhpnet_0_6(**kwargs) -> HHPNet:
    """HHP-Net, alpha = 0.6 (official ``model_w300_biwi_0.6``)."""
    return HHPNet(alpha=0.6, **kwargs)


@register_model("hhpnet-0.2", _spec("hhpnet-0.2", 0.2))
def hhpnet_0_2(**kwargs) -> HHPNet:
    """HHP-Net, alpha = 0.2 (official ``model_w300_biwi_0.2``)."""
    return HHPNet(alpha=0.2, **kwargs)
