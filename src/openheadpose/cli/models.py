"""``headpose models``: everything that can be chosen by name."""

from __future__ import annotations

import click

from openheadpose.cli._common import CONTEXT


@click.command(context_settings=CONTEXT)
def models() -> None:
    """List everything that can be chosen by name: pipeline stages, networks, crop recipes, datasets."""
    import importlib.util

    from openheadpose.datasets.registry import DATASETS
    from openheadpose.inference.detectors import DETECTORS
    from openheadpose.inference.keypoint_sources import KEYPOINT_SOURCES
    from openheadpose.inference.landmarkers import LANDMARKERS
    from openheadpose.inference.pipeline import default_detector
    from openheadpose.inference.pose_stages import POSE_STAGES
    from openheadpose.inference.model_names import model_names
    from openheadpose.specs.crops import CROPS

    click.echo("models (--model NAME):")
    for name, text in model_names().items():
        click.echo(f"  {name:18s} {text}")
    for title, reg in (
        ("detectors", DETECTORS),
        ("landmarkers", LANDMARKERS),
        ("keypoint sources", KEYPOINT_SOURCES),
        ("pose stages", POSE_STAGES),
        ("datasets", DATASETS),
    ):
        click.echo(f"{title}:")
        for name, text in reg.describe().items():
            click.echo(f"  {name:18s} {text}")
    from openheadpose.inference.backends.litert import MODEL_FILES, find_model

    click.echo(f"default detector here: {default_detector()}")
    click.echo("model files here:")
    for name in MODEL_FILES:
        found = find_model(name)
        click.echo(f"  {name:34s} {found[1] + ': ' + str(found[0]) if found else 'not installed'}")
    click.echo("crop recipes:")
    for name in CROPS.names():
        click.echo(f"  {name:18s} {CROPS[name].reference.split(';')[0].split('. ')[0]}")
    if importlib.util.find_spec("torch") is None:
        click.echo("architectures: install PyTorch (pip install 'openheadpose[torch]') to train and export them (headpose train, export)")
        return
    from openheadpose.models import MODELS, list_models

    click.echo("architectures (headpose train / export, PyTorch; run with --model NAME --weights FILE.onnx):")
    for name in list_models():
        sp = MODELS[name].spec
        p = sp.preprocessing
        click.echo(f"  {name:26s} codec {sp.codec:15s} input {p.input_size} {p.channels:9s} crop {p.crop}")


