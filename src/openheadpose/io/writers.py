"""Outputs written atomically: data goes to a hidden temporary file in the same folder and is
``os.replace``-d onto the final name when done, so a crash or Ctrl-C never leaves a half-written file.

Only a regular file (or a name not yet taken) is replaced that way (:func:`output_target`): a
symlink is followed and its target replaced, in the target's folder, so the link stays a link;
a FIFO, a device (``/dev/null``), a socket or a name that goes through ``/proc`` or ``/dev/fd``
(``/dev/stdout``) is written straight through and never renamed over. The temporary file's name
carries the writing process's id (``.heads.jsonl.<pid>-<random>.part``), so a later run to the
same output removes those a killed run left (:func:`remove_stale_parts`) and never a live one's.
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


def _through_proc(path: Path) -> bool:
    """True when ``path`` or a symlink on its way names ``/proc/...`` or ``/dev/fd/...``
    (``/dev/stdout`` -> ``/proc/self/fd/1``): a file descriptor of this process, not a file to replace."""
    p = Path(os.path.abspath(path))
    for _ in range(40):
        if str(p).startswith(("/proc/", "/dev/fd/")):
            return True
        if not p.is_symlink():
            return False
        p = Path(os.path.abspath(os.path.join(p.parent, os.readlink(p))))
    return False


def output_target(path: str | os.PathLike) -> tuple[Path, bool]:
    """Where an output named ``path`` is written, and whether atomically (temporary file, then rename).

    * a regular file, or a name not taken yet: atomically, at ``path``;
    * a symlink (to a regular file, or dangling): atomically, at the file it points to (renamed in
      that file's folder), so the link is kept and its target gets the data;
    * anything else -- a FIFO, a character or block device, a socket, a name through ``/proc`` or
      ``/dev/fd`` (``/dev/stdout``): straight through, ``(path, False)``; renaming over it would
      replace a pipe a reader waits on, or ``/dev/null`` itself.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "real.jsonl").write_text(""); (d / "link.jsonl").symlink_to(d / "real.jsonl")
    0
    >>> output_target(d / "link.jsonl") == (d / "real.jsonl", True)
    True
    """
    p = Path(path)
    if _through_proc(p):
        return p, False
    try:
        st = os.stat(p)  # follows symlinks
    except FileNotFoundError:
        st = None
    except OSError:  # e.g. a loop of symlinks: let open() say what is wrong
        return p, False
    if st is not None and not stat.S_ISREG(st.st_mode):
        return p, False
    return (Path(os.path.realpath(p)) if p.is_symlink() else p), True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def remove_stale_parts(final: Path, suffix: str = ".part") -> list[Path]:
    """Remove the temporary files a killed run left beside ``final``: ``.<name>.<pid>-*<suffix>``
    whose process no longer runs. Returns what was removed.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / ".out.jsonl.999999999-x1.part").write_text("{")
    >>> [p.name for p in remove_stale_parts(d / "out.jsonl")]
    ['.out.jsonl.999999999-x1.part']
    """
    removed = []
    prefix = f".{final.name}."
    try:
        entries = list(os.scandir(final.parent))
    except OSError:
        return removed
    for e in entries:
        if not (e.name.startswith(prefix) and e.name.endswith(suffix)):
            continue
        pid = e.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            try:
                if e.is_file(follow_symlinks=False):
                    os.unlink(e.path)
                    removed.append(Path(e.path))
            except OSError:
                pass
    return removed


def _temp_path(final: Path, suffix: str = ".part") -> Path:
    """A fresh hidden temporary file beside ``final`` (same file system -> atomic replace),
    named with this process's id; stale ones of dead processes are removed first."""
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(final, suffix)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.{os.getpid()}-", suffix=suffix, dir=final.parent)
    os.close(fd)
    return Path(name)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically: temp file, fsync, ``os.replace``.

    Parent directories are created. On any failure (including Ctrl-C) the temporary
    file is removed and ``path`` is left as it was. ``durable=False`` skips the
    fsyncs: still all-or-nothing if the process dies, not if the machine loses
    power (for bulk outputs that a rerun regenerates, e.g. ``headpose synth``).

    A symlink's target is replaced (the link kept); a FIFO or device is written
    straight through, never renamed over (:func:`output_target`).
    """
    final, atomic = output_target(path)
    if not atomic:
        with open(final, "wb") as f:
            f.write(data)
        return
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
        self._direct = False
        if self._stdout:
            self._file: TextIO = sys.stdout
        else:
            self._final, atomic = output_target(path)
            if atomic:
                self._tmp = _temp_path(self._final)
                self._file = open(self._tmp, "w", encoding="utf-8", newline=self._newline)
            else:  # a FIFO, a device, /dev/stdout: written straight through (see output_target)
                self._direct = True
                self._file = open(self._final, "w", encoding="utf-8", newline=self._newline)
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
        if self._direct:
            try:
                self._file.close()  # what was written is written: nothing to commit or drop
            except BrokenPipeError:  # the reader of a FIFO went away
                pass
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
        """Discard everything written; the final path is left as it was (a FIFO or device keeps what it got)."""
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

#: Extensions written as H.264 when PyAV is installed (the ``video`` extra).
_H264_EXTS = frozenset({".mp4", ".m4v", ".mov"})


def h264_available() -> bool:
    """True when PyAV is installed and its FFmpeg has an H.264 encoder (its wheels carry libx264)."""
    try:
        import av
    except ImportError:
        return False
    try:
        av.codec.Codec("libx264", "w")
    except Exception:  # noqa: BLE001 - av raises its own types for an unknown codec
        return False
    return True


class _PyAVWriter:
    """H.264 (libx264, yuv420p, ``+faststart``) through PyAV: what browsers and phones play."""

    def __init__(self, path: Path, fps: float, width: int, height: int, bit_rate: int | None):
        from fractions import Fraction

        import av

        self.container = av.open(str(path), "w", options={"movflags": "+faststart"})
        try:
            self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            # yuv420p needs an even size: an odd row or column is repeated (write() pads)
            self.stream.width, self.stream.height = width + width % 2, height + height % 2
            self.stream.pix_fmt = "yuv420p"
            if bit_rate:
                self.stream.bit_rate = int(bit_rate)
            else:
                self.stream.options = {"crf": "23"}
        except BaseException:
            self.container.close()
            raise
        self.pad = (height % 2, width % 2)

    def write(self, rgb: np.ndarray) -> None:
        import av

        if any(self.pad):
            rgb = np.pad(rgb, ((0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="edge")
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
            self.container.mux(packet)

    def release(self) -> None:
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
        finally:
            self.container.close()


class _OpenCVWriter:
    def __init__(self, path: Path, fourcc: str, fps: float, width: int, height: int):
        self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))

    def write(self, rgb: np.ndarray) -> None:
        self.writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def release(self) -> None:
        self.writer.release()


class VideoWriter(_CommitOnExit):
    """Write RGB frames to a video atomically.

    The codec follows the extension: for .mp4/.m4v/.mov, **H.264** (libx264 through PyAV, the
    ``video`` extra: ``pip install "openheadpose[video]"``) when PyAV is installed, else OpenCV's
    ``mp4v`` (MPEG-4 part 2, which most browsers do not play); ``MJPG`` for .avi. The writer
    opens on the first frame, taking its size from it, and writes to ``.<stem>.<pid>.part<ext>``
    beside the output (the real extension last, so the container is chosen by it); a clean close
    renames it onto ``path``. On an exception in the ``with`` body the partial file is removed;
    on KeyboardInterrupt the video is finalised and kept with the frames written so far. No
    frames -> no file.

    Args:
        path: output video file (a symlink's target is written; a FIFO or device is refused:
            an mp4's index is written at the end, by seeking back).
        fps: frames per second stored in the container.
        bit_rate: H.264's target bits per second (pass the input's, so the copy is about its
            size); ``None``: constant quality (CRF 23). OpenCV's codecs take none.
        codec: ``"h264"``, ``"mp4v"`` or ``"MJPG"``; default as above.

    Raises:
        OutputError: unsupported extension, H.264 asked for without PyAV, or the writer cannot open.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 25.0, bit_rate: int | None = None, codec: str | None = None) -> None:
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in _FOURCC:
            raise OutputError(f"{self.path}: unsupported video extension '{self.path.suffix}' "
                              f"(use one of {', '.join(sorted(_FOURCC))})")
        if not fps or fps <= 0 or not math.isfinite(fps):
            raise ValueError(f"{self.path}: fps must be positive, got {fps}")
        self.fps = float(fps)
        self.bit_rate = bit_rate
        if codec is None:
            codec = "h264" if ext in _H264_EXTS and h264_available() else _FOURCC[ext]
        elif codec == "h264" and not (ext in _H264_EXTS and h264_available()):
            raise OutputError(f"{self.path}: H.264 needs PyAV (pip install 'openheadpose[video]') and a .mp4, .m4v or .mov name")
        #: The codec written: ``h264``, ``mp4v`` or ``MJPG``.
        self.codec = codec
        self._final, atomic = output_target(self.path)
        if not atomic:  # an mp4's index is written last, by seeking back: a FIFO or device cannot take it
            raise OutputError(f"{self.path}: not a regular file; a video needs one (its index is written at the end, by seeking back)")
        self._tmp = self._final.with_name(f".{self._final.stem}.{os.getpid()}.part{self._final.suffix}")
        self._writer = None
        self._size: tuple[int, int] | None = None
        self._closed = False
        self.frames_written = 0

    def _open(self, width: int, height: int) -> None:
        self._final.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_videos(self._final)
        if self.codec == "h264":
            try:
                writer = _PyAVWriter(self._tmp, self.fps, width, height, self.bit_rate)
            except Exception as exc:  # noqa: BLE001 - av's own error types
                _remove_quietly(self._tmp)
                raise OutputError(f"{self.path}: cannot open an H.264 writer ({width}x{height} at {self.fps:g} fps): {exc}") from None
        else:
            writer = _OpenCVWriter(self._tmp, self.codec, self.fps, width, height)
            if not writer.writer.isOpened():
                writer.release()
                _remove_quietly(self._tmp)
                raise OutputError(f"{self.path}: OpenCV cannot open a video writer "
                                  f"(codec {self.codec}, {width}x{height} at {self.fps:g} fps)")
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
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        self._writer.write(frame)
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
            _commit(self._tmp, self._final)
        except BaseException:
            _remove_quietly(self._tmp)
            raise

    def abort(self) -> None:
        """Drop the partial video; ``path`` is left as it was."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            try:
                self._writer.release()
            finally:
                _remove_quietly(self._tmp)


def _remove_stale_videos(final: Path) -> None:
    """:func:`remove_stale_parts` for :class:`VideoWriter`'s ``.<stem>.<pid>.part<ext>`` (and the
    ``.<stem>.part<ext>`` of earlier versions, which had no process id)."""
    prefix, suffix = f".{final.stem}.", f".part{final.suffix}"
    try:
        entries = list(os.scandir(final.parent))
    except OSError:
        return
    for e in entries:
        if not (e.name.startswith(prefix) and e.name.endswith(suffix)):
            continue
        pid = e.name[len(prefix):-len(suffix)]
        stale = pid == "" or (pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)))
        if stale and e.is_file(follow_symlinks=False):
            _remove_quietly(Path(e.path))
