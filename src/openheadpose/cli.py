"""The ``headpose`` command line: a thin shell over the Python API."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import click

EXIT_OK, EXIT_SOME_FAILED, EXIT_ALL_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 130

CSV_HEADER = ["source", "frame", "head", "x1", "y1", "x2", "y2", "score", "yaw", "pitch", "roll", "sigma_yaw", "sigma_pitch", "sigma_roll"]


def _err(msg: str) -> None:
    click.echo(f"headpose: {msg}", err=True)


def _has_display() -> bool:
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class _SaveNames:
    """Output file names under ``--save DIR``: the input's name, disambiguated by its folders."""

    def __init__(self, root: Path):
        self.root = root
        self.used: set[str] = set()

    def __call__(self, source: str, suffix: str) -> Path:
        p = Path(source.replace(":", "_"))
        name = p.stem + suffix
        parts = [x for x in p.parent.parts if x not in ("/", ".", "..")]
        while name in self.used and parts:
            name = parts.pop() + "_" + name
        base, i = name, 1
        while name in self.used:
            name = f"{Path(base).stem}-{i}{suffix}"
            i += 1
        self.used.add(name)
        return self.root / name


def _csv_rows(res) -> list[list]:
    rows = []
    for i, h in enumerate(res.heads.to_list()):
        sig = h["sigma"] or [None, None, None]
        rows.append([res.source, res.frame, i, *h["box"], h["score"], h["yaw"], h["pitch"], h["roll"], *sig])
    return rows


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="openheadpose")
def cli() -> None:
    """openheadpose: find every head in photos, folders, videos and camera streams and say which way it is turned.

    \b
    Examples:
      headpose predict example:astronaut --save out --json -
      headpose predict photos/ --json heads.jsonl --csv heads.csv
      headpose predict clip.mp4 --save out --draw cube
      headpose predict 0 --show            # webcam 0
      headpose models                      # the stages you can choose
    """


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--save", "save_dir", type=click.Path(file_okay=False, path_type=Path), help="Write annotated images / videos into this folder.")
@click.option("--json", "json_path", metavar="PATH|-", help="Write JSON Lines (one object per image or frame); '-' is standard output.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Write one CSV row per head.")
@click.option("--show", is_flag=True, help="Show a live window (needs a display; press q to stop).")
@click.option("--draw", type=click.Choice(["axes", "cube"]), default="axes", show_default=True, help="How to draw each head's pose.")
@click.option("--detector", default=None, help="Face detector (see `headpose models`). [default: blazeface, or haar without MediaPipe]")
@click.option("--landmarker", default="facemesh", show_default=True, help="Landmarker (see `headpose models`).")
@click.option("--pose", "pose_name", default="geometric", show_default=True, help="Pose estimator (see `headpose models`).")
@click.option("--min-score", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="Minimum head score.")
@click.option("--fov", type=click.FloatRange(1, 179), default=None, help="Horizontal field of view in degrees: report rotations in the camera frame instead of relative to the line of sight.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def predict(sources, save_dir, json_path, csv_path, show, draw, detector, landmarker, pose_name, min_score, fov, quiet) -> None:
    """Estimate the pose of every head in SOURCES.

    SOURCES are image files, video files, folders (searched recursively),
    glob patterns ('shots/*.jpg'), camera indices (0) or example:astronaut.

    \b
    Exit status: 0 when every input was processed, 1 when some failed,
    2 when none could be, 130 when interrupted.

    \b
    Examples:
      headpose predict example:astronaut --save out --json -
      headpose predict group.jpg --json - --draw cube --save out
      headpose predict videos/ --save out --csv heads.csv
    """
    import math

    from tqdm import tqdm

    from .io import CsvWriter, InputError, JsonLinesWriter, count_frames, expand_sources
    from .pipeline import HeadPoseEstimator

    expanded, n_failed = [], 0
    for spec in sources:
        try:
            expanded.extend(expand_sources(spec))
        except InputError as exc:
            _err(str(exc))
            n_failed += 1
    if not expanded:
        sys.exit(EXIT_ALL_FAILED)
    if show and not _has_display():
        _err("--show ignored: no display")
        show = False

    pose_kwargs = {}
    if fov is not None:
        pose_kwargs["focal_factor"] = 0.5 / math.tan(math.radians(fov) / 2)
    try:
        from .pose import POSE_ESTIMATORS

        pose = POSE_ESTIMATORS.create(pose_name, **pose_kwargs)
        est = HeadPoseEstimator(detector=detector, landmarker=landmarker, pose=pose, min_score=min_score)
    except (KeyError, RuntimeError) as exc:
        _err(str(exc.args[0]) if exc.args else str(exc))
        sys.exit(EXIT_ALL_FAILED)

    names = _SaveNames(save_dir) if save_dir else None
    n_ok, interrupted = 0, False
    # Writers commit on a normal exit (Ctrl-C is caught inside, so what was
    # finished is kept) and discard their temporary file on any other error.
    with contextlib.ExitStack() as stack:
        json_w = stack.enter_context(JsonLinesWriter(json_path)) if json_path else None
        csv_w = stack.enter_context(CsvWriter(csv_path, CSV_HEADER)) if csv_path else None
        bar = stack.enter_context(tqdm(total=count_frames(expanded), unit="frame", disable=quiet, dynamic_ncols=True, file=sys.stderr))
        try:
            for src in expanded:
                ok = _run_source(src, est, json_w, csv_w, names, draw, show, bar)
                n_ok += ok
                n_failed += not ok
        except KeyboardInterrupt:
            interrupted = True
    if show:
        import cv2

        cv2.destroyAllWindows()
    if interrupted:
        _err("interrupted; the outputs hold every frame finished before")
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_OK if n_failed == 0 else EXIT_SOME_FAILED if n_ok else EXIT_ALL_FAILED)


def _run_source(src, est, json_w, csv_w, names, draw, show, bar) -> bool:
    """Process every frame of one source; True when it was processed without error."""
    import cv2

    from .draw import annotate
    from .io import VideoWriter, atomic_write_image

    n_frames, failed = 0, False
    with contextlib.ExitStack() as stack:
        video = None
        try:
            for fr in src.frames():
                bar.update(1)
                if fr.error:
                    _err(fr.error)
                    failed = True
                    continue
                res = est.process(fr.image, src.name, fr.index)
                n_frames += 1
                if json_w is not None:
                    json_w.write(res.to_dict())
                if csv_w is not None:
                    for row in _csv_rows(res):
                        csv_w.write(row)
                if names is None and not show:
                    continue
                vis = annotate(fr.image, res.heads, style=draw)
                if names is not None and src.kind in ("video", "camera"):
                    if video is None:
                        video = stack.enter_context(VideoWriter(names(src.name, ".mp4"), fps=fr.fps or 25.0))
                    video.write(vis)
                elif names is not None:
                    atomic_write_image(names(src.name, ".jpg"), vis)
                if show:
                    cv2.imshow("headpose", cv2.cvtColor(vis, cv2.COLOR_RGB2BGR))
                    if cv2.waitKey(1) & 0xFF == ord("q"):
                        break
        except Exception as exc:  # one bad input never stops the others (Ctrl-C is no Exception: it propagates)
            _err(f"{src.name}: {exc}")
            return False
    return n_frames > 0 and not failed


@cli.command()
@click.option("--dataset", type=click.Choice(["aflw2000"]), default="aflw2000", show_default=True, help="Dataset format.")
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True, help="Dataset folder.")
@click.option("--crop", type=click.Choice(["gt", "detect"]), default="detect", show_default=True, help="gt: labelled face boxes; detect: our own detector on the full image.")
@click.option("--detector", default=None, help="Face detector for --crop detect.")
@click.option("--landmarker", default="facemesh", show_default=True)
@click.option("--pose", "pose_name", default="geometric", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the result as JSON.")
@click.option("--per-image", is_flag=True, help="Include every image's label and prediction in the JSON (keep such files out of public repositories: they copy the dataset's labels).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def evaluate(dataset, root, crop, detector, landmarker, pose_name, json_path, per_image, quiet) -> None:
    """Score a pipeline on a labelled dataset (MAE per angle, MAEV, geodesic error).

    Faces outside +-99 deg are dropped (the standard filter) and counted; with
    --crop detect, faces our detector misses are counted and left out of the
    errors. Every result states its image count.

    \b
    Example:
      headpose evaluate --root data/AFLW2000 --crop gt --json aflw_gt.json
    """
    import json

    from .datasets import AFLW2000, DatasetError
    from .evaluate import evaluate_pipeline
    from .io import atomic_write_bytes
    from .pipeline import HeadPoseEstimator

    try:
        data = AFLW2000(root)
        est = HeadPoseEstimator(detector=detector, landmarker=landmarker, pose=pose_name)
    except (DatasetError, KeyError, RuntimeError) as exc:
        _err(str(exc.args[0]) if exc.args else str(exc))
        sys.exit(EXIT_ALL_FAILED)
    res = evaluate_pipeline(est, data, crop=crop, name=dataset, progress=not quiet)
    d = res.to_dict()
    for f in res.failures:
        _err(f)
    click.echo(f"{dataset}: {d['n_images']} images after the +-99 deg filter ({d['n_filtered_out']} dropped), crop={crop}, "
               f"pipeline={est.names['detector'] if crop == 'detect' else 'gt-box'}+{est.names['landmarker']}+{est.names['pose']}")
    click.echo(f"scored {d['n_detected']}, missed {d['n_missed']}")
    click.echo(f"MAE  yaw {d['mae']['yaw']:.2f}  pitch {d['mae']['pitch']:.2f}  roll {d['mae']['roll']:.2f}  mean {d['mae']['mean']:.2f}")
    click.echo(f"MAEV {d['maev']:.2f}  geodesic {d['geodesic']:.2f}  within 5/10/15 deg: "
               + " / ".join(f"{100 * v:.1f}%" for v in d["within"].values()))
    for k, v in d["by_abs_yaw"].items():
        click.echo(f"  |yaw| {k:>7s}: n={v['n']:4d}  MAE {v['mae']:.2f}  yaw MAE {v['mae_yaw']:.2f}")
    if json_path:
        if per_image:
            d["per_image"] = res.per_image
        d["command"] = " ".join(["headpose"] + sys.argv[1:])
        atomic_write_bytes(json_path, json.dumps(d, indent=1).encode())
    sys.exit(EXIT_OK if d["n_detected"] else EXIT_ALL_FAILED)


@cli.command()
def models() -> None:
    """List the detectors, landmarkers and pose estimators that can be chosen by name."""
    from .detectors import DETECTORS
    from .landmarks import LANDMARKERS
    from .pipeline import default_detector
    from .pose import POSE_ESTIMATORS

    for title, reg in (("detectors", DETECTORS), ("landmarkers", LANDMARKERS), ("pose estimators", POSE_ESTIMATORS)):
        click.echo(f"{title}:")
        for name, text in reg.describe().items():
            click.echo(f"  {name:18s} {text}")
    click.echo(f"default detector here: {default_detector()}")


def main() -> None:
    cli(prog_name="headpose")


if __name__ == "__main__":
    main()
