"""Runtimes for the networks: ONNX Runtime (``onnx.py``) and LiteRT (``litert.py``).

:func:`set_threads` caps the CPU threads of every model built afterwards in this
process, for both runtimes -- what a worker sharing a machine with others needs
(``headpose predict --engine ray`` gives each actor its share of the cores). The
environment variable ``OPENHEADPOSE_THREADS`` does the same for a whole process.

Without either, every model runs on :data:`DEFAULT_THREADS` (one) thread. The models are small
(a BlazeFace or FaceMesh call is about 1 ms, the pose network's few crops about as much), so a
thread pool's hand-offs and spinning cost more than it saves, and several pools (one per LiteRT
interpreter, ONNX Runtime's, OpenBLAS's) fought over the cores: on 2 cores, one thread per model
took ``group-t1.jpg`` from about 96 to 48 ms a photo and halved the CPU time of ``single_face.jpg``
(issue 32, ``benchmarks/bench_photos.py``). A folder keeps the cores busy with the pipeline's own
two threads (decode and detect ahead; pose).
"""

from __future__ import annotations

import os

_threads: int | None = None

#: Threads of a model when neither :func:`set_threads` nor ``OPENHEADPOSE_THREADS`` says.
DEFAULT_THREADS = 1


def set_threads(n: int | None) -> None:
    """Threads for each model created from now on in this process (ONNX Runtime intra-op and
    LiteRT); ``None`` goes back to ``OPENHEADPOSE_THREADS`` or the runtimes' defaults.

    >>> set_threads(2); threads()
    2
    >>> set_threads(None)
    """
    if n is not None and (not isinstance(n, int) or n < 1):
        raise ValueError(f"threads must be a positive integer or None, not {n!r}")
    global _threads
    _threads = n


def model_threads() -> int:
    """The threads a model is built with: :func:`threads`, else :data:`DEFAULT_THREADS`."""
    return threads() or DEFAULT_THREADS


def threads() -> int | None:
    """The thread cap models are built with: :func:`set_threads`'s, else ``OPENHEADPOSE_THREADS``'s, else ``None``."""
    if _threads is not None:
        return _threads
    env = os.environ.get("OPENHEADPOSE_THREADS", "").strip()
    if not env:
        return None
    try:
        n = int(env)
    except ValueError:
        raise ValueError(f"OPENHEADPOSE_THREADS={env!r}: not a whole number of threads") from None
    if n < 1:
        raise ValueError(f"OPENHEADPOSE_THREADS={env!r}: needs at least 1 thread")
    return n
