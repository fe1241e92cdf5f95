"""FSA-Net retrained in PyTorch by omasaht, run from its two ONNX exports (outputs averaged).

Source:
    https://github.com/omasaht/headpose-fsanet-pytorch (MIT), ``src/demo.py`` (inference),
    ``src/model.py`` (architecture), ``src/3-Test Model.ipynb`` (evaluation).
Weights:
    ``peers/fsanet-pytorch-onnx/fsanet-1x1-iter-688590.onnx`` and
    ``fsanet-var-iter-688590.onnx`` (its ``pretrained/`` folder): FSA-Caps with 1x1
    and variance scoring, trained on FSA-Net's "type1" 300W-LP npz files. The
    author reports AFLW2000 yaw 4.64, pitch 6.10, roll 4.79 for the average of the two.
Input:
    64 x 64, **BGR** (the npz images were written from ``cv2.imread`` pictures and the
    demo feeds ``cv2`` frames), ``(x - 127.5) / 128``, NCHW float32. The ONNX graphs
    have a fixed batch of 1, so :meth:`FsanetOnnx.predict` runs them crop by crop.
Crop:
    ``"fsanet"`` -- the training and test pictures are FSA-Net's type1 data
    (``TYY_create_db_type1.py``: landmark box widened by 0.6 of its size on each side,
    clipped to the image, squashed to 64 x 64), which this recipe reproduces.
Output convention:
    ``output`` is ``(1, 3)`` = (yaw, pitch, roll) in degrees, the order and signs of
    FSA-Net's npz labels, which are AFLW2000-3D / 300W-LP ``Pose_Para`` angles. So the
    rotation is ``euler_to_matrix(yaw, pitch, roll)`` (AFLW convention, ``Frame.GL``).
Verified:
    ``python -m benchmarks.peers.check --peers fsanet-onnx --variants --limit 50`` re-scores
    the predictions under all 48 sign flips / orders of (yaw, pitch, roll) and as R^T,
    F R F, F R^T F on the first 50 usable aflw2000-dev faces: the reading above scores
    MAE 3.28, the next best variant 7.66. On all 983 faces: MAE 5.17 (yaw 4.58, pitch
    6.23, roll 4.71), the 5.16 that ../shared's README measured.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openheadpose.specs.spec import PosePrediction
from openheadpose.core.rotation import euler_to_matrix

from ._common import check_crops, require_file, to_nchw

FILES = ("peers/fsanet-pytorch-onnx/fsanet-1x1-iter-688590.onnx", "peers/fsanet-pytorch-onnx/fsanet-var-iter-688590.onnx")


class FsanetOnnx:
    """omasaht FSA-Net (1x1 + var capsule ensembles), ONNX Runtime on the CPU.

    Args:
        paths: the ONNX files whose outputs are averaged.
        threads: intra-op threads of each ONNX Runtime session.
    """

    name = "fsanet-onnx"
    crop = "fsanet"
    input_size = 64
    channels = "bgr"  # the colour order its network reads

    def __init__(self, paths, threads: int = 2):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.paths = [require_file(p) for p in paths]
        self.sessions = [ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"]) for p in self.paths]
        for s in self.sessions:
            inp, out = s.get_inputs()[0], s.get_outputs()[0]
            if inp.shape[1:] != [3, self.input_size, self.input_size] or out.shape[-1] != 3:
                raise ValueError(f"unexpected FSA-Net ONNX signature {inp.shape} -> {out.shape}")
        self._in = [s.get_inputs()[0].name for s in self.sessions]
        self._out = [s.get_outputs()[0].name for s in self.sessions]

    def angles(self, crops: np.ndarray) -> np.ndarray:
        """``(B, 3)`` (yaw, pitch, roll) degrees, the mean of the sessions' outputs."""
        crops = check_crops(crops, self.input_size, self.name)
        x = to_nchw(crops, 127.5, 128.0, bgr=self.channels == "bgr")
        out = np.zeros((len(x), 3), np.float64)
        for sess, i, o in zip(self.sessions, self._in, self._out):
            for b in range(len(x)):  # the exported graphs have a fixed batch of 1
                out[b] += sess.run([o], {i: x[b : b + 1]})[0][0]
        return out / len(self.sessions)

    def predict(self, crops: np.ndarray) -> PosePrediction:
        a = self.angles(crops)
        return PosePrediction(euler_to_matrix(a[:, 0], a[:, 1], a[:, 2]))


def create(weights_dir: str | Path) -> FsanetOnnx:
    """The two-model average the author's demo runs."""
    return FsanetOnnx([Path(weights_dir) / f for f in FILES])
