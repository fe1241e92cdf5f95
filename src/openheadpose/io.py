"""Reading inputs (images, folders, globs, videos, cameras) and writing outputs atomically.

Every image handed to the rest of the pipeline is an ``(H, W, 3)`` uint8 **RGB** array.
OpenCV's BGR order stops at this module's boundary.

Outputs are written so that a crash or Ctrl-C never leaves a half-written file at the
final path: data goes to a hidden temporary file in the same directory (same file
system, so the rename is atomic) and is ``os.replace``-d onto the final name when done.

>>> [(s.name, s.kind) for s in expand_sources("example:astronaut")]
[('example:astronaut', 'example')]
"""

from __future__ import annotations

import csv
import glob
import json
import math
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

import cv2
import numpy as np

__all__ = [
    "IMAGE_EXTS",
    "VIDEO_EXTS",
    "EXAMPLES",
    "InputError",
    "OutputError",
    "Frame",
    "Source",
    "read_image",
    "expand_sources",
    "count_frames",
    "atomic_write_bytes",
    "atomic_write_image",
    "JsonLinesWriter",
    "CsvWriter",
    "VideoWriter",
]

IMAGE_EXTS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_EXTS: frozenset[str] = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})
EXAMPLES: tuple[str, ...] = ("example:astronaut",)

SourceKind = Literal["image", "video", "camera", "example"]

_GLOB_CHARS = re.compile(r"[*?\[]")


class InputError(Exception):
    """An input could not be used; the message is ``"<file>: <reason>"``."""


class OutputError(Exception):
    """An output could not be written (unknown format, OpenCV writer would not open)."""


# --------------------------------------------------------------------------- images
def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file into an ``(H, W, 3)`` uint8 RGB array.

    * EXIF orientation is applied (OpenCV's ``imdecode`` does it unless told to ignore
      it), so the array is upright as a photo viewer shows it.
    * Grayscale (and gray + alpha) becomes 3 equal channels; palette images are expanded.
    * Alpha is **dropped**, not composited: the colour stored under transparent pixels
      is kept as is.
    * 16-bit samples are scaled to 8 bits by ``>> 8`` (65535 -> 255, 256 -> 1), never
      clipped; floating-point images (e.g. 32-bit TIFF) follow :func:`to_uint8`.
    * No downscaling; OpenCV's own limit (``OPENCV_IO_MAX_IMAGE_PIXELS``, 2**30 pixels
      by default) still applies.

    The bytes are read with ``np.fromfile`` and decoded from memory, which works for
    non-ASCII paths where ``cv2.imread`` fails on some platforms.

    Args:
        path: image file.

    Returns:
        ``(H, W, 3)`` uint8 RGB image.

    Raises:
        InputError: missing file, a directory, an empty file, or bytes OpenCV cannot
            decode (not an image, corrupt, or truncated beyond what it can recover).
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot access ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{p}: is a directory, not an image")
    if not stat.S_ISREG(st.st_mode):
        # A FIFO or device would block or stream forever in np.fromfile.
        raise InputError(f"{p}: not a regular file")
    if st.st_size == 0:
        raise InputError(f"{p}: empty file")
    try:
        data = np.fromfile(p, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror or exc})") from None

    # ANYDEPTH keeps 16-bit samples so we can shift them ourselves (IMREAD_COLOR rounds
    # colour TIFFs by /257 instead); ANYCOLOR gives gray or BGR and drops alpha; leaving
    # out IMREAD_IGNORE_ORIENTATION makes OpenCV apply the EXIF orientation.
    try:
        img = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    except cv2.error as exc:  # e.g. over OpenCV's pixel-count limit
        raise InputError(f"{p}: not a readable image ({exc.err or exc})") from None
    if img is None or img.size == 0:
        raise InputError(f"{p}: not a readable image (unknown format, or corrupt or truncated data)")
    return _to_rgb8(img, p)


def to_uint8(img: np.ndarray, name: object = "image") -> np.ndarray:
    """Any sample depth to uint8, the one rule for files and for arrays given to the API.

    16-bit samples are shifted (``>> 8``: 65535 -> 255, 256 -> 1); floating-point
    samples are taken as [0, 1] when none exceeds 1, else as [0, 255], and clipped.

    Raises:
        InputError: an unsupported sample type (the message names ``name``).
    """
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return (img >> 8).astype(np.uint8)
    if img.dtype.kind == "f":
        f = np.nan_to_num(img.astype(np.float64))
        if f.size and f.max() <= 1.0:
            f = f * 255.0
        return (np.clip(f, 0.0, 255.0) + 0.5).astype(np.uint8)
    raise InputError(f"{name}: not a readable image (unsupported sample type {img.dtype})")


def _to_rgb8(img: np.ndarray, p: Path) -> np.ndarray:
    """Convert an OpenCV decode result (gray/BGR/BGRA, any depth) to uint8 RGB."""
    img = to_uint8(img, p)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


# --------------------------------------------------------------------------- sources
@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays element-wise is meaningless here
class Frame:
    """One decoded image or video frame, or the reason it could not be decoded.

    Attributes:
        source: name of the :class:`Source` it came from.
        index: 0-based frame number within the source (0 for a still image).
        image: ``(H, W, 3)`` uint8 RGB, or ``None`` when ``error`` is set.
        error: ``"<source>: <reason>"`` when this input failed, else ``None``.
        fps: frames per second of a video or camera, when known.
        total: frames the source is expected to yield, when known (1 for an image).
    """

    source: str
    index: int
    image: np.ndarray | None
    error: str | None = None
    fps: float | None = None
    total: int | None = None


@dataclass(frozen=True)
class Source:
    """One input: an image file, a video file, a camera, or a bundled example.

    Attributes:
        name: the path as given (``"photos/a.jpg"``), ``"camera:0"`` or ``"example:astronaut"``.
        kind: ``"image"``, ``"video"``, ``"camera"`` or ``"example"``.
        path: the file, for images and videos.
        camera: the device index, for cameras.
    """

    name: str
    kind: SourceKind
    path: Path | None = None
    camera: int | None = None

    def frames(self) -> Iterator[Frame]:
        """Yield the decoded frames; failures become a :class:`Frame` with ``error`` set.

        Video and camera frames are streamed one at a time, never loaded whole.
        """
        if self.kind == "image":
            try:
                yield Frame(self.name, 0, read_image(self.path), total=1)
            except InputError as exc:
                yield Frame(self.name, 0, None, error=str(exc), total=1)
        elif self.kind == "example":
            yield Frame(self.name, 0, _load_example(self.name), total=1)
        elif self.kind == "video":
            yield from _capture_frames(self.name, str(self.path), is_camera=False)
        elif self.kind == "camera":
            yield from _capture_frames(self.name, self.camera, is_camera=True)
        else:  # pragma: no cover - guarded by the Literal type
            raise ValueError(f"unknown source kind {self.kind!r}")

    def count(self) -> int | None:
        """Frames :meth:`frames` is expected to yield, or ``None`` when unknown (cameras).

        A video that cannot be opened counts 1 (its error frame).
        """
        if self.kind in ("image", "example"):
            return 1
        if self.kind == "camera":
            return None
        cap = cv2.VideoCapture(str(self.path))
        try:
            if not cap.isOpened():
                return 1
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            return n if n > 0 else None
        finally:
            cap.release()


def _load_example(name: str) -> np.ndarray:
    if name == "example:astronaut":
        from skimage import data  # lazy: scikit-image is slow to import

        return np.ascontiguousarray(data.astronaut()[:, :, :3], dtype=np.uint8)
    raise InputError(f"{name}: unknown example (available: {', '.join(EXAMPLES)})")


def _capture_frames(name: str, target: str | int, *, is_camera: bool) -> Iterator[Frame]:
    """Stream frames from ``cv2.VideoCapture``; a truncated file simply ends early."""
    what = "camera" if is_camera else "video"
    cap = cv2.VideoCapture(target)
    try:
        if not cap.isOpened():
            yield Frame(name, 0, None, error=f"{name}: cannot open {what}")
            return
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or None
        total = None if is_camera else (int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None)
        if total is not None and total < 0:
            total = None
        index = 0
        while True:
            try:
                ok, bgr = cap.read()
            except cv2.error:  # a corrupt packet can raise instead of returning False
                ok, bgr = False, None
            if not ok or bgr is None:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB if bgr.ndim == 2 else cv2.COLOR_BGR2RGB)
            yield Frame(name, index, rgb, fps=fps, total=total)
            index += 1
        if index == 0:
            yield Frame(name, 0, None, error=f"{name}: no decodable frames", fps=fps, total=total)
    finally:
        cap.release()


def _source_for_file(p: Path, name: str) -> Source | None:
    ext = p.suffix.lower()
    if ext in IMAGE_EXTS:
        return Source(name, "image", path=p)
    if ext in VIDEO_EXTS:
        return Source(name, "video", path=p)
    return None


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def expand_sources(spec: str) -> list[Source]:
    """Turn one command-line input into the list of sources it names.

    ``spec`` may be, checked in this order:

    * ``example:astronaut`` -- the bundled example photo (``skimage.data.astronaut()``);
    * an existing file -- an image or video, chosen by extension (case-insensitive);
    * an existing directory -- every image/video below it, recursively, sorted by path,
      hidden files and hidden directories skipped, other files ignored;
    * a string of ASCII digits that is not an existing path -- a camera index;
    * a glob pattern (contains ``*``, ``?`` or ``[``; ``**`` recurses) -- matching
      image/video files, sorted.

    Args:
        spec: the input as the user typed it (``~`` is expanded).

    Returns:
        Sources in processing order; never empty.

    Raises:
        InputError: the path does not exist, a file has an unsupported extension, a
            directory holds no images or videos, a glob matches none, or an unknown
            ``example:`` name.
    """
    if spec.startswith("example:"):
        if spec not in EXAMPLES:
            raise InputError(f"{spec}: unknown example (available: {', '.join(EXAMPLES)})")
        return [Source(spec, "example")]

    p = Path(spec).expanduser()
    if p.is_file():
        src = _source_for_file(p, spec)
        if src is None:
            raise InputError(f"{spec}: unsupported file type '{p.suffix}' ({_known_exts()})")
        return [src]
    if p.is_dir():
        found = []
        for root, dirs, files in os.walk(p):
            dirs[:] = [d for d in dirs if not _is_hidden(d)]  # prune hidden dirs (.git, .cache)
            for f in files:
                if not _is_hidden(f):
                    src = _source_for_file(Path(root, f), os.path.join(root, f))
                    if src is not None:
                        found.append(src)
        if not found:
            raise InputError(f"{spec}: directory holds no images or videos ({_known_exts()})")
        return sorted(found, key=lambda s: s.name)
    if p.exists():
        raise InputError(f"{spec}: not a regular file or directory")
    if re.fullmatch(r"[0-9]+", spec):
        return [Source(f"camera:{int(spec)}", "camera", camera=int(spec))]
    if _GLOB_CHARS.search(spec):
        matches = sorted(glob.glob(os.path.expanduser(spec), recursive=True))
        found = [s for m in matches if os.path.isfile(m) and (s := _source_for_file(Path(m), m)) is not None]
        if not found:
            raise InputError(f"{spec}: no image or video files match this pattern")
        return found
    raise InputError(f"{spec}: no such file or directory")


def _known_exts() -> str:
    return "images: " + " ".join(sorted(IMAGE_EXTS)) + "; videos: " + " ".join(sorted(VIDEO_EXTS))


def count_frames(sources: Iterable[Source]) -> int | None:
    """Total frames the sources will yield, for a progress bar.

    Images count 1, videos their container's frame count. Returns ``None`` when any
    count is unknown (a camera, or a video without a frame count).
    """
    total = 0
    for s in sources:
        n = s.count()
        if n is None:
            return None
        total += n
    return total


# --------------------------------------------------------------------------- atomic writes
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


def _jsonable(obj: Any) -> Any:
    """numpy -> Python, non-finite floats -> None (JSON has no NaN; ``jq`` rejects it)."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
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
        self._emit(json.dumps(_jsonable(record), ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n")


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
        self._csv.writerow(["" if v is None else _jsonable(v) for v in row])
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

