"""``headpose evaluate``: score a model on a labelled dataset."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from openheadpose.cli._common import (
    CONTEXT,
    EXIT_ALL_FAILED,
    EXIT_OK,
    build_or_exit,
    mirror_option,
    dumps,
    err,
    estimator_options,
    fail,
    message,
)


def _dataset_kinds() -> list[str]:
    from openheadpose.datasets import DATASETS

    return DATASETS.names()


@click.command(context_settings=CONTEXT)
@click.option("--dataset", "kind", type=click.Choice(_dataset_kinds()), default="aflw2000", show_default=True, help="Dataset format.")
@click.option("--root", type=click.Path(exists=True, path_type=Path), required=True, help="Dataset folder (or file, for csv / biwi-npz).")
@click.option("--crop", type=click.Choice(["gt", "detect"]), default="gt", show_default=True, help="gt: faces cut from the labels with the model's own recipe; detect: our detector on the full image. (Keypoint networks: see --keypoints.)")
@estimator_options("Keypoint networks (hhpnet, heatmap-cnn): facemesh, blazeface or body run on the full image, or 'labels' (the dataset's labelled landmarks). [default: facemesh]")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1), help="Crops per model call (results do not depend on it).")
@click.option("--no-filter", is_flag=True, help="Keep faces beyond +-99 deg (the standard filter drops them).")
@click.option("--split", default=None, help="Score only a named split, e.g. protocol2-test (BIWI Protocol 2's 8 test videos).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the result as JSON.")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False, path_type=Path), help="Write PNG plots here: error vs |yaw|, histograms, worst cases.")
@click.option("--per-image", is_flag=True, help="Include every face's label and prediction in the JSON (keep such files out of public repositories: they copy the dataset's labels).")
@mirror_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def evaluate(kind, root, crop, model_name, weights, keypoint_source, detector, landmarker, pose_name, batch_size, no_filter, split, json_path, plots_dir, per_image, quiet, mirror) -> None:
    """Score a model on a labelled dataset: MAE per angle, MAEV, geodesic error, share within 5/10/15 deg.

    Faces outside +-99 deg are dropped (the standard filter) and counted; with
    --crop detect, faces the detector misses are counted and left out of the
    errors. Every result states its image count and crop recipe.

    Keypoint networks (--model hhpnet: our shipped weights without --weights) run
    behind a keypoint source (--keypoints); the source's head that overlaps the
    labelled face most (IoU >= 0.2) is scored, the others count as missed. Models
    with a sigma also report the share of errors within +-1 and +-2 sigma (a
    calibrated sigma gives 68.3 % and 95.4 %).

    \b
    Examples:
      headpose evaluate --root data/AFLW2000 --crop gt --json aflw_gt.json --plots plots/
      headpose evaluate --dataset biwi --root data/hpdb --split protocol2-test --model onnx --weights biwi.onnx
      headpose evaluate --dataset csv --root my_faces.csv
      headpose evaluate --root data/AFLW2000 --model hhpnet --keypoints blazeface --json hhp.json
    """
    from openheadpose.datasets import DatasetError, SplitView, open_dataset
    from openheadpose.evaluation.evaluate import evaluate as run_evaluation
    from openheadpose.inference.keypoint_sources import LABELS
    from openheadpose.inference.pose_stages import KeypointPose
    from openheadpose.io import atomic_write_bytes

    try:
        data = open_dataset(f"{kind}:{root}", standard_filter=not no_filter)
        if split:
            data = SplitView(data, split, kind)
    except (DatasetError, OSError) as exc:
        fail(message(exc))
    keypoints = keypoint_source
    from_labels = keypoint_source == LABELS
    model = build_or_exit(
        model_name, weights, keypoint_source=None if from_labels else keypoint_source, detector=detector, landmarker=landmarker, pose_name=pose_name,
        mirror=mirror,
    )
    if isinstance(model.pose, KeypointPose):
        keypoints = LABELS if from_labels else model.keypoints.name
    elif from_labels:
        fail(f"--keypoints is for keypoint networks (hhpnet, heatmap-cnn); {model_name!r} reads images")
    res = run_evaluation(
        model, data, crop=crop, name=f"{kind}:{split}" if split else kind, batch_size=batch_size, progress=not quiet, keypoints=LABELS if from_labels else None
    )
    d = res.to_dict(per_image=per_image)
    for f in res.failures:
        err(f)
    filt = "no angle filter" if no_filter else f"after the +-99 deg filter ({d['n_filtered_out']} dropped)"
    how = f"keypoints {keypoints}" if keypoints else f"crop {crop} ({d['crop_recipe']})"
    click.echo(f"{kind}: {d['n_images']} faces {filt}, {d['n_failed']} unreadable; model {d['model']}, {how}")
    click.echo(f"scored {d['n_detected']}, missed {d['n_missed']}")

    def f(v):
        return "  -  " if v is None or v != v else f"{v:5.2f}"

    m, u = d["mae"], d["mae_unwrapped"]
    click.echo(f"MAE  yaw {f(m['yaw'])}  pitch {f(m['pitch'])}  roll {f(m['roll'])}  mean {f(m['mean'])}   (unwrapped mean {f(u['mean'])})")
    if d["maev"] == d["maev"]:
        click.echo(f"MAEV {d['maev']:.2f}  geodesic {d['geodesic']:.2f}  within 5/10/15 deg: " + " / ".join(f"{100 * v:.1f}%" for v in d["within"].values()))
    for k, v in d["by_abs_yaw"].items():
        click.echo(f"  |yaw| {k:>7s}: n={v['n']:5d}  MAE {f(v['mae'])}  yaw MAE {f(v['mae_yaw'])}")
    cov = d.get("sigma_coverage")
    if cov:
        from openheadpose.core.calibration import GAUSS_1SIGMA, GAUSS_2SIGMA

        def pct(v):
            return "  -  " if v is None else f"{100 * v:4.1f}%"

        for z, key, g in ((1, "within_1sigma", GAUSS_1SIGMA), (2, "within_2sigma", GAUSS_2SIGMA)):
            c = cov[key]
            click.echo(f"within +-{z} sigma  yaw {pct(c['yaw'])}  pitch {pct(c['pitch'])}  roll {pct(c['roll'])}   (Gaussian {100 * g:.1f}%)")
    try:
        if plots_dir:
            from openheadpose.evaluation.plots import write_plots

            for p in write_plots(res, plots_dir):
                click.echo(f"wrote {p}")
        if json_path:
            d["command"] = " ".join(["headpose"] + sys.argv[1:])
            atomic_write_bytes(json_path, dumps(d).encode())
    except OSError as exc:
        fail(f"cannot write results: {exc}")
    sys.exit(EXIT_OK if d["n_detected"] else EXIT_ALL_FAILED)


