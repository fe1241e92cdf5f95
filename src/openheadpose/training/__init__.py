"""Training: ``headpose train`` for every model family (needs ``pip install openheadpose[torch]``).

* :mod:`.losses` -- one masked loss per codec (unlabelled angles count for nothing).
* :mod:`.data` -- samples from any reader, the model's own crop recipe and
  preprocessing, seeded pose-aware augmentation, BIWI Protocol 2, the validation split.
* :mod:`.engine` -- the loop: Adam/AdamW, cosine/step schedules, AMP on CUDA,
  atomic exact-resume checkpoints, ``best.pt``, ``metrics.csv``, TensorBoard
  events (tensorboardX), DistributedDataParallel under ``torchrun``.

The ``headpose train`` command is :mod:`openheadpose.cli.train`.

Example:
    >>> from openheadpose.training import TrainConfig
    >>> TrainConfig(model="rot6d-tiny", data=("aflw-yaw:data/aflw-yaw",), out="runs/x").schedule
    'cosine'
"""

from openheadpose.training.engine import (
    TrainConfig,
    TrainError,
    TrainInterrupted,
    train,
)

__all__ = ["TrainConfig", "TrainError", "TrainInterrupted", "train"]
