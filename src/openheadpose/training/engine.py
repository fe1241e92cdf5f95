"""The training loop: one process on a CPU or GPU, or DistributedDataParallel under ``torchrun``.

What it guarantees:

* **Same data for any worker count or process count.** Batches come from
  :class:`~openheadpose.training.data.EpochBatchSampler` (a permutation seeded by
  ``seed + epoch``; under DDP each rank takes every W-th item of the global
  batch) and each item's augmentation from its own ``(seed, epoch, index)``
  generator. Losses are normalised by the global count of labelled angles
  (all-reduced), so W processes with a global batch B compute the gradient of
  one process with batch B (up to float summation order).
* **Exact resume.** ``last.pt`` holds the model, optimizer, LR scheduler,
  GradScaler, epoch and step, every rank's RNG state and the metrics history;
  it is written atomically at the end of every epoch and when Ctrl-C / SIGTERM
  stops the run (at a step boundary), so ``--resume DIR/last.pt`` continues as if
  never stopped. A second Ctrl-C stops at once; the atomic writes still leave
  the previous checkpoint intact.
* **Usable results.** ``best.pt`` (lowest validation MAE) is an ordinary
  openheadpose checkpoint (:func:`openheadpose.models.load_checkpoint`,
  ``headpose export``), its spec saying what it was trained on. ``metrics.csv``
  has one row per epoch (row 0: the untrained model) and TensorBoard event files
  sit next to it. Only rank 0 writes files.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import signal
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from openheadpose.core.metrics import euler_errors
from openheadpose.core.rotation import matrix_to_euler
from openheadpose.datasets.base import DatasetError
from openheadpose.io.writers import CsvWriter
from openheadpose.specs.codecs import get_codec
from openheadpose.specs.crops import CROPS
from openheadpose.training.data import (
    AUGMENTATIONS,
    TEST_ONLY_KINDS,
    VAL_FRACTION,
    Augmentation,
    EpochBatchSampler,
    ImageInput,
    PoseDataset,
    ShardSampler,
    apply_targets,
    model_input,
    read_sources,
    read_targets,
    split_validation,
    worker_init,
)
from openheadpose.training.losses import make_loss, mirror_consistency

__all__ = ["TrainConfig", "TrainError", "TrainInterrupted", "train", "lr_factor", "METRICS_COLUMNS"]

METRICS_COLUMNS = ["epoch", "lr", "train_loss", "val_mae_yaw", "val_mae_pitch", "val_mae_roll", "val_mae", "seconds", "images_per_s"]
CHECKPOINT_VERSION = 1


class TrainError(RuntimeError):
    """Bad configuration or input: the message says what to change."""


class TrainInterrupted(RuntimeError):
    """Ctrl-C / SIGTERM stopped the run after writing a resumable ``last.pt``."""

    def __init__(self, path: Path | None, epoch: int, step: int):
        self.path, self.epoch, self.step = path, epoch, step
        where = f"; resume with --resume {path}" if path else ""
        when = f"after epoch {epoch}" if step == 0 else f"in epoch {epoch + 1} after step {step}"
        super().__init__(f"interrupted {when}{where}")


@dataclass
class TrainConfig:
    """Everything a run needs (the CLI fills it; Python callers may too).

    Attributes:
        model: a registered model name (``openheadpose.models.list_models()``).
        data: training datasets as ``kind:path``.
        out: output folder (``last.pt``, ``best.pt``, ``metrics.csv``, event files).
        epochs: total epochs (on resume: the total, not additional ones).
        val: validation datasets; empty: about ``val_fraction`` of the training
            samples by name hash (never AFLW2000 ones).
        split: a named split applied to every ``data`` spec (``protocol2-train``).
        batch_size: the global batch (all processes together).
        lr, weight_decay, optimizer (``adam`` | ``adamw``): the optimizer.
        schedule: ``cosine`` (linear warm-up for ``warmup_epochs``, then cosine to 0),
            ``step`` (times ``gamma`` every ``step_epochs``) or ``constant``.
        workers: DataLoader worker processes per training process.
        seed: the one seed every random choice derives from.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (under torchrun: ``cuda:LOCAL_RANK``).
        amp: mixed precision (float16 autocast + GradScaler); default on for CUDA, never on CPU.
        resume: a ``last.pt`` to continue.
        limit: read at most this many samples from ``data`` (and from ``val``).
        init: an openheadpose checkpoint whose tensors (matching name and shape) start the model.
        alpha: regression weight of the binned loss (default: Hopenet's 0.001).
        crop: a :data:`~openheadpose.specs.crops.CROPS` recipe instead of the model's own (stored in its spec).
        augment: ``default`` or ``none``.
        deterministic: ``torch.use_deterministic_algorithms``; default on for CPU, off for CUDA (speed).
        progress: show a progress bar.
        keep_epochs: also write every epoch's weights as ``epochNNN.pt`` (for weight averaging).
        targets: a teacher's poses (CSV ``name,yaw,pitch,roll``, :func:`~openheadpose.training.data.read_targets`)
            that relabel the training samples of those names (distillation); validation keeps its labels.
        target_weight: weight of a sample's own label where it has one (the teacher's: ``1 - target_weight``).
        consistency: weight of the mirror-consistency term (binned or Euler networks): every batch is
            also read flipped left-right and the squared difference in degrees between the two reads
            (the flipped one mapped back) is added (:func:`~openheadpose.training.losses.mirror_consistency`).
    """

    model: str
    data: tuple[str, ...]
    out: Path
    epochs: int = 30
    val: tuple[str, ...] = ()
    split: str | None = None
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    step_epochs: int = 10
    gamma: float = 0.1
    workers: int = 2
    seed: int = 0
    device: str = "auto"
    amp: bool | None = None
    resume: Path | None = None
    limit: int | None = None
    init: Path | None = None
    alpha: float | None = None
    crop: str | None = None
    augment: str = "default"
    val_fraction: float = VAL_FRACTION
    deterministic: bool | None = None
    progress: bool = True
    keep_epochs: bool = False
    targets: Path | None = None
    target_weight: float = 0.0
    consistency: float = 0.0
    # testing hook: behave as if Ctrl-C came after this many optimizer steps of this call
    stop_after_steps: int | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def lr_factor(step: int, cfg: TrainConfig, steps_per_epoch: int) -> float:
    """The LR multiplier after ``step`` optimizer steps (``LambdaLR``'s lambda)."""
    total = max(1, cfg.epochs * steps_per_epoch)
    if cfg.schedule == "cosine":
        warm = min(int(round(cfg.warmup_epochs * steps_per_epoch)), total - 1)
        if step < warm:
            return (step + 1) / warm
        t = min(1.0, (step - warm) / max(1, total - warm))
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if cfg.schedule == "step":
        return cfg.gamma ** (step // max(1, cfg.step_epochs * steps_per_epoch))
    if cfg.schedule == "constant":
        return 1.0
    raise TrainError(f"unknown schedule {cfg.schedule!r} (cosine, step, constant)")


# --------------------------------------------------------------------------- distributed helpers
@dataclass
class _Dist:
    world: int = 1
    rank: int = 0
    local_rank: int = 0
    initialised: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    @staticmethod
    def from_env() -> "_Dist":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return _Dist(world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")))


def _device(name: str, d: _Dist) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainError(f"--device {name}: CUDA is not available here (use --device cpu)")
        if d.world > 1:
            dev = torch.device("cuda", d.local_rank)
        elif dev.index is None:
            dev = torch.device("cuda", 0)
    return dev


def _all_reduce(t: torch.Tensor, d: _Dist, device: torch.device) -> torch.Tensor:
    """Sum over ranks (a copy on the collective's device, returned on the CPU)."""
    if d.world == 1:
        return t
    import torch.distributed as dist

    buf = t.to(device if device.type == "cuda" else "cpu")
    dist.all_reduce(buf)
    return buf.cpu()


def _seed_for(seed: int, rank: int, epoch: int) -> int:
    """Seed of the global torch RNG (dropout etc.) for one rank and epoch."""
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, rank, epoch, 0x5EED]).generate_state(1)[0])


# --------------------------------------------------------------------------- signals
class _StopFlag:
    """First Ctrl-C / SIGTERM: stop at the next step boundary; the second: stop now."""

    def __init__(self):
        self.requested = False
        self._old: dict = {}

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(f"\nheadpose train: {signal.Signals(signum).name} received; saving a resumable checkpoint at the next step (again to abort)", file=sys.stderr)

    def __enter__(self):
        if _in_main_thread() and not self._old:  # entering again keeps the caller's handlers to restore
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old.clear()


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# --------------------------------------------------------------------------- checkpoints
def _unwrap(model):
    return model.module if hasattr(model, "module") else model


def _save(model, spec, path: Path, **extra) -> None:
    from openheadpose.models import save_checkpoint

    m = _unwrap(model)
    saved, m.spec = getattr(m, "spec", None), spec
    try:
        save_checkpoint(m, path, **extra)
    finally:
        m.spec = saved


def _load_resume(path: Path) -> dict:
    try:
        ck = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainError(f"--resume {path}: no such file") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise TrainError(f"--resume {path}: not a readable checkpoint ({exc})") from None
    if not isinstance(ck, dict) or "train_state" not in ck:
        raise TrainError(f"--resume {path}: not a training checkpoint (expected the last.pt of `headpose train`)")
    return ck


#: Training crops (unaugmented, evenly spread over the set) that set the BatchNorm statistics of an ONNX warm start.
ONNX_INIT_CROPS = 256


def _init_from_onnx(model, path: Path, ds, device, log) -> None:
    """``--init FILE.onnx``: the network's own export (BatchNorms folded), unfolded on real crops."""
    from openheadpose.models.onnx_import import OnnxImportError, load_onnx_weights

    idx = np.linspace(0, len(ds) - 1, min(ONNX_INIT_CROPS, len(ds))).round().astype(int)
    x = np.stack([ds[(0, int(i))]["input"] for i in idx])
    model.cpu()
    try:
        info = load_onnx_weights(model, path, x)
    except OnnxImportError as exc:
        raise TrainError(f"--init {exc}") from None
    finally:
        model.to(device)
    log(f"init: {path} ({info['convolutions']} convolutions, {info['batchnorms']} BatchNorms unfolded on {len(x)} training crops, "
        f"{info['linears']} linear layers; max difference to ONNX Runtime {info['max_abs_diff']:.2g})")


def _init_weights(model, path: Path, log) -> None:
    from openheadpose.models import load_checkpoint

    try:
        state, spec = load_checkpoint(path)
    except ValueError as exc:
        raise TrainError(f"--init {exc}") from None
    own = model.state_dict()
    fit = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    if not fit:
        raise TrainError(f"--init {path}: none of its {len(state)} tensors ({spec.name}) fits {model.spec.name}")
    model.load_state_dict(fit, strict=False)
    log(f"init: {len(fit)} of {len(own)} tensors from {path} ({spec.name})")


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    return v


def _write_metrics(path: Path, history: list[dict]) -> None:
    """``metrics.csv``, rewritten whole and atomically after each epoch (the project's CSV writer)."""

    def cell(v):
        return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else (f"{v:.6g}" if isinstance(v, float) else v)

    with CsvWriter(path, METRICS_COLUMNS) as w:
        for row in history:
            w.write([cell(row.get(c)) for c in METRICS_COLUMNS])


class _TensorBoard:
    """Scalars to TensorBoard event files through tensorboardX (flushed at every epoch's end)."""

    def __init__(self, logdir: Path):
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(str(logdir))

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, v in values.items():
            if v is not None:
                self.writer.add_scalar(tag, float(v), step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


# --------------------------------------------------------------------------- evaluation
def _decode_mae_sums(codec, out: dict, euler: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum of |error| per angle, count per angle) of a batch, errors via the codec's decoding."""
    pred = codec.decode({k: v.detach().float().cpu().numpy() for k, v in out.items()})
    pred_deg = matrix_to_euler(pred.rotations).stack()
    true = np.where(mask, euler, np.nan)
    err = euler_errors(pred_deg, true)
    return np.nansum(err, axis=0), np.sum(~np.isnan(err), axis=0)


@torch.no_grad()
def _validate(model, loader, codec, device, amp: bool, d: _Dist) -> dict:
    model.eval()
    sums, counts = np.zeros(3), np.zeros(3)
    for batch in loader:
        x = batch["input"].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            out = model(x)
        s, n = _decode_mae_sums(codec, out, batch["euler"].numpy().astype(np.float64), batch["mask"].numpy())
        sums += s
        counts += n
    model.train()
    tot = _all_reduce(torch.tensor(np.concatenate([sums, counts]), dtype=torch.float64), d, device).numpy()
    sums, counts = tot[:3], tot[3:]
    mae = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    mean = float(np.nanmean(mae)) if np.isfinite(mae).any() else float("nan")
    return {"val_mae_yaw": float(mae[0]), "val_mae_pitch": float(mae[1]), "val_mae_roll": float(mae[2]), "val_mae": mean, "val_n": int(counts.max())}


# --------------------------------------------------------------------------- main entry
def train(cfg: TrainConfig, log: Callable[[str], None] | None = None) -> dict:
    """Run (or resume) a training run; returns a summary dict.

    Raises:
        TrainError: a bad option, an existing run in ``out``, an unknown model.
        DatasetError: a dataset that cannot be read (with counts).
        TrainInterrupted: Ctrl-C / SIGTERM, after writing ``last.pt``.
    """
    d = _Dist.from_env()
    if d.world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            # Imported before the group exists, not after: torch.distributed.nn.functional
            # binds ``group=group.WORLD`` as default arguments when first imported, and the
            # DDP constructor imports it (through torch._dynamo). Imported after
            # init_process_group, those defaults hold the world group for good, so
            # destroy_process_group() could not free it: gloo's worker threads outlived
            # train() and, at interpreter exit, one of them dropped a finished all_gather
            # (held by the last barrier) whose tensors belong to Python, took the GIL
            # while the interpreter was finalising and was ended inside a destructor:
            # "terminate called without an active exception", SIGABRT (gdb on the core).
            # (Imported under a name: a plain import would make ``torch`` local to train().)
            import torch.distributed.nn.functional as _defaults_without_a_group  # noqa: F401

            use_cuda = cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())
            if use_cuda:
                n_gpu = torch.cuda.device_count()
                if d.local_rank >= n_gpu:
                    raise TrainError(f"{d.world} processes but {n_gpu} GPU(s) here: run --nproc_per_node={n_gpu} (one process per GPU) or pass --device cpu")
                torch.cuda.set_device(d.local_rank)
            dist.init_process_group("nccl" if use_cuda else "gloo")
            d.initialised = True
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        result = _train(cfg, d, (log or print) if d.main else (lambda *_: None))
        if d.initialised:
            # Every rank leaves together: no rank tears its process group down while
            # another still takes part in a collective (rank 0 writes the last files).
            import torch.distributed as dist

            dist.barrier()
        return result
    finally:
        # the caller's global settings come back (train() may run inside a larger program)
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]
        if d.initialised:
            import torch.distributed as dist

            dist.destroy_process_group()  # frees the group: its threads are joined here, not at exit


def _train(cfg: TrainConfig, d: _Dist, log: Callable[[str], None]) -> dict:
    from torch.utils.data import DataLoader

    from openheadpose.models import create_model

    if cfg.crop is not None and cfg.crop not in CROPS:  # before any data is read
        CROPS.get(cfg.crop)  # KeyError naming the close match and every choice
    out = Path(cfg.out)
    ck = None
    if cfg.resume is not None:
        ck = _load_resume(Path(cfg.resume))
        if ck["spec"]["name"] != cfg.model:
            raise TrainError(f"--resume {cfg.resume} holds a {ck['spec']['name']!r} run, not --model {cfg.model!r}")
        old = ck["train_state"]["config"]
        for key in ("data", "val", "split", "seed", "batch_size", "limit", "augment", "crop", "targets", "target_weight", "consistency"):
            was = old.get(key, {f.name: f.default for f in dataclasses.fields(TrainConfig)}.get(key))  # runs from before the key existed
            if was != cfg.to_dict().get(key):
                log(f"warning: --resume with a different {key} ({was!r} -> {cfg.to_dict().get(key)!r}): not an exact continuation")
    else:
        taken = [n for n in ("last.pt", "best.pt") if (out / n).exists()]
        if taken:
            raise TrainError(f"{out} already holds a training run ({', '.join(taken)}); pass --resume {out / 'last.pt'} to continue it, or choose another --out")
    if cfg.epochs < 1:
        raise TrainError(f"--epochs must be at least 1, not {cfg.epochs}")
    if cfg.optimizer not in ("adam", "adamw"):
        raise TrainError(f"unknown optimizer {cfg.optimizer!r} (adam, adamw)")
    if cfg.augment not in AUGMENTATIONS:
        raise TrainError(f"unknown augmentation {cfg.augment!r} ({', '.join(AUGMENTATIONS)})")
    lr_factor(0, cfg, 1)  # validates the schedule name
    for spec in cfg.val:
        if spec.partition(":")[0].strip().lower() in TEST_ONLY_KINDS:
            raise TrainError(f"--val {spec}: AFLW2000 is the test set of the standard protocols; choosing checkpoints on it "
                             "would overstate the results. Leave out --val (5% of the training data is held out) or give another set")

    from openheadpose.models import model_spec

    try:
        model_spec(cfg.model)  # an unknown name fails here, before any data is read
    except KeyError as exc:
        raise TrainError(str(exc.args[0])) from None
    device = _device(cfg.device, d)
    deterministic = cfg.deterministic if cfg.deterministic is not None else device.type == "cpu"
    if deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    amp = bool(cfg.amp if cfg.amp is not None else device.type == "cuda")
    if amp and device.type != "cuda":
        log("warning: --amp needs CUDA; training in float32")
        amp = False

    # ---------------------------------------------------------------- data
    sources = read_sources(cfg.data, cfg.split, cfg.limit, log)
    if cfg.val:
        val_sources = read_sources(cfg.val, None, cfg.limit, log)
        train_samples = [s for src in sources for s in src.samples]
        val_samples = [s for src in val_sources for s in src.samples]
        how = ", ".join(cfg.val)
    else:
        train_samples, val_samples = split_validation(sources, cfg.val_fraction)
        how = f"{cfg.val_fraction:.0%} of the training data by name hash"
    if not train_samples:
        raise DatasetError("no training samples left after the validation split")
    if cfg.targets is not None:
        if not 0.0 <= cfg.target_weight <= 1.0:
            raise TrainError(f"--target-weight must be in [0, 1], not {cfg.target_weight}")
        train_samples, n_t = apply_targets(train_samples, read_targets(cfg.targets), cfg.target_weight)
        log(f"targets {cfg.targets}: {n_t} of {len(train_samples)} training samples relabelled (own label weight {cfg.target_weight:g})")
        if n_t == 0:
            raise DatasetError(f"--targets {cfg.targets} names none of the training samples")
    if cfg.consistency < 0:
        raise TrainError(f"--consistency must be at least 0, not {cfg.consistency}")

    # ---------------------------------------------------------------- model
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    try:
        model = create_model(cfg.model)
    except KeyError as exc:
        raise TrainError(str(exc.args[0])) from None
    onnx_init = cfg.init is not None and Path(cfg.init).suffix.lower() == ".onnx"
    if cfg.init is not None and not onnx_init:
        _init_weights(model, Path(cfg.init), log)
    base_spec = model.spec
    if cfg.crop is not None:  # e.g. a tighter crop than the family's for a set of tight photos
        base_spec = dataclasses.replace(base_spec, preprocessing=dataclasses.replace(base_spec.preprocessing, crop=cfg.crop))
    codec = get_codec(base_spec.codec)
    loss_fn = make_loss(base_spec.codec, cfg.alpha)
    if cfg.consistency > 0 and (not isinstance(model_input(base_spec), ImageInput) or getattr(base_spec.preprocessing, "layout", "nchw") != "nchw"):
        raise TrainError(f"--consistency flips image crops (NCHW): {cfg.model} does not read them")
    model.to(device)
    if d.world > 1 and device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # the statistics of the global batch, as in one process

    aug = AUGMENTATIONS[cfg.augment]()
    train_ds = PoseDataset(train_samples, base_spec, aug, cfg.seed)
    val_ds = PoseDataset(val_samples, base_spec, Augmentation(), cfg.seed)
    for name, ds in (("training", train_ds), ("validation", val_ds)):
        # e.g. a keypoint model and a face whose head keypoints are mostly hidden: such
        # samples are left out and counted; a set with none left is an error.
        bad = ds.input.problems(ds.samples)
        if bad:
            if len(bad) == len(ds.samples):
                raise DatasetError(f"{cfg.model} cannot use any of the {len(ds)} {name} samples, e.g. {bad[0]}")
            drop = {b.split(": ", 1)[0] for b in bad}
            ds.samples = [x for x in ds.samples if x.name not in drop]
            log(f"{cfg.model}: left out {len(bad)} {name} samples it cannot use, e.g. {bad[0]}")
    if len(train_ds):
        try:
            train_ds[(0, 0)]
        except Exception as exc:  # noqa: BLE001 - whatever breaks the first item breaks them all
            raise DatasetError(f"cannot make a training item of {train_ds.samples[0].name} for {cfg.model}: {exc}") from None
    if onnx_init and cfg.resume is None:
        _init_from_onnx(model, Path(cfg.init), PoseDataset(train_ds.samples, base_spec, Augmentation(), cfg.seed), device, log)
    batch = cfg.batch_size
    if batch % d.world:
        raise TrainError(f"--batch-size {batch} is not a multiple of the {d.world} processes")
    if len(train_ds) < batch:
        batch = max(d.world, len(train_ds) // d.world * d.world)
        log(f"warning: only {len(train_ds)} training samples: the batch is {batch}, not {cfg.batch_size}")
    sampler = EpochBatchSampler(len(train_ds), batch, cfg.seed, True, d.rank, d.world)
    spe = sampler.steps()
    loader_kw = dict(num_workers=cfg.workers, pin_memory=device.type == "cuda")
    if cfg.workers > 0:
        loader_kw.update(worker_init_fn=worker_init, persistent_workers=True)
    loader = DataLoader(train_ds, batch_sampler=sampler, **loader_kw)
    val_loader = DataLoader(val_ds, batch_sampler=ShardSampler(len(val_ds), max(1, batch // d.world), d.rank, d.world), **loader_kw) if len(val_ds) else None

    params = [p for p in model.parameters() if p.requires_grad]
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg, spe))
    scaler = torch.amp.GradScaler(device.type, enabled=amp)

    history: list[dict] = []
    best_mae, best_epoch = float("inf"), None
    start_epoch, start_step = 0, 0
    rng_states = None
    if ck is not None:
        st = ck["train_state"]
        _unwrap(model).load_state_dict(ck["state_dict"])
        optimizer.load_state_dict(st["optimizer"])
        scheduler.load_state_dict(st["scheduler"])
        scaler.load_state_dict(st["scaler"])
        history = list(st["history"])
        best_mae = st["best_mae"] if st["best_mae"] is not None else float("inf")
        best_epoch = st["best_epoch"]
        start_epoch, start_step = int(st["epoch"]), int(st["step"])
        if st.get("steps_per_epoch") not in (None, spe):
            raise TrainError(f"--resume {cfg.resume}: the run had {st['steps_per_epoch']} steps per epoch, this one {spe} (same data, batch size and process count needed)")
        rng_states = st.get("rng")
        log(f"resumed {cfg.resume}: epoch {start_epoch + 1}, step {start_step} of {spe}")

    net = model
    if d.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    n_params = sum(p.numel() for p in params)
    pre = base_spec.preprocessing
    log(
        f"model {cfg.model} ({n_params / 1e6:.2f} M parameters, codec {codec.name}, loss {type(loss_fn).__name__}"
        + (f" alpha={loss_fn.alpha:g}" if hasattr(loss_fn, "alpha") else "")
        + f"), input {pre.input_size} {pre.channels}, crop {pre.crop}"
    )
    log(
        f"train {len(train_ds)} samples, validation {len(val_ds)} ({how}); {spe} steps/epoch of {batch}"
        + (f" ({batch // d.world} x {d.world} processes)" if d.world > 1 else "")
        + f"; device {device}{' amp' if amp else ''}; {cfg.workers} workers; augmentation {cfg.augment}"
    )
    if spe == 0:
        raise DatasetError("no full training batch")

    if d.main:
        out.mkdir(parents=True, exist_ok=True)
    tb = _TensorBoard(out) if d.main else None

    def spec_for(epoch: int, val: dict | None):
        notes = dict(base_spec.notes)
        notes["training"] = _clean(
            {"epochs": epoch, "val": how, "val_mae": None if val is None or "val_mae" not in val else {k: val[k] for k in ("val_mae_yaw", "val_mae_pitch", "val_mae_roll", "val_mae")},
             "train_samples": len(train_ds), "val_samples": len(val_ds), "seed": cfg.seed, "batch_size": batch, "lr": cfg.lr}
        )
        from openheadpose import __version__ as version

        return dataclasses.replace(
            base_spec,
            source=f"headpose train (openheadpose {version}), epoch {epoch}",
            trained_on=" + ".join(cfg.data) + (f" [{cfg.split}]" if cfg.split else ""),
            notes=notes,
        )

    def gather_rng() -> list:
        state = {"torch": torch.get_rng_state()}
        if device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(device)
        if d.world == 1:
            return [state]
        import torch.distributed as dist

        states = [None] * d.world
        dist.all_gather_object(states, state)
        return states

    def save_last(epoch_done: int, step: int) -> Path | None:
        states = gather_rng()  # a collective: every rank takes part
        if not d.main:
            return None
        path = out / "last.pt"
        _save(
            model,
            spec_for(epoch_done, history[-1] if history else None),
            path,
            train_state={
                "version": CHECKPOINT_VERSION,
                "epoch": epoch_done,
                "step": step,
                "steps_per_epoch": spe,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": states,
                "history": history,
                "best_mae": None if not math.isfinite(best_mae) else best_mae,
                "best_epoch": best_epoch,
                "config": cfg.to_dict(),
                "world_size": d.world,
            },
        )
        return path

    from tqdm import tqdm

    # Ctrl-C / SIGTERM are caught from here on, before metrics.csv first appears: a signal
    # between that file and the training loop used to kill the run without a checkpoint.
    stop = _StopFlag().__enter__()
    try:
        # ------------------------------------------------------------ epoch 0: the untrained model
        if ck is None and val_loader is not None:
            v = _validate(_unwrap(net), val_loader, codec, device, amp, d)
            history.append({"epoch": 0, **v})
            log(f"epoch 0 (untrained): val MAE {v['val_mae']:.2f} (yaw {v['val_mae_yaw']:.2f}, pitch {v['val_mae_pitch']:.2f}, roll {v['val_mae_roll']:.2f}) on {v['val_n']} faces")
            if tb:
                tb.scalars({f"val/{k[4:]}": v[k] for k in ("val_mae", "val_mae_yaw", "val_mae_pitch", "val_mae_roll") if math.isfinite(v[k])}, 0)
            if d.main:
                _write_metrics(out / "metrics.csv", history)
    except BaseException:
        stop.__exit__(None, None, None)
        raise

    steps_done = 0
    with stop:
        for epoch in range(start_epoch, cfg.epochs):
            first = start_step if epoch == start_epoch else 0
            sampler.set_epoch(epoch, first)
            if rng_states is not None and epoch == start_epoch and first > 0:
                mine = rng_states[d.rank] if len(rng_states) == d.world else None
                if mine is not None:
                    torch.set_rng_state(mine["torch"])
                    if "cuda" in mine and device.type == "cuda":
                        torch.cuda.set_rng_state(mine["cuda"], device)
                else:
                    torch.manual_seed(_seed_for(cfg.seed, d.rank, epoch * 1_000_003 + first))
            else:
                torch.manual_seed(_seed_for(cfg.seed, d.rank, epoch))
            net.train()
            t0 = time.perf_counter()
            loss_sum, n_steps, n_images = 0.0, 0, 0
            mae_s, mae_n = np.zeros(3), np.zeros(3)
            bar = tqdm(total=spe, initial=first, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", disable=not (d.main and cfg.progress), dynamic_ncols=True, file=sys.stderr, leave=False)
            step = first
            interrupted = False
            for b in loader:
                x = b["input"].to(device, non_blocking=True)
                targets = {k: v.to(device, non_blocking=True) for k, v in b.items() if k != "input"}
                with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                    if cfg.consistency > 0:  # the crops and their mirror images in one batch
                        both = net(torch.cat([x, x.flip(-1)]))
                        k = x.shape[0]
                        outputs, flipped = {n: v[:k] for n, v in both.items()}, {n: v[k:] for n, v in both.items()}
                    else:
                        outputs = net(x)
                terms = loss_fn(outputs, targets)
                if cfg.consistency > 0:
                    terms.add("mirror", cfg.consistency, *mirror_consistency(loss_fn, outputs, flipped))
                counts = terms.count_tensor()
                want_stop = stop.requested or (cfg.stop_after_steps is not None and steps_done + 1 >= cfg.stop_after_steps)
                if d.world > 1:
                    red = _all_reduce(torch.cat([counts, torch.tensor([float(want_stop)], dtype=torch.float64)]), d, device)
                    counts, want_stop = red[:-1], bool(red[-1] > 0)
                loss = terms.total(counts.to(torch.float64), scale=float(d.world))
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                with warnings.catch_warnings():
                    # GradScaler skips the optimizer step while it finds its scale (inf gradients);
                    # the schedule still advances with the step count, as intended
                    warnings.filterwarnings("ignore", message=".*lr_scheduler.step.*optimizer.step", category=UserWarning)
                    scheduler.step()
                step += 1
                steps_done += 1
                n_steps += 1
                n_images += int(x.shape[0])
                loss_sum += float(loss.detach()) / d.world
                if d.main:
                    s, n = _decode_mae_sums(codec, outputs, b["euler"].numpy().astype(np.float64), b["mask"].numpy())
                    mae_s += s
                    mae_n += n
                    mae = np.nanmean(np.where(mae_n > 0, mae_s / np.maximum(mae_n, 1), np.nan))
                    bar.set_postfix(loss=f"{loss_sum / n_steps:.4g}", mae=f"{mae:.2f}", lr=f"{scheduler.get_last_lr()[0]:.2e}", refresh=False)
                    bar.update(1)
                    if tb and (epoch * spe + step) % 20 == 0:
                        tb.scalars({"train/loss_step": float(loss.detach()) / d.world, "train/lr": scheduler.get_last_lr()[0]}, epoch * spe + step)
                if want_stop and step < spe:
                    interrupted = True
                    break
            bar.close()
            if interrupted:
                path = save_last(epoch, step)
                if tb:
                    tb.close()
                raise TrainInterrupted(path, epoch, step)
            seconds = time.perf_counter() - t0
            hook = cfg.stop_after_steps is not None and steps_done >= cfg.stop_after_steps
            tot = _all_reduce(torch.tensor([loss_sum, float(n_images), float(stop.requested or hook)], dtype=torch.float64), d, device)
            train_loss = float(tot[0]) / max(n_steps, 1)  # each rank's loss_sum is its share of the global loss
            images, stop_now = int(tot[1]), bool(tot[2] > 0)
            row = {"epoch": epoch + 1, "lr": scheduler.get_last_lr()[0], "train_loss": train_loss, "seconds": round(seconds, 3), "images_per_s": round(images / max(seconds, 1e-9), 2)}
            v = _validate(_unwrap(net), val_loader, codec, device, amp, d) if val_loader is not None else None
            if v is not None:
                row.update(v)
            history.append(row)
            if v is None:  # no validation: the latest epoch is the one kept
                improved = True
            else:
                improved = math.isfinite(v["val_mae"]) and v["val_mae"] < best_mae
                best_mae = v["val_mae"] if improved else best_mae
            best_epoch = epoch + 1 if improved else best_epoch
            msg = f"epoch {epoch + 1}/{cfg.epochs}: loss {train_loss:.4g}, {row['images_per_s']:.0f} img/s"
            if v is not None:
                msg += f", val MAE {v['val_mae']:.2f} (yaw {v['val_mae_yaw']:.2f}, pitch {v['val_mae_pitch']:.2f}, roll {v['val_mae_roll']:.2f})" + (" *" if improved else "")
            log(msg)
            if d.main:
                kept = [out / "best.pt"] if improved else []
                kept += [out / f"epoch{epoch + 1:03d}.pt"] if cfg.keep_epochs else []
                for path in kept:
                    _save(model, spec_for(epoch + 1, v), path, epoch=epoch + 1, val_mae=_clean(None if v is None else v["val_mae"]))
                _write_metrics(out / "metrics.csv", history)
                if tb:
                    tb.scalars({"train/loss": train_loss, "train/lr_end": row["lr"], "train/images_per_s": row["images_per_s"]}, epoch + 1)
                    if v is not None:
                        tb.scalars({f"val/{k[4:]}": v[k] for k in ("val_mae", "val_mae_yaw", "val_mae_pitch", "val_mae_roll") if math.isfinite(v[k])}, epoch + 1)
                    tb.flush()
            save_last(epoch + 1, 0)
            if stop_now and epoch + 1 < cfg.epochs:
                if tb:
                    tb.close()
                raise TrainInterrupted(out / "last.pt" if d.main else None, epoch + 1, 0)
    if tb:
        tb.close()
    if val_loader is None:
        log("warning: no validation samples: best.pt is the last epoch")
    return {
        "out": str(out),
        "best": str(out / "best.pt"),
        "last": str(out / "last.pt"),
        "best_epoch": best_epoch,
        "best_val_mae": None if not math.isfinite(best_mae) else best_mae,
        "history": history,
        "train_samples": len(train_ds),
        "val_samples": len(val_ds),
        "steps_per_epoch": spe,
        "batch_size": batch,
    }
