"""Peer head-pose models behind openheadpose's ``CropModel`` surface, for benchmarks only.

Each peer is a third-party checkpoint from ``../shared/weights`` (never copied into this
repository) wrapped in a class with ``name``, ``crop`` (a ``CROPS`` recipe),
``input_size`` and ``predict(crops) -> PosePrediction``: RGB uint8 crops in, rotations in
``Frame.GL`` out. Colour order, normalisation and the peer's angle convention stay
inside the adapter; each module's docstring says where they come from and how the
convention was checked.

``PEERS`` maps a name to a factory ``factory(shared_weights_dir) -> CropModel``; the
factories import their modules (and torch / onnxruntime) only when called::

    from benchmarks.peers import PEERS, default_weights_dir
    model = PEERS["3ddfa-v2-mb05"](default_weights_dir())

Check them against AFLW2000: ``python -m benchmarks.peers.check`` (see ``check.py``).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Callable

from openheadpose.specs.spec import CropModel

REPO_ROOT = Path(__file__).resolve().parents[2]


def _lazy(module: str, factory: str, doc: str) -> Callable[[Path], CropModel]:
    def create(weights_dir: str | Path) -> CropModel:
        return getattr(importlib.import_module(f"{__name__}.{module}"), factory)(Path(weights_dir))

    create.__doc__ = doc
    create.__qualname__ = create.__name__ = f"{module}.{factory}"
    return create


#: name -> factory(shared weights folder) -> CropModel
PEERS: dict[str, Callable[[Path], CropModel]] = {
    "fsanet-onnx": _lazy("fsanet_onnx", "create", "omasaht FSA-Net PyTorch retrain, 1x1 + var ONNX averaged (64 px, BGR)"),
    "shaw-b66": _lazy("shaw", "create", "Shaw-git lightweight 0.9 MB network, 66 bins (224 px, RGB, ImageNet)"),
    "3ddfa-v2-mb05": _lazy("tddfa_v2", "create", "3DDFA_V2 MobileNetV1-0.5, pose from the 3DMM camera (120 px, BGR)"),
}


def shared_dir() -> Path:
    """``$OPENHEADPOSE_SHARED``, else ``../shared`` next to the repository root."""
    shared = os.environ.get("OPENHEADPOSE_SHARED")
    return Path(shared) if shared else REPO_ROOT.parent / "shared"


def default_weights_dir() -> Path:
    """``shared_dir() / "weights"``."""
    return shared_dir() / "weights"


def create_peer(name: str, weights_dir: str | Path | None = None) -> CropModel:
    """Build the peer ``name`` from ``weights_dir`` (default: :func:`default_weights_dir`).

    Raises:
        KeyError: unknown name; the message lists the choices.
    """
    if name not in PEERS:
        raise KeyError(f"unknown peer {name!r}; choices: {', '.join(PEERS)}")
    return PEERS[name](Path(weights_dir) if weights_dir is not None else default_weights_dir())
