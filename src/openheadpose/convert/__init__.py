"""Importers of the original authors' checkpoints (``headpose convert KIND SRC DST``).

``CONVERTERS[kind](src, dst)`` reads an original checkpoint and writes an
openheadpose model: ``.onnx`` (with its metadata, ready to run) or ``.pt`` (a
checkpoint for :func:`openheadpose.models.create_model`). Each importer is
imported on first use, so reading this table needs neither PyTorch nor h5py.
"""

from __future__ import annotations

from pathlib import Path


def _fsanet(src: str | Path, dst: str | Path) -> Path:
    from openheadpose.convert.fsanet import convert

    return convert(src, dst)


def _hopenet(src: str | Path, dst: str | Path) -> Path:
    from openheadpose.convert.hopenet import convert

    return convert(src, dst)


def _hhpnet(src: str | Path, dst: str | Path) -> Path:
    from openheadpose.convert.hhpnet import convert

    return convert(src, dst)


CONVERTERS = {
    "fsanet": _fsanet,
    "hopenet": _hopenet,
    "hhpnet": _hhpnet,
}
