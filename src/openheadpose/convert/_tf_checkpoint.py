"""TensorFlow checkpoints (tensor bundles) read without TensorFlow: the one private home of that format.

* ``variables.index`` is a LevelDB-style SSTable. Its keys are checkpoint keys
  (``layer_with_weights-3/kernel/.ATTRIBUTES/VARIABLE_VALUE``; the empty key holds
  a ``BundleHeaderProto``) and its values are serialized ``BundleEntryProto``
  (dtype, shape, shard, offset, size, masked CRC32C).
* ``variables.data-SSSSS-of-NNNNN`` holds the raw little-endian tensors at those offsets.
* The string tensor ``_CHECKPOINTABLE_OBJECT_GRAPH`` (a ``TrackableObjectGraph``)
  maps each checkpoint key to the variable's Keras name.

Why hand-written: no maintained package reads this format without TensorFlow itself
(a multi-hundred-MB dependency for three small files); the decoder is a protobuf
wire-format walk plus numpy, and every tensor's CRC-32C is checked.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


def _make_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _make_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord uses.

    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
    """
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


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
