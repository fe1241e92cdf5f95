"""``headpose train``: the click command ."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from openheadpose.cli._common import CONTEXT, EXIT_INTERRUPTED
from openheadpose.cli._common import EXIT_ALL_FAILED as EXIT_FAILED
from openheadpose.cli._common import err as _err


@click.command(context_settings=CONTEXT)
@click.option("--model", "model_name", required=True, help="Registered model name (e.g. fsanet-capsule, hopenet-resnet18, rot6d-tiny).")
@click.option("--data", "data", multiple=True, required=True, metavar="KIND:PATH", help="Training data (repeatable), e.g. 300wlp:data/300W_LP.")
@click.option("--val", "val", multiple=True, metavar="KIND:PATH", help="Validation data (repeatable). Default: 5% of --data, chosen by a hash of each name.")
@click.option("--split", default=None, metavar="NAME", help="Named split of every --data (not --val): protocol2-train / protocol2-test, the BIWI videos of openheadpose/assets/biwi_protocol2.json.")
@click.option("--epochs", type=click.IntRange(1), default=30, show_default=True, help="Total epochs (on --resume: the total, not extra ones).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Output folder: last.pt, best.pt, metrics.csv, TensorBoard events. [default with --resume: its folder]")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True, help="Global batch (all processes together).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=1e-3, show_default=True, help="Peak learning rate.")
@click.option("--weight-decay", type=click.FloatRange(0), default=0.0, show_default=True, help="Weight decay (L2 for adam, decoupled for adamw).")
@click.option("--optimizer", type=click.Choice(["adam", "adamw"]), default="adam", show_default=True)
@click.option("--schedule", type=click.Choice(["cosine", "step", "constant"]), default="cosine", show_default=True, help="cosine: linear warm-up then cosine to 0; step: x gamma every --step-epochs.")
@click.option("--warmup-epochs", type=click.FloatRange(0), default=1.0, show_default=True, help="Warm-up of the cosine schedule.")
@click.option("--step-epochs", type=click.IntRange(1), default=10, show_default=True, help="Period of the step schedule.")
@click.option("--gamma", type=click.FloatRange(0, 1), default=0.1, show_default=True, help="Factor of the step schedule.")
@click.option("--alpha", type=click.FloatRange(0), default=None, help="Regression weight of the binned (Hopenet) loss. [default: 0.001, deep-head-pose's]")
@click.option("--crop", default=None, metavar="RECIPE", help="Crop recipe instead of the model's own (fsanet, hopenet, 3ddfa, shaw, square-1.5); stored with the weights.")
@click.option("--augment", type=click.Choice(["default", "strong", "none"]), default="default", show_default=True, help="default: box jitter, mirror, blur, colour, occlusion; strong: also in-plane turns (+-20 deg) and occlusion twice as often.")
@click.option("--workers", type=click.IntRange(0), default=2, show_default=True, help="Data-loading processes per training process (results do not depend on it).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N (under torchrun each process takes cuda:LOCAL_RANK).")
@click.option("--amp/--no-amp", default=None, help="Mixed precision (CUDA only). [default: on for CUDA]")
@click.option("--resume", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, help="Continue the run of this last.pt exactly.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Read only the first N samples (smoke runs).")
@click.option("--init", "init", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, help="Start from an openheadpose checkpoint (tensors matching in name and shape), or from the same network's exported .onnx (e.g. a shipped model: fine-tuning).")
@click.option("--keep-epochs", is_flag=True, help="Also write each epoch's weights as OUT/epochNNN.pt (to average them: headpose average).")
@click.option("--targets", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, help="A teacher's poses (CSV name,yaw,pitch,roll) that relabel the training samples of those names: distillation (tools/distil_targets.py).")
@click.option("--target-weight", type=click.FloatRange(0, 1), default=0.0, show_default=True, help="With --targets: weight of a sample's own label where it has one (the teacher's gets the rest).")
@click.option("--consistency", type=click.FloatRange(0), default=0.0, show_default=True, help="Weight of a mirror-consistency term: each batch is also read flipped and the squared difference (deg^2) of the two reads, the flipped one mapped back, is added.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def train(model_name, data, val, split, epochs, out, batch_size, lr, weight_decay, optimizer, schedule, warmup_epochs, step_epochs, gamma, alpha, crop, augment, workers, seed, device, amp, resume, limit, init, keep_epochs, targets, target_weight, consistency, quiet) -> None:
    """Train a pose network on labelled datasets; writes OUT/best.pt (lowest validation MAE) and OUT/last.pt.

    Crops, preprocessing and the loss come from the model's spec and codec. Angles a
    dataset does not label (e.g. pitch and roll of aflw-yaw) add nothing to the
    loss. Ctrl-C saves a checkpoint that --resume continues exactly. Run under
    torchrun for several processes (DDP; gloo on CPU, nccl on GPU).

    \b
    Exit status: 0 done, 2 bad input, 130 interrupted (OUT/last.pt resumes it).

    \b
    Examples:
      headpose train --model fsanet-capsule --data 300wlp:data/300W_LP --epochs 90 --batch-size 16 --schedule step --step-epochs 30 --out runs/fsanet
      headpose train --model hopenet-resnet18 --data 300wlp:data/300W_LP --lr 1e-5 --epochs 25 --out runs/hopenet
      headpose train --model rot6d-tiny --data biwi:data/hpdb --split protocol2-train --out runs/biwi-p2
      headpose train --model rot6d-tiny --data aflw-yaw:data/aflw-yaw --limit 500 --epochs 1 --out /tmp/smoke
      headpose train --model rot6d-tiny --data 300wlp:data/300W_LP --resume runs/r6d/last.pt --epochs 40
      torchrun --nproc_per_node=4 -m openheadpose.cli.train --model rot6d-resnet18 --data 300wlp:data/300W_LP --out runs/r18
      headpose export runs/fsanet/best.pt fsanet.onnx && headpose evaluate --root data/AFLW2000 --model onnx --weights fsanet.onnx
    """
    try:
        import torch  # noqa: F401
    except ImportError:
        _err("train needs PyTorch: pip install 'openheadpose[torch]'")
        sys.exit(EXIT_FAILED)
    from openheadpose.datasets.base import DatasetError
    from openheadpose.training.engine import TrainConfig, TrainError, TrainInterrupted
    from openheadpose.training.engine import train as run

    if out is None:
        if resume is None:
            _err("--out is required (the folder for checkpoints and logs)")
            sys.exit(EXIT_FAILED)
        out = resume.parent
    cfg = TrainConfig(
        model=model_name, data=tuple(data), out=out, epochs=epochs, val=tuple(val), split=split, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, optimizer=optimizer, schedule=schedule, warmup_epochs=warmup_epochs, step_epochs=step_epochs,
        gamma=gamma, workers=workers, seed=seed, device=device, amp=amp, resume=resume, limit=limit, init=init, alpha=alpha, crop=crop,
        augment=augment, progress=not quiet, keep_epochs=keep_epochs, targets=targets, target_weight=target_weight, consistency=consistency,
    )
    try:
        res = run(cfg, log=lambda m: click.echo(m, err=True))
    except TrainInterrupted as exc:
        _err(str(exc))
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        _err(f"aborted; {out / 'last.pt'} holds the last saved state (if any)")
        sys.exit(EXIT_INTERRUPTED)
    except (TrainError, DatasetError, KeyError, ValueError, OSError) as exc:
        _err(str(exc.args[0]) if exc.args else str(exc))
        sys.exit(EXIT_FAILED)
    if res.get("best_val_mae") is not None:
        click.echo(f"best: epoch {res['best_epoch']}, validation MAE {res['best_val_mae']:.2f} -> {res['best']}")
    else:
        click.echo(f"done -> {res['best']}")


@click.command(context_settings=CONTEXT)
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("checkpoints", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bn-data", "bn_data", multiple=True, metavar="KIND:PATH", help="Training data (repeatable, as train --data) on which the average's BatchNorm statistics are measured again.")
@click.option("--bn-crops", type=click.IntRange(1), default=4096, show_default=True, help="Crops, evenly spread over --bn-data, that set the statistics.")
@click.option("--weight", "weights", multiple=True, type=click.FloatRange(0), help="One per checkpoint, in order (default: uniform).")
@click.option("--workers", type=click.IntRange(0), default=2, show_default=True, help="Data-loading processes.")
def average(out, checkpoints, bn_data, bn_crops, weights, workers) -> None:
    """Average the weights of CHECKPOINTS (one network's) into OUT: SWA over a run's last epochs, or a model soup of fine-tunes.

    Parameters are averaged; BatchNorm statistics are measured again on --bn-data
    (unaugmented crops), since an average network's statistics are not the average
    of the statistics. OUT is a checkpoint like best.pt: export it, evaluate it.

    \b
    Exit status: 0 done, 2 bad input.

    \b
    Examples:
      headpose average runs/swa.pt runs/a/last.pt runs/b/best.pt runs/b/last.pt --bn-data 300wlp:data/synth/train
      headpose average runs/soup.pt runs/strong/last.pt runs/default/last.pt --bn-data 300wlp:data/synth/train
      headpose export runs/soup.pt soup.onnx
    """
    try:
        import torch  # noqa: F401
    except ImportError:
        _err("average needs PyTorch: pip install 'openheadpose[torch]'")
        sys.exit(EXIT_FAILED)
    from openheadpose.datasets.base import DatasetError
    from openheadpose.training.average import AverageError, average_checkpoints

    if weights and len(weights) != len(checkpoints):
        _err(f"--weight given {len(weights)} times for {len(checkpoints)} checkpoints (one each, or none)")
        sys.exit(EXIT_FAILED)
    try:
        res = average_checkpoints(checkpoints, out, bn_data, bn_crops, weights or None, workers=workers, log=lambda m: click.echo(m, err=True))
    except (AverageError, DatasetError, KeyError, ValueError, OSError) as exc:
        _err(str(exc.args[0]) if exc.args else str(exc))
        sys.exit(EXIT_FAILED)
    click.echo(f"{res['model']}: {len(checkpoints)} checkpoints averaged -> {out}")


def main() -> None:
    """``python -m openheadpose.cli.train`` (what ``torchrun -m`` calls)."""
    train(prog_name="headpose train")


if __name__ == "__main__":
    main()
