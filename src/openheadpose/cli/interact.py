"""``headpose interact``: who looks at whom in photos, folders, videos and camera streams.

A thin shell over :func:`openheadpose.apps.interaction.find_interactions`, iterating its
inputs and writing its outputs like ``headpose predict`` (same exit codes, atomic
outputs, Ctrl-C keeps every finished frame), with the same model options.
"""

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
    fail,
    message,
    run_frames,
    mirror_option,
    track_options,
)


@click.command(context_settings=CONTEXT)
@click.argument("sources", nargs=-1, required=True)
@click.option("--save", "save_dir", type=click.Path(file_okay=False, path_type=Path), help="Write images / videos with view cones and pair links into this folder.")
@click.option("--json", "json_path", metavar="PATH|-", help="Write JSON Lines (one object per image or frame, with its pairs and groups); '-' is standard output.")
@click.option("--show", is_flag=True, help="Show a live window (needs a display; press q to stop).")
@estimator_options(KEYPOINTS_HELP)
@click.option("--min-score", type=click.FloatRange(0, 1), default=None, help="Minimum head score. [default: as in `headpose predict`]")
@click.option("--cone", "cone_deg", type=click.FloatRange(1, 60), default=30.0, show_default=True, help="Half-angle in degrees of a view cone before sigma widens it.")
@click.option("--depth", type=click.Choice(["size", "plane"]), default="size", show_default=True, help="size: bigger faces are nearer (pinhole camera of --fov); plane: all heads at one depth.")
@click.option("--fov", "fov_deg", type=click.FloatRange(1, 179), default=60.0, show_default=True, help="Camera field of view across the image's longer side, degrees (--depth size).")
@track_options
@mirror_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def interact(sources, save_dir, json_path, show, model_name, weights, keypoint_source, detector, landmarker, pose_name, min_score, cone_deg, depth, fov_deg, quiet, track, smooth, mirror) -> None:
    """Who looks at whom: view cones, mutual gaze and interaction levels in SOURCES.

    For every pair of heads: whether each looks at the other (the other head is
    inside its view cone, which sigma widens), whether the gaze is mutual, and the
    pair's interaction level (the mean of the two looking scores, 0..1); groups are
    heads joined by pairs scoring >= 0.25. Video is analysed frame by frame.

    SOURCES are image files, video files, folders (searched recursively), glob
    patterns ('shots/*.jpg'), camera indices (0) or example:astronaut.

    \b
    JSON Lines, one object per image or frame:
      {"source", "frame", "width", "height", "heads": [as `headpose predict`],
       "pairs": [{"a", "b", "a_looks_at_b", "b_looks_at_a", "mutual", "score",
                  "look_ab", "look_ba", "theta_ab", "theta_ba", "distance"}],
       "groups": [{"members": [...], "score"}]}
    a and b index "heads".

    \b
    Exit status: 0 when every input was processed, 1 when some failed,
    2 when none could be, 130 when interrupted.

    \b
    Examples:
      headpose interact group.jpg --save out --json -
      headpose interact meeting.mp4 --save out --json meeting.jsonl
      headpose interact photos/ --json pairs.jsonl --depth plane
      headpose interact group.jpg --model hhpnet --weights hhpnet.onnx --save out
    """
    from openheadpose.apps.interaction import (
        InteractionConfig,
        draw_interaction,
        find_interactions,
        interaction_record,
    )
    from openheadpose.io import JsonLinesWriter

    expanded, n_failed, show = expand_or_exit(sources, show)
    try:
        config = InteractionConfig(cone_deg=cone_deg, max_cone_deg=max(60.0, cone_deg), depth=depth, fov_deg=fov_deg)
    except ValueError as exc:
        fail(message(exc))
    est = build_or_exit(model_name, weights, keypoint_source=keypoint_source, detector=detector, landmarker=landmarker, pose_name=pose_name, min_score=min_score, track=track, smooth=smooth,
                        mirror=mirror)
    # As in predict: the writer commits on a normal exit (Ctrl-C is caught inside, so
    # what was finished is kept) and discards its temporary file on any other error.
    with contextlib.ExitStack() as stack:
        json_w = stack.enter_context(JsonLinesWriter(json_path)) if json_path else None

        def handle(res, want_image: bool):
            inter = find_interactions(res.heads, (res.width, res.height), config)

            def write():
                if json_w is not None:
                    json_w.write(interaction_record(res, inter))

            return write, draw_interaction(res.image, res.heads, inter) if want_image else None

        code = run_frames(est, expanded, n_failed, handle, save_dir, show, quiet, "headpose interact")
    sys.exit(code)

