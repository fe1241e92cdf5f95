"""Import the official HHP-Net TensorFlow SavedModels without TensorFlow.

HHP-Net (Cantarini et al., WACV 2022) ships three Keras SavedModels
(``model_w300_biwi``, ``model_w300_biwi_0.6``, ``model_w300_biwi_0.2``: alpha = 1,
0.6, 0.2). Their weights live in ``variables/variables.index`` +
``variables/variables.data-*-of-*``, TensorFlow's *tensor bundle*:

they are read by :mod:`openheadpose.convert._tf_checkpoint` (no TensorFlow needed); the
object graph's Keras names (``conv1d_1/kernel``, ``yaw/bias``) tell the two keypoint
convolutions apart. The network's constants (the confidence normalisation) are
graph constants, not variables: they are fixed in :mod:`openheadpose.models.hhpnet`
and checked against the fixture in ``tests/test_models_hhpnet.py``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from openheadpose.convert._tf_checkpoint import checkpoint_names, read_tf_checkpoint

# --------------------------------------------------------------------------- HHP-Net mapping

_ALPHAS = {250: 1.0, 150: 0.6, 50: 0.2}  # width of the first dense layer -> alpha

MODEL_FOR_ALPHA = {1.0: "hhpnet", 0.6: "hhpnet-0.6", 0.2: "hhpnet-0.2"}


def _suffix(layer: str) -> int:
    m = re.search(r"_(\d+)$", layer)
    return int(m.group(1)) if m else 0


def checkpoint_filter_fn(tensors: dict) -> tuple[dict[str, np.ndarray], float]:
    """Keras HHP-Net variables -> our state dict (numpy) and the model's alpha.

    Keras layer names are counters of creation order (``conv1d``, ``conv1d_1``, ...,
    ``dense``, ``dense_1``, ``dense_2``, ``yaw``, ``pitch``, ``roll``); ``models.py``
    creates the x convolution, then the y one, then the confidence one (the only one
    without a bias), then the three hidden dense layers in order.
    """
    full = checkpoint_names(tensors)
    layers: dict[str, dict[str, np.ndarray]] = {}
    for key, name in full.items():
        if not key.endswith("/.ATTRIBUTES/VARIABLE_VALUE") or key.startswith(("optimizer/", "keras_api/")):
            continue
        layer, _, var = name.rpartition("/")
        if not layer or var not in ("kernel", "bias"):
            raise ValueError(f"unexpected variable {name!r} ({key})")
        layers.setdefault(layer, {})[var] = np.asarray(tensors[key], np.float32)

    convs = sorted((n for n in layers if n.startswith("conv1d")), key=_suffix)
    dense = sorted((n for n in layers if n.startswith("dense")), key=_suffix)
    heads = ("yaw", "pitch", "roll")
    if len(convs) != 3 or len(dense) != 3 or any(h not in layers for h in heads) or len(layers) != 9:
        raise ValueError(f"not an HHP-Net checkpoint: layers {sorted(layers)}")
    conv_c = [n for n in convs if "bias" not in layers[n]]
    if len(conv_c) != 1:
        raise ValueError(f"expected one bias-free confidence convolution, got {conv_c}")
    conv_x, conv_y = [n for n in convs if n != conv_c[0]]

    sd: dict[str, np.ndarray] = {}

    def conv(dst: str, src: str) -> None:
        k = layers[src]["kernel"]  # Keras Conv1D: (kernel_size=1, in=1, filters)
        if k.shape[:2] != (1, 1):
            raise ValueError(f"{src}: kernel shape {k.shape}, expected (1, 1, F)")
        sd[f"{dst}.weight"] = k.transpose(2, 1, 0).copy()  # torch Conv1d: (F, in, kernel_size)
        if "bias" in layers[src]:
            sd[f"{dst}.bias"] = layers[src]["bias"]

    def linear(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = layers[src]["kernel"].T.copy()  # Keras Dense (in, out) -> torch (out, in)
        sd[f"{dst}.bias"] = layers[src]["bias"]

    conv("conv_x", conv_x)
    conv("conv_y", conv_y)
    conv("conv_c", conv_c[0])
    for i, n in enumerate(dense):
        linear(f"hidden.{2 * i}", n)  # hidden = Sequential(Linear, LeakyReLU, Linear, LeakyReLU, Linear, LeakyReLU)
    for h in heads:
        linear(f"head_{h}", h)
    width = sd["hidden.0.weight"].shape[0]
    if width not in _ALPHAS:
        raise ValueError(f"first dense layer has {width} units; known HHP-Net widths: {sorted(_ALPHAS)}")
    return sd, _ALPHAS[width]


def _checkpoint_prefix(src: Path) -> Path:
    src = Path(src)
    if src.is_dir():
        for cand in (src / "variables" / "variables", src / "variables"):
            if cand.with_name(cand.name + ".index").is_file():
                return cand
        raise ValueError(f"{src}: no variables/variables.index (expected an HHP-Net SavedModel folder)")
    if src.suffix == ".index":
        return src.with_suffix("")
    raise ValueError(f"{src}: expected an HHP-Net SavedModel folder (with variables/variables.index)")


def load_hhpnet(src: str | Path):
    """Build the PyTorch HHP-Net holding the weights of an official SavedModel folder.

    The alpha (1, 0.6, 0.2) is read from the layer widths; the spec records the source.
    """
    import torch

    from openheadpose.models import create_model

    sd, alpha = checkpoint_filter_fn(read_tf_checkpoint(_checkpoint_prefix(src)))
    model = create_model(MODEL_FOR_ALPHA[alpha])
    model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
    notes = dict(model.spec.notes)
    model.spec = dataclasses.replace(model.spec, source=Path(src).name, trained_on="300W-LP + BIWI", notes=notes)
    return model.eval()


def convert(src: str | Path, dst: str | Path) -> Path:
    """Convert an official HHP-Net SavedModel folder to ``dst``: ``.pt`` (checkpoint) or ``.onnx``.

    Example:
        ``headpose convert hhpnet model_w300_biwi hhpnet.onnx``
    """
    from openheadpose.models.export import write_model

    return write_model(load_hhpnet(src), dst)
