"""Import Hopenet / HopelessNet ``.pkl`` snapshots (deep-head-pose, shahroudy's fork).

The snapshots are PyTorch state dicts of the networks in
:mod:`openheadpose.models.hopenet`, which keep the original parameter names, so
the filter only drops what our networks lack (Hopenet's unused ``fc_finetune``
layer) and a ``DataParallel`` ``module.`` prefix. The architecture is inferred
from the keys and shapes unless given.

Output convention: the snapshots were trained on 300W-LP ``Pose_Para`` angles
(yaw, pitch, roll in degrees, AFLW convention) with no sign change, so the
imported models need no conversion; checked by evaluating the HopelessNet
SqueezeNet snapshots on AFLW2000 (``tests/test_models_hopenet.py``).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

#: Blocks per ResNet stage -> depth (BasicBlock for 18/34, Bottleneck for the rest).
_RESNET_DEPTH = {(False, (2, 2, 2, 2)): 18, (False, (3, 4, 6, 3)): 34, (True, (3, 4, 6, 3)): 50, (True, (3, 4, 23, 3)): 101, (True, (3, 8, 36, 3)): 152}

#: What the snapshots' authors published (HopelessNet README, AFLW2000, 1969 faces). Our own
#: measurements are generated into docs/RESULTS.md by benchmarks/evaluate_all.py.
PUBLISHED = {
    ("hopenet-squeezenet1_0", "squeezenet_1_0.pkl"): {"published_aflw2000_mae": 7.33},
    ("hopenet-squeezenet1_1", "squeezenet_1_1.pkl"): {"published_aflw2000_mae": 7.82},
}

#: Keys of deep-head-pose networks that ours do not have.
_DROP = ("fc_finetune.", "idx_tensor")


def checkpoint_filter_fn(state_dict: dict) -> dict:
    """Original snapshot -> our state dict: strip ``module.``, drop ``fc_finetune``."""
    out = {}
    for k, v in state_dict.items():
        k = k[len("module.") :] if k.startswith("module.") else k
        if k.startswith(_DROP):
            continue
        out[k] = v
    return out


def infer_arch(state_dict: dict) -> str:
    """The registered model name a (filtered) Hopenet/HopelessNet state dict belongs to.

    Raises:
        ValueError: the keys match no known architecture.
    """
    sd = state_dict
    if "conv1.weight" in sd and "fc_yaw.weight" in sd:
        blocks = []
        for stage in range(1, 5):
            idx = {int(m.group(1)) for k in sd if (m := re.match(rf"layer{stage}\.(\d+)\.", k))}
            blocks.append(len(idx))
        bottleneck = any(k.endswith(".conv3.weight") for k in sd)
        depth = _RESNET_DEPTH.get((bottleneck, tuple(blocks)))
        if depth is None:
            raise ValueError(f"a ResNet Hopenet with {blocks} blocks per stage ({'Bottleneck' if bottleneck else 'BasicBlock'}) is not a known depth")
        return f"hopenet-resnet{depth}"
    if "classifier_yaw.1.weight" in sd:
        stem = sd.get("features.0.0.weight")  # MobileNetV2: 32 stem filters, MobileNetV3-Small: 16
        if stem is not None:
            return "hopenet-mobilenetv2" if stem.shape[0] == 32 else "hopenet-mobilenetv3small"
        w = sd.get("features.0.weight")
        if w is not None and tuple(w.shape) == (96, 3, 7, 7):
            return "hopenet-squeezenet1_0"
        if w is not None and tuple(w.shape) == (64, 3, 3, 3):
            return "hopenet-squeezenet1_1"
    sample = ", ".join(list(sd)[:4])
    raise ValueError(f"not a Hopenet/HopelessNet snapshot (keys start {sample}, ...); pass arch= to say which it is")


def _read_snapshot(src: Path) -> dict:
    import torch

    try:
        obj = torch.load(str(src), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        # torch's own message runs to a page; the type says enough (pickles are never run: weights_only)
        raise ValueError(f"{src}: not a readable PyTorch snapshot (torch.load: {type(exc).__name__})") from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{src}: expected a state dict of tensors (a deep-head-pose .pkl snapshot)")
    return obj


def load_hopenet(src: str | Path, arch: str | None = None):
    """Build the PyTorch model holding a Hopenet/HopelessNet snapshot's weights (strict load).

    Args:
        src: the ``.pkl`` snapshot.
        arch: a registered name (``"hopenet-resnet50"``, ``"hopenet-squeezenet1_0"``, ...);
            inferred from the keys when ``None``.
    """
    from openheadpose.models import create_model

    src = Path(src)
    sd = checkpoint_filter_fn(_read_snapshot(src))
    name = arch or infer_arch(sd)
    if not name.startswith("hopenet-"):
        name = f"hopenet-{name}"
    model = create_model(name)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{src}: does not fit {name}: {exc}") from None
    notes = {**model.spec.notes, **PUBLISHED.get((name, src.name), {})}
    model.spec = dataclasses.replace(model.spec, source=src.name, trained_on="300W-LP", notes=notes)
    return model.eval()


def convert(src: str | Path, dst: str | Path, arch: str | None = None) -> Path:
    """Convert a Hopenet/HopelessNet ``.pkl`` snapshot to ``dst``: ``.pt`` (checkpoint) or ``.onnx``.

    Example:
        ``headpose convert hopenet squeezenet_1_0.pkl hopelessnet.onnx``
    """
    from openheadpose.models.export import write_model

    return write_model(load_hopenet(src, arch), dst)
