"""Import the official FSA-Net Keras weights (``.h5``) into :mod:`openheadpose.models.fsanet`.

FSA-Net's release (``pre-trained/{300W_LP,BIWI}_models/<variant>/<variant>.h5``)
holds Keras 2.2 ``save_weights`` files: one group per top-level layer (for FSA-Net
the sub-models ``ssr_G_model``, ``ssr_S_model``, the aggregation and
``ssr_F*_model``; for SSR-Net-MT the layers themselves), each listing its
``weight_names``. Keras numbered unnamed layers in creation order
(``separable_conv2d_1`` ...), so the numbers, not the file order, say which
layer is which: the ReLU stream's seven separable convolutions were created
before the tanh stream's, the 1x1 fusion convolutions in the order s4, x4, s3,
x3, s2, x2 (deepest stage first), and each stage's dense layers in the order
written in ``lib/FSANET_model.py``.

Layouts: convolution kernels ``(kh, kw, in, out)`` -> ``(out, in, kh, kw)``;
depthwise ``(kh, kw, C, 1)`` -> ``(C, 1, kh, kw)``; dense ``(in, out)`` -> ``(out, in)``;
BatchNorm gamma/beta/moving mean/variance -> weight/bias/running_mean/running_var
(the PyTorch layers already use Keras' epsilon 1e-3); the capsule transform
``W (K, N, D, Din)`` keeps its layout. Every weight in the file must be used and
every parameter set, with matching shapes; anything else is an error.

Needs ``h5py`` (``pip install 'openheadpose[convert]'``).

>>> variant_of("fsanet_noS_capsule_3_16_2_192_5")
'fsanet-nos-capsule'
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

__all__ = ["convert", "convert_fsanet_h5", "variant_of", "read_keras_h5", "PROTOCOLS"]

#: Release folder -> what its weights were trained on.
PROTOCOLS = {
    "300W_LP_models": "300W-LP",
    "BIWI_models": "BIWI protocol 2 (trained on 70% of BIWI's sequences)",
}

_KERAS_NAME = re.compile(r"^fsanet_(?:(var|noS)_)?(capsule|netvlad|metric)_(\d+)_(\d+)_(\d+)_(\d+)_(\d+)$")
_CAPSULE_PARTS = (("capsule", "fsanet-capsule"), ("var_capsule", "fsanet-var-capsule"), ("nos_capsule", "fsanet-nos-capsule"))
"""Caps-Fusion's sub-networks (attributes of FSANetCapsFusion) and the variants they load."""


def _parse(name: str) -> tuple[str, dict] | None:
    """``(registered name, S_set kwargs)`` of an official file/folder name, or None."""
    if name == "ssrnet_mt":
        return "ssrnet-mt", {}
    m = _KERAS_NAME.match(name)
    if m is None:
        return None
    score, agg = m.group(1), m.group(2)
    prefix = {None: "", "var": "var-", "noS": "nos-"}[score]
    keys = ("num_capsule", "dim_capsule", "routings", "num_primcaps", "m_dim")
    return f"fsanet-{prefix}{agg}", dict(zip(keys, (int(g) for g in m.groups()[2:])))


def variant_of(name: str) -> str:
    """The registered model name of an official weights name (``fsanet_var_capsule_3_16_2_21_5``, ``ssrnet_mt``).

    Raises:
        ValueError: not one of FSA-Net's names.
    """
    parsed = _parse(Path(name).stem if name.endswith(".h5") else name)
    if parsed is None:
        raise ValueError(
            f"{name!r} is not an FSA-Net weights name (expected fsanet_[var_|noS_](capsule|netvlad|metric)_3_16_2_<N>_5 or ssrnet_mt); pass variant="
        )
    return parsed[0]


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("reading Keras .h5 weights needs h5py: pip install 'openheadpose[convert]'") from None
    return h5py


def read_keras_h5(path: str | Path) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """``{top-level layer: {layer: {weight: array}}}`` of a Keras 2 ``save_weights`` file.

    A nested model (FSA-Net's ``ssr_G_model``) is one top-level entry holding its
    layers; a plain layer is a top-level entry holding itself.
    """
    h5py = _h5py()
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from None
    with f:
        group = f["model_weights"] if "model_weights" in f else f  # a whole-model save keeps weights there
        if "layer_names" not in group.attrs:
            raise ValueError(f"{path}: not a Keras weights file (no 'layer_names' attribute)")
        out: dict[str, dict[str, dict[str, np.ndarray]]] = {}
        for top in (n.decode() if isinstance(n, bytes) else n for n in group.attrs["layer_names"]):
            layers: dict[str, dict[str, np.ndarray]] = {}
            for wn in group[top].attrs.get("weight_names", []):
                wn = wn.decode() if isinstance(wn, bytes) else wn
                layer, weight = wn.split("/")[-2], wn.split("/")[-1].split(":")[0]
                layers.setdefault(layer, {})[weight] = np.asarray(group[top][wn][()], np.float32)
            if layers:
                out[top] = layers
    return out


class _Weights:
    """The file's weights, handed out once each; what is left over is reported."""

    def __init__(self, tops: dict, where: Path):
        self.tops, self.where = tops, where
        self.layers = {layer: w for layers in tops.values() for layer, w in layers.items()}
        self.used: set[tuple[str, str]] = set()

    def numbered(self, kind: str, top: str | None = None) -> list[str]:
        pool = self.layers if top is None else self.tops.get(top, {})
        found = [(int(m.group(1)), n) for n in pool if (m := re.fullmatch(re.escape(kind) + r"_(\d+)", n))]
        return [n for _, n in sorted(found)]

    def top(self, prefix: str) -> str | None:
        hits = [t for t in self.tops if t.startswith(prefix)]
        return hits[0] if len(hits) == 1 else None

    def take(self, layer: str, weight: str) -> np.ndarray:
        try:
            arr = self.layers[layer][weight]
        except KeyError:
            raise ValueError(f"{self.where}: no weight {layer}/{weight} (layers: {', '.join(sorted(self.layers))})") from None
        self.used.add((layer, weight))
        return arr

    def left_over(self) -> list[str]:
        return sorted(f"{l}/{w}" for l, ws in self.layers.items() for w in ws if (l, w) not in self.used)


def _expect(n: list, count: int, what: str, where: Path) -> list:
    if len(n) != count:
        raise ValueError(f"{where}: expected {count} {what} layers, found {len(n)}: {n}")
    return n


def _state_dict(w: _Weights, name: str) -> dict[str, np.ndarray]:
    sd: dict[str, np.ndarray] = {}

    def conv(prefix: str, layer: str) -> None:
        sd[f"{prefix}.weight"] = w.take(layer, "kernel").transpose(3, 2, 0, 1)
        sd[f"{prefix}.bias"] = w.take(layer, "bias")

    def dense(prefix: str, layer: str, kernel: str = "kernel", bias: str | None = "bias") -> None:
        sd[f"{prefix}.weight"] = w.take(layer, kernel).T
        if bias:
            sd[f"{prefix}.bias"] = w.take(layer, bias)

    top_g = w.top("ssr_G_model")  # None for SSR-Net-MT (a flat model)
    seps = _expect(w.numbered("separable_conv2d", top_g), 14, "separable_conv2d", w.where)
    bns = _expect(w.numbered("batch_normalization", top_g), 14, "batch_normalization", w.where)
    for i, (sep, bn) in enumerate(zip(seps, bns)):
        stream, j = ("x_blocks", i) if i < 7 else ("s_blocks", i - 7)  # the ReLU stream was built first
        p = f"backbone.{stream}.{j}"
        sd[f"{p}.depthwise.weight"] = w.take(sep, "depthwise_kernel").transpose(2, 3, 0, 1)
        sd[f"{p}.pointwise.weight"] = w.take(sep, "pointwise_kernel").transpose(3, 2, 0, 1)
        sd[f"{p}.pointwise.bias"] = w.take(sep, "bias")
        for ours, theirs in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"), ("running_var", "moving_variance")):
            sd[f"{p}.bn.{ours}"] = w.take(bn, theirs)
        sd[f"{p}.bn.num_batches_tracked"] = np.array(0, np.int64)
    convs = _expect(w.numbered("conv2d", top_g), 6, "1x1 conv2d", w.where)
    for k in range(3):  # created per stage, deepest first: the tanh stream's conv, then the ReLU stream's
        conv(f"fusion.s_convs.{k}", convs[2 * k])
        conv(f"fusion.x_convs.{k}", convs[2 * k + 1])

    if name == "ssrnet-mt":
        denses = _expect(w.numbered("dense"), 9, "dense", w.where)
        for k in range(3):  # per stage: delta's hidden layer, eta's hidden layer, the bins
            dense(f"heads.{k}.delta_hidden", denses[3 * k])
            dense(f"heads.{k}.local_hidden", denses[3 * k + 1])
            dense(f"heads.{k}.pred", denses[3 * k + 2])
            dense(f"heads.{k}.delta", f"delta_s{k + 1}")
            dense(f"heads.{k}.local", f"local_delta_stage{k + 1}")
        return sd

    top_s, top_f = w.top("ssr_S_model"), w.top("ssr_F")
    if top_f is None:
        raise ValueError(f"{w.where}: no ssr_F*_model group; not an FSA-Net weights file")
    if "nos" not in name:
        if top_s is None:
            raise ValueError(f"{w.where}: no ssr_S_model weights, but {name} has a scoring function")
        if "var" not in name:
            conv("mapping.score_conv", _expect(w.numbered("conv2d", top_s), 1, "scoring conv2d", w.where)[0])
        sr, sl = _expect(w.numbered("dense", top_s), 2, "ssr_S_model dense", w.where)  # SR_matrix then SL_matrix
        dense("mapping.sr", sr)
        dense("mapping.sl", sl)
    if name.endswith("capsule"):
        sd["aggregate.weight"] = w.take("caps", "W")
    elif name.endswith("netvlad"):
        (vlad,) = _expect(w.numbered("net_vlad"), 1, "net_vlad", w.where)
        dense("aggregate.assign", vlad, "kernel_W1", "kernel_B1")
        sd["aggregate.centres"] = w.take(vlad, "kernel_W2")[0]
        dense("aggregate.hidden", vlad, "kernel_H1", None)
    else:
        t1, t2 = _expect(w.numbered("mat_mul_layer"), 2, "mat_mul_layer", w.where)
        dense("aggregate.features", t1, "kernel_type1", None)
        dense("aggregate.pool", t2, "kernel_type2", None)
    preds = _expect(w.numbered("dense", top_f), 3, "ssr_F_model dense", w.where)
    for k in range(3):
        dense(f"heads.{k}.pred", preds[k])
        dense(f"heads.{k}.delta", f"delta_s{k + 1}")
        dense(f"heads.{k}.local", f"local_delta_stage{k + 1}")
    return sd


def _provenance(path: Path) -> tuple[str, str]:
    """``(source, trained_on)`` from the release layout ``<protocol>_models/<variant>/<variant>.h5``."""
    parts = path.resolve().parts
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] in PROTOCOLS:
            return "shamangary/FSA-Net pre-trained/" + "/".join(parts[i:]), PROTOCOLS[parts[i]]
    return f"shamangary/FSA-Net {path.name}", "unknown (not under 300W_LP_models/ or BIWI_models/)"


def _load_one(path: Path, name: str, kwargs: dict):
    import torch

    from openheadpose.models import create_model, model_spec

    defaults = {"num_capsule": 3, "dim_capsule": 16, "routings": 2, "m_dim": 5, "num_primcaps": 192 if "nos" in name else 21}
    odd = {k: v for k, v in kwargs.items() if defaults.get(k) != v}
    if odd:
        raise ValueError(f"{path}: S_set {odd} differs from the official configuration {defaults}, which is the one registered")
    model = create_model(name)
    w = _Weights(read_keras_h5(path), path)
    bad = sorted(f"{l}/{k}" for l, ws in w.layers.items() for k, a in ws.items() if not np.isfinite(a).all())
    if bad:
        # The release's 300W_LP_models/fsanet_var_netvlad_3_16_2_21_5 is such a file: every weight is NaN.
        raise ValueError(f"{path}: {len(bad)} weight arrays hold NaN or inf (e.g. {bad[0]}); the file is unusable")
    sd = _state_dict(w, name)
    left = w.left_over()
    if left:
        raise ValueError(f"{path}: weights not used by {name}: {left} (is it another variant?)")
    try:
        model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: does not fit {name}: {exc}") from None
    source, trained_on = _provenance(path)
    spec = model_spec(name)
    notes = {**spec.notes, "converted_by": "openheadpose.convert.fsanet"}
    if trained_on.startswith("BIWI"):
        notes["crop"] = (
            "trained on MTCNN boxes widened by 0.4 of their size on every side (TYY_create_db_biwi_70_30.py); "
            "the 'fsanet' recipe (a box widened by 0.6) only approximates it"
        )
    model.spec = dataclasses.replace(spec, source=source, trained_on=trained_on, notes=notes)
    return model.eval()


def _keras_prefix(name: str) -> str:
    """``fsanet-nos-capsule`` -> ``fsanet_noS_capsule``: how the release names that variant's files."""
    return name.replace("-nos-", "-noS-").replace("-", "_")


def _find_h5(folder: Path, name: str) -> Path | None:
    """The release's file for a registered variant, in ``folder/<variant>/`` or ``folder`` itself."""
    prefix = _keras_prefix(name)
    hits = sorted(folder.glob(f"{prefix}*/{prefix}*.h5")) + sorted(folder.glob(f"{prefix}*.h5"))
    hits = [h for h in hits if (_parse(h.stem) or ("",))[0] == name]  # not e.g. fsanet_capsule_fine_*
    return hits[0] if hits else None


def convert_fsanet_h5(src: str | Path, variant: str | None = None):
    """A PyTorch FSA-Net / SSR-Net-MT with the official weights, in eval mode, ``.spec`` filled in.

    Args:
        src: an official ``.h5``; a variant's folder holding one; or a release folder
            (``300W_LP_models``, ``BIWI_models``) for the Caps-Fusion ensemble of
            its three capsule models.
        variant: a registered name (``"fsanet-var-capsule"``, ``"fsanet-capsfusion"``)
            or an official one (``"fsanet_var_capsule_3_16_2_21_5"``); inferred from
            the file or folder name when omitted.

    Raises:
        ValueError: unknown variant, a file that does not fit it, or missing files.
        ImportError: h5py is not installed.
    """
    from openheadpose.models import list_models

    src = Path(src)
    if variant is not None and not variant.startswith(("fsanet-", "ssrnet-")):
        variant = variant_of(variant)
    known = list_models("fsanet*") + list_models("ssrnet*")
    if variant is not None and variant not in known:
        raise ValueError(f"unknown FSA-Net variant {variant!r}; choices: {', '.join(known)}")
    if src.is_dir():
        own = sorted(src.glob("*.h5"))
        if variant == "fsanet-capsfusion" or (variant is None and len(own) != 1):
            return _capsfusion(src)
        if len(own) == 1:
            src = own[0]
        else:  # a release folder: pick the variant's file
            found = _find_h5(src, variant)
            if found is None:
                raise ValueError(f"{src}: no {_keras_prefix(variant)}_* weights here (nor a single .h5 file)")
            src = found
    if not src.is_file():
        raise ValueError(f"{src}: no such file")
    parsed = _parse(src.stem) or _parse(src.parent.name)
    if variant is None:
        if parsed is None:
            variant_of(src.stem)  # raises with the expected names
        variant = parsed[0]
    elif parsed is not None and parsed[0] != variant:
        raise ValueError(f"{src}: the file name says {parsed[0]}, but variant={variant!r} was asked for")
    if variant == "fsanet-capsfusion":
        raise ValueError(f"{src}: Caps-Fusion needs three files; pass the folder holding them")
    return _load_one(src, variant, parsed[1] if parsed else {})


def _capsfusion(folder: Path):
    from openheadpose.models import create_model, model_spec

    paths = {attr: _find_h5(folder, name) for attr, name in _CAPSULE_PARTS}
    missing = [_keras_prefix(name) + "_*" for attr, name in _CAPSULE_PARTS if paths[attr] is None]
    if missing:
        raise ValueError(
            f"{folder}: Caps-Fusion needs the three capsule models; missing {', '.join(missing)} "
            "(or pass one .h5 file / a variant's folder)"
        )
    model = create_model("fsanet-capsfusion")
    sources, protocols = [], set()
    for attr, name in _CAPSULE_PARTS:
        part = convert_fsanet_h5(paths[attr], name)
        getattr(model, attr).load_state_dict(part.state_dict(), strict=True)
        sources.append(part.spec.source)
        protocols.add(part.spec.trained_on)
    if len(protocols) != 1:
        raise ValueError(f"{folder}: the three capsule models were trained on different data: {sorted(protocols)}")
    spec = model_spec("fsanet-capsfusion")
    model.spec = dataclasses.replace(
        spec, source="; ".join(sources), trained_on=protocols.pop(), notes={**spec.notes, "converted_by": "openheadpose.convert.fsanet"}
    )
    return model.eval()


def convert(src: str | Path, dst: str | Path, variant: str | None = None) -> Path:
    """Convert official FSA-Net weights to ``dst``: ``.onnx`` (to run) or ``.pt`` (an openheadpose checkpoint).

    See :func:`convert_fsanet_h5` for ``src`` and ``variant``.
    """
    from openheadpose.models.export import write_model

    if Path(dst).suffix.lower() not in (".onnx", ".pt"):  # before the slow import
        raise ValueError(f"{dst}: the output must end in .onnx (to run) or .pt (a checkpoint)")
    return write_model(convert_fsanet_h5(src, variant), dst)
