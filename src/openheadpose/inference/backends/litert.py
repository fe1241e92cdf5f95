"""Locate MediaPipe's bundled ``.tflite`` models and run them with LiteRT.

The ``mediapipe==0.10.21`` wheel carries BlazeFace, FaceMesh and Pose models
under ``mediapipe/modules``; we only read those files (importing mediapipe
itself is slow and unnecessary) and run them with ``ai-edge-litert``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np


class MissingBackendError(RuntimeError):
    """A stage needs a package that is not installed."""


@lru_cache(maxsize=None)
def mediapipe_modules_dir() -> Path:
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise MissingBackendError(
            "the MediaPipe models are not installed: `pip install mediapipe==0.10.21` "
            "(or choose --detector haar, which needs only OpenCV)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "modules"


def mediapipe_model(relpath: str) -> Path:
    path = mediapipe_modules_dir() / relpath
    if not path.is_file():
        raise MissingBackendError(
            f"{path} is missing: this toolkit needs the model files of mediapipe==0.10.21 "
            "(newer wheels no longer ship them)"
        )
    return path


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingBackendError("`pip install ai-edge-litert` to run the MediaPipe models") from exc
    return Interpreter


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence C-level stderr while LiteRT starts: it prints an INFO line per model.

    Python exceptions still propagate; only the native log line is dropped.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. captured): nothing to hide
        yield
        return
    saved = os.dup(fd)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


class TFLiteModel:
    """A single-input LiteRT model; thread-safe ``__call__`` returning all outputs.

    Args:
        path: the ``.tflite`` file.
        num_threads: CPU threads for the interpreter (default: all cores, at most 4).
    """

    def __init__(self, path: Path, num_threads: int | None = None):
        Interpreter = _interpreter_class()
        if num_threads is None:
            num_threads = min(4, os.cpu_count() or 1)
        self.path = Path(path)
        with _quiet_native_stderr():
            self._interp = Interpreter(model_path=str(path), num_threads=num_threads)
            self._interp.allocate_tensors()
        inp = self._interp.get_input_details()[0]
        self.input_index = inp["index"]
        self.input_shape = tuple(int(v) for v in inp["shape"])
        self._outputs = [d["index"] for d in self._interp.get_output_details()]
        self._lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.shape != self.input_shape:
            raise ValueError(f"{self.path.name} expects input {self.input_shape}, got {x.shape}")
        with self._lock:
            self._interp.set_tensor(self.input_index, x)
            self._interp.invoke()
            return [self._interp.get_tensor(i).copy() for i in self._outputs]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, np.float64), -80, 80)))
