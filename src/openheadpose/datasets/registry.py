"""Readers by name: ``open_dataset("kind:path")``.
"""

from __future__ import annotations

import difflib

from openheadpose.core.registry import Registry
from openheadpose.datasets.aflw2000 import AFLW2000
from openheadpose.datasets.aflw_yaw import AFLWYaw
from openheadpose.datasets.base import DatasetError, DatasetReader
from openheadpose.datasets.biwi import BIWI
from openheadpose.datasets.biwi_npz import BIWINpz
from openheadpose.datasets.generic_csv import GenericCSV
from openheadpose.datasets.pointing04 import Pointing04
from openheadpose.datasets.w300lp import W300LP

DATASETS: Registry[DatasetReader] = Registry("dataset")


DATASETS.register("aflw2000", help="AFLW2000-3D folder of image*.jpg + .mat")(AFLW2000)


DATASETS.register("300wlp", help="300W-LP folder (AFW, HELEN, IBUG, LFPW and _Flip subsets)")(W300LP)


DATASETS.register("biwi", help="BIWI Kinect hpdb folder (raw frames + pose.txt + rgb.cal)")(BIWI)


DATASETS.register("biwi-npz", help="FSA-Net .npz (BIWI, or its 300W-LP / AFLW2000 files)")(BIWINpz)


DATASETS.register("aflw-yaw", help="AFLW crops with yaw labels (labels.csv + images/)")(AFLWYaw)


DATASETS.register("pointing04", help="Pointing'04 Head Pose Image Database folder")(Pointing04)


DATASETS.register("csv", help="CSV of image,yaw,pitch,roll[,x1,y1,x2,y2]")(GenericCSV)


def open_dataset(spec: str, **kwargs) -> DatasetReader:
    """Open a dataset from ``"kind:path"`` (e.g. ``"aflw2000:data/AFLW2000"``).

    Args:
        spec: a registered kind (see ``DATASETS.names()``), a colon, the path.
        **kwargs: passed to the reader (e.g. ``standard_filter=False``).

    Raises:
        DatasetError: no ``kind:`` prefix, an unknown kind (with the closest
            valid one), or a wrong path.

    Example:
        >>> open_dataset("aflw200:/data/AFLW2000")
        Traceback (most recent call last):
        ...
        openheadpose.datasets.base.DatasetError: unknown dataset kind 'aflw200'; did you mean 'aflw2000'? Kinds: 300wlp, aflw-yaw, aflw2000, biwi, biwi-npz, csv, pointing04 (spec: kind:path)
    """
    kinds = ", ".join(DATASETS.names())
    kind, sep, path = spec.partition(":")
    if not sep or not kind or not path:
        raise DatasetError(f"dataset spec {spec!r} is not kind:path; kinds: {kinds} (e.g. aflw2000:data/AFLW2000)")
    kind = kind.strip().lower()
    if kind not in DATASETS:
        close = difflib.get_close_matches(kind, DATASETS.names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DatasetError(f"unknown dataset kind {kind!r}{hint} Kinds: {kinds} (spec: kind:path)")
    return DATASETS.create(kind, **({"root" if kind not in ("biwi-npz", "csv") else "path": path} | kwargs))
