"""A TensorBoard event-file writer for scalars, with no TensorBoard or protobuf dependency.

TensorBoard reads ``events.out.tfevents.*`` files: TFRecords (length, masked
CRC-32C of the length, payload, masked CRC-32C of the payload) whose payloads are
``tensorflow.Event`` protobuf messages. Scalars need three message types, so the
few bytes are written by hand here:

* ``Event``: ``wall_time`` (1, double), ``step`` (2, int64), ``file_version`` (3, string),
  ``summary`` (5, message);
* ``Summary``: repeated ``value`` (1, message);
* ``Summary.Value``: ``tag`` (1, string), ``simple_value`` (2, float).

>>> import tempfile, os
>>> with tempfile.TemporaryDirectory() as d:
...     w = EventWriter(d)
...     w.scalar("loss", 0.5, step=3)
...     w.close()
...     [(e["step"], e["scalars"]) for e in read_events(w.path)][1:]
[(3, {'loss': 0.5})]
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

from openheadpose.convert._crc32c import crc32c

__all__ = ["EventWriter", "read_events", "crc32c"]


def _masked(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_bytes(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int, *, file_version: str | None = None, scalars: dict[str, float] | None = None) -> bytes:
    msg = _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3 | 0) + _varint(int(step))
    if file_version is not None:
        msg += _field_bytes(3, file_version.encode())
    if scalars:
        summary = b"".join(
            _field_bytes(1, _field_bytes(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", float(v))) for tag, v in scalars.items()
        )
        msg += _field_bytes(5, summary)
    return msg


def _record(payload: bytes) -> bytes:
    n = struct.pack("<Q", len(payload))
    return n + struct.pack("<I", _masked(n)) + payload + struct.pack("<I", _masked(payload))


class EventWriter:
    """Append scalar events to a new ``events.out.tfevents.<time>.<host>`` file in ``logdir``.

    Each event is written and flushed whole; a crash can at worst leave a truncated
    last record, which TensorBoard skips.
    """

    def __init__(self, logdir: str | os.PathLike):
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.path = self.logdir / f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self._fh = open(self.path, "ab")
        self._write(_event(time.time(), 0, file_version="brain.Event:2"))

    def _write(self, payload: bytes) -> None:
        self._fh.write(_record(payload))
        self._fh.flush()

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars({tag: value}, step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Several scalars at one step (one event)."""
        clean = {k: float(v) for k, v in values.items() if v is not None}
        if clean:
            self._write(_event(time.time(), step, scalars=clean))

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


def _read_varint(b: bytes, i: int) -> tuple[int, int]:
    shift = n = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n, i


def _fields(b: bytes):
    i = 0
    while i < len(b):
        key, i = _read_varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(b, i)
        elif wt == 1:
            v, i = b[i : i + 8], i + 8
        elif wt == 5:
            v, i = b[i : i + 4], i + 4
        elif wt == 2:
            n, i = _read_varint(b, i)
            v, i = b[i : i + n], i + n
        else:
            raise ValueError(f"unsupported wire type {wt}")
        yield num, v


def read_events(path: str | os.PathLike) -> list[dict]:
    """Parse an event file written here (CRCs checked): ``[{"wall_time", "step", "scalars"}]``."""
    data = Path(path).read_bytes()
    out, i = [], 0
    while i + 12 <= len(data):
        (n,) = struct.unpack("<Q", data[i : i + 8])
        if struct.unpack("<I", data[i + 8 : i + 12])[0] != _masked(data[i : i + 8]) or i + 16 + n > len(data):
            break
        payload = data[i + 12 : i + 12 + n]
        if struct.unpack("<I", data[i + 12 + n : i + 16 + n])[0] != _masked(payload):
            raise ValueError(f"{path}: bad record checksum at byte {i}")
        i += 16 + n
        ev = {"wall_time": None, "step": 0, "scalars": {}}
        for num, v in _fields(payload):
            if num == 1:
                ev["wall_time"] = struct.unpack("<d", v)[0]
            elif num == 2:
                ev["step"] = v
            elif num == 5:
                for _, val in _fields(v):
                    f = dict(_fields(val))
                    ev["scalars"][f[1].decode()] = struct.unpack("<f", f[2])[0]
        out.append(ev)
    return out
