"""Start a PyTorch network from its own exported ONNX file (a warm start for fine-tuning).

``export_onnx`` writes the network in eval mode, where the exporter folds every
BatchNorm into the convolution before it: the file holds ``W' = W g / s`` and
``b' = beta - mu g / s`` (``s = sqrt(var + eps)``), not the five tensors PyTorch
trains. Any split of ``(W', b')`` back into a convolution and a BatchNorm gives the
same eval-mode function; this module picks the one under which *training* mode (batch
statistics) also computes it::

    conv.weight = W'                      the BatchNorm's input is W' x
    mu, var     = mean, variance of W' x per channel on a batch of real inputs
    bn          = (running_mean mu, running_var var, weight sqrt(var + eps), bias b' + mu)

so that ``bn(W' x) = (W' x - mu) / s * s + b' + mu = W' x + b'`` exactly in eval mode,
and within the batch-to-batch spread of the statistics in training mode.

Tensors are matched by the module path the exporter writes into each node's name
(``/inner/features/features.0/features.0.0/Conv`` -> ``features.0.0``), never by
position; every convolution and linear layer of the network must be found, with its
shape, and the result is checked against ONNX Runtime on the given inputs.

Only for files this package exported from a network of the same registered name
(``openheadpose.spec`` in the file's metadata).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["OnnxImportError", "load_onnx_weights"]


class OnnxImportError(ValueError):
    """The ONNX file does not fit the network."""


def _module_of(node) -> str:
    """The PyTorch module path of an exported node, or ``""``.

    Each scope of the node's name is a child's name under its parent's
    (``/inner/features/features.1/block/block.0/block.0.0/Conv``); the path is the last
    part of each, less the export wrapper's ``inner``: ``features.1.block.0.0``.
    """
    scopes = [p.rsplit(".", 1)[-1] for p in node.name.split("/")[1:-1] if p]
    if scopes and scopes[0] == "inner":
        scopes = scopes[1:]
    return ".".join(scopes)


def load_onnx_weights(model, path: str | Path, inputs: np.ndarray, atol: float = 1e-3) -> dict:
    """Load ``path`` (exported by :func:`openheadpose.models.export.export_onnx`) into ``model``.

    Args:
        model: the freshly built network (``model.spec.name`` must match the file's).
        path: the ``.onnx`` file.
        inputs: ``(N, C, S, S)`` float32 preprocessed crops of real faces (a few hundred),
            for the BatchNorm statistics and the final check.
        atol: largest allowed difference between the loaded network (eval mode) and
            ONNX Runtime, per output value.

    Returns:
        ``{"convolutions": n, "batchnorms": n, "linears": n, "max_abs_diff": float}``.

    Raises:
        OnnxImportError: another network, a layer missing or of another shape, or outputs
            that differ by more than ``atol``.
    """
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import numpy_helper

    from openheadpose.specs.spec import ModelSpec

    path = Path(path)
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    try:
        spec = ModelSpec.from_metadata(meta)
    except Exception as exc:  # noqa: BLE001 - any unreadable metadata means "not ours"
        raise OnnxImportError(f"{path}: not an openheadpose export ({exc})") from None
    if spec.name != model.spec.name:
        raise OnnxImportError(f"{path}: holds {spec.name}, not {model.spec.name}")
    init = {t.name: np.array(numpy_helper.to_array(t)) for t in proto.graph.initializer}

    convs, linears = {}, {}
    for node in proto.graph.node:
        if node.op_type == "Conv":
            convs[_module_of(node)] = [init[i] for i in node.input[1:] if i in init]
        elif node.op_type == "Gemm":
            attrs = {a.name: a for a in node.attribute}
            if "transB" not in attrs or attrs["transB"].i != 1:
                raise OnnxImportError(f"{path}: Gemm {node.name} is not x @ W.T + b")
            linears[_module_of(node)] = [init[i] for i in node.input[1:] if i in init]

    # Which BatchNorm reads which convolution's output: traced on one input.
    order, produced, follows, alive = [], {}, {}, []  # alive: no tensor id is reused during the trace

    def hook(name):
        def fn(mod, args, out):
            order.append(name)
            alive.append(out)
            if isinstance(mod, torch.nn.Conv2d):
                produced[id(out)] = name
            elif isinstance(mod, torch.nn.BatchNorm2d) and id(args[0]) in produced:
                follows[produced[id(args[0])]] = name
        return fn

    named = dict(model.named_modules())
    kinds = (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.Linear)
    handles = [m.register_forward_hook(hook(n)) for n, m in named.items() if isinstance(m, kinds)]
    x = torch.from_numpy(np.ascontiguousarray(inputs, np.float32))
    model.eval()
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()

    n_bn = 0
    with torch.no_grad():
        for name in dict.fromkeys(order):
            mod = named[name]
            if isinstance(mod, torch.nn.BatchNorm2d):
                continue
            table = convs if isinstance(mod, torch.nn.Conv2d) else linears
            if name not in table:
                raise OnnxImportError(f"{path}: no tensors for {name} ({type(mod).__name__})")
            tensors = table.pop(name)
            w = tensors[0]
            b = tensors[1] if len(tensors) > 1 else np.zeros(w.shape[0], np.float32)
            if tuple(w.shape) != tuple(mod.weight.shape):
                raise OnnxImportError(f"{path}: {name} weight {tuple(w.shape)}, the network has {tuple(mod.weight.shape)}")
            mod.weight.copy_(torch.from_numpy(w))
            if name in follows:  # folded: this BatchNorm becomes y = x + b' until its statistics are set
                bn = named[follows[name]]
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(b))
                if mod.bias is not None:  # the whole bias lives in the BatchNorm
                    mod.bias.zero_()
                n_bn += 1
            elif mod.bias is not None:
                mod.bias.copy_(torch.from_numpy(b))
            elif np.any(b):
                raise OnnxImportError(f"{path}: {name} has a bias in the file but none in the network")
    if convs or linears:
        raise OnnxImportError(f"{path}: tensors for layers the network does not have: {sorted(convs) + sorted(linears)}")

    # BatchNorm statistics of the (now exact) eval-mode network on real inputs.
    bns = {named[b]: b for b in follows.values()}
    stats = {}

    def grab(mod, args, out):
        a = args[0].double()
        stats[mod] = (a.mean((0, 2, 3)), a.var((0, 2, 3), unbiased=False))

    handles = [m.register_forward_hook(grab) for m in bns]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    with torch.no_grad():
        for bn, (mu, var) in stats.items():
            s = torch.sqrt(var + bn.eps)
            bn.running_mean.copy_(mu.float())
            bn.running_var.copy_(var.float())
            bn.bias.add_(mu.float())
            bn.weight.copy_(s.float())

    # The check: the loaded network against ONNX Runtime on the same inputs.
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    got = dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: x.numpy()})))
    with torch.no_grad():
        ref = model(x)
    ref = ref if isinstance(ref, dict) else dict(zip(names, ref if isinstance(ref, (tuple, list)) else [ref]))
    diff = max(float(np.abs(got[k] - ref[k].numpy()).max()) for k in got)
    if not diff <= atol:
        raise OnnxImportError(f"{path}: the loaded network differs from ONNX Runtime by {diff:.3g} (> {atol})")
    layers = [named[n] for n in dict.fromkeys(order)]
    return {"convolutions": sum(isinstance(m, torch.nn.Conv2d) for m in layers), "batchnorms": n_bn,
            "linears": sum(isinstance(m, torch.nn.Linear) for m in layers), "max_abs_diff": diff}
