"""Keeping the native libraries' own messages off standard error, where the tool says one line per failed input.

Three sources print there on a bad input: OpenCV's logger (about ten lines for a camera index that
does not exist), FFmpeg inside OpenCV (``moov atom not found`` twice per broken mp4) and libpng
(``libpng error: ...``, ``libpng warning: iCCP: ...``) -- the last straight to file descriptor 2
from C, past every log level. :func:`quiet_libraries` lowers the first two by their own settings
(``cv2.setLogLevel``; ``OPENCV_FFMPEG_LOGLEVEL``, read when OpenCV first opens a video, so it is set
before that); for libpng, which has no such setting, :func:`native_stderr_to` lends file descriptor 2
to a temporary file around one decode (only on the main thread, where nothing else writes then).
The command line calls :func:`quiet_libraries` unless ``--verbose``; the Python API leaves every
library as it is unless asked.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

_quiet = False

#: What :func:`quiet_libraries` sets, unless the user set it: OpenCV's logger silent (read when cv2 is
#: imported; ``cv2.setLogLevel`` when it already is) and FFmpeg's AV_LOG_QUIET (read at the first video).
_ENV = {"OPENCV_LOG_LEVEL": "SILENT", "OPENCV_FFMPEG_LOGLEVEL": "-8"}

#: The variables :func:`quiet_libraries` set (and so may take back).
_set_here: set[str] = set()

#: Native messages caught by :func:`native_stderr_to` since the last :func:`take_native_messages`.
_caught: list[str] = []


def quiet_libraries(quiet: bool = True) -> None:
    """Silence OpenCV's, FFmpeg's and libpng's own messages; ``quiet=False`` takes that back (``--verbose``).

    Variables the user set are left as they are. Call it before the first video is opened:
    FFmpeg's log level is read then.
    """
    global _quiet
    _quiet = quiet
    cv2 = sys.modules.get("cv2")
    if quiet:
        for k, v in _ENV.items():
            if k not in os.environ:
                os.environ[k] = v
                _set_here.add(k)
        if cv2 is not None and "OPENCV_LOG_LEVEL" in _set_here:
            _set_opencv_log_level(cv2, 0)  # LOG_LEVEL_SILENT: the tool names every failure itself
        return
    for k in list(_set_here):
        os.environ.pop(k, None)
        _set_here.discard(k)
    if cv2 is not None and "OPENCV_LOG_LEVEL" not in os.environ:
        _set_opencv_log_level(cv2, 3)  # LOG_LEVEL_WARNING, OpenCV's own default


def _set_opencv_log_level(cv2, level: int) -> None:
    """OpenCV's log level, where this build of its Python bindings offers a setter: ``cv2.setLogLevel``
    in some wheels, ``cv2.utils.logging.setLogLevel`` in others, neither in a few (the variable
    ``OPENCV_LOG_LEVEL``, set before import, still applies there)."""
    setter = getattr(cv2, "setLogLevel", None) or getattr(getattr(getattr(cv2, "utils", None), "logging", None), "setLogLevel", None)
    if setter is not None:
        setter(level)


def is_quiet() -> bool:
    return _quiet


#: While :func:`divert_native_stderr` holds file descriptor 2: (the saved descriptor, the sys.stderr it replaced).
_diverted: tuple[int, object] | None = None


def divert_native_stderr() -> bool:
    """The command line's standard error for its own lines only, on every thread.

    Python's ``sys.stderr`` moves to a copy of file descriptor 2, and descriptor 2 itself --
    where C libraries write (libpng decoding a photo on the folder stream's decode thread,
    FFmpeg) -- goes to the null device. Done only when ``sys.stderr`` is descriptor 2 itself
    (a real process's stderr; not under a test runner's capture); returns whether it was.
    :func:`restore_native_stderr` takes it back (``--verbose``).
    """
    global _diverted
    if _diverted is not None:
        return True
    try:
        if sys.stderr is None or sys.stderr.fileno() != 2:
            return False
        sys.stderr.flush()
        saved = os.dup(2)
        sink = os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError, AttributeError):
        return False
    previous = sys.stderr
    sys.stderr = open(saved, "w", buffering=1, encoding=getattr(previous, "encoding", None) or "utf-8", errors="backslashreplace", closefd=False)
    os.dup2(sink, 2)
    os.close(sink)
    _diverted = (saved, previous)
    return True


def restore_native_stderr() -> None:
    """Undo :func:`divert_native_stderr`: descriptor 2 and ``sys.stderr`` as they were."""
    global _diverted
    if _diverted is None:
        return
    saved, previous = _diverted
    _diverted = None
    sys.stderr.flush()
    os.dup2(saved, 2)
    sys.stderr = previous


@contextlib.contextmanager
def native_stderr_to() -> Iterator[None]:
    """While quiet, send what C code writes to file descriptor 2 into a temporary file (kept for
    :func:`take_native_messages`), around one short call on the main thread; else do nothing."""
    if not _quiet or _diverted is not None or threading.current_thread() is not threading.main_thread():
        yield  # (diverted: descriptor 2 is the null device already)
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no fd 2 (pythonw), or a replaced sys.stderr
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read(64_000).decode("utf-8", "replace").strip()
            if text:
                _caught.append(text)
                del _caught[:-20]


def take_native_messages() -> list[str]:
    """The native messages caught since the last call (at most the last 20)."""
    out = list(_caught)
    _caught.clear()
    return out
