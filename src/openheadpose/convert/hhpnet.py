"""Import the official HHP-Net TensorFlow SavedModels without TensorFlow.

HHP-Net (Cantarini et al., WACV 2022) ships three Keras SavedModels
(``model_w300_biwi``, ``model_w300_biwi_0.6``, ``model_w300_biwi_0.2``: alpha = 1,
0.6, 0.2). Their weights live in ``variables/variables.index`` +
``variables/variables.data-*-of-*``, TensorFlow's *tensor bundle*:

* ``variables.index`` is a LevelDB-style SSTable. Its keys are checkpoint keys
  (``layer_with_weights-3/kernel/.ATTRIBUTES/VARIABLE_VALUE``; the empty key holds
  a ``BundleHeaderProto``) and its values are serialized ``BundleEntryProto``
  (dtype, shape, shard, offset, size, masked CRC32C).
* ``variables.data-SSSSS-of-NNNNN`` holds the raw little-endian tensors at those offsets.
* The string tensor ``_CHECKPOINTABLE_OBJECT_GRAPH`` (a ``TrackableObjectGraph``)
  maps each checkpoint key to the variable's Keras name (``conv1d_1/kernel``,
  ``yaw/bias``), which tells the two keypoint convolutions apart.

This module reads that format with a ~100-line protobuf wire decoder and numpy,
so importing needs neither TensorFlow nor compiled TF protos; every tensor's
CRC32C is checked. The network's constants (the confidence normalisation) are
graph constants, not variables: they are fixed in :mod:`openheadpose.models.hhpnet`
and checked against the fixture in ``tests/test_models_hhpnet.py``.
"""

from __future__ import annotations

import dataclasses
import re
import struct
from pathlib import Path

import numpy as np

from openheadpose.convert._crc32c import crc32c

# --------------------------------------------------------------------------- protobuf wire format


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes):
    """Yield ``(field_number, value)`` of a serialized message (ints, or bytes for length-delimited)."""
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = bytes(buf[pos : pos + size]), pos + size
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, value


def _message(buf: bytes) -> dict[int, list]:
    out: dict[int, list] = {}
    for f, v in _fields(buf):
        out.setdefault(f, []).append(v)
    return out


# --------------------------------------------------------------------------- CRC32C (Castagnoli)

def _unmask(masked: int) -> int:
    # TensorFlow stores crc32c::Mask(crc) = rotr(crc, 15) + 0xa282ead8.
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot << 15) | (rot >> 17)) & 0xFFFFFFFF


# --------------------------------------------------------------------------- SSTable (variables.index)

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER = 48


def _block_handle(buf: bytes, pos: int) -> tuple[int, int, int]:
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return offset, size, pos


def _read_block(data: bytes, offset: int, size: int, where: str) -> bytes:
    block = data[offset : offset + size]
    if len(block) != size or offset + size + 5 > len(data):
        raise ValueError(f"{where}: truncated table block")
    kind = data[offset + size]
    if kind != 0:  # 1 = snappy; TensorFlow writes bundle indexes uncompressed
        raise ValueError(f"{where}: compressed table blocks (type {kind}) are not supported")
    return block


def _block_entries(block: bytes):
    """``(key, value)`` of one block (prefix-compressed keys; restart array at the end)."""
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * num_restarts
    pos, key = 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        vlen, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + vlen]
        pos += vlen


def _read_table(path: Path) -> dict[bytes, bytes]:
    data = path.read_bytes()
    where = str(path)
    if len(data) < _FOOTER or struct.unpack_from("<Q", data, len(data) - 8)[0] != _TABLE_MAGIC:
        raise ValueError(f"{where}: not a TensorFlow checkpoint index (bad SSTable magic)")
    footer = data[len(data) - _FOOTER :]
    _, _, pos = _block_handle(footer, 0)  # metaindex (unused)
    index_off, index_size, _ = _block_handle(footer, pos)
    out: dict[bytes, bytes] = {}
    for _, handle in _block_entries(_read_block(data, index_off, index_size, where)):
        off, size, _ = _block_handle(handle, 0)
        out.update(_block_entries(_read_block(data, off, size, where)))
    return out


# --------------------------------------------------------------------------- tensor bundle

# tensorflow/core/framework/types.proto DataType -> numpy (little-endian)
_DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?", 17: "<u2", 19: "<f2", 22: "<u4", 23: "<u8"}
_DT_STRING = 7


def _entry(value: bytes) -> dict:
    m = _message(value)
    shape = []
    if 2 in m:
        for f, dim in _fields(m[2][0]):
            if f == 2:
                shape.append(int(_message(dim).get(1, [0])[0]))
    if 7 in m:
        raise ValueError("sliced (partitioned) variables are not supported")
    return {
        "dtype": m.get(1, [0])[0],
        "shape": tuple(shape),
        "shard": m.get(3, [0])[0],
        "offset": m.get(4, [0])[0],
        "size": m.get(5, [0])[0],
        "crc32c": m.get(6, [None])[0],
    }


def read_tf_checkpoint(prefix: str | Path) -> dict[str, np.ndarray | bytes]:
    """Every tensor of a TensorFlow 2 checkpoint (tensor bundle), without TensorFlow.

    Args:
        prefix: the path without ``.index`` (``.../variables/variables``).

    Returns:
        checkpoint key -> numpy array (numeric tensors) or bytes (scalar string tensors).

    Raises:
        ValueError: not a tensor bundle, an unsupported feature, or a CRC mismatch.
    """
    prefix = Path(prefix)
    index = prefix.with_name(prefix.name + ".index")
    if not index.is_file():
        raise ValueError(f"{index}: no such checkpoint index")
    table = _read_table(index)
    header = _message(table.pop(b"", b""))
    num_shards = header.get(1, [1])[0]
    if header.get(2, [0])[0] != 0:
        raise ValueError(f"{index}: big-endian checkpoints are not supported")
    shards: dict[int, bytes] = {}
    out: dict[str, np.ndarray | bytes] = {}
    for key, blob in table.items():
        e = _entry(blob)
        sid = e["shard"]
        if sid not in shards:
            f = prefix.with_name(f"{prefix.name}.data-{sid:05d}-of-{num_shards:05d}")
            if not f.is_file():
                raise ValueError(f"{f}: missing checkpoint shard")
            shards[sid] = f.read_bytes()
        raw = shards[sid][e["offset"] : e["offset"] + e["size"]]
        name = key.decode()
        if len(raw) != e["size"]:
            raise ValueError(f"{index}: tensor {name!r} runs past the end of its shard")
        if e["dtype"] == _DT_STRING:
            if e["shape"] not in ((), (1,)):
                continue  # only the scalar object graph is needed
            # [varint64 length][masked crc32c of the lengths][bytes]; the entry's crc32c
            # covers the length as uint32, those 4 checksum bytes and the string bytes.
            n, pos = _varint(raw, 0)
            checked = struct.pack("<I", n & 0xFFFFFFFF) + raw[pos:]
            value = raw[pos + 4 : pos + 4 + n]
        elif e["dtype"] in _DTYPES:
            checked = raw
            value = None
        else:
            raise ValueError(f"{index}: tensor {name!r} has unsupported dtype {e['dtype']}")
        if e["crc32c"] is not None and crc32c(checked) != _unmask(e["crc32c"]):
            raise ValueError(f"{index}: tensor {name!r} fails its CRC32C check (corrupt file?)")
        if value is not None:
            out[name] = value
        else:
            out[name] = np.frombuffer(raw, _DTYPES[e["dtype"]]).reshape(e["shape"]).copy()
    return out


def checkpoint_names(tensors: dict) -> dict[str, str]:
    """Checkpoint key -> the variable's own name (``full_name``, e.g. ``conv1d_1/kernel``).

    Read from the ``_CHECKPOINTABLE_OBJECT_GRAPH`` tensor (a ``TrackableObjectGraph``:
    nodes (1) -> attributes (2) -> ``SerializedTensor`` {name 1, full_name 2, checkpoint_key 3}).
    """
    graph = tensors.get("_CHECKPOINTABLE_OBJECT_GRAPH")
    if not isinstance(graph, bytes):
        raise ValueError("the checkpoint has no _CHECKPOINTABLE_OBJECT_GRAPH")
    names = {}
    for f, node in _fields(graph):
        if f != 1:
            continue
        for g, attr in _fields(node):
            if g == 2:
                a = _message(attr)
                key = a.get(3, [b""])[0].decode()
                if key:
                    names[key] = a.get(2, [b""])[0].decode()
    return names


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
