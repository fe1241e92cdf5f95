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
    estimator_options,
    expand_or_exit,
    run_frames,
    track_options,
)

CSV_HEADER = ["source", "frame", "head", "track_id", "x1", "y1", "x2", "y2", "score", "yaw", "pitch", "roll", "sigma_yaw", "sigma_pitch", "sigma_roll"]


def _csv_rows(res) -> list[list]:
    rows = []
    for i, h in enumerate(res.heads.to_list()):
        sig = h["sigma"] or [None, None, None]
        rows.append([res.source, res.frame, i, h["track_id"], *h["box"], h["score"], h["yaw"], h["pitch"], h["roll"], *sig])
    return rows



@click.command(context_settings=CONTEXT)
@click.argument("sources", nargs=-1, required=True)
@click.option("--save", "save_dir", type=click.Path(file_okay=False, path_type=Path), help="Write annotated images / videos into this folder.")
@click.option("--json", "json_path", metavar="PATH|-", help="Write JSON Lines (one object per image or frame); '-' is standard output.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Write one CSV row per head.")
@click.option("--show", is_flag=True, help="Show a live window (needs a display; press q to stop).")
@click.option("--draw", type=click.Choice(["axes", "cube"]), default="axes", show_default=True, help="How to draw each head's pose.")
@estimator_options(KEYPOINTS_HELP)
@click.option("--min-score", type=click.FloatRange(0, 1), default=None, help="Minimum head score. [default: 0.5 when a landmarker or the body source confirms the face (default model, facemesh, body), 0.75 for a detector alone]")
@click.option("--fov", type=click.FloatRange(1, 179), default=None, help="Horizontal field of view in degrees: report rotations in the camera frame instead of relative to the line of sight.")
@track_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def predict(sources, save_dir, json_path, csv_path, show, draw, model_name, weights, keypoint_source, detector, landmarker, pose_name, min_score, fov, quiet, track, smooth) -> None:
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
      headpose convert fsanet FSA-Net/pre-trained/300W_LP_models fsanet.onnx
      headpose predict clip.mp4 --model fsanet --weights fsanet.onnx --save out
      headpose predict group.jpg --model hhpnet --keypoints pose --json -
    """
    from openheadpose.inference.draw import annotate
    from openheadpose.io import CsvWriter, JsonLinesWriter

    expanded, n_failed, show = expand_or_exit(sources, show)
    est = build_or_exit(
        model_name, weights, keypoint_source=keypoint_source, detector=detector, landmarker=landmarker, pose_name=pose_name, min_score=min_score, fov=fov, track=track, smooth=smooth
    )

    with contextlib.ExitStack() as stack:
        json_w = stack.enter_context(JsonLinesWriter(json_path)) if json_path else None
        csv_w = stack.enter_context(CsvWriter(csv_path, CSV_HEADER)) if csv_path else None

        def handle(res, want_image: bool):

            def write():
                if json_w is not None:
                    json_w.write(res.to_dict())
                if csv_w is not None:
                    for row in _csv_rows(res):
                        csv_w.write(row)

            return write, annotate(res.image, res.heads, style=draw) if want_image else None

        code = run_frames(est, expanded, n_failed, handle, save_dir, show, quiet, "headpose")
    sys.exit(code)


