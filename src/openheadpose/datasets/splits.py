"""Named splits of a dataset (BIWI Protocol 2's committed video split).
"""

from __future__ import annotations

import importlib.resources
import json
from typing import Iterator, Sequence

from openheadpose.datasets.base import DatasetError, PoseSample


def _split_file() -> dict:
    with importlib.resources.files("openheadpose.assets").joinpath("biwi_protocol2.json").open("r") as fh:
        return json.load(fh)


def biwi_protocol2() -> dict[str, list[str]]:
    """The committed BIWI Protocol 2 video split: ``{"train": [16 ids], "test": [8 ids]}``."""
    d = _split_file()
    return {"train": list(d["train"]), "test": list(d["test"])}


SPLITS = ("protocol2-train", "protocol2-test")


def select_split(samples: Sequence[PoseSample], split: str, kind: str, spec: str = "") -> list[PoseSample]:
    """Keep the samples of a named split.

    ``protocol2-train`` / ``protocol2-test``: BIWI (raw ``biwi`` reader, names
    ``"NN/frame_XXXXX_rgb.png"``) frames of the videos listed in
    ``openheadpose/assets/biwi_protocol2.json``.

    Raises:
        DatasetError: an unknown split, or a dataset kind without BIWI videos.
    """
    if split not in SPLITS:
        import difflib

        close = difflib.get_close_matches(split, SPLITS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DatasetError(f"unknown split {split!r}{hint} Choices: {', '.join(SPLITS)}")
    if kind != "biwi":
        raise DatasetError(f"{spec or kind}: split {split!r} selects BIWI videos; it applies to biwi:PATH datasets only")
    videos = set(biwi_protocol2()["train" if split.endswith("train") else "test"])
    return [s for s in samples if s.name.split("/")[0] in videos]


class SplitView:
    """The samples of ``reader`` in a named split, as a reader (``failures``, ``n_filtered``, ``summary()``).

    Args:
        reader: a dataset reader.
        split: a name from :data:`SPLITS`.
        kind: the reader's kind (``"biwi"``...), to refuse splits that do not apply.
    """

    def __init__(self, reader, split: str, kind: str):
        select_split([], split, kind, str(getattr(reader, "root", kind)))  # validates split and kind
        self.reader, self.split, self.kind = reader, split, kind

    @property
    def failures(self) -> list[str]:
        return self.reader.failures

    @property
    def n_filtered(self) -> int:
        return self.reader.n_filtered

    def __iter__(self) -> Iterator[PoseSample]:
        for s in self.reader:
            if select_split([s], self.split, self.kind):
                yield s

    def summary(self) -> str:
        return f"{self.reader.summary()} (split {self.split})"
