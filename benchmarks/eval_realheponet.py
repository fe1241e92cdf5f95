"""RealHePoNet (our shipped ``realheponet``) and the ``heads`` detector, measured.

RealHePoNet predicts two angles, pan (yaw) and tilt (pitch); roll is not predicted.

* **AFLW2000-dev** (983 images after the +-99 deg filter; evaluation only): pan / tilt
  MAE and faces found, with the default face detector's box (``--detector blazeface``)
  and with the head detector's (``--detector heads``), through
  :func:`openheadpose.evaluation.evaluate.evaluate` (a face counts as found when a box
  overlaps its labelled box by IoU >= 0.3); the share of pan / tilt errors within one
  and two sigma.
* **Size and speed:** the shipped file's bytes; crops/s of the network alone (batches
  of 32) and images/s of the whole pipeline on AFLW2000-dev images, per detector.
* **Sigma on faces and on what is not a face:** mean pan / tilt sigma on the
  synthesized held-out faces (``--synth``), on the AFLW2000-dev faces found, on
  random squares of the no-face media (``free-mountain-vector-01.jpg``, frames of
  ``no_face.mp4``), and on heads whose face was painted over (below).
* **The head detector:** recall on ``group-t1.jpg`` (6 people; head boxes labelled
  by hand in ``benchmarks/data/group-t1_heads.json``; found = IoU >= 0.3); its
  boxes' IoU with the face pipeline's detector (BlazeFace + tiles, score >= 0.75) on
  the photos of ../shared/media where faces are visible; false heads on
  ``free-mountain-vector-01.jpg`` and on every frame of ``no_face.mp4``.
* **People turned away -- a stand-in:** ../shared/media has nobody seen from
  behind, so each face of ``group-t1.jpg`` (hand labels), ``multi_face.jpg`` and
  ``astronaut.png`` (BlazeFace's boxes on the untouched photo as labels) is painted
  over with that person's own hair: the patch above the face box, stretched over
  an ellipse on the face, edges feathered. A back of the head has the same outline
  and no face, but this is not a real back view (the ears and the neck stay as they
  were); the images are made on the fly, never stored. Recall of ``heads`` and of the
  face detector on them.

Usage::

    python benchmarks/eval_realheponet.py --synth /work/synth/aflw

writes ``benchmarks/results/realheponet.json``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the benchmarks package
from benchmarks.common import run_header, write_result

SHARED = Path(os.environ.get("OPENHEADPOSE_SHARED", ROOT.parent / "shared"))
LABELS = ROOT / "benchmarks" / "data" / "group-t1_heads.json"
FACE_PHOTOS = ("group-t1.jpg", "multi_face.jpg", "single_face.jpg", "astronaut.png", "Tom_Hanks_54745.png", "0-f1-su-ph.jpg", "45-m7-di-ph.jpg")
HIDDEN_PHOTOS = ("group-t1.jpg", "multi_face.jpg", "astronaut.png")
FOUND_IOU = 0.3
FACE_SCORE = 0.75


def log(msg: str) -> None:
    print(msg, flush=True)


def read(name: str) -> np.ndarray:
    from openheadpose.io.images import read_image

    return read_image(SHARED / "media" / name)


def recall(boxes: np.ndarray, labels: np.ndarray) -> tuple[int, list[float]]:
    """Labels found (some box overlaps it by IoU >= FOUND_IOU; one box finds one label) and each label's best IoU."""
    from openheadpose.core.geometry import box_iou

    if len(boxes) == 0:
        return 0, [0.0] * len(labels)
    iou = box_iou(labels, boxes)
    used, found = set(), 0
    for i in np.argsort(-iou.max(1)):
        j = int(np.argmax(np.where([k in used for k in range(len(boxes))], -1.0, iou[i])))
        if iou[i, j] >= FOUND_IOU and j not in used:
            used.add(j)
            found += 1
    return found, [round(float(v), 3) for v in iou.max(1)]


def hide_faces(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each face painted over with the hair above it (see the module docstring); returns the image and the boxes hidden."""
    import cv2

    out = image.copy()
    h, w = image.shape[:2]
    hidden = []
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64):
        s = max(x2 - x1, y2 - y1)
        top, bottom = int(y1 - 0.45 * s), int(y1 - 0.05 * s)
        if top < 0 or bottom - top < 4:
            continue  # no hair above this face inside the photo
        patch = image[top:bottom, max(0, int(x1)) : min(w, int(x2))]
        bw, bh = int(x2 - x1 + 0.2 * s), int(y2 - y1 + 0.15 * s)
        cx, cy = int((x1 + x2) / 2), int((y1 + y2) / 2 + 0.05 * s)
        fill = cv2.GaussianBlur(cv2.resize(patch, (bw, bh), interpolation=cv2.INTER_LINEAR), (0, 0), 1.5)
        mask = np.zeros((bh, bw), np.float32)
        cv2.ellipse(mask, (bw // 2, bh // 2), (int(bw * 0.46), int(bh * 0.47)), 0, 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), 0.04 * s)[..., None]
        ox, oy = cx - bw // 2, cy - bh // 2
        X1, Y1, X2, Y2 = max(ox, 0), max(oy, 0), min(ox + bw, w), min(oy + bh, h)
        region = out[Y1:Y2, X1:X2].astype(np.float32)
        f = fill[Y1 - oy : Y2 - oy, X1 - ox : X2 - ox].astype(np.float32)
        m = mask[Y1 - oy : Y2 - oy, X1 - ox : X2 - ox]
        out[Y1:Y2, X1:X2] = np.clip(m * f + (1 - m) * region, 0, 255).astype(np.uint8)
        hidden.append([x1, y1, x2, y2])
    return out, np.array(hidden, np.float64).reshape(-1, 4)


def sigma_of(model, crops: list[np.ndarray]) -> dict | None:
    if not crops:
        return None
    sig = np.concatenate([model.predict(np.stack(crops[i : i + 64])).sigma for i in range(0, len(crops), 64)])
    return {"n": len(crops), "pan": round(float(sig[:, 0].mean()), 2), "tilt": round(float(sig[:, 1].mean()), 2),
            "pan_median": round(float(np.median(sig[:, 0])), 2)}


def random_squares(image: np.ndarray, n: int, rng: np.random.Generator, size: int, recipe) -> list[np.ndarray]:
    h, w = image.shape[:2]
    out = []
    for _ in range(n):
        s = rng.uniform(0.1, 0.4) * min(h, w)
        x, y = rng.uniform(0, w - s), rng.uniform(0, h - s)
        out.append(recipe(image, recipe.from_detection(np.array([x, y, x + s, y + s]), image.shape), size))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synth", type=Path, default=None, help="a headpose synth folder: sigma on its held-out val faces")
    ap.add_argument("--limit", type=int, default=None, help="AFLW2000-dev: first N images (smoke runs)")
    ap.add_argument("--speed-images", type=int, default=100)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "realheponet.json")
    args = ap.parse_args(argv)
    started = _dt.datetime.now(_dt.timezone.utc)

    import itertools

    from openheadpose.assets import shipped_weights
    from openheadpose.core.geometry import box_iou
    from openheadpose.datasets.aflw2000 import AFLW2000
    from openheadpose.evaluation.evaluate import evaluate
    from openheadpose.inference.builder import build_estimator
    from openheadpose.inference.detectors import DETECTORS
    from openheadpose.inference.head_detector import HeadDetector
    from openheadpose.io.sources import expand_sources
    from openheadpose.specs.crops import CROPS

    weights = shipped_weights("realheponet")
    if weights is None:
        sys.exit("eval_realheponet: realheponet-synth.onnx is not installed")
    spec_side = json.loads(weights.with_suffix(".json").read_text())
    result = {**run_header("eval_realheponet", 1, started), "file": weights.name, "bytes": weights.stat().st_size,
              "parameters_m": spec_side.get("parameters_m"), "quantisation": spec_side.get("quantisation")}

    faces = DETECTORS.create("blazeface")
    heads = HeadDetector()
    rng = np.random.default_rng(0)

    # ---------------------------------------------------------------- AFLW2000-dev
    root = SHARED / "data" / "aflw2000-dev"
    result["aflw2000_dev"] = {}
    net = None
    face_sigma_crops: list[np.ndarray] = []
    for det in ("blazeface", "heads"):
        est = build_estimator("realheponet", detector=det, track=False)
        net = est.pose.model
        ds = AFLW2000(root)
        samples = list(itertools.islice(iter(ds), args.limit)) if args.limit else ds
        t = time.perf_counter()
        res = evaluate(est, samples, "detect", progress=False, name="aflw2000-dev")
        d = res.to_dict()
        cov = d.get("sigma_coverage") or {}
        result["aflw2000_dev"][det] = {
            "found": d["n_detected"], "of": d["n_images"], "filtered_out": getattr(ds, "n_filtered", None),
            "mae_pan": round(d["mae"]["yaw"], 3), "mae_tilt": round(d["mae"]["pitch"], 3),
            "mae_pan_tilt": round((d["mae"]["yaw"] + d["mae"]["pitch"]) / 2, 3),
            "mae_pan_by_abs_yaw": {k: round(v["mae_yaw"], 2) for k, v in d["by_abs_yaw"].items() if v["n"]},
            "sigma_coverage": {k: ({a: x for a, x in v.items() if a != "roll"} if k != "gaussian" else v) for k, v in cov.items()},
            "seconds": round(time.perf_counter() - t, 1),
        }
        log(f"AFLW2000-dev, {det}: {result['aflw2000_dev'][det]}")
        # pipeline speed: images/s over the first --speed-images images
        imgs = [s.load_image() for s in itertools.islice(iter(AFLW2000(root)), args.speed_images)]
        est.predict(imgs[0])
        t = time.perf_counter()
        n_heads = sum(len(est.predict(im)[0]) for im in imgs)
        dt = time.perf_counter() - t
        result["aflw2000_dev"][det]["pipeline_images_per_s"] = round(len(imgs) / dt, 1)
        result["aflw2000_dev"][det]["pipeline_faces_per_s"] = round(n_heads / dt, 1)
        if det == "blazeface":
            recipe = CROPS[net.crop]
            for im in imgs:
                f = faces(im)
                f = f[np.flatnonzero(f.scores >= FACE_SCORE)]
                face_sigma_crops += [recipe(im, recipe.from_detection(b, im.shape), net.input_size) for b in f.boxes]
    recipe = CROPS[net.crop]
    crops = np.stack(face_sigma_crops[:32])
    net.predict(crops)
    t = time.perf_counter()
    reps = 20
    for _ in range(reps):
        net.predict(crops)
    result["network_crops_per_s"] = round(reps * len(crops) / (time.perf_counter() - t), 1)
    log(f"network alone: {result['network_crops_per_s']} crops/s")

    # ---------------------------------------------------------------- sigma
    sig = {"aflw2000_dev_faces (blazeface boxes)": sigma_of(net, face_sigma_crops)}
    if args.synth is not None:
        from openheadpose.datasets.registry import open_dataset

        vs = []
        for s in itertools.islice(iter(open_dataset(f"300wlp:{args.synth / 'val'}")), 0, None, 3):
            img = s.load_image() if s.image is None else s.image
            vs.append(recipe(img, recipe.from_sample(s, img.shape), net.input_size))
        sig["synth_val_faces (labelled crops)"] = sigma_of(net, vs)
    mountain = read("free-mountain-vector-01.jpg")
    sig["no_face: random squares of free-mountain-vector-01.jpg"] = sigma_of(net, random_squares(mountain, 200, rng, net.input_size, recipe))
    frames = [fr.image for src in expand_sources(str(SHARED / "media" / "no_face.mp4")) for fr in src.frames() if not (fr.error or fr.warning)]
    sig["no_face: random squares of no_face.mp4 frames"] = sigma_of(
        net, [c for im in frames[::10] for c in random_squares(im, 20, rng, net.input_size, recipe)])

    # ---------------------------------------------------------------- the head detector
    hd = {}
    labels = np.array(json.loads(LABELS.read_text())["boxes"], np.float64)
    group = read("group-t1.jpg")
    d_heads, d_faces = heads(group), faces(group)
    d_faces = d_faces[np.flatnonzero(d_faces.scores >= FACE_SCORE)]
    kept = d_heads[np.flatnonzero(d_heads.scores >= 0.5)]
    n, ious = recall(kept.boxes, labels)
    nf, _ = recall(d_faces.boxes, labels)
    hd["group_t1"] = {"people": len(labels), "heads_found": n, "heads_boxes": len(kept), "heads_best_iou": ious,
                      "heads_scores": [round(float(s), 3) for s in d_heads.scores], "face_detector_found": nf, "face_detector_boxes": len(d_faces)}
    log(f"group-t1: {hd['group_t1']}")
    agree = []
    for name in FACE_PHOTOS:
        img = read(name)
        f = faces(img)
        f = f[np.flatnonzero(f.scores >= FACE_SCORE)]
        h = heads(img)
        h = h[np.flatnonzero(h.scores >= 0.5)]
        for b in f.boxes:
            agree.append((name, float(box_iou(b[None], h.boxes).max()) if len(h) else 0.0))
    v = np.array([a[1] for a in agree])
    hd["agreement_with_face_detector"] = {
        "photos": list(FACE_PHOTOS), "faces": len(v), "median_iou": round(float(np.median(v)), 3),
        "share_iou_ge_0.5": round(float((v >= 0.5).mean()), 3), "share_iou_ge_0.3": round(float((v >= 0.3).mean()), 3),
        "per_photo": {n: [round(a[1], 2) for a in agree if a[0] == n] for n in FACE_PHOTOS},
    }
    log(f"agreement: {hd['agreement_with_face_detector']}")
    m = heads(mountain)
    hd["false_heads"] = {"free-mountain-vector-01.jpg": int((m.scores >= 0.5).sum())}
    per_frame = [int((heads(im).scores >= 0.5).sum()) for im in frames]
    hd["false_heads"]["no_face.mp4"] = {"frames": len(frames), "heads": int(sum(per_frame)), "frames_with_a_head": int(sum(1 for k in per_frame if k))}
    fd = [int((faces(im).scores >= FACE_SCORE).sum()) for im in frames]
    hd["false_heads"]["face_detector"] = {"free-mountain-vector-01.jpg": int((faces(mountain).scores >= FACE_SCORE).sum()),
                                          "no_face.mp4": {"frames": len(frames), "faces": int(sum(fd)), "frames_with_a_face": int(sum(1 for k in fd if k))}}
    log(f"false heads: {hd['false_heads']}")

    # ---------------------------------------------------------------- faces hidden (stand-in for people turned away)
    turned = {"people": 0, "heads_found": 0, "face_detector_found": 0, "per_photo": {}}
    hidden_crops = []
    for name in HIDDEN_PHOTOS:
        img = read(name)
        if name == "group-t1.jpg":
            lab = labels
        else:
            f = faces(img)
            lab = f.boxes[f.scores >= FACE_SCORE]
        painted, lab = hide_faces(img, lab)
        h = heads(painted)
        h = h[np.flatnonzero(h.scores >= 0.5)]
        f = faces(painted)
        f = f[np.flatnonzero(f.scores >= FACE_SCORE)]
        nh, ious = recall(h.boxes, lab)
        nf, _ = recall(f.boxes, lab)
        turned["people"] += len(lab)
        turned["heads_found"] += nh
        turned["face_detector_found"] += nf
        turned["per_photo"][name] = {"people": len(lab), "heads_found": nh, "face_detector_found": nf, "heads_best_iou": ious}
        hidden_crops += [recipe(painted, recipe.from_detection(b, painted.shape), net.input_size) for b in lab]
    hd["faces_hidden"] = turned
    sig["faces painted over (labelled boxes)"] = sigma_of(net, hidden_crops)
    log(f"faces hidden: {turned}")
    result["head_detector"] = hd
    result["sigma"] = sig
    log(f"sigma: {json.dumps(sig)}")
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
