"""Weight averaging: one network from several checkpoints of the same architecture.

Two uses, both from the literature on fine-tuning small networks:

* **SWA** (Izmailov et al., 2018): checkpoints along one run's low-learning-rate tail,
  e.g. the last epochs of a fine-tune, averaged into a flatter optimum.
* **Model soups** (Wortsman et al., 2022): fine-tunes of one starting network with
  different recipes (augmentation, learning rate) averaged uniformly.

Parameters are averaged; BatchNorm running statistics of an average are not the
average of the statistics, so they are measured again on training crops
(``torch.optim.swa_utils.update_bn``) when a dataset is given. The crops are
unaugmented: the statistics serve inference, where nothing is augmented.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from openheadpose.training.data import Augmentation, PoseDataset, read_sources

__all__ = ["AverageError", "average_checkpoints", "average_states"]

#: Training crops (evenly spread over the set) that re-measure the BatchNorm statistics by default.
BN_CROPS = 4096


class AverageError(ValueError):
    """The checkpoints cannot be averaged (unreadable, different networks or shapes)."""


def _normalised(weights: Sequence[float] | None, n: int) -> np.ndarray:
    """``n`` weights summing to one (uniform when ``weights`` is None)."""
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise AverageError(f"weights must be {n} non-negative numbers with a positive sum, not {list(weights or [])}")
    return w / w.sum()


def average_states(states: Sequence[dict[str, torch.Tensor]], weights: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    """The weighted mean of state dicts with the same keys and shapes.

    Floating-point tensors are averaged (in float64, cast back); integer ones (BatchNorm's
    ``num_batches_tracked``) are taken from the first state.
    """
    if not states:
        raise AverageError("no checkpoints to average")
    w = _normalised(weights, len(states))
    keys = list(states[0])
    for i, s in enumerate(states[1:], 1):
        if list(s) != keys:
            missing = sorted(set(keys) ^ set(s))[:3]
            raise AverageError(f"checkpoint {i + 1} holds other tensors than checkpoint 1 (e.g. {missing})")
    out = {}
    for k in keys:
        first = states[0][k]
        for i, s in enumerate(states[1:], 1):
            if tuple(s[k].shape) != tuple(first.shape):
                raise AverageError(f"{k}: shape {tuple(s[k].shape)} in checkpoint {i + 1}, {tuple(first.shape)} in checkpoint 1")
        if first.is_floating_point():
            acc = sum(float(wi) * s[k].double() for wi, s in zip(w, states, strict=True))
            out[k] = acc.to(first.dtype)
        else:
            out[k] = first.clone()
    return out


def average_checkpoints(paths: Sequence[str | Path], out: str | Path, bn_data: Sequence[str] = (), bn_crops: int = BN_CROPS,
                        weights: Sequence[float] | None = None, batch_size: int = 64, workers: int = 0,
                        log: Callable[[str], None] = print) -> dict:
    """Average ``paths`` (checkpoints of one network) into ``out``; re-measure BatchNorm on ``bn_data``.

    Args:
        bn_data: ``kind:path`` training sets (as ``headpose train --data``); empty keeps
            the averaged running statistics (exact only for a single checkpoint).
        bn_crops: crops, evenly spread over ``bn_data``, that set the statistics.
        weights: one per checkpoint (default: uniform).

    Returns:
        ``{"out", "model", "averaged", "weights", "bn_crops"}``, also stored in the checkpoint as ``averaged_from``.
    """
    from openheadpose.models import create_model, load_checkpoint, save_checkpoint

    if len(paths) < 1:
        raise AverageError("no checkpoints to average")
    states, specs = [], []
    for p in paths:
        state, spec = load_checkpoint(p)  # ValueError naming the file when unreadable
        states.append(state)
        specs.append(spec)
    for p, spec in zip(paths[1:], specs[1:], strict=True):
        if spec.name != specs[0].name:
            raise AverageError(f"{p} holds {spec.name!r}, {paths[0]} holds {specs[0].name!r}: only one network's checkpoints average")
        if spec.preprocessing != specs[0].preprocessing:
            raise AverageError(f"{p} was trained on other crops than {paths[0]} ({spec.preprocessing} vs {specs[0].preprocessing})")
    model = create_model(specs[0].name)
    try:
        model.load_state_dict(average_states(states, weights), strict=True)
    except RuntimeError as exc:
        raise AverageError(f"the average does not fit {specs[0].name}: {exc}") from None
    used = 0
    has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if bn_data and has_bn:
        samples = [s for src in read_sources(list(bn_data), None, None, log) for s in src.samples]
        if not samples:
            raise AverageError(f"no samples in {', '.join(bn_data)} to measure BatchNorm on")
        idx = np.unique(np.linspace(0, len(samples) - 1, min(bn_crops, len(samples))).round().astype(int))
        ds = PoseDataset([samples[i] for i in idx], specs[0], Augmentation(), 0)
        loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=workers)
        torch.optim.swa_utils.update_bn((b["input"] for b in loader), model)
        used = len(ds)
        log(f"BatchNorm statistics measured on {used} training crops of {', '.join(bn_data)}")
    elif len(paths) > 1 and has_bn:
        log("warning: no --bn-data: the BatchNorm statistics are the checkpoints' average, not the average network's")
    model.eval()
    info = {"averaged": [str(p) for p in paths], "weights": [float(x) for x in _normalised(weights, len(paths))], "bn_crops": used, "bn_data": list(bn_data)}
    # the first checkpoint's spec, but not its training record: each one's goes under "averaged"
    notes = {k: v for k, v in specs[0].notes.items() if k != "training"}
    notes["averaged"] = {**info, "training": [s.notes.get("training") for s in specs]}
    model.spec = dataclasses.replace(specs[0], notes=notes)
    save_checkpoint(model, out, averaged_from=info)
    return {"out": str(out), "model": specs[0].name, **info}
