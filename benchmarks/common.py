"""What every benchmark script shares: where its result goes and how a run describes itself."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from openheadpose.io import atomic_write_bytes

ROOT = Path(__file__).resolve().parents[1]


def shared_root(needs: str = "", who: str | None = None) -> Path:
    """``$OPENHEADPOSE_SHARED`` or ``../shared``; exits naming the benchmark when it (or ``needs`` inside it) is absent."""
    env = os.environ.get("OPENHEADPOSE_SHARED")
    root = Path(env) if env else ROOT.parent / "shared"
    if not (root / needs).is_dir():
        sys.exit(f"{who or Path(sys.argv[0]).stem}: no shared data at {root / needs} (set OPENHEADPOSE_SHARED)")
    return root


def version(dist: str) -> str | None:
    """The installed version of a distribution, or ``None``."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """Facts that decide how comparable two runs are."""
    import cv2
    import numpy as np

    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "processor": platform.processor(),
        "cpu_model": cpu_model,
        "machine": platform.machine(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "onnxruntime": version("onnxruntime"),
        # The BlazeFace/FaceMesh models actually run on LiteRT; mediapipe only ships the files.
        "ai_edge_litert": version("ai-edge-litert"),
        "mediapipe": version("mediapipe"),
        "openheadpose": version("openheadpose"),
    }


def run_header(benchmark: str, schema_version: int, started: _dt.datetime) -> dict[str, Any]:
    """The fields that open every result: what ran, when, with which command, on which machine."""
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
