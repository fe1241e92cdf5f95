"""Convention check of the peer adapters on AFLW2000-3D (the numbers themselves come from evaluate_all.py).

Each peer is scored with ``openheadpose.evaluation.evaluate`` on ground-truth crops of its own
recipe; with ``--variants`` its predictions are re-read under every sign flip and
order of (yaw, pitch, roll) and as R^T, F R F, F R^T F (F = the OpenCV/GL axis flip).
A wrong convention shows up as a variant far better than the adapter's own reading.
This checks a reading, it tunes nothing: AFLW2000 is for evaluation only.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.peers.check --variants --limit 50
    .venv/bin/python -m benchmarks.peers.check --peers hopelessnet-squeezenet1_0 --raw-pt2d

``--raw-pt2d`` keeps AFLW2000's invisible ``pt2d`` points at (-1, -1) in the crop box,
as Hopenet's own AFLW2000 loader did (HopelessNet's README numbers come from that crop).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys

import numpy as np

from openheadpose.datasets.aflw2000 import AFLW2000
from openheadpose.evaluation.evaluate import evaluate
from openheadpose.core.metrics import pose_metrics
from openheadpose.core.rotation import euler_to_matrix, matrix_to_euler

from . import PEERS, create_peer, default_weights_dir, shared_dir

F = np.diag([1.0, -1.0, -1.0])


class _Subset:
    """The first ``limit`` faces of a reader, optionally with invisible pt2d points put back at (-1, -1)."""

    def __init__(self, reader, limit: int | None, raw_pt2d: bool):
        self.reader, self.limit, self.raw_pt2d = reader, limit, raw_pt2d
        self.failures, self.n_filtered = reader.failures, 0

    def __iter__(self):
        for i, s in enumerate(self.reader):
            if self.limit and i >= self.limit:
                return
            if self.raw_pt2d and s.landmarks is not None:
                s = dataclasses.replace(s, landmarks=np.where(np.isnan(s.landmarks), -1.0, s.landmarks))
            yield s
        self.n_filtered = self.reader.n_filtered


def variants(R_pred: np.ndarray, R_true: np.ndarray, true_deg: np.ndarray) -> list[tuple[str, float]]:
    """MAE of the predictions re-read under each candidate convention, best first."""
    T = np.swapaxes(R_pred, -1, -2)
    rows = [(f"matrix {k}", pose_metrics(M, R_true, true_deg).mae) for k, M in (("R", R_pred), ("R^T", T), ("F R F", F @ R_pred @ F), ("F R^T F", F @ T @ F))]
    a = matrix_to_euler(R_pred).stack()
    names = ("yaw", "pitch", "roll")
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            if perm == (0, 1, 2) and signs == (1, 1, 1):
                continue  # the same as "matrix R"
            b = np.stack([signs[i] * a[:, perm[i]] for i in range(3)], axis=1)
            label = ", ".join(f"{'-' if signs[i] < 0 else '+'}{names[perm[i]]}" for i in range(3))
            rows.append((f"euler ({label})", pose_metrics(euler_to_matrix(b[:, 0], b[:, 1], b[:, 2]), R_true, true_deg).mae))
    return sorted(rows, key=lambda r: r[1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated names (default: all of {', '.join(PEERS)})")
    ap.add_argument("--limit", type=int, default=None, help="only the first N faces that pass the +-99 filter")
    ap.add_argument("--variants", action="store_true", help="re-score under sign/order/transpose variants")
    ap.add_argument("--raw-pt2d", action="store_true", help="keep invisible pt2d points at (-1, -1) as Hopenet's loader did")
    args = ap.parse_args(argv)
    data_dir = shared_dir() / "data" / "aflw2000-dev"
    for name in [p.strip() for p in args.peers.split(",") if p.strip()]:
        model = create_peer(name, default_weights_dir())
        res = evaluate(model, _Subset(AFLW2000(data_dir), args.limit, args.raw_pt2d), "gt", name="aflw2000-dev", progress=False, keep_worst=0)
        m = res.metrics
        print(f"{name:28s} crop {model.crop:8s} n={m.n:4d}  MAE yaw {m.mae_yaw:.2f} pitch {m.mae_pitch:.2f} roll {m.mae_roll:.2f} -> {m.mae:.2f}")
        if args.variants:
            rows = variants(res.R_pred, res.R_true, res.true_deg)
            rank = next(i for i, r in enumerate(rows) if r[0] == "matrix R") + 1
            print(f"  the adapter's reading ranks {rank} of {len(rows)}; best readings:")
            for label, mae in rows[:4]:
                print(f"    {mae:7.2f}  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
