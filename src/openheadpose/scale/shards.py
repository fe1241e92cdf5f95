"""One Parquet shard per work unit: the local engine's records, written atomically.

A shard's rows are :meth:`FrameResult.to_dict <openheadpose.inference.results.FrameResult.to_dict>`
records with the same fields and nesting (``heads`` a list of structs), so
``pyarrow.parquet.read_table(folder)``, ``pandas.read_parquet`` or ``ray.data.read_parquet``
read a run's folder as one table; names starting with ``_`` or ``.`` (the plan, work files,
temporary files) are skipped by those readers. What is not a record -- the unit's errors,
warnings and per-source status -- travels in the file's schema metadata, so the shard is
the one thing that says a unit is done, and it appears whole or not at all (temporary
file, then rename).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from openheadpose.io.writers import atomic_write_bytes

_F = pa.float64()

#: One head, as :meth:`Heads.to_list <openheadpose.inference.results.Heads.to_list>` gives it.
HEAD = pa.struct([
    ("box", pa.list_(_F)),
    ("score", _F),
    ("yaw", _F),
    ("pitch", _F),
    ("roll", _F),
    ("rotation", pa.list_(pa.list_(_F))),
    ("sigma", pa.list_(_F)),
    ("track_id", pa.int64()),
    ("position", pa.list_(_F)),
    ("position_sigma", pa.list_(_F)),
    ("transform", pa.list_(pa.list_(_F))),
])

#: One record (an image or a video frame), field for field the JSON Lines record.
SCHEMA = pa.schema([
    ("source", pa.string()),
    ("frame", pa.int64()),
    ("width", pa.int64()),
    ("height", pa.int64()),
    ("heads", pa.list_(HEAD)),
])

_META_KEY = b"openheadpose"


def write_shard(path: str | Path, records: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    """Write ``records`` and ``meta`` (JSON-able) to ``path`` atomically."""
    table = pa.Table.from_pylist(records, schema=SCHEMA.with_metadata({_META_KEY: json.dumps(meta)}))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


def read_shard(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``(records, meta)`` of a shard, records in the order they were written."""
    table = pq.read_table(path)
    return table.to_pylist(), read_meta(path, table.schema)


def read_meta(path: str | Path, schema: pa.Schema | None = None) -> dict[str, Any]:
    """A shard's metadata (reads only the file's footer)."""
    schema = pq.read_schema(path) if schema is None else schema
    return json.loads((schema.metadata or {}).get(_META_KEY, b"{}"))
