"""Distillation targets and the mirror-consistency term of ``headpose train`` (issue 28, item 2)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from openheadpose.core.rotation import euler_to_matrix, matrix_to_euler  # noqa: E402
from openheadpose.datasets.base import DatasetError, PoseSample  # noqa: E402
from openheadpose.training import TrainError, train  # noqa: E402
from openheadpose.training import losses as L  # noqa: E402
from openheadpose.training.data import apply_targets, read_targets  # noqa: E402
from test_train import _cfg, faces, tiny_model, _one_thread  # noqa: E402,F401  (fixtures)


def _write(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "yaw", "pitch", "roll"])
        w.writerows(rows)
    return path


def test_targets_mix_own_labels_and_fill_unlabelled_angles(tmp_path):
    t = read_targets(_write(tmp_path / "t.csv", [["a.jpg", 20, 5, -2], ["b.jpg", -30, 0, 1]]))
    yaw_only = PoseSample("a.jpg", None, np.array([10.0, np.nan, np.nan]), np.zeros(4))
    full = PoseSample("b.jpg", euler_to_matrix(-10.0, 4.0, 3.0), np.array([-10.0, 4.0, 3.0]), np.zeros(4))
    other = PoseSample("c.jpg", None, np.array([7.0, np.nan, np.nan]), np.zeros(4))
    (a, b, c), n = apply_targets([yaw_only, full, other], t, own_weight=0.25)
    assert n == 2
    np.testing.assert_allclose(a.euler, [0.25 * 10 + 0.75 * 20, 5, -2])  # pitch and roll: the teacher's alone
    np.testing.assert_allclose(b.euler, [0.25 * -10 + 0.75 * -30, 0.25 * 4, 0.25 * 3 + 0.75 * 1])
    np.testing.assert_allclose(matrix_to_euler(b.rotation).stack(), b.euler, atol=1e-9)  # the label moves with Mirror
    assert c is other
    (a0,), _ = apply_targets([yaw_only], t, own_weight=0.0)
    np.testing.assert_allclose(a0.euler, [20, 5, -2])
    with pytest.raises(ValueError):
        apply_targets([yaw_only], t, own_weight=1.5)
    with pytest.raises(DatasetError, match="twice"):
        read_targets(_write(tmp_path / "d.csv", [["a.jpg", 1, 2, 3], ["a.jpg", 1, 2, 3]]))
    with pytest.raises(DatasetError, match="missing"):
        (tmp_path / "e.csv").write_text("image,yaw\nx,1\n")
        read_targets(tmp_path / "e.csv")


def test_mirror_consistency_zero_for_mirrored_reads_with_gradient():
    loss = L.EulerL1Loss()
    a = torch.tensor([[10.0, 5.0, -3.0], [-40.0, 0.0, 2.0]], requires_grad=True)
    s, n = L.mirror_consistency(loss, {"euler": a}, {"euler": torch.tensor([[-10.0, 5.0, 3.0], [40.0, 0.0, -2.0]])})
    assert float(s.detach()) == 0.0 and int(n) == 2
    s, _ = L.mirror_consistency(loss, {"euler": a}, {"euler": torch.tensor([[-8.0, 5.0, 3.0], [40.0, 1.0, -2.0]])})
    assert float(s.detach()) == pytest.approx(2.0**2 + 1.0)  # yaw read 8 on the mirror -> -8 mapped back, 2 off; pitch 1 off
    s.backward()
    assert a.grad.abs().sum() > 0
    # binned: the expectation of the bins, mirrored bins are not mirrored angles (Hopenet's left-edge rule)
    b = L.BinnedLoss()
    logits = {k: torch.randn(3, 66) for k in b.bins.outputs}
    s, _ = L.mirror_consistency(b, logits, {k: v.flip(-1) if k != "pitch" else v for k, v in logits.items()})
    assert float(s) / 3 == pytest.approx(2 * 3.0**2, rel=1e-4)  # each of yaw and roll 3 deg off
    with pytest.raises(ValueError, match="binned or Euler"):
        L.mirror_consistency(L.Rot6DLoss(), {"rot6d": torch.zeros(1, 6)}, {"rot6d": torch.zeros(1, 6)})


def test_training_with_targets_and_consistency(tiny_model, faces, tmp_path):
    rows = [[f"f{i:03d}.png", 0.0, 0.0, 0.0] for i in range(48)]
    targets = _write(tmp_path / "t.csv", rows)
    logs = []
    res = train(_cfg(tiny_model, faces, tmp_path / "run", epochs=1, targets=targets, target_weight=0.0, consistency=0.01), log=logs.append)
    assert any("47 of 47 training samples relabelled" in m for m in logs), logs
    assert (tmp_path / "run" / "last.pt").is_file() and res["history"][-1]["epoch"] == 1
    with pytest.raises(DatasetError, match="names none"):
        train(_cfg(tiny_model, faces, tmp_path / "none", targets=_write(tmp_path / "n.csv", [["zz", 0, 0, 0]])), log=lambda m: None)
    with pytest.raises(TrainError, match="consistency"):
        train(_cfg(tiny_model, faces, tmp_path / "neg", consistency=-1.0), log=lambda m: None)


def test_distil_targets_keep_the_training_split_only(shared, tmp_path):
    """tools/distil_targets.py: no face the held-out sets A and B use (synth's val hash) gets a target
    or a label row, and the targets are the teacher's two reads of the kept faces."""
    import importlib.util
    from pathlib import Path

    from openheadpose.synth.build import _split_of

    tool = Path(__file__).resolve().parents[1] / "tools" / "distil_targets.py"
    spec = importlib.util.spec_from_file_location("distil_targets", tool)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    src = shared / "data" / "aflw-yaw"
    assert mod.main(["--source", f"aflw-yaw:{src}", "--val-fraction", "0.5", "--out", str(tmp_path), "--limit", "6"]) == 0
    t = read_targets(tmp_path / "targets.csv")
    assert len(t) == 6 and all(_split_of(n, 0.5) == "train" for n in t)
    with open(tmp_path / "aflw-yaw" / "labels.csv", newline="") as fh:
        kept = {f"images/{r['image']}" for r in csv.DictReader(fh)}
    assert kept == set(t) and (tmp_path / "aflw-yaw" / "images").resolve() == (src / "images").resolve()
    assert all(np.all(np.abs(v) < 99) for v in t.values())


def test_training_without_validation_saves_every_epoch(tiny_model, faces, tmp_path):
    """No validation sample (the distillation run's training photos are exactly those synth's val hash
    leaves out, so the engine's own 5 % by the same hash is empty): epochs end and last.pt resumes."""
    logs = []
    res = train(_cfg(tiny_model, faces, tmp_path / "run", epochs=2, val_fraction=0.0), log=logs.append)
    assert res["best_val_mae"] is None and res["val_samples"] == 0 and [h["epoch"] for h in res["history"]] == [1, 2]
    assert (tmp_path / "run" / "last.pt").is_file() and any("no validation samples" in m for m in logs)
