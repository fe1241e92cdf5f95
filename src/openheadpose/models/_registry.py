"""The model registry, the factory and our checkpoint format."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from openheadpose.specs.spec import ModelSpec


@dataclass(frozen=True)
class ModelEntry:
    """A registered architecture: its builder and the spec its weights travel with."""

    name: str
    builder: Callable
    spec: ModelSpec


MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, spec: ModelSpec) -> Callable:
    """Decorator: register ``builder(**kwargs) -> nn.Module`` under ``name``. Twice is an error."""

    def deco(builder: Callable) -> Callable:
        if name in MODELS:
            raise ValueError(f"model {name!r} is already registered")
        if spec.name != name:
            raise ValueError(f"spec name {spec.name!r} differs from the registered name {name!r}")
        MODELS[name] = ModelEntry(name, builder, spec)
        return builder

    return deco


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell pattern, e.g. ``list_models("hopenet*")``."""
    return sorted(n for n in MODELS if fnmatch.fnmatch(n, pattern))


def _entry(name: str) -> ModelEntry:
    if name not in MODELS:
        import difflib

        close = difflib.get_close_matches(name, MODELS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"unknown model {name!r}{hint} Choices: {', '.join(list_models())}")
    return MODELS[name]


def model_spec(name: str) -> ModelSpec:
    return _entry(name).spec


def create_model(name: str, weights: str | Path | None = None, **kwargs):
    """Build a registered network; ``weights`` is a checkpoint written by :func:`save_checkpoint`.

    The returned module carries ``.spec`` (a :class:`ModelSpec`); when weights are
    loaded, the spec stored with them wins (it records how they were trained).
    """
    entry = _entry(name)
    model = entry.builder(**kwargs)
    model.spec = entry.spec
    if weights is not None:
        state, spec = load_checkpoint(weights)
        if spec.name != name:
            raise ValueError(f"{weights}: holds weights of {spec.name!r}, not {name!r}")
        model.load_state_dict(state, strict=True)
        model.spec = spec
    return model


def save_checkpoint(model, path: str | Path, **extra) -> None:
    """Write ``{"spec", "state_dict", **extra}`` atomically (``torch.save``)."""
    import io

    import torch

    from openheadpose.io.writers import atomic_write_bytes

    buf = io.BytesIO()
    torch.save({"spec": model.spec.to_dict(), "state_dict": model.state_dict(), **extra}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path):
    """``(state_dict, ModelSpec)`` from a checkpoint of :func:`save_checkpoint`."""
    import torch

    try:
        ck = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{path}: not a readable openheadpose checkpoint ({exc})") from None
    if not isinstance(ck, dict) or "spec" not in ck or "state_dict" not in ck:
        raise ValueError(f"{path}: not an openheadpose checkpoint (convert original weights with `headpose convert`)")
    return ck["state_dict"], ModelSpec.from_dict(ck["spec"])
