"""The work plan of a scaled-out run: units, the frame ranges of split videos, and their track ids.

A run is cut into **units**, each one Ray task and one output shard, numbered in the local
engine's order (sources as expanded, then frames):

* a block of consecutive still images (``images_per_unit`` of them);
* a video, or one **chunk** ``[start, stop)`` of a long one (``video_chunk`` frames). A chunk
  after the first runs the estimator from ``start - warmup``: the tracker finds the heads,
  its detection schedule and its smoothing settle during those frames, and their records are
  kept aside only to **stitch** the chunk's track ids onto the previous chunk's
  (:func:`stitch_track_ids`), so ids run 0, 1, ... through the whole video as on one machine.

A record's frame number must be the local engine's, and OpenCV's seeking by frame number is
not exact on every file (on ``face_noface.mov`` of the shared media it lands up to seven
frames late): a chunk seeks by an index of the video's frame times, made once per video
(:func:`write_index`), and checks every frame against it (:class:`RangeSource`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from openheadpose.io.sources import Frame, Source, read_rgb, video_end, video_header

#: Frames run before a chunk's first frame: with the tracker's detector every 30 frames and a
#: still head's smoothing time constant of about 16 frames, 60 frames leave the smoothing state
#: a few hundredths of a degree from one machine's (measured in benchmarks/bench_ray.py).
DEFAULT_WARMUP = 60
#: Frames per video chunk (a minute at 30 fps); a multiple of the tracker's detection period.
DEFAULT_VIDEO_CHUNK = 1800
DEFAULT_IMAGES_PER_UNIT = 32


@dataclass(frozen=True)
class WorkUnit:
    """One task and one shard: a block of images, or a video's frame range.

    Attributes:
        index: position in the plan (the local engine's order); names the shard.
        kind: ``"images"`` or ``"video"``.
        sources: ``(name, kind, path)`` of each source (one for a video).
        start, stop: a video's frames ``[start, stop)``; ``stop`` None: to the end.
        warmup: frames run before ``start`` whose records only serve stitching.
        chunk: the chunk's number within its video (0: the first, no warm-up).
        chunks: how many chunks the video was cut into.
    """

    index: int
    kind: Literal["images", "video"]
    sources: tuple[tuple[str, str, str | None], ...]
    start: int = 0
    stop: int | None = None
    warmup: int = 0
    chunk: int = 0
    chunks: int = 1

    @property
    def name(self) -> str:
        return f"part-{self.index:06d}"

    @property
    def stitched(self) -> bool:
        """True for a video chunk after the first: its ids are stitched after the run."""
        return self.kind == "video" and self.chunk > 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sources"] = [list(s) for s in self.sources]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorkUnit:
        return cls(**{**d, "sources": tuple(tuple(s) for s in d["sources"])})

    def iter_sources(self, index_dir: str | Path | None = None) -> Iterator[Source]:
        """The sources to stream, a video chunk as a :class:`RangeSource` (seeking by the index in ``index_dir``)."""
        for name, kind, path in self.sources:
            p = None if path is None else Path(path)
            if self.kind == "video" and (self.chunks > 1):
                yield RangeSource(name, "video", path=p, start=self.start, stop=self.stop, warmup=self.warmup,
                                  index_dir=None if index_dir is None else str(index_dir))
            else:
                yield Source(name, kind, path=p)


def plan_units(
    sources: list[Source],
    *,
    images_per_unit: int = DEFAULT_IMAGES_PER_UNIT,
    video_chunk: int | None = DEFAULT_VIDEO_CHUNK,
    warmup: int = DEFAULT_WARMUP,
) -> list[WorkUnit]:
    """Cut expanded sources into units, in order.

    Consecutive images (and examples) share a unit up to ``images_per_unit``; a video with
    more than ``video_chunk`` frames (by its header's count) is cut into chunks of that many
    frames, the last running to the end of the file whatever the header says. ``video_chunk``
    None or 0 keeps every video whole.

    Raises:
        ValueError: a camera (a live stream has no frames to share out).
    """
    units: list[WorkUnit] = []
    block: list[tuple[str, str, str | None]] = []

    def flush():
        if block:
            units.append(WorkUnit(len(units), "images", tuple(block)))
            block.clear()

    for src in sources:
        entry = (src.name, src.kind, None if src.path is None else str(Path(src.path).resolve()))  # workers may run elsewhere
        if src.kind in ("image", "example"):
            block.append(entry)
            if len(block) >= images_per_unit:
                flush()
        elif src.kind == "video":
            flush()
            n = src.count() if video_chunk else None
            chunks = max(1, -(-n // video_chunk)) if n else 1
            if n and n - (chunks - 1) * video_chunk < video_chunk // 4 and chunks > 1:
                chunks -= 1  # a short tail joins the chunk before it
            for k in range(chunks):
                stop = (k + 1) * video_chunk if k < chunks - 1 else None
                units.append(WorkUnit(len(units), "video", (entry,), k * (video_chunk or 0), stop, warmup if k else 0, k, chunks))
        else:
            raise ValueError(f"{src.name}: a live camera cannot be shared out over workers; run it with the local engine")
    flush()
    return units


def frame_times(path: str | Path) -> list[float]:
    """Presentation time (ms, OpenCV's ``CAP_PROP_POS_MSEC``) of every frame of a video, in order.

    One decoding pass (``grab``: no colour conversion), the index that lets a chunk seek to
    its first frame exactly (:class:`RangeSource`).
    """
    cap = cv2.VideoCapture(str(path))
    times = []
    try:
        while True:
            try:
                if not cap.grab():
                    break
            except cv2.error:
                break
            times.append(round(cap.get(cv2.CAP_PROP_POS_MSEC), 3))
    finally:
        cap.release()
    return times


def index_path(folder: str | Path, video: str | Path) -> Path:
    """Where a run keeps a video's :func:`frame_times` (named by the video's absolute path)."""
    import hashlib

    return Path(folder) / f"{hashlib.sha1(str(Path(video).resolve()).encode()).hexdigest()[:16]}.json"


def write_index(folder: str | Path, video: str | Path) -> Path:
    """Compute and store a video's frame times (atomically), with its size and mtime to check it by."""
    import json

    from openheadpose.io import atomic_write_bytes

    st = Path(video).stat()
    doc = {"video": str(Path(video).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "times": frame_times(video)}
    path = index_path(folder, video)
    atomic_write_bytes(path, json.dumps(doc).encode(), durable=False)
    return path


def read_index(folder: str | Path | None, video: str | Path) -> list[float] | None:
    """A stored index of ``video`` that still matches the file, else None."""
    import json

    if folder is None:
        return None
    try:
        doc = json.loads(index_path(folder, video).read_text())
        st = Path(video).stat()
    except (OSError, ValueError):
        return None
    return doc["times"] if (doc.get("size"), doc.get("mtime_ns")) == (st.st_size, st.st_mtime_ns) else None


@dataclass(frozen=True)
class RangeSource(Source):
    """A video's frames ``[start - warmup, stop)`` with their frame numbers in the whole file.

    Frames come out exactly as :meth:`Source.frames` gives them (same decoder, same colour
    conversion, same error and warning texts). To reach the first, it seeks when an index
    of the video's frame times is in ``index_dir`` (:func:`write_index`): OpenCV's seek by
    frame number can land late (seven frames on the shared ``face_noface.mov``), but the
    time of the frame it lands on names its true number, so it seeks a little early, reads
    where it landed and steps forward; every frame read after is checked against the index.
    Without an index, or when a check fails, frames are decoded from the file's start and
    dropped until the range (``grab``).
    """

    start: int = 0
    stop: int | None = None
    warmup: int = 0
    index_dir: str | None = None

    def frames(self) -> Iterator[Frame]:
        times = read_index(self.index_dir, self.path) if self.start - self.warmup > 0 else None
        cap = cv2.VideoCapture(str(self.path))
        try:
            yield from self._frames(cap, times)
        finally:
            cap.release()

    def _frames(self, cap, times: list[float] | None) -> Iterator[Frame]:
        name, first = self.name, max(0, self.start - self.warmup)
        if not cap.isOpened():
            yield Frame(name, 0, None, error=f"{name}: cannot open video")
            return
        fps, total = video_header(cap)
        index = _seek(cap, first, times) if times else None
        if index is None:  # no index, or the seek could not be placed: from the start
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            index, times = 0, None
        ended = False
        while index < first:
            try:
                ok = cap.grab()
            except cv2.error:
                ok = False
            if not ok:
                ended = True
                break
            index += 1
        while not ended and (self.stop is None or index < self.stop):
            rgb = read_rgb(cap)
            if rgb is None:
                ended = True
                break
            if times is not None and (index >= len(times) or round(cap.get(cv2.CAP_PROP_POS_MSEC), 3) != times[index]):
                yield Frame(name, index, None, error=f"{name}: frame {index} is not where the video's index puts it (changed while running?)")
                return
            yield Frame(name, index, rgb, fps=fps, total=total)
            index += 1
        if ended and (end := video_end(name, index, fps, total)) is not None:
            yield end


def _seek(cap, target: int, times: list[float]) -> int | None:
    """Place ``cap`` just before frame ``target`` (the next ``grab`` gives frame ``index``); returns that index, or None.

    Seeks ahead of the target by a growing margin until the frame it lands on is found in
    ``times`` at or before the target.
    """
    if target >= len(times):
        return None
    where = {t: i for i, t in enumerate(times)}
    for margin in (16, 64, 256, 1024):
        guess = target - margin
        if guess <= 0:
            return None
        cap.set(cv2.CAP_PROP_POS_FRAMES, guess)
        try:
            ok = cap.grab()
        except cv2.error:
            ok = False
        landed = where.get(round(cap.get(cv2.CAP_PROP_POS_MSEC), 3)) if ok else None
        if landed is not None and landed < target:
            return landed + 1
    return None


# --------------------------------------------------------------------------- track ids across chunks
def _boxes(record: dict) -> np.ndarray:
    return np.array([h["box"] for h in record["heads"]], np.float64).reshape(-1, 4)


def stitch_track_ids(previous: list[dict], warm: list[dict], records: list[dict], next_id: int, min_iou: float = 0.5) -> tuple[list[dict], int]:
    """Give a chunk's records the track ids of the chunk before it.

    The chunk ran its warm-up frames (``warm``, its own ids) over frames the previous
    chunk also gave (``previous``, final ids). Heads of each shared frame are matched by
    box (Hungarian assignment on 1 - IoU, IoU >= ``min_iou``); a chunk id takes the
    previous id it matched most often (one to one). Ids never seen in the overlap are new
    heads: they are numbered from ``next_id`` in order of first appearance, as the tracker
    numbers them. Heads the two runs followed identically (the common case) get the
    ids one machine gives.

    Args:
        previous: final records of the frames before the chunk (any superset of the overlap).
        warm: the chunk's records of its warm-up frames.
        records: the chunk's own records (frames from its start).
        next_id: the first id not used in the video so far.

    Returns:
        ``(records with final ids, next_id after them)``; the inputs are not changed.
    """
    from scipy.optimize import linear_sum_assignment

    from openheadpose.core.geometry import box_iou

    by_frame = {r["frame"]: r for r in previous}
    votes: Counter = Counter()
    for w in warm:
        p = by_frame.get(w["frame"])
        if p is None or not w["heads"] or not p["heads"]:
            continue
        iou = box_iou(_boxes(w), _boxes(p))
        rows, cols = linear_sum_assignment(-iou)
        for i, j in zip(rows, cols):
            a, b = w["heads"][i]["track_id"], p["heads"][j]["track_id"]
            if iou[i, j] >= min_iou and a is not None and b is not None:
                votes[(a, b)] += 1
    mapping: dict[int, int] = {}
    taken: set[int] = set()
    for (a, b), _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0])):
        if a not in mapping and b not in taken:
            mapping[a] = b
            taken.add(b)
    out = []
    for r in records:
        heads = []
        for h in r["heads"]:
            a = h["track_id"]
            if a is not None and a not in mapping:
                mapping[a] = next_id
                next_id += 1
            heads.append(h if a is None else {**h, "track_id": mapping[a]})
        out.append({**r, "heads": heads})
    return out, next_id


def max_track_id(records: list[dict]) -> int:
    """The largest track id in ``records``, -1 when none."""
    return max((h["track_id"] for r in records for h in r["heads"] if h["track_id"] is not None), default=-1)
