"""Inputs as the user names them -- files, folders, globs, videos, cameras, ``example:NAME`` -- streamed frame by frame.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from openheadpose.io.images import (
    IMAGE_EXTS,
    VIDEO_EXTS,
    InputError,
    read_image,
)

EXAMPLES: tuple[str, ...] = ("example:astronaut",)


SourceKind = Literal["image", "video", "camera", "example"]


_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays element-wise is meaningless here
class Frame:
    """One decoded image or video frame, or the reason it could not be decoded.

    Attributes:
        source: name of the :class:`Source` it came from.
        index: 0-based frame number within the source (0 for a still image).
        image: ``(H, W, 3)`` uint8 RGB, or ``None`` when ``error`` or ``warning`` is set.
        error: ``"<source>: <reason>"`` when this input failed, else ``None``.
        fps: frames per second of a video or camera, when known.
        total: frames the source is expected to yield, when known (1 for an image).
        warning: ``"<source>: <what>"`` on a frame-less notice after the last frame (a
            video that ended before the frame count its header promises), else ``None``.
        dropped: frames of a live source skipped since the previous frame because the
            consumer was slower than the camera (never queued: the newest frame wins).
    """

    source: str
    index: int
    image: np.ndarray | None
    error: str | None = None
    fps: float | None = None
    total: int | None = None
    warning: str | None = None
    dropped: int = 0


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


class LatestFrame:
    """Reads a live capture on a thread and keeps only its newest frame.

    A consumer slower than the camera never falls behind: frames it had no time for are
    dropped (and counted), not queued. ``pace_fps`` reads a file at that rate as if it were a
    camera (for tests and demos); a real camera paces itself.
    """

    def __init__(self, cap, pace_fps: float | None = None):
        import threading

        self.cap, self.pace = cap, pace_fps
        self.cond = threading.Condition()
        self.frame, self.seq, self.taken, self.done = None, 0, 0, False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import time

        t0 = time.perf_counter()
        while True:
            try:
                ok, bgr = self.cap.read()
            except cv2.error:
                ok, bgr = False, None
            with self.cond:
                if not ok or bgr is None or self.done:
                    self.done = True
                    self.cond.notify_all()
                    return
                self.frame, self.seq = bgr, self.seq + 1
                self.cond.notify_all()
            if self.pace:
                time.sleep(max(0.0, t0 + self.seq / self.pace - time.perf_counter()))

    def next(self) -> tuple[np.ndarray | None, int]:
        """The newest frame not yet taken and how many were skipped before it; ``(None, n)`` at the end."""
        with self.cond:
            while self.seq == self.taken and not self.done:
                self.cond.wait()
            if self.seq == self.taken:
                return None, 0
            skipped = self.seq - self.taken - 1
            self.taken = self.seq
            return self.frame, skipped

    def close(self) -> None:
        with self.cond:
            self.done = True
        self.thread.join(timeout=2.0)


def _live_frames(name: str, cap, fps: float | None, pace_fps: float | None = None) -> Iterator[Frame]:
    """Frames of a live capture, newest first: never behind the camera (see :class:`LatestFrame`)."""
    reader = LatestFrame(cap, pace_fps)
    index, dropped = 0, 0
    try:
        while True:
            bgr, skipped = reader.next()
            if bgr is None:
                break
            index += skipped
            dropped += skipped
            rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB if bgr.ndim == 2 else cv2.COLOR_BGR2RGB)
            yield Frame(name, index, rgb, fps=fps, dropped=skipped)
            index += 1
    finally:
        reader.close()
    if index == 0:
        yield Frame(name, 0, None, error=f"{name}: no frames from the camera", fps=fps)
    elif dropped:
        yield Frame(name, index, None, fps=fps, warning=f"{name}: dropped {dropped} of {index} frames to keep up with the camera (processing slower than it)")


def _capture_frames(name: str, target: str | int, *, is_camera: bool) -> Iterator[Frame]:
    """Stream frames from ``cv2.VideoCapture``; a file that ends early says so in a final ``warning`` frame.

    A camera is read on a thread that keeps only the newest frame (:func:`_live_frames`).
    """
    what = "camera" if is_camera else "video"
    cap = cv2.VideoCapture(target)
    try:
        if not cap.isOpened():
            yield Frame(name, 0, None, error=f"{name}: cannot open {what}")
            return
        fps, total = video_header(cap)
        if not is_camera:  # the container's frame size, checked before a frame is decoded (openheadpose.io.limits)
            from openheadpose.io.limits import TooManyPixels, check_pixels

            try:
                check_pixels(name, int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
            except TooManyPixels as exc:
                yield Frame(name, 0, None, error=str(exc), fps=fps, total=total)
                return
        if is_camera:
            yield from _live_frames(name, cap, fps)
            return
        index = 0
        while (rgb := read_rgb(cap)) is not None:
            yield Frame(name, index, rgb, fps=fps, total=total)
            index += 1
        end = video_end(name, index, fps, total)
        if end is not None:
            yield end
    finally:
        cap.release()


def video_header(cap) -> tuple[float | None, int | None]:
    """An opened ``cv2.VideoCapture``'s frame rate and promised frame count (``None`` where unknown)."""
    fps = float(cap.get(cv2.CAP_PROP_FPS)) or None
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    return fps, (None if total is not None and total < 0 else total)


def read_rgb(cap) -> np.ndarray | None:
    """The next frame of ``cap`` as RGB uint8, or ``None`` at the end (or a frame that does not decode)."""
    try:
        ok, bgr = cap.read()
    except cv2.error:  # a corrupt packet can raise instead of returning False
        return None
    if not ok or bgr is None:
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB if bgr.ndim == 2 else cv2.COLOR_BGR2RGB)


def video_end(name: str, index: int, fps: float | None, total: int | None) -> Frame | None:
    """What a video that stopped decoding after ``index`` frames says: an error when it gave none,
    a warning when it gave fewer than its header promises, else ``None``."""
    if index == 0:
        return Frame(name, 0, None, error=f"{name}: no decodable frames", fps=fps, total=total)
    if total is not None and index < total:
        return Frame(
            name, index, None, fps=fps, total=total,
            warning=f"{name}: read {index} of the {total} frames its header promises; the rest did not decode (a truncated or damaged file?)",
        )
    return None


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
