"""Dataset readers, one per file. Each converts its labels to rotation matrices once, here, at the boundary.

Every reader is an iterable of :class:`PoseSample` with the same surface:

* ``Reader(root, ...)`` only lists files (fast); labels are parsed while iterating.
* ``len(reader)``: entries listed (label files, rows, npz records), before the
  standard filter and before failures.
* ``iter(reader)`` yields :class:`PoseSample` lazily and, as it goes, fills
  ``reader.failures`` (``"<file>: <problem>"``; the rest is still read) and
  ``reader.n_filtered`` (faces dropped by the standard filter); ``reader.n_read``
  counts the samples yielded. Iterating again starts the counts afresh.
* ``reader.summary()``: one line saying how many were listed, read, filtered, failed.
* A wrong root raises :class:`DatasetError` naming what was expected there and
  counting what was found.

Standard filter (the AFLW2000 protocol, also used for BIWI): keep a face only
when every *labelled* angle (yaw, pitch, roll in degrees, AFLW convention) is
within +-99 deg.

Conventions: ``PoseSample.rotation`` is the head-to-camera rotation in
``Frame.GL`` and ``PoseSample.euler`` its (yaw, pitch, roll) in the AFLW
convention of :mod:`openheadpose.core.rotation`. Each reader's class docstring has a
"Convention:" block saying how its file format maps onto them.

>>> sorted(DATASETS.names())
['300wlp', 'aflw-yaw', 'aflw2000', 'biwi', 'biwi-npz', 'csv', 'pointing04']
"""

from openheadpose.datasets.aflw2000 import AFLW2000
from openheadpose.datasets.aflw_yaw import AFLWYaw
from openheadpose.datasets.base import (
    STANDARD_FILTER_DEG,
    DatasetError,
    DatasetReader,
    PoseSample,
)
from openheadpose.datasets.biwi import BIWI
from openheadpose.datasets.biwi_npz import BIWINpz
from openheadpose.datasets.generic_csv import GenericCSV
from openheadpose.datasets.pointing04 import Pointing04, Pointing04Name
from openheadpose.datasets.registry import DATASETS, open_dataset
from openheadpose.datasets.splits import SPLITS, SplitView, biwi_protocol2, select_split
from openheadpose.datasets.w300lp import W300LP

__all__ = [
    "PoseSample",
    "DatasetError",
    "DatasetReader",
    "AFLW2000",
    "W300LP",
    "BIWI",
    "BIWINpz",
    "AFLWYaw",
    "Pointing04",
    "Pointing04Name",
    "GenericCSV",
    "DATASETS",
    "open_dataset",
    "STANDARD_FILTER_DEG",
    "SPLITS",
    "SplitView",
    "biwi_protocol2",
    "select_split",
]
