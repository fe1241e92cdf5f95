"""PyTorch architectures of every model family, registered by name (timm-style).

Needs PyTorch (``pip install openheadpose[torch]``); inference does not: export
to ONNX and run :class:`~openheadpose.inference.backends.onnx.OnnxPoseModel`.

Every network has one surface: ``forward(x) -> dict[str, Tensor]`` with ``x``
``(B, C, S, S)`` float already normalised by its :class:`~openheadpose.specs.spec.Preprocessing`,
and outputs named as its codec expects (``codec.outputs``). Constructors never
read files; weights are loaded by :func:`create_model` or an importer.

>>> import torch
>>> m = create_model("hopenet-resnet18")
>>> out = m(torch.zeros(1, 3, 224, 224))
>>> sorted(out), tuple(out["yaw"].shape)
(['pitch', 'roll', 'yaw'], (1, 66))
"""

from __future__ import annotations

from openheadpose.models import fsanet, heatmap, hhpnet, hopenet, realheponet, rot6d  # noqa: E402,F401  (registration)
from openheadpose.models._registry import (
    MODELS,
    ModelEntry,
    create_model,
    list_models,
    load_checkpoint,
    model_spec,
    register_model,
    save_checkpoint,
)

__all__ = ["MODELS", "ModelEntry", "create_model", "list_models", "model_spec", "register_model", "save_checkpoint", "load_checkpoint"]
