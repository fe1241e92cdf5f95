"""``headpose predict --engine ray``: the local engine's records from a Ray cluster.

The driver expands the sources and cuts them into work units (:mod:`~openheadpose.scale.units`),
then Ray Data maps the units that have no shard yet over a pool of actors
(``map_batches`` with an ``ActorPoolStrategy`` of N actors, one unit per batch): each actor builds the
estimator once, with its threads held to its CPU share, streams its unit through
:meth:`~openheadpose.inference.pipeline.HeadPoseEstimator.stream` -- the local engine's own
loop -- and writes the unit's shard itself, atomically (:mod:`~openheadpose.scale.shards`).
The actors write their shards rather than handing records to one of Ray's writers because
a shard must be the unit's whole output under a name known in advance: that is what lets a
re-run skip finished units, and what a killed worker or Ctrl-C can never leave half-written.
Ray restarts a killed actor and re-runs its unit (Ray Data's actor pools have
``max_restarts=-1``, ``max_task_retries=-1``); a unit's shard is written once, at its end, so nothing is lost or
doubled. Last, the driver stitches the track ids of split videos and, for ``--json``, merges
the shards in the local engine's order (source, then frame).

Output folder::

    OUT/_plan.json            sources, options and units of the run (a re-run must match it)
    OUT/part-000000.parquet   one shard per unit, in the local engine's order
    OUT/_work/part-….parquet  a video chunk's records before its ids are stitched
    OUT/_index/….json         a split video's frame times, by which its chunks seek
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openheadpose.io.sources import Source
from openheadpose.scale.units import (
    DEFAULT_IMAGES_PER_UNIT,
    DEFAULT_VIDEO_CHUNK,
    DEFAULT_WARMUP,
    WorkUnit,
    max_track_id,
    plan_units,
    stitch_track_ids,
)

PLAN, WORK, INDEX = "_plan.json", "_work", "_index"
INSTALL = 'pip install "openheadpose[ray]"'
#: Test hook: a folder where a file ``crash-part-NNNNNN`` makes the worker that takes that unit
#: kill itself (SIGKILL) half-way through it, once -- a worker lost mid-run, deterministically.
CRASH_ENV = "OPENHEADPOSE_RAY_CRASH_DIR"


def have_ray() -> str | None:
    """``None`` when Ray Data and pyarrow are importable, else what to install."""
    import importlib.util

    missing = [m for m in ("ray", "pyarrow") if importlib.util.find_spec(m) is None]
    if not missing:
        try:
            importlib.util.find_spec("ray.data")
        except ImportError:
            missing = ["ray[data]"]
    return f"the Ray engine needs {' and '.join(missing)}: {INSTALL}" if missing else None


# --------------------------------------------------------------------------- a worker


def build_worker_estimator(options: dict[str, Any], threads: int | None = None):
    """:func:`~openheadpose.inference.builder.build_estimator` with ``options``, its models on ``threads`` threads."""
    from openheadpose.inference.builder import build_estimator

    opts = dict(options)
    model, weights = opts.pop("model", "default"), opts.pop("weights", None)
    if threads:
        import cv2

        from openheadpose.inference.backends import set_threads

        cv2.setNumThreads(threads)
        set_threads(threads)  # every model built in this (actor) process: its share of the cores
    return build_estimator(model, weights, **opts)


def process_unit(estimator, unit: WorkUnit, out_dir: str | Path) -> dict[str, Any]:
    """Run one unit through ``estimator.stream`` and write its shard; returns its summary.

    As :func:`openheadpose.cli._common.run_frames` does locally: an error frame is listed
    and its source marked failed, a frame-less warning is listed, one bad input never stops
    the others. A source's status is ``ok`` (frames, no error), ``failed``, ``short`` (a video
    that ended before the frames its header promises: its frames kept, the source not whole,
    as the local engine's exit status 1) or ``empty`` (a video chunk past the file's real end).
    """
    from openheadpose.scale.shards import write_shard

    t0 = time.perf_counter()
    records: list[dict] = []
    errors: list[str] = []
    warnings: list[str] = []
    status: dict[str, str] = {}
    crash_at = _crash_request(unit)
    for src in unit.iter_sources(Path(out_dir) / INDEX):
        n_frames, failed, short = 0, False, False
        try:
            for res in estimator.stream(src, keep_images=False):  # records only: large JPEGs decode reduced
                if res.warning:
                    warnings.append(res.warning)
                    short = short or src.kind == "video"  # cut short: its frames kept, the source not whole (exit 1)
                    continue
                if res.error:
                    errors.append(res.error)
                    failed = True
                    continue
                records.append(res.to_dict())
                n_frames += res.frame >= unit.start
                if crash_at is not None and len(records) >= crash_at:
                    import signal

                    os.kill(os.getpid(), signal.SIGKILL)
        except Exception as exc:  # noqa: BLE001 - one bad input never stops the others
            errors.append(f"{src.name}: {exc}")
            failed = True
        status[src.name] = "failed" if failed else "short" if short else "ok" if n_frames else "empty"
    meta = {
        "unit": unit.index,
        "frames": sum(r["frame"] >= unit.start for r in records),
        "errors": errors,
        "warnings": warnings,
        "status": status,
        "seconds": round(time.perf_counter() - t0, 3),
        "pid": os.getpid(),
    }
    out = Path(out_dir)
    write_shard(out / WORK / f"{unit.name}.parquet" if unit.stitched else out / f"{unit.name}.parquet", records, meta)
    return meta


def _crash_request(unit: WorkUnit) -> int | None:
    folder = os.environ.get(CRASH_ENV)
    if not folder:
        return None
    request = Path(folder, f"crash-{unit.name}")
    try:
        request.rename(request.with_name(request.name + ".taken"))  # atomic: one worker, once
    except OSError:
        return None
    return 1 if unit.kind == "images" else max(1, (unit.warmup + ((unit.stop or unit.start + 20) - unit.start)) // 2)


class UnitWorker:
    """The Ray Data actor: builds the estimator once, then one unit per batch."""

    def __init__(self, options: dict[str, Any], out_dir: str, threads: int = 1):
        self.estimator = build_worker_estimator(options, threads)
        self.out_dir = out_dir

    def __call__(self, batch: dict) -> dict:
        summaries = [json.dumps(process_unit(self.estimator, WorkUnit.from_dict(json.loads(u)), self.out_dir)) for u in batch["unit"]]
        return {"summary": summaries}


# --------------------------------------------------------------------------- the driver
@dataclass
class RayRun:
    """What a run did.

    Attributes:
        out_dir: the shard folder.
        units: units in the plan; ``ran`` of them computed now, ``skipped`` found finished.
        records: records (images and frames) in the shards.
        sources_ok, sources_failed: sources processed / failed (as the local engine counts
            them, expansion failures included).
        errors, warnings: what the local engine prints on stderr, in its order.
        startup_seconds: Ray start-up (``ray.init``) and actor pool until the first unit came back.
        seconds: the whole run.
        work_seconds: the units' own time in their actors (this run's units), summed.
        workers: actors in the pool.
        interrupted: Ctrl-C stopped the run (the folder holds only whole shards).
    """

    out_dir: Path
    units: int = 0
    ran: int = 0
    skipped: int = 0
    records: int = 0
    sources_ok: int = 0
    sources_failed: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    startup_seconds: float = 0.0
    seconds: float = 0.0
    work_seconds: float = 0.0
    workers: int = 0
    interrupted: bool = False


def estimator_options(model: str = "default", weights=None, *, detector=None, landmarker=None, pose=None, keypoints=None,
                      min_score=None, fov=None, track: bool = True, smooth: bool = True, camera=None, mirror: bool | None = None) -> dict[str, Any]:
    """The ``build_estimator`` arguments a run passes to its actors (JSON-able: they go in the plan)."""
    return {"model": model, "weights": None if weights is None else str(Path(weights).resolve()), "detector": detector,
            "landmarker": landmarker, "pose": pose, "keypoints": keypoints, "min_score": min_score, "fov": fov,
            "track": track, "smooth": smooth, "camera": None if camera is None else str(Path(camera).resolve()),
            "mirror": mirror}


def expand(specs: Sequence[str | Source]) -> tuple[list[Source], list[str]]:
    """Expanded sources and the messages of those that could not be expanded."""
    from openheadpose.io import InputError, expand_sources

    out, bad = [], []
    for spec in specs:
        if isinstance(spec, Source):
            out.append(spec)
            continue
        try:
            out.extend(expand_sources(str(spec)))
        except InputError as exc:
            bad.append(str(exc))
    return out, bad


def run_ray(
    sources: Sequence[str | Source],
    out_dir: str | Path,
    *,
    address: str | None = None,
    num_workers: int | None = None,
    cpus_per_worker: int = 1,
    images_per_unit: int = DEFAULT_IMAGES_PER_UNIT,
    video_chunk: int | None = DEFAULT_VIDEO_CHUNK,
    warmup: int = DEFAULT_WARMUP,
    progress: bool = False,
    **estimator_kwargs,
) -> RayRun:
    """Predict every head in ``sources`` on a Ray cluster; one Parquet shard per unit in ``out_dir``.

    Args:
        sources: what ``headpose predict`` accepts (files, folders, globs, videos), or
            :class:`~openheadpose.io.sources.Source` objects; not cameras.
        out_dir: the shard folder. A folder holding a plan of the same sources and options
            is resumed: finished units are skipped.
        address: a running cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``);
            None starts Ray on this machine (unless this process already did).
        num_workers: actors in the pool (default: the cluster's CPUs / ``cpus_per_worker``).
        cpus_per_worker: CPUs each actor reserves and threads its models use.
        images_per_unit: still images per unit (one task, one shard).
        video_chunk: frames per chunk of a long video (None or 0: never split).
        warmup: frames run before each chunk after a video's first (0 with ``track=False``).
        progress: a progress bar over units on stderr.
        **estimator_kwargs: :func:`estimator_options` (``model``, ``weights``, ``detector`` ...).

    Returns:
        A :class:`RayRun`; read the records with :func:`iter_records`.

    Raises:
        ValueError: a camera among the sources, or ``out_dir`` holds another run's plan.
        RuntimeError: Ray gave up on a unit (an actor that keeps dying, or a bug).
    """
    t_start = time.perf_counter()
    options = estimator_options(**estimator_kwargs)
    expanded, bad = expand(sources)
    units = plan_units(expanded, images_per_unit=images_per_unit, video_chunk=video_chunk,
                       warmup=warmup if options["track"] else 0)
    out = Path(out_dir)
    pending = prepare_folder(out, units, options)
    run = RayRun(out, units=len(units), skipped=len(units) - len(pending))
    if pending:
        run.interrupted = _map_units(run, pending, options, address, num_workers, cpus_per_worker, progress)
    if not run.interrupted:
        stitch_videos(out, units)
        _tally(run, units, bad)
    run.seconds = time.perf_counter() - t_start
    return run


def _map_units(run: RayRun, pending: list[WorkUnit], options: dict, address, num_workers, cpus_per_worker: int, progress: bool) -> bool:
    """Run ``pending`` on the actor pool; True when Ctrl-C stopped it."""
    import logging

    import ray
    from tqdm import tqdm

    t0 = time.perf_counter()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    import ray.data

    for handler in logging.getLogger("ray.data").handlers:  # Ray Data's console chatter (its log file keeps all)
        if handler.get_name() == "console":
            handler.setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    if num_workers is None:
        num_workers = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_worker))
    run.workers = min(num_workers, len(pending))
    _index_videos(ray, run.out_dir / INDEX, pending)
    ds = ray.data.from_items([{"unit": json.dumps(u.to_dict())} for u in pending], override_num_blocks=len(pending))
    ds = ds.map_batches(
        UnitWorker,
        fn_constructor_kwargs={"options": options, "out_dir": str(run.out_dir.resolve()), "threads": cpus_per_worker},
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=run.workers),
        num_cpus=cpus_per_worker,
    )  # Ray Data gives its actors max_restarts=-1, max_task_retries=-1: a killed actor is restarted, its unit re-run
    try:
        with tqdm(total=len(pending), unit="unit", disable=not progress, dynamic_ncols=True) as bar:
            for row in ds.iter_rows():
                run.work_seconds += json.loads(row["summary"])["seconds"]
                if not run.ran:
                    run.startup_seconds = time.perf_counter() - t0
                run.ran += 1
                bar.update(1)
    except KeyboardInterrupt:
        return True
    except ray.exceptions.RayError as exc:  # an actor that cannot start (a model missing on a node ...) or keeps dying
        lines = [x.strip() for x in str(exc).splitlines() if x.strip()]  # a remote traceback: its last line says why
        raise RuntimeError(f"Ray gave up on the run ({type(exc).__name__}): {lines[-1] if lines else exc}") from None
    finally:
        if started:
            ray.shutdown()
    return False


def _index_videos(ray, folder: Path, pending: list[WorkUnit]) -> None:
    """Index the frame times of every video a pending chunk seeks in (one Ray task per video, skipped when stored)."""
    from openheadpose.scale.units import read_index, write_index

    videos = sorted({u.sources[0][2] for u in pending if u.stitched})
    missing = [v for v in videos if read_index(folder, v) is None]
    if missing:
        task = ray.remote(num_cpus=1)(write_index)
        ray.get([task.remote(str(folder), v) for v in missing])


def prepare_folder(out: Path, units: list[WorkUnit], options: dict[str, Any]) -> list[WorkUnit]:
    """Write (or check) the plan, drop temporary files a killed run left; returns the units still to run.

    Raises:
        ValueError: ``out`` holds the plan of other sources or options.
    """
    plan = {"version": 1, "options": options, "units": [u.to_dict() for u in units]}
    path = out / PLAN
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: unreadable plan of an earlier run ({exc}); use an empty folder") from None
        if old != json.loads(json.dumps(plan)):
            raise ValueError(f"{out}: holds a run of other sources or options (see {PLAN}); use another folder, or empty this one")
    else:
        from openheadpose.io import atomic_write_bytes

        atomic_write_bytes(path, json.dumps(plan, indent=1).encode())
    for folder in (out, out / WORK):
        for tmp in folder.glob(".part-*"):  # a shard being written when its writer was killed
            tmp.unlink(missing_ok=True)
    return [u for u in units if not _done(out, u)]


def shard_path(out: Path, unit: WorkUnit) -> Path:
    return out / f"{unit.name}.parquet"


def _done(out: Path, unit: WorkUnit) -> bool:
    return shard_path(out, unit).exists() or (unit.stitched and (out / WORK / f"{unit.name}.parquet").exists())


def stitch_videos(out: Path, units: list[WorkUnit]) -> None:
    """Give every chunk after a video's first its final track ids and its final shard (idempotent)."""
    from openheadpose.scale.shards import read_shard, write_shard

    previous: list[dict] = []
    next_id = 0
    for u in units:
        if not u.stitched:
            if u.kind == "video" and u.chunks > 1:
                previous, _ = read_shard(shard_path(out, u))
                next_id = max_track_id(previous) + 1
            continue
        final = shard_path(out, u)
        if final.exists():
            records, _ = read_shard(final)
        else:
            work = out / WORK / f"{u.name}.parquet"
            raw, meta = read_shard(work)
            warm = [r for r in raw if r["frame"] < u.start]
            records, next_id = stitch_track_ids(previous, warm, [r for r in raw if r["frame"] >= u.start], next_id)
            write_shard(final, records, meta)
            work.unlink()
        next_id = max(next_id, max_track_id(records) + 1)
        previous = records


def _tally(run: RayRun, units: list[WorkUnit], bad: list[str]) -> None:
    from openheadpose.scale.shards import read_meta

    status: dict[str, list[str]] = {}
    for u in units:
        meta = read_meta(shard_path(run.out_dir, u))
        run.records += meta["frames"]
        run.errors += [e for e in meta["errors"] if e not in run.errors]
        run.warnings += [w for w in meta["warnings"] if w not in run.warnings]
        for name, s in meta["status"].items():
            status.setdefault(name, []).append(s)
    run.errors = bad + run.errors
    run.sources_ok = sum(source_whole(s) for s in status.values())
    run.sources_failed = len(bad) + len(status) - run.sources_ok


def source_whole(statuses: list[str]) -> bool:
    """Whether a source was processed whole, from its units' statuses (one, or one per video chunk).

    A chunk with no frame (``empty``) lies past the file's real end: the video ended before
    the frames its header promises, which the local engine reports as a video cut short
    (exit status 1), so it is not whole either.

    >>> source_whole(["ok"]), source_whole(["ok", "ok"]), source_whole(["ok", "empty"]), source_whole(["short"])
    (True, True, False, False)
    """
    return "ok" in statuses and all(s == "ok" for s in statuses)


def iter_records(out_dir: str | Path) -> Iterator[dict[str, Any]]:
    """The records of a finished run, in the local engine's order (source, then frame)."""
    from openheadpose.scale.shards import read_shard

    out = Path(out_dir)
    plan = json.loads((out / PLAN).read_text(encoding="utf-8"))
    for d in plan["units"]:
        records, _ = read_shard(shard_path(out, WorkUnit.from_dict(d)))
        yield from records
