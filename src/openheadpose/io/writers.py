"""Outputs written atomically: data goes to a hidden temporary file in the same folder and is
``os.replace``-d onto the final name when done, so a crash or Ctrl-C never leaves a half-written file.
"""

from __future__ import annotations

import csv
import json
import math
import os
import stat
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TextIO

import cv2
import numpy as np

from openheadpose.io.images import OutputError


def _read_umask() -> int:
    # os.umask can only be read by setting it; done once at import, before any threads.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _final_mode(path: Path) -> int:
    """Permissions for a new file: keep an existing file's, else what open() would give.

    mkstemp creates files 0600, which would surprise anyone sharing the outputs.
    """
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_UMASK


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (best effort; not possible on Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _commit(tmp: Path, final: Path, durable: bool = True) -> None:
    os.chmod(tmp, _final_mode(final))
    os.replace(tmp, final)
    if durable:
        _fsync_dir(final.parent)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _temp_path(final: Path, suffix: str = ".part") -> Path:
    """A fresh hidden temporary file beside ``final`` (same file system -> atomic replace)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix, dir=final.parent)
    os.close(fd)
    return Path(name)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically: temp file, fsync, ``os.replace``.

    Parent directories are created. On any failure (including Ctrl-C) the temporary
    file is removed and ``path`` is left as it was. ``durable=False`` skips the
    fsyncs: still all-or-nothing if the process dies, not if the machine loses
    power (for bulk outputs that a rerun regenerates, e.g. ``headpose synth``).
    """
    final = Path(path)
    tmp = _temp_path(final)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        _commit(tmp, final, durable)
    except BaseException:
        _remove_quietly(tmp)
        raise


def atomic_write_image(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Encode an image by the extension of ``path`` and write it atomically.

    Args:
        path: output file; the extension picks the format (``.jpg``, ``.png``, ...).
        rgb: ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA or ``(H, W)`` gray, uint8 (16-bit
            is accepted where the format supports it, e.g. PNG and TIFF).

    Raises:
        OutputError: OpenCV cannot encode this array to this format.
    """
    final = Path(path)
    ext = final.suffix.lower()
    img = np.asarray(rgb)
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
    try:
        ok, buf = cv2.imencode(ext, img)
    except cv2.error as exc:
        raise OutputError(f"{final}: cannot encode image as '{ext}' ({exc.err or exc})") from None
    if not ok:
        raise OutputError(f"{final}: cannot encode image as '{ext}'")
    atomic_write_bytes(final, buf.tobytes())


class _CommitOnExit:
    """Context-manager rule shared by every atomic writer: a normal exit or Ctrl-C
    commits what was written (every record complete), any other error discards it."""

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def abort(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        if exc_type is None or issubclass(exc_type, KeyboardInterrupt):
            self.close()
        else:
            self.abort()
        return False


class _AtomicTextWriter(_CommitOnExit):
    """Text output committed by rename on close; ``"-"`` writes to stdout instead.

    As a context manager: a clean exit commits; KeyboardInterrupt commits what was
    written (every record is written whole) and propagates; any other exception
    discards the temporary file and leaves the final path untouched.
    """

    _newline: str | None = None

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = path
        self._stdout = str(path) == "-"
        self._tmp: Path | None = None
        self._final: Path | None = None
        if self._stdout:
            self._file: TextIO = sys.stdout
        else:
            self._final = Path(path)
            self._tmp = _temp_path(self._final)
            self._file = open(self._tmp, "w", encoding="utf-8", newline=self._newline)
        self._closed = False

    def _emit(self, text: str) -> None:
        if self._closed:
            raise ValueError(f"{self.path}: writer is closed")
        # One write() call per record: Ctrl-C lands between bytecodes, so a record is
        # either wholly in the buffer or not at all.
        self._file.write(text)
        # every record reaches the file as it is made: a consumer piping us (or watching the
        # temporary file of a long video) sees progress, and an interrupted run's file holds
        # exactly the finished frames
        self._file.flush()

    def _settle(self) -> bool:
        """Mark the writer closed; True when a temporary file is left to commit or drop."""
        if self._closed:
            return False
        self._closed = True
        if self._stdout:
            self._file.flush()
            return False
        return True

    def close(self) -> None:
        """Commit: flush, fsync and move the temporary file onto the final path."""
        if not self._settle():
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            _commit(self._tmp, self._final)
        except BaseException:
            self._file.close()
            _remove_quietly(self._tmp)
            raise

    def abort(self) -> None:
        """Discard everything written; the final path is left as it was."""
        if self._settle():
            self._file.close()
            _remove_quietly(self._tmp)


def jsonable(obj: Any) -> Any:
    """numpy -> Python, non-finite floats -> None (JSON has no NaN; ``jq`` rejects it)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


class JsonLinesWriter(_AtomicTextWriter):
    """Write one JSON object per line, atomically (or to stdout for ``"-"``).

    numpy scalars and arrays are converted; NaN and infinities are written as ``null``.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "heads.jsonl"
    >>> with JsonLinesWriter(out) as w:
    ...     w.write({"frame": 0, "yaw": float("nan")})
    >>> out.read_text()
    '{"frame":0,"yaw":null}\\n'
    """

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one record as a single line."""
        self._emit(json.dumps(jsonable(record), ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n")


class CsvWriter(_AtomicTextWriter):
    """Write CSV rows under a fixed header, atomically (or to stdout for ``"-"``).

    Args:
        path: output file or ``"-"``.
        header: column names, written first.
    """

    _newline = ""  # the csv module writes its own line endings

    def __init__(self, path: str | os.PathLike, header: Sequence[str]) -> None:
        super().__init__(path)
        self.header = list(header)
        self._line = _LineBuffer()
        self._csv = csv.writer(self._line)
        self._emit(self._format(self.header))

    def _format(self, row: Sequence[Any]) -> str:
        self._csv.writerow(["" if v is None else jsonable(v) for v in row])
        return self._line.take()

    def write(self, record: Mapping[str, Any] | Sequence[Any]) -> None:
        """Append one row: a mapping keyed by header names (missing -> empty cell) or a
        sequence with one value per column.

        Raises:
            ValueError: an unknown key, or a sequence of the wrong length.
        """
        if isinstance(record, Mapping):
            unknown = set(record) - set(self.header)
            if unknown:
                raise ValueError(f"{self.path}: keys not in the CSV header: {sorted(unknown)}")
            row = [record.get(k) for k in self.header]
        else:
            row = list(record)
            if len(row) != len(self.header):
                raise ValueError(f"{self.path}: row has {len(row)} values, header has {len(self.header)}")
        self._emit(self._format(row))


class _LineBuffer:
    """File-like sink that lets csv format a row into a string we write in one call."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def write(self, s: str) -> int:
        self._parts.append(s)
        return len(s)

    def take(self) -> str:
        s = "".join(self._parts)
        self._parts.clear()
        return s


_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}


class VideoWriter(_CommitOnExit):
    """Write RGB frames to a video atomically (``cv2.VideoWriter`` underneath).

    The codec follows the extension: ``mp4v`` for .mp4/.m4v/.mov, ``MJPG`` for .avi.
    The writer opens on the first frame, taking its size from it, and writes to
    ``.<stem>.part<ext>`` beside the output (the real extension last, so OpenCV picks
    the right container); a clean close renames it onto ``path``. On an exception in
    the ``with`` body the partial file is removed; on KeyboardInterrupt the video is
    finalised and kept with the frames written so far. No frames -> no file.

    Args:
        path: output video file.
        fps: frames per second stored in the container.

    Raises:
        OutputError: unsupported extension, or OpenCV cannot open the writer.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 25.0) -> None:
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in _FOURCC:
            raise OutputError(f"{self.path}: unsupported video extension '{self.path.suffix}' "
                              f"(use one of {', '.join(sorted(_FOURCC))})")
        if not fps or fps <= 0 or not math.isfinite(fps):
            raise ValueError(f"{self.path}: fps must be positive, got {fps}")
        self.fps = float(fps)
        self._fourcc = _FOURCC[ext]
        self._tmp = self.path.with_name(f".{self.path.stem}.part{self.path.suffix}")
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._closed = False
        self.frames_written = 0

    def _open(self, width: int, height: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*self._fourcc), self.fps, (width, height))
        if not writer.isOpened():
            writer.release()
            _remove_quietly(self._tmp)
            raise OutputError(f"{self.path}: OpenCV cannot open a video writer "
                              f"(codec {self._fourcc}, {width}x{height} at {self.fps:g} fps)")
        self._writer, self._size = writer, (width, height)

    def write(self, rgb: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 RGB (or ``(H, W)`` gray) frame.

        Raises:
            ValueError: the frame is not uint8 or its size differs from the first frame
                (OpenCV would silently drop it).
        """
        if self._closed:
            raise ValueError(f"{self.path}: writer is closed")
        frame = np.asarray(rgb)
        if frame.dtype != np.uint8:
            raise ValueError(f"{self.path}: frames must be uint8, got {frame.dtype}")
        h, w = frame.shape[:2]
        if self._writer is None:
            self._open(w, h)
        elif (w, h) != self._size:
            raise ValueError(f"{self.path}: frame is {w}x{h} but the video is {self._size[0]}x{self._size[1]}")
        code = cv2.COLOR_GRAY2BGR if frame.ndim == 2 else cv2.COLOR_RGB2BGR
        self._writer.write(cv2.cvtColor(frame, code))
        self.frames_written += 1

    def close(self) -> None:
        """Finalise the container and move it onto ``path`` (nothing if no frames)."""
        if self._closed:
            return
        self._closed = True
        if self._writer is None:
            return
        try:
            self._writer.release()
            with open(self._tmp, "rb+") as f:
                os.fsync(f.fileno())
            _commit(self._tmp, self.path)
        except BaseException:
            _remove_quietly(self._tmp)
            raise

    def abort(self) -> None:
        """Drop the partial video; ``path`` is left as it was."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writer.release()
            _remove_quietly(self._tmp)
