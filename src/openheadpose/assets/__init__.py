"""The files shipped inside the package, and which there are.

* ``<name>.onnx`` + ``<name>.json``: networks we trained (:data:`SHIPPED_WEIGHTS`);
  the ``.json`` is the recipe that made each (data, command, measured accuracy);
* ``face_template.npz``: the 3DDFA Basel-Face-Model mean face at FaceMesh's 468
  points and the 68 landmarks (``tools/build_face_template.py``);
* ``biwi_protocol2.json``: BIWI Protocol 2's video split.

Nothing here is downloaded: everything comes with ``pip install``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

#: Image networks trained here on ``headpose synth`` data only and packaged as
#: ``openheadpose/assets/<name>.onnx`` (recipe in ``<name>.json``): name -> what it is.
#: Each is also a pose stage of the pipeline (``--pose <name>``).
SHIPPED_IMAGE_NETWORKS = {
    "hopenet-synth": "Hopenet-lite: 66-bin heads on MobileNetV3-Small, 128 px (4.2 MB)",
    "fsanet-synth": "FSA-Net capsule (1 MB)",
}

#: The pipeline's default pose stage (:func:`openheadpose.inference.builder.default_pose`).
DEFAULT_POSE_NETWORK = "hopenet-synth"

#: Weights shipped inside the package, used when a model is named without
#: ``--weights``: name -> file.
SHIPPED_WEIGHTS = {"hhpnet": "hhpnet-synth.onnx", "heatmap-cnn": "heatmap-cnn-synth.onnx", "realheponet": "realheponet-synth.onnx", **{n: f"{n}.onnx" for n in SHIPPED_IMAGE_NETWORKS}}


def asset_path(file: str) -> Path:
    """The path of a packaged file (it may be missing from a broken install: check ``is_file()``)."""
    return Path(str(resources.files("openheadpose.assets").joinpath(file)))


def shipped_weights(name: str) -> Path | None:
    """The packaged ``.onnx`` for ``name`` if openheadpose ships one and it is installed, else ``None``."""
    file = SHIPPED_WEIGHTS.get(name)
    if file is None:
        return None
    path = asset_path(file)
    return path if path.is_file() else None


@dataclass(frozen=True)
class FaceTemplate:
    """A rigid 3D face in mm, head axes of ``Frame.GL``.

    The points are the 3DDFA Basel-Face-Model mean shape sampled at the 468
    FaceMesh landmarks (see ``tools/build_face_template.py``), so a rotation
    fitted to it is in the frame of the AFLW2000 / 300W-LP labels.

    Attributes:
        points: ``(468, 3)`` at FaceMesh's landmarks.
        landmarks68: ``(68, 3)`` the iBUG 68 landmarks of the same face.
        mirror_partner: ``(468,)`` index of each point's left-right mirror.
    """

    points: np.ndarray
    landmarks68: np.ndarray
    mirror_partner: np.ndarray


@lru_cache(maxsize=None)
def face_template() -> FaceTemplate:
    """The packaged :class:`FaceTemplate` (read once)."""
    with resources.files("openheadpose.assets").joinpath("face_template.npz").open("rb") as f:
        z = np.load(f)
        return FaceTemplate(z["points"].astype(np.float64), z["landmarks68"].astype(np.float64), z["mirror_partner"])
