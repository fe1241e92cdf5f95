"""``headpose interact``: who looks at whom in photos, folders, videos and camera streams.

A thin shell over :func:`openheadpose.interaction.find_interactions`, iterating its
inputs and writing its outputs like ``headpose predict`` (same exit codes, atomic
outputs, Ctrl-C keeps every finished frame). Registered in the main group with
``cli.add_command(interact)``; also runs alone as ``python -m openheadpose.interact_cli``.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

# cli.py's helpers are imported inside the functions: cli.py imports this module to
# register the command, so a top-level import would be circular.


def _keypoints_module():
    """``openheadpose.keypoints`` (HHP-Net keypoint pipelines) when this installation has it."""
    try:
        from . import keypoints
    except ImportError:
        return None
    return keypoints if hasattr(keypoints, "build_estimator") else None


def build_estimator(model_name: str, weights, keypoints, detector, landmarker: str, pose_name: str, min_score):
    """The head-pose estimator ``interact`` runs: ``predict``'s, keypoint networks included.

    * ``default``: the landmark pipeline (:class:`~openheadpose.pipeline.HeadPoseEstimator`).
    * a keypoint network (HHP-Net, the heatmap CNN; they give sigma, which widens the
      view cones): ``openheadpose.keypoints.build_estimator`` with ``--keypoints`` (its
      default source when not given).
    * an image network: :func:`openheadpose.predictors.load_model` in a
      :class:`~openheadpose.predictors.CropPoseEstimator`.

    Raises:
        KeyError, ValueError, RuntimeError: an unknown name, missing or wrong weights,
            ``--keypoints`` with a model that does not read keypoints.
    """
    if model_name == "default":
        if keypoints is not None:
            raise ValueError("--keypoints needs a keypoint network, e.g. --model hhpnet (the default model reads face landmarks)")
        from .pipeline import HeadPoseEstimator

        return HeadPoseEstimator(detector=detector, landmarker=landmarker, pose=pose_name, min_score=0.5 if min_score is None else min_score)
    kp = _keypoints_module()
    if keypoints is not None:
        if kp is None:
            raise ValueError("--keypoints needs the keypoint pipelines (openheadpose.keypoints), which this installation lacks")
        return kp.build_estimator(model_name, weights, keypoints, detector, min_score)
    from .predictors import CropPoseEstimator, load_model

    model = load_model(model_name, weights)
    spec = getattr(model, "spec", None)
    reads_keypoints = getattr(model, "takes_keypoints", None)
    if reads_keypoints is None:  # older model objects: the preprocessing says it
        reads_keypoints = spec is not None and not spec.preprocessing.takes_images
    if reads_keypoints:
        if kp is None:
            raise ValueError(f"model {model_name!r} reads keypoints, but openheadpose.keypoints is missing")
        return kp.build_estimator(model_name, weights, detector=detector, min_score=min_score)
    return CropPoseEstimator(model, detector=detector, min_score=min_score)


def frame_record(res, inter) -> dict:
    """One JSON Lines object: ``source``, ``frame``, ``width``, ``height``, ``heads``, ``pairs``, ``groups``."""
    rec = res.to_dict()
    rec.update(inter.to_dict())
    return rec


@click.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--save", "save_dir", type=click.Path(file_okay=False, path_type=Path), help="Write images / videos with view cones and pair links into this folder.")
@click.option("--json", "json_path", metavar="PATH|-", help="Write JSON Lines (one object per image or frame, with its pairs and groups); '-' is standard output.")
@click.option("--show", is_flag=True, help="Show a live window (needs a display; press q to stop).")
@click.option("--model", "model_name", default="default", show_default=True, help="'default' (detector + FaceMesh + the --pose stage), a keypoint network such as hhpnet (gives sigma, which widens the cones), or an image network given by --weights.")
@click.option("--weights", type=click.Path(exists=True, path_type=Path), help="Weights for --model (an .onnx file from `headpose convert` / `headpose export`).")
@click.option("--keypoints", default=None, help="Keypoint source for keypoint networks (see `headpose models`).")
@click.option("--detector", default=None, help="Face detector (see `headpose models`). [default: blazeface, or haar without MediaPipe]")
@click.option("--landmarker", default="facemesh", show_default=True, help="Landmarker of the default model.")
@click.option("--pose", "pose_name", default=None, help="Pose stage of the default model. [default: hopenet-synth; also fsanet-synth; geometric: a rigid fit of the landmarks]")
@click.option("--min-score", type=click.FloatRange(0, 1), default=None, help="Minimum head score. [default: as in `headpose predict`]")
@click.option("--cone", "cone_deg", type=click.FloatRange(1, 60), default=30.0, show_default=True, help="Half-angle in degrees of a view cone before sigma widens it.")
@click.option("--depth", type=click.Choice(["size", "plane"]), default="size", show_default=True, help="size: bigger faces are nearer (pinhole camera of --fov); plane: all heads at one depth.")
@click.option("--fov", "fov_deg", type=click.FloatRange(1, 179), default=60.0, show_default=True, help="Camera field of view across the image's longer side, degrees (--depth size).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def interact(sources, save_dir, json_path, show, model_name, weights, keypoints, detector, landmarker, pose_name, min_score, cone_deg, depth, fov_deg, quiet) -> None:
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
    from .cli import EXIT_ALL_FAILED, _err, expand_or_exit, run_frames
    from .interaction import InteractionConfig, draw_interaction, find_interactions
    from .io import JsonLinesWriter

    expanded, n_failed, show = expand_or_exit(sources, show)
    try:
        config = InteractionConfig(cone_deg=cone_deg, max_cone_deg=max(60.0, cone_deg), depth=depth, fov_deg=fov_deg)
        est = build_estimator(model_name, weights, keypoints, detector, landmarker, pose_name, min_score)
    except (KeyError, RuntimeError, ValueError) as exc:
        _err(str(exc.args[0]) if exc.args else str(exc))
        sys.exit(EXIT_ALL_FAILED)
    # As in predict: the writer commits on a normal exit (Ctrl-C is caught inside, so
    # what was finished is kept) and discards its temporary file on any other error.
    with contextlib.ExitStack() as stack:
        json_w = stack.enter_context(JsonLinesWriter(json_path)) if json_path else None

        def handle(src, fr, want_image: bool):
            res = est.process(fr.image, src.name, fr.index)
            inter = find_interactions(res.heads, (res.width, res.height), config)

            def write():
                if json_w is not None:
                    json_w.write(frame_record(res, inter))

            return write, draw_interaction(fr.image, res.heads, inter) if want_image else None

        code = run_frames(expanded, n_failed, handle, save_dir, show, quiet, "headpose interact")
    sys.exit(code)


if __name__ == "__main__":
    interact(prog_name="headpose interact")
