"""The keypoint-heatmap CNN: head pose from soft maps of five facial keypoints.

Gupta, Thakkar, Gandhi, Narayanan, "Nose, eyes and ears: Head pose estimation by
locating facial keypoints", ICASSP 2019 (arXiv:1812.00739), as implemented in
github.com/Arnav0400/Headpose_Estimation (Keras, trained and evaluated on BIWI).
The network never sees pixels: OpenPose's heatmaps of the nose, eyes and ears
over a face crop, resized to 96 x 96, are stacked and regressed to three angles.

Here the maps are rendered from keypoints (:func:`render_heatmaps`), so any
keypoint source (a landmarker, a body-pose model, labels) can feed the network.

Shipped weights: ``heatmap-cnn-synth`` (``openheadpose/assets/heatmap-cnn-synth.onnx``, what
``--model heatmap-cnn`` runs without ``--weights``), trained on synthetic keypoints only by
``tools/train_heatmap_cnn_synth.py``; its dense layers' weights are int8 to fit 5 MB.

Dimension legend: B faces, K = 5 keypoints, C = K + 1 = 6 channels (the five
maps, then the background), S = 96 map side.

Architecture (what the original's README gives as "The Model"; the notebook that
trained it is no longer in the repository, and no weights were published)::

    Conv 5x5 (valid) 50 -> ReLU -> MaxPool 2 -> Dropout 0.2
    Conv 5x5 (valid) 50 -> ReLU -> MaxPool 2 -> Dropout 0.2
    Conv 5x5 (valid) 150 -> ReLU -> MaxPool 2 -> Dropout 0.3      96 -> 8 x 8 x 150
    Flatten -> Dense 300 tanh -> Dropout 0.3 -> Dense 300 tanh -> Dropout 0.3 -> Dense 3 tanh

Deviations, each deliberate:

- Input channels: the README's Keras input is ``(96, 96, 5)`` while its figure
  shows the five keypoint maps *and* OpenPose's background map; we take all six
  (the background, ``1 - max``, tells the network where no keypoint is).
  ``HeatmapCNN(in_chans=5)`` builds the README's variant.
- Output scale: the original ends in ``tanh`` and so regresses angles scaled to
  [-1, 1]; its label scaling is not published. We multiply by a fixed (not
  learned) ``angle_scale = 90`` degrees so the output is the codec's degrees,
  (yaw, pitch, roll), each in (-90, 90) -- BIWI's and AFLW2000's range.
- Layout: PyTorch NCHW. Keras flattens NHWC, so importing Keras weights would
  have to permute the rows of the first dense layer (no weights exist to import).

>>> hm = render_heatmaps(np.array([[[48.0, 40.0], [40, 30], [56, 30], [30, 36], [66, 36]]]))
>>> hm.shape, float(hm[0, 0, 40, 48]), float(hm[0, 5, 40, 48])
((1, 6, 96, 96), 1.0, 0.0)
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (the module doctest uses np)
import torch
from torch import nn

from openheadpose.models._registry import register_model

# The map renderer and its constants live in the torch-free keypoint_input module
# (the ONNX backend and the keypoint sources use them too); re-exported here.
# KEYPOINTS is the channel order, COCO's ("left" is the person's left); the
# original's channel order is not published.
from openheadpose.specs.keypoint_input import (
    KEYPOINTS,
    MAP_SIZE,
    OPENPOSE_SIGMA,
    render_heatmaps,
    to_map_coordinates,
)
from openheadpose.specs.spec import ModelSpec, Preprocessing

__all__ = ["HEATMAP_SPEC", "KEYPOINTS", "MAP_SIZE", "OPENPOSE_SIGMA", "HeatmapCNN", "heatmap_cnn", "render_heatmaps", "to_map_coordinates"]


class HeatmapCNN(nn.Module):
    """Three 5x5 conv blocks and a tanh MLP on keypoint heatmaps (see the module docstring).

    Args:
        in_chans: 6 (five maps + background, our default) or 5 (the README's input).
        size: map side S (96 in the original).
        angle_scale: degrees that a tanh output of 1 stands for (a constant, not learned).

    Shapes: ``x`` ``(B, in_chans, S, S)`` heatmaps in [0, 1] -> ``{"euler": (B, 3)}``
    (yaw, pitch, roll) in degrees.
    """

    def __init__(self, in_chans: int = 6, size: int = MAP_SIZE, angle_scale: float = 90.0):
        super().__init__()
        self.angle_scale = float(angle_scale)
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 50, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Dropout(0.2),
            nn.Conv2d(50, 50, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Dropout(0.2),
            nn.Conv2d(50, 150, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Dropout(0.3),
        )
        side = size
        for _ in range(3):  # valid 5x5 conv, then a floor-halving pool
            side = (side - 4) // 2
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(150 * side * side, 300),
            nn.Tanh(),
            nn.Dropout(0.3),
            nn.Linear(300, 300),
            nn.Tanh(),
            nn.Dropout(0.3),
            nn.Linear(300, 3),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"euler": self.head(self.features(x)) * self.angle_scale}


HEATMAP_SPEC = ModelSpec(
    name="heatmap-cnn",
    codec="euler",
    preprocessing=Preprocessing(
        input_size=MAP_SIZE,
        channels="heatmaps",
        mean=(0.0,) * (len(KEYPOINTS) + 1),
        std=(1.0,) * (len(KEYPOINTS) + 1),
        crop="keypoints",
    ),
    source="architecture of github.com/Arnav0400/Headpose_Estimation (README 'The Model'); no original weights",
    notes={
        "paper": "Gupta et al., Nose, eyes and ears: head pose estimation by locating facial keypoints, ICASSP 2019, arXiv:1812.00739",
        "input": "render_heatmaps(keypoints in 96x96 map pixels, confidence): channels " + ", ".join(KEYPOINTS) + ", background",
        # not "sigma": that key holds a file's pose-sigma calibration (OnnxPoseModel.spread_calibration)
        "map_sigma": f"{OPENPOSE_SIGMA:.4f} map pixels (OpenPose's 7 px at 368 px, scaled to 96)",
        "output": "tanh x 90 degrees: (yaw, pitch, roll)",
    },
)


@register_model("heatmap-cnn", HEATMAP_SPEC)
def heatmap_cnn(**kwargs) -> HeatmapCNN:
    """The keypoint-heatmap CNN on six 96 x 96 maps."""
    return HeatmapCNN(**kwargs)
