"""300W-LP: AFW, HELEN, IBUG, LFPW and their ``_Flip`` subsets (``.jpg`` + ``.mat``, as AFLW2000).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from openheadpose.datasets.base import (
    W300LP_SUBSETS,
    DatasetError,
    DatasetReader,
    PoseSample,
    _extent,
    _loadmat,
    mat_labels,
)


class W300LP(DatasetReader):
    """300W-LP (Zhu et al. 2016): ``<SUBSET>/<name>.jpg`` + ``.mat`` for the subsets
    AFW, HELEN, IBUG, LFPW and their mirrored twins ``<SUBSET>_Flip``, plus the
    optional ``landmarks/<SUBSET>/<name>_pts.mat``.

    Convention:
        Same ``Pose_Para`` as :class:`AFLW2000`: (pitch, yaw, roll) in radians,
        ``R = euler_to_matrix(yaw, pitch, roll)`` in ``Frame.GL``.

        ``_Flip`` folders: each image is the left-right mirror of its twin and
        its ``.mat`` already describes the **mirrored** face (pose with yaw and
        roll negated, i.e. ``R' = S R S`` with ``S = diag(-1, 1, 1)``;
        ``pt2d`` in the mirrored image's pixels), so the reader takes the file
        as is and never negates anything. Reasoning: Hopenet, FSA-Net
        (``data/type1/run_created_db_type1.sh`` builds ``AFW_Flip.npz`` etc.
        with the same script as ``AFW.npz``) and 6DRepNet all read the
        ``_Flip`` ``.mat`` files unchanged and crop with their ``pt2d``; with the
        un-mirrored pose stored there, half their training labels would have
        the wrong yaw sign and their crops would miss the face.

    Fields:
        box: extent of ``pt2d`` (68 points that follow the visible contour).
        landmarks: ``pt2d.T`` (68, 2) (no invisible marker in 300W-LP).
        landmarks68: ``pts_3d`` of ``landmarks/<SUBSET>/<name>_pts.mat`` (the 3D
        landmarks projected, as AFLW2000's ``pt3d_68``), else its ``pts_2d``,
        else ``None`` (the archive ships no landmark files for ``_Flip``).

    Args:
        root: the ``300W_LP`` folder (holding the subset folders), or one
            subset folder itself.
        subsets: which of AFW, HELEN, IBUG, LFPW to read (default: every one present).
        include_flip: also read the ``_Flip`` twins.
        standard_filter: drop faces beyond +-99 deg (off by default: this is
            training data, and the filter is an evaluation protocol).
    """

    kind = "300wlp"

    def __init__(
        self,
        root: str | Path,
        subsets: Iterable[str] | None = None,
        include_flip: bool = True,
        standard_filter: bool = False,
    ):
        root = Path(root)
        if subsets is not None:
            subsets = list(subsets)
            for s in subsets:
                if s not in W300LP_SUBSETS:
                    close = difflib.get_close_matches(s, W300LP_SUBSETS, n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise DatasetError(f"unknown 300W-LP subset {s!r}{hint} Choices: {', '.join(W300LP_SUBSETS)}")
        if root.is_dir() and (root.name in W300LP_SUBSETS + tuple(s + "_Flip" for s in W300LP_SUBSETS) or any(root.glob("*.mat"))):
            folders = [root.name]  # one subset folder given directly (or any folder of .jpg + .mat, e.g. `headpose synth`'s): read just that one
            root = root.parent
            explicit = True
        else:
            wanted = subsets if subsets is not None else list(W300LP_SUBSETS)
            folders = [n for s in wanted for n in ((s, s + "_Flip") if include_flip else (s,))]
            explicit = subsets is not None
        super().__init__(root, standard_filter)
        self.include_flip = include_flip
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: not a folder (expected the 300W_LP folder with AFW, HELEN, IBUG, LFPW[, _Flip] subfolders)")
        self.subsets = [n for n in folders if (self.root / n).is_dir()]
        missing = [n for n in folders if n not in self.subsets and not (n.endswith("_Flip") and len(folders) > 1)]
        if explicit and missing:  # a requested subset is missing (an absent _Flip twin is not an error)
            raise DatasetError(f"{self.root}: missing 300W-LP subset folder(s) {', '.join(missing)}")
        self.files = [f for n in self.subsets for f in sorted((self.root / n).glob("*.mat"))]
        if not self.files:
            sub = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            raise DatasetError(
                f"{self.root}: expected 300W-LP subset folders ({', '.join(W300LP_SUBSETS)}, each also as _Flip) "
                f"holding .jpg + .mat pairs; found {len(sub)} subfolder(s) ({', '.join(sub[:8]) or 'none'}) and 0 .mat files in the expected ones"
            )

    def _count(self) -> int:
        return len(self.files)

    def _landmarks68(self, mat: Path) -> np.ndarray | None:
        lm = self.root / "landmarks" / mat.parent.name / f"{mat.stem}_pts.mat"
        if not lm.is_file():
            return None
        try:
            m = _loadmat(lm)
            key = "pts_3d" if "pts_3d" in m else "pts_2d"
            pts = np.asarray(m[key], np.float64)
            if pts.shape == (2, 68):
                pts = pts.T
            if pts.shape != (68, 2):
                raise ValueError(f"{key} has shape {pts.shape}, expected (68, 2)")
            return pts.copy()
        except Exception as exc:  # noqa: BLE001 - the optional landmarks are reported, the sample kept
            self._fail(lm, f"unreadable landmarks, sample kept without them ({exc})")
            return None

    def _samples(self) -> Iterator[PoseSample]:
        for f in self.files:
            img = f.with_suffix(".jpg")
            labels = self._labels(f, img, mat_labels)
            if labels is not None:
                _, euler, pt2d = labels
                yield self._euler_sample(img, euler, _extent(pt2d), landmarks=pt2d, landmarks68=self._landmarks68(f))
