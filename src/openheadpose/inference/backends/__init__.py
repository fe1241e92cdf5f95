"""Runtimes for the networks: ONNX Runtime (``onnx.py``) and LiteRT (``litert.py``).

:func:`set_threads` caps the CPU threads of every model built afterwards in this
process, for both runtimes -- what a worker sharing a machine with others needs
(``headpose predict --engine ray`` gives each actor its share of the cores). The
environment variable ``OPENHEADPOSE_THREADS`` does the same for a whole process.
"""

from __future__ import annotations

import os

_threads: int | None = None


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
