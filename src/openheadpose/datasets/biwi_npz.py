"""FSA-Net's ``.npz`` files (BIWI, or its 300W-LP / AFLW2000 files), read lazily without loading them whole.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np

from openheadpose.core.rotation import (
    euler_to_matrix,
)
from openheadpose.datasets.base import DatasetError, DatasetReader, PoseSample


def _npz_header(zf: zipfile.ZipFile, key: str) -> tuple[tuple[int, ...], np.dtype]:
    with zf.open(key + ".npy") as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(fh)
    return shape, dtype


def _npz_array(path: Path, key: str) -> np.ndarray:
    """One array of an ``.npz``; memory-mapped when stored uncompressed (``np.savez``), else loaded."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(key + ".npy")
        if info.compress_type == zipfile.ZIP_STORED:
            with open(path, "rb") as fh:
                fh.seek(info.header_offset)
                local = fh.read(30)
                if local[:4] != b"PK\x03\x04":
                    raise ValueError(f"{key}.npy: bad zip local header")
                n_name, n_extra = struct.unpack("<HH", local[26:30])
                fh.seek(info.header_offset + 30 + n_name + n_extra)
                version = np.lib.format.read_magic(fh)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read(fh)
                offset = fh.tell()
            if not dtype.hasobject:
                return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")
    with np.load(path, allow_pickle=False) as d:
        return d[key]


class BIWINpz(DatasetReader):
    """FSA-Net's preprocessed ``.npz`` files: ``BIWI.npz``, ``BIWI_noTrack.npz``,
    ``BIWI_train.npz`` / ``BIWI_test.npz``, and, in the same layout, its 300W-LP
    (``AFW.npz``, ``AFW_Flip.npz``, ...) and ``AFLW2000.npz`` files.

    Layout (read in shamangary/FSA-Net: ``data/TYY_create_db_biwi.py``,
    ``data/type1/TYY_create_db_type1.py``, ``training_and_testing/FSANET_test.py``
    ``load_data_npz``): ``np.savez(out, image=..., pose=..., img_size=...)``
    with ``image`` ``(N, 64, 64, 3)`` uint8 in **BGR** order (``cv2.imread``
    crops, never converted) and ``pose`` ``(N, 3)`` (yaw, pitch, roll) in degrees.

    Convention:
        ``pose`` is AFLW (yaw, pitch, roll): for 300W-LP / AFLW2000 it is
        ``Pose_Para`` in degrees reordered; for BIWI FSA-Net computes it from
        the depth-frame ``pose.txt`` matrix ``M`` as
        ``R = M.T; roll = -atan2(R[1,0], R[0,0]); yaw = -atan2(-R[2,0], hypot(R[2,1], R[2,2]));
        pitch = atan2(R[2,1], R[2,2])``, which equals
        ``matrix_to_euler(change_frame(M, OPENCV, GL))`` (checked to 1e-5 deg on
        the three shared BIWI frames). So ``rotation = euler_to_matrix(yaw, pitch, roll)``.

    Fields:
        image: the crop converted to RGB; box: the whole crop ``[0, 0, W, H]``.

    Args:
        path: the ``.npz`` file.
        standard_filter: drop faces beyond +-99 deg (FSA-Net applies it to its
            300W-LP-trained tests; BIWI has no such faces).
    """

    kind = "biwi-npz"

    def __init__(self, path: str | Path, standard_filter: bool = True):
        super().__init__(Path(path), standard_filter)
        if not self.root.is_file():
            raise DatasetError(f"{self.root}: no such file (expected an FSA-Net .npz with 'image' (N,H,W,3) uint8 BGR and 'pose' (N,3))")
        try:
            with zipfile.ZipFile(self.root) as zf:
                keys = sorted(n.removesuffix(".npy") for n in zf.namelist())
                if "image" not in keys or "pose" not in keys:
                    raise DatasetError(f"{self.root}: expected arrays 'image' and 'pose' (FSA-Net layout); found {', '.join(keys) or 'none'}")
                img_shape, img_dtype = _npz_header(zf, "image")
                pose_shape, _ = _npz_header(zf, "pose")
        except zipfile.BadZipFile as exc:
            raise DatasetError(f"{self.root}: not an .npz file ({exc})") from None
        if len(img_shape) != 4 or img_shape[3] != 3 or img_dtype != np.uint8:
            raise DatasetError(f"{self.root}: 'image' is {img_dtype} {img_shape}, expected uint8 (N, H, W, 3)")
        if len(pose_shape) != 2 or pose_shape[1] != 3 or pose_shape[0] != img_shape[0]:
            raise DatasetError(f"{self.root}: 'pose' has shape {pose_shape}, expected ({img_shape[0]}, 3)")
        self.n = int(img_shape[0])
        self.crop_size = (int(img_shape[2]), int(img_shape[1]))  # (W, H)

    def _count(self) -> int:
        return self.n

    def _samples(self) -> Iterator[PoseSample]:
        try:
            images = _npz_array(self.root, "image")
            poses = np.asarray(_npz_array(self.root, "pose"), np.float64)
        except Exception as exc:  # noqa: BLE001 - the one file is the dataset: nothing else to read
            self._fail(self.root, f"unreadable ({exc})")
            return
        W, H = self.crop_size
        box = np.array([0.0, 0.0, W, H])
        for i in range(self.n):
            euler = poses[i].copy()
            yield PoseSample(
                name=f"{self.root.name}:{i}",
                rotation=euler_to_matrix(*euler) if np.all(np.isfinite(euler)) else None,
                euler=euler,
                box=box.copy(),
                image=np.ascontiguousarray(images[i][..., ::-1]),
            )
