"""``headpose convert`` and ``headpose export``: original checkpoints and our own into ONNX files with their metadata (need PyTorch)."""

from __future__ import annotations

from pathlib import Path

import click

from openheadpose.cli._common import CONTEXT, fail, message, need_torch


@click.command(context_settings=CONTEXT)
@click.argument("kind", type=click.Choice(["fsanet", "hopenet", "hhpnet"]))
@click.argument("src", type=click.Path(exists=True, path_type=Path))
@click.argument("dst", type=click.Path(dir_okay=False, path_type=Path))
def convert(kind, src, dst) -> None:
    """Convert an original checkpoint into an openheadpose model (.onnx to run, .pt to train on).

    \b
    fsanet   official FSA-Net Keras .h5 (any variant, either protocol); a folder of
             the three capsule models gives the Caps-Fusion ensemble
    hopenet  Hopenet / HopelessNet .pkl snapshots (ResNet, SqueezeNet, MobileNetV2)
    hhpnet   official HHP-Net TensorFlow SavedModel folders

    \b
    Examples:
      headpose convert fsanet 300W_LP_models/fsanet_capsule_3_16_2_21_5/fsanet_capsule_3_16_2_21_5.h5 capsule.onnx
      headpose convert fsanet 300W_LP_models capsfusion.onnx
      headpose convert hopenet squeezenet_1_0.pkl hopelessnet.onnx
      headpose convert hhpnet model_w300_biwi hhpnet.onnx
    """
    need_torch("convert")
    if dst.suffix.lower() not in (".onnx", ".pt"):
        fail(f"{dst}: the output must end in .onnx (to run) or .pt (to train on)")
    from openheadpose.convert import CONVERTERS

    try:
        out = CONVERTERS[kind](src, dst)
    except (ValueError, KeyError, OSError, ImportError) as exc:  # the importers' messages name the file
        fail(message(exc))
    click.echo(f"wrote {out or dst}")


@click.command(context_settings=CONTEXT)
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(dir_okay=False, path_type=Path))
def export(checkpoint, dst) -> None:
    """Export an openheadpose checkpoint (.pt, from `headpose train` or `convert`) to ONNX with its metadata.

    \b
    Example:
      headpose export runs/fsanet/best.pt fsanet.onnx
      headpose predict photo.jpg --model onnx --weights fsanet.onnx
    """
    need_torch("export")
    from openheadpose.models import create_model, load_checkpoint
    from openheadpose.models.export import export_onnx

    try:
        _, spec = load_checkpoint(checkpoint)
        model = create_model(spec.name, weights=checkpoint)
        export_onnx(model, dst)
    except (ValueError, KeyError, OSError) as exc:
        fail(f"{checkpoint}: {message(exc)}")
    click.echo(f"wrote {dst}")


