"""What every benchmark script shares: where its result goes and how a run describes itself."""

from __future__ import annotations

import datetime as _dt
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from openheadpose.io import atomic_write_bytes


def run_header(benchmark: str, schema_version: int, started: _dt.datetime) -> dict[str, Any]:
    """The fields that open every result: what ran, when, with which command, on which machine."""
    from benchmarks.bench_speed import machine_info

    return {
        "benchmark": benchmark,
        "schema_version": schema_version,
        "date": started.isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "python_executable": sys.executable,
        "machine": machine_info(),
    }


def write_result(path: Path, doc: dict[str, Any], indent: int = 1) -> None:
    """The result as JSON, atomically, and a line saying where it went."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(doc, indent=indent) + "\n").encode())
    print(f"wrote {path}")
