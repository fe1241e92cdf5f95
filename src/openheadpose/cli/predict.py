"""``headpose predict``: heads and their pose in photos, folders, videos and camera streams."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from openheadpose.cli._common import (
    CONTEXT,
    KEYPOINTS_HELP,
    build_or_exit,
    discard_when_none_read,
    camera_option,
    estimator_options,
    expand_or_exit,
    fail,
    input_options,
    mirror_option,
    run_frames,
    track_options,
)

CSV_HEADER = ["source", "frame", "head", "track_id", "x1", "y1", "x2", "y2", "score", "yaw", "pitch", "roll", "sigma_yaw", "sigma_pitch", "sigma_roll",
              "x_m", "y_m", "z_m", "sigma_x_m", "sigma_y_m", "sigma_z_m"]


def _csv_rows(rec: dict) -> list[list]:
    """CSV rows (one per head) of a JSON record (``FrameResult.to_dict()``)."""
    rows = []
    for i, h in enumerate(rec["heads"]):
        sig = h["sigma"] or [None, None, None]
        pos, pos_sig = h.get("position") or [None] * 3, h.get("position_sigma") or [None] * 3
        rows.append([rec["source"], rec["frame"], i, h["track_id"], *h["box"], h["score"], h["yaw"], h["pitch"], h["roll"], *sig, *pos, *pos_sig])
    return rows


def _predict_ray(sources, json_path, csv_path, parquet_dir, address, num_workers, quiet, est_kwargs) -> int:
    """``--engine ray``: :func:`openheadpose.scale.ray_engine.run_ray`, then the records merged into --json / --csv.

    Shards go to --parquet DIR (kept), else to ``OUT.parts/`` beside the JSON or CSV file
    (removed once merged; kept when interrupted, so the same command resumes), or to a
    temporary folder for ``--json -``.
    """
    import shutil
    import tempfile

    from openheadpose.cli._common import (
        EXIT_ALL_FAILED,
        EXIT_INTERRUPTED,
        EXIT_OK,
        EXIT_SOME_FAILED,
        err,
        message,
        onnx_weights,
    )
    from openheadpose.io import CsvWriter, JsonLinesWriter
    from openheadpose.scale.ray_engine import have_ray, iter_records, run_ray

    missing = have_ray()
    if missing:
        fail(missing)
    if not (json_path or csv_path or parquet_dir):
        fail("--engine ray writes records, not windows: give --json PATH|-, --csv PATH or --parquet DIR")
    expanded, n_failed, _ = expand_or_exit(sources, False)
    build_or_exit(**est_kwargs)  # every option checked here, before a worker starts
    kwargs = dict(est_kwargs)
    model, weights = kwargs.pop("model_name"), onnx_weights(kwargs.pop("weights"))
    kwargs["keypoints"], kwargs["pose"] = kwargs.pop("keypoint_source"), kwargs.pop("pose_name")
    own, temporary = parquet_dir is None, False
    if parquet_dir is not None:
        shards = Path(parquet_dir)
    elif json_path and json_path != "-" or csv_path and str(csv_path) != "-":
        target = json_path if json_path and json_path != "-" else csv_path
        shards = Path(f"{target}.parts")
    else:
        shards, temporary = Path(tempfile.mkdtemp(prefix="headpose-ray-")), True
    try:
        run = run_ray(expanded, shards, address=address, num_workers=num_workers, progress=not quiet, model=model, weights=weights, **kwargs)
    except (ValueError, RuntimeError, OSError) as exc:
        fail(message(exc))
    for e in run.errors:
        err(e)
    for w in run.warnings:
        err(f"warning: {w}")
    if run.interrupted:
        if temporary:
            shutil.rmtree(shards, ignore_errors=True)
            err("interrupted")
        else:
            err(f"interrupted; {shards} holds every finished unit: the same command resumes from there")
        return EXIT_INTERRUPTED
    n_failed += run.sources_failed
    code = EXIT_OK if n_failed == 0 else EXIT_SOME_FAILED if run.sources_ok or run.records else EXIT_ALL_FAILED
    with contextlib.ExitStack() as stack:  # as the local engine: exit 2 writes no --json / --csv
        json_w = stack.enter_context(JsonLinesWriter(json_path)) if json_path and code != EXIT_ALL_FAILED else None
        csv_w = stack.enter_context(CsvWriter(csv_path, CSV_HEADER)) if csv_path and code != EXIT_ALL_FAILED else None
        if json_w is not None or csv_w is not None:
            for rec in iter_records(shards):
                if json_w is not None:
                    json_w.write(rec)
                if csv_w is not None:
                    for row in _csv_rows(rec):
                        csv_w.write(row)
    if own:
        shutil.rmtree(shards, ignore_errors=True)
    return code



@click.command(context_settings=CONTEXT)
@click.argument("sources", nargs=-1, required=True)
@click.option("--save", "save_dir", type=click.Path(file_okay=False, path_type=Path), help="Write annotated images / videos into this folder.")
@click.option("--json", "json_path", metavar="PATH|-", help="Write JSON Lines (one object per image or frame); '-' is standard output.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Write one CSV row per head.")
@click.option("--show", is_flag=True, help="Show a live window (needs a display; press q to stop).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this process. ray: a Ray cluster (the ray extra), an actor pool over images and video chunks, same records.")
@click.option("--ray-address", metavar="ADDR", help="With --engine ray: the cluster to join ('auto', host:6379, ray://host:10001). [default: start Ray here]")
@click.option("--num-workers", type=click.IntRange(1), help="With --engine ray: actors in the pool, one CPU each. [default: the cluster's CPUs]")
@click.option("--parquet", "parquet_dir", type=click.Path(file_okay=False, path_type=Path),
              help="With --engine ray: write the records as Parquet shards into this folder (a re-run resumes it).")
@click.option("--draw", type=click.Choice(["axes", "cube"]), default="axes", show_default=True, help="How to draw each head's pose.")
@click.option("--distance/--no-distance", "show_distance", default=False, show_default=True, help="Write each head's distance from the camera (metres, with sigma) in its label.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), help="Draw yaw, pitch and roll over time per head (track) with its sigma band into this image (.png, .svg, .pdf).")
@estimator_options(KEYPOINTS_HELP)
@click.option("--min-score", type=click.FloatRange(0, 1), default=None, help="Minimum head score. [default: 0.5 when a landmarker or the body source confirms the face (default model, facemesh, body), 0.75 for a detector alone]")
@click.option("--fov", type=click.FloatRange(1, 179), default=None, help="Horizontal field of view in degrees: report rotations in the camera frame instead of relative to the line of sight, and place heads with it. [default for placing heads: 60, assumed]")
@camera_option
@track_options
@mirror_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@input_options
def predict(sources, save_dir, json_path, csv_path, show, engine, ray_address, num_workers, parquet_dir, draw, show_distance, plot_path, model_name, weights, keypoint_source, detector, landmarker, pose_name, min_score, fov, camera, quiet, track, smooth, mirror) -> None:
    """Estimate the pose of every head in SOURCES.

    SOURCES are image files, video files, folders (searched recursively),
    glob patterns ('shots/*.jpg'), camera indices (0) or example:astronaut.

    \b
    Exit status: 0 when every input was processed whole, 1 when some
    failed (a video that ends before the frames its header promises
    included: its frames are kept), 2 when none could be read (then no
    --json or --csv file is written), 130 when interrupted.

    \b
    Examples:
      headpose predict example:astronaut --save out --json -
      headpose predict group.jpg --json - --draw cube --save out
      headpose predict videos/ --save out --csv heads.csv
      headpose predict clip.mp4 --plot angles.png
      headpose convert fsanet FSA-Net/pre-trained/300W_LP_models fsanet.onnx
      headpose predict clip.mp4 --model fsanet --weights fsanet.onnx --save out
      headpose predict group.jpg --model hhpnet --keypoints body --json -
      headpose predict photos/ videos/ --engine ray --ray-address auto --parquet heads/
      headpose predict clip.mp4 --camera calib.yaml --json - --save out --distance
    """
    est_kwargs = {"model_name": model_name, "weights": weights, "keypoint_source": keypoint_source, "detector": detector, "landmarker": landmarker,
                  "pose_name": pose_name, "min_score": min_score, "fov": fov, "track": track, "smooth": smooth, "camera": camera, "mirror": mirror}
    if engine == "ray":
        if save_dir or show or plot_path:
            fail("--save, --show and --plot need --engine local (annotated frames are drawn where they are decoded); --engine ray writes --json, --csv or --parquet")
        sys.exit(_predict_ray(sources, json_path, csv_path, parquet_dir, ray_address, num_workers, quiet, est_kwargs))
    if parquet_dir or ray_address or num_workers:
        fail("--parquet, --ray-address and --num-workers go with --engine ray")
    from openheadpose.inference.draw import annotate
    from openheadpose.io import CsvWriter, JsonLinesWriter

    expanded, n_failed, show = expand_or_exit(sources, show)
    est = build_or_exit(**est_kwargs)

    trace = None
    if plot_path is not None:
        from openheadpose.inference.plot import AngleTrace

        trace = AngleTrace()
    with contextlib.ExitStack() as stack:
        json_w = stack.enter_context(JsonLinesWriter(json_path)) if json_path else None
        csv_w = stack.enter_context(CsvWriter(csv_path, CSV_HEADER)) if csv_path else None

        def handle(res, want_image: bool):

            def write():
                if trace is not None:
                    trace.add(res)
                if json_w is not None:
                    json_w.write(res.to_dict())
                if csv_w is not None:
                    for row in _csv_rows(res.to_dict()):
                        csv_w.write(row)

            return write, annotate(res.image, res.heads, style=draw, show_distance=show_distance, legend=True) if want_image else None

        code = run_frames(est, expanded, n_failed, handle, save_dir, show, quiet, "headpose")
        discard_when_none_read(code, json_w, csv_w)
    if trace is not None:
        from openheadpose.inference.plot import plot_angles

        plot_angles(trace, plot_path)
    sys.exit(code)


