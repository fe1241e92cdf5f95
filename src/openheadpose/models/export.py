"""ONNX export with self-describing metadata, and the PyTorch backend of the predictor interface."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openheadpose.specs.codecs import get_codec
from openheadpose.specs.spec import PosePrediction


class _TupleOutputs:
    """Wraps a dict-returning network so ONNX sees outputs in the codec's order."""

    def __new__(cls, model, names):
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = model

            def forward(self, x):
                out = self.inner(x)
                return tuple(out[n] for n in names)

        return Wrapped()


def export_onnx(model, path: str | Path, opset: int = 17) -> Path:
    """Write ``model`` (with ``.spec``) to ``path`` as ONNX with a dynamic batch axis.

    The file's ``metadata_props`` hold the whole :class:`~openheadpose.specs.spec.ModelSpec`
    (preprocessing, crop recipe, codec, source), so
    :class:`~openheadpose.inference.backends.onnx.OnnxPoseModel` needs nothing else.
    """
    import io

    import onnx
    import torch

    from openheadpose.io.writers import atomic_write_bytes

    spec = model.spec
    codec = get_codec(spec.codec)
    pre = spec.preprocessing
    if pre.channels == "keypoints":  # HHP-Net: a flat (B, 15) vector
        shape = (1, 15)
    else:
        c = pre.num_channels
        shape = (1, c, pre.input_size, pre.input_size) if pre.layout == "nchw" else (1, pre.input_size, pre.input_size, c)
    model = model.eval()
    wrapped = _TupleOutputs(model, codec.outputs).eval()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            wrapped,
            (torch.zeros(shape),),
            buf,
            input_names=["input"],
            output_names=list(codec.outputs),
            dynamic_axes={"input": {0: "batch"}, **{n: {0: "batch"} for n in codec.outputs}},
            opset_version=opset,
            dynamo=False,
        )
    proto = onnx.load_from_string(buf.getvalue())
    for k, v in spec.to_metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    proto.producer_name = "openheadpose"
    path = Path(path)
    atomic_write_bytes(path, proto.SerializeToString())
    return path


class TorchPoseModel:
    """A PyTorch network behind the :class:`~openheadpose.specs.spec.CropModel` interface.

    Same preprocessing and codec as :class:`~openheadpose.inference.backends.onnx.OnnxPoseModel`, so
    both backends give the same answers (``tests/test_models.py`` checks it for every model).
    """

    def __init__(self, model, device: str = "cpu"):
        self.model = model.eval().to(device)
        self.device = device
        self.spec = model.spec
        self.codec = get_codec(self.spec.codec)
        self.name = self.spec.name
        self.crop = self.spec.preprocessing.crop
        self.input_size = self.spec.preprocessing.input_size

    def raw(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        x = torch.from_numpy(self.spec.preprocessing(crops)).to(self.device)
        with torch.no_grad():
            out = self.model(x)
        return {k: v.float().cpu().numpy() for k, v in out.items()}

    def predict(self, crops: np.ndarray) -> PosePrediction:
        if len(crops) == 0:
            return PosePrediction(np.zeros((0, 3, 3)))
        return self.codec.decode(self.raw(crops))


def write_model(model, dst: str | Path) -> Path:
    """Write a converted or trained model by ``dst``'s suffix: ``.pt`` checkpoint or ``.onnx`` (with metadata)."""
    from openheadpose.models._registry import save_checkpoint

    dst = Path(dst)
    suffix = dst.suffix.lower()
    if suffix == ".pt":
        save_checkpoint(model, dst)
        return dst
    if suffix == ".onnx":
        return export_onnx(model, dst)
    raise ValueError(f"{dst}: the output must end in .onnx (to run) or .pt (a checkpoint)")
