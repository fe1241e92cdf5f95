"""``headpose synth``: a pose-labelled training set from real faces with landmarks.

For every source face: fit the morphable model to its landmarks -- the 68-point
ones where the face has them, else the dataset's own (``SynthConfig.points``) --
(:func:`~openheadpose.synth.fit.fit_landmarks`, the dataset's yaw label as a
prior where it has one, a weak N(0, 20 deg) prior on pitch and roll that settles
their ambiguity near profile), keep the photo itself with the fitted pose as view 0,
then re-render it (:mod:`~openheadpose.synth.render`) at ``views`` new poses:

* yaw: the head keeps turning the way it already faces (a near-frontal face,
  |yaw| < 5, picks a side at random) out to 90 deg, the range split in ``views``
  strata with one random yaw in each -- turning *towards* the camera would
  reveal the cheek the photo never saw;
* pitch: the fitted pitch plus N(0, 6 deg), at most 20 deg away;
* roll: the fitted roll plus a uniform turn in +-15 deg (about the head's own
  axis, so the Euler labels stay away from the gimbal lock that an in-plane
  turn of a profile would push them into).

Output, the 300W-LP layout (:class:`openheadpose.datasets.w300lp.W300LP` reads it):
``OUT/train/<name>_<k>.jpg`` + ``.mat`` and ``OUT/val/...`` -- a source and all its
views go to ``val`` when a hash of its name falls in ``val_fraction`` (choose
checkpoints there, never on AFLW2000). Each ``.mat`` holds ``Pose_Para``
(1 x 7: pitch, yaw, roll in radians, AFLW convention; then tx, ty -- pixels,
ty measured upwards from the bottom row as 3DDFA does --, tz = 0, scale in
pixels per mm), ``pt2d`` (2 x 68, the 68 model landmarks projected, hidden
ones included), ``pt3d_68`` (3 x 68: u, v, depth in pixels), ``Shape_Para``
(40) and ``Exp_Para`` (10) in units of the 3DDFA fits' standard deviation.
``OUT/fits.csv`` has one row per source (fitted pose, label, residual, points
used, their ``layout``: ``aflw21``, ``68`` or ``facemesh``, status; a ``fits.csv``
from before the ``layout`` column is rewritten with it, empty, when a run resumes);
``OUT/synth.json`` the recipe and the quality summary.

Seeded per source (same seed, same output whatever the number of processes),
parallel over processes, resumable (a source whose files all exist is
skipped), every file written atomically.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from openheadpose.core.rotation import EulerConvention, euler_to_matrix, matrix_to_euler
from openheadpose.io.writers import atomic_write_bytes

__all__ = ["SynthConfig", "choose_points", "plan_views", "synthesize_one", "run", "view_stem", "fitted_photos"]

FITS_COLUMNS = ["source", "split", "status", "label_yaw", "yaw", "pitch", "roll", "rms_px", "rms_mm", "points", "views", "layout"]

#: ``SynthConfig.points``: which landmarks a source face is fitted to.
POINTS_CHOICES = ("auto", "21", "68")


@dataclass(frozen=True)
class SynthConfig:
    """What ``headpose synth`` does (all of it goes into ``synth.json``).

    ``points``: ``auto`` fits a face to its 68-point landmarks where it has them
    (``PoseSample.landmarks68``: aflw-yaw / aflw-extra faces with a
    ``landmarks68.csv`` row), else to the dataset's own points (AFLW's 21,
    FaceMesh's 468 for photos, 68 for 300W-LP); ``21``: always the dataset's own
    points; ``68``: only faces with 68-point landmarks (the others are recorded
    as failed).
    """

    source: str
    out: str
    views: int = 3
    seed: int = 0
    val_fraction: float = 0.05
    max_rms_mm: float = 8.0
    yaw_sigma: float = 6.0
    tilt_sigma: float = 20.0
    pitch_sd: float = 6.0
    roll_max: float = 15.0
    jpeg_quality: int = 95
    bfm: str | None = None
    limit: int | None = None
    points: str = "auto"


def _split_of(name: str, val_fraction: float) -> str:
    h = int.from_bytes(hashlib.sha1(name.encode()).digest()[:4], "big") / 2**32
    return "val" if h < val_fraction else "train"


def _seed_of(name: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha1(f"{seed}:{name}".encode()).digest()[:8], "big")


def plan_views(euler0: np.ndarray, views: int, rng: np.random.Generator, pitch_sd: float = 6.0, roll_max: float = 15.0) -> list[np.ndarray]:
    """Target rotations ``(3, 3)`` for ``views`` re-renderings of a face fitted at ``euler0`` (yaw, pitch, roll)."""
    yaw0, pitch0, roll0 = (float(v) for v in euler0)
    side = np.sign(yaw0) if abs(yaw0) >= 5.0 else rng.choice([-1.0, 1.0])
    start = min(abs(yaw0), 90.0)
    out = []
    for k in range(views):
        yaw = side * (start + (90.0 - start) * (k + rng.uniform()) / views)
        pitch = pitch0 + float(np.clip(rng.normal(0.0, pitch_sd), -20.0, 20.0))
        roll = roll0 + rng.uniform(-roll_max, roll_max)
        out.append(euler_to_matrix(yaw, pitch, roll))
    return out


def _labels(model, fit, R: np.ndarray, shift: np.ndarray, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    from openheadpose.synth.fit import project

    e = matrix_to_euler(R, EulerConvention.AFLW)
    uvz = project(model.vertices(fit.coeffs)[model.landmarks68], R, fit.scale, shift)
    h = shape[0]
    pose = np.array([[np.deg2rad(e.pitch), np.deg2rad(e.yaw), np.deg2rad(e.roll), shift[0], h - 1 - shift[1], 0.0, fit.scale]], np.float64)
    return {
        "Pose_Para": pose,
        "pt2d": uvz[:, :2].T.copy(),
        "pt3d_68": np.stack([uvz[:, 0], uvz[:, 1], uvz[:, 2] * fit.scale]),
        "Shape_Para": fit.coeffs[:40].reshape(-1, 1),
        "Exp_Para": fit.coeffs[40:].reshape(-1, 1),
    }


def _write_pair(base: Path, image_bgr: np.ndarray, labels: dict, quality: int) -> None:
    import scipy.io

    ok, jpg = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"{base}.jpg: JPEG encoding failed")
    atomic_write_bytes(base.with_suffix(".jpg"), jpg.tobytes(), durable=False)  # a rerun regenerates it
    buf = io.BytesIO()
    scipy.io.savemat(buf, labels)
    atomic_write_bytes(base.with_suffix(".mat"), buf.getvalue(), durable=False)  # last: its presence marks the view done


def view_stem(name: str) -> str:
    """The file stem of a source's views: ``OUT/<split>/<stem>_<k>.jpg`` (``k = 0`` the photo with its fitted pose)."""
    base, _, face = name.partition("#")  # photos: sources name faces "<file>#<k>"
    return Path(base).with_suffix("").as_posix().replace("/", "__") + (f"_face{face}" if face else "")


def fitted_photos(out: str | Path, split: str = "val", layouts: tuple[str, ...] = ("68",)) -> list:
    """View 0 of each face in a ``headpose synth`` folder's ``split``: the real photo, labelled
    with its fitted pose, for the faces whose ``fits.csv`` ``layout`` is in ``layouts``.

    A 68-point fit is how 300W-LP and AFLW2000 were labelled, so these are real faces with
    all three angles (the fit's own error included); the re-rendered views are not real.

    Raises:
        FileNotFoundError: ``out`` has no ``fits.csv``.
    """
    from openheadpose.datasets.w300lp import W300LP

    out = Path(out)
    with open(out / "fits.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == split and r["status"] == "ok" and r.get("layout") in layouts]
    names = {f"{split}/{view_stem(r['source'])}_0.jpg" for r in rows}
    return [s for s in W300LP(out / split) if s.name in names] if names else []


def choose_points(sample, points: str = "auto") -> tuple[np.ndarray, str]:
    """The landmarks ``(P, 2)`` to fit and their layout name (``aflw21``, ``68``, ``facemesh``).

    Raises:
        ValueError: ``points`` is unknown, or the sample has none of the points asked for.
    """
    if points not in POINTS_CHOICES:
        raise ValueError(f"points={points!r}; expected one of {', '.join(POINTS_CHOICES)}")
    if points != "21" and sample.landmarks68 is not None:
        return sample.landmarks68, "68"
    if points == "68":
        raise ValueError("no 68-point landmarks (points=68)")
    n = 0 if sample.landmarks is None else len(sample.landmarks)
    if n in (21, 468):  # AFLW's points, FaceMesh's (photos: sources)
        return sample.landmarks, ("aflw21" if n == 21 else "facemesh")
    if n == 68:
        return sample.landmarks, "68"
    if sample.landmarks68 is not None:  # points=21 on a dataset that has only 68 points
        return sample.landmarks68, "68"
    raise ValueError("no landmarks" if n == 0 else f"{n} landmarks: not a layout the fitter knows (21, 68, 468)")


def fit_aflw21_unprimed(points: np.ndarray, model) -> np.ndarray:
    """``(3,)`` yaw, pitch, roll of a fit to AFLW's 21 points with no yaw label as prior (NaN if it fails).

    With only :class:`SynthConfig`'s tilt prior, the fit uses neither AFLW's yaw label nor the
    68 points behind the synthesized sets' labels. It is a second labeller, with other points
    from other annotators, which ``tools/calibrate_sigma.py`` and ``tools/fuse_yaw_labels.py``
    set beside the 68-point fits.
    """
    from openheadpose.synth.fit import fit_landmarks

    try:
        return np.asarray(fit_landmarks(points, model, "aflw21", yaw_prior=None, tilt_sigma=SynthConfig.tilt_sigma).euler, np.float64)
    except ValueError:  # fewer than 5 usable points
        return np.full(3, np.nan)


def synthesize_one(sample, cfg: SynthConfig, out: Path) -> dict:
    """Fit, re-render and write one source sample; returns its ``fits.csv`` row."""
    from openheadpose.synth.bfm import load_bfm
    from openheadpose.synth.fit import fit_landmarks
    from openheadpose.synth.render import build_scene, render, shift_at

    stem = view_stem(sample.name)
    split = _split_of(sample.name, cfg.val_fraction)
    row = {"source": sample.name, "split": split, "status": "ok", "label_yaw": "", "yaw": "", "pitch": "", "roll": "",
           "rms_px": "", "rms_mm": "", "points": "", "views": 0, "layout": ""}
    label_yaw = float(sample.euler[0]) if sample.euler is not None and np.isfinite(sample.euler[0]) else None
    row["label_yaw"] = "" if label_yaw is None else round(label_yaw, 3)
    try:
        model = load_bfm(cfg.bfm)
        pts, layout = choose_points(sample, cfg.points)
        row["layout"] = layout
        fit = fit_landmarks(pts, model, layout, yaw_prior=label_yaw, yaw_sigma=cfg.yaw_sigma, tilt_sigma=cfg.tilt_sigma)
        row.update(yaw=round(float(fit.euler[0]), 3), pitch=round(float(fit.euler[1]), 3), roll=round(float(fit.euler[2]), 3),
                   rms_px=round(fit.rms_px, 3), rms_mm=round(fit.rms_mm, 3), points=fit.num_points)
        if fit.rms_mm > cfg.max_rms_mm:
            row["status"] = f"rejected: landmark residual {fit.rms_mm:.1f} mm > {cfg.max_rms_mm}"
            return row
        rgb = sample.load_image()
        face_px = 150.0 * fit.scale  # ~ the width of a face, 150 mm
        if not 8.0 <= face_px <= 4.0 * max(rgb.shape[:2]):
            row["status"] = f"rejected: implausible fit, a face {face_px:.0f} px wide in a {rgb.shape[1]}x{rgb.shape[0]} image"
            return row
        if rgb.ndim == 2:
            rgb = cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB)
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(_seed_of(sample.name, cfg.seed))
        targets = plan_views(fit.euler, cfg.views, rng, cfg.pitch_sd, cfg.roll_max)
        scene = None
        for k, R in enumerate([fit.rotation, *targets]):
            base = folder / f"{stem}_{k}"
            if base.with_suffix(".mat").is_file():
                continue
            if k == 0:
                img, shift = bgr, fit.shift
            else:
                scene = scene or build_scene(bgr, fit, model)
                img, _ = render(scene, R)
                shift = shift_at(scene, R)
            _write_pair(base, img, _labels(model, fit, R, shift, bgr.shape[:2]), cfg.jpeg_quality)
        row["views"] = 1 + cfg.views
    except Exception as exc:  # noqa: BLE001 - one bad source never stops the others
        row["status"] = f"failed: {exc}"
        for k in range(cfg.views + 1):  # no half-made source: its first views go too
            for ext in (".jpg", ".mat"):
                (out / split / f"{stem}_{k}{ext}").unlink(missing_ok=True)
    return row


def _done(sample, cfg: SynthConfig, out: Path) -> bool:
    stem, split = view_stem(sample.name), _split_of(sample.name, cfg.val_fraction)
    return all((out / split / f"{stem}_{k}.mat").is_file() for k in range(cfg.views + 1))


_WORKER: dict = {}


def _init_worker(cfg: SynthConfig, out: Path) -> None:
    cv2.setNumThreads(1)
    _WORKER.update(cfg=cfg, out=out)


def _work(sample) -> dict:
    return synthesize_one(sample, _WORKER["cfg"], _WORKER["out"])


def run(cfg: SynthConfig, jobs: int = 1, progress: bool = True) -> dict:
    """Synthesize the whole source dataset; returns the summary written to ``synth.json``."""
    import multiprocessing as mp

    from tqdm import tqdm

    from openheadpose.synth.bfm import load_bfm
    from openheadpose.synth.sources import open_source

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    load_bfm(cfg.bfm)  # fail early with a clear message
    ds = open_source(cfg.source)
    fits_path = out / "fits.csv"
    previous: dict[str, dict] = {}
    if fits_path.is_file():
        with open(fits_path, newline="") as f:
            reader = csv.DictReader(f)
            previous = {r["source"]: r for r in reader}
            header = reader.fieldnames or []
        if previous and header != FITS_COLUMNS:  # an older fits.csv (no layout column): same rows, today's header
            buf = io.StringIO()
            w = csv.DictWriter(buf, FITS_COLUMNS, restval="", extrasaction="ignore")
            w.writeheader()
            w.writerows(previous.values())
            atomic_write_bytes(fits_path, buf.getvalue().encode())
    todo, rows = [], []
    t0 = time.time()
    for i, s in enumerate(ds):
        if cfg.limit is not None and i >= cfg.limit:
            break
        prev = previous.get(s.name)
        if prev is not None and (not prev["status"].startswith("ok") or _done(s, cfg, out)):
            rows.append(prev)
        else:
            todo.append(s)
    new = []
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # small solves: threads only contend
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    bar = tqdm(total=len(todo), desc="synth", unit="face", disable=not progress)
    with open(fits_path, "a", newline="") as f:
        w = csv.DictWriter(f, FITS_COLUMNS)
        if not previous:
            w.writeheader()
        if jobs > 1:
            ctx = mp.get_context("spawn")
            with ctx.Pool(jobs, initializer=_init_worker, initargs=(cfg, out)) as pool:
                for r in pool.imap_unordered(_work, todo, chunksize=8):
                    new.append(r)
                    w.writerow(r)
                    f.flush()
                    bar.update()
        else:
            _init_worker(cfg, out)
            for s in todo:
                r = _work(s)
                new.append(r)
                w.writerow(r)
                f.flush()
                bar.update()
    bar.close()
    rows += new
    summary = summarize(rows)
    summary.update(config=asdict(cfg), reader_failures=len(getattr(ds, "failures", []) or []), seconds_this_run=round(time.time() - t0, 1))
    atomic_write_bytes(out / "synth.json", (json.dumps(summary, indent=1) + "\n").encode())
    return summary


def summarize(rows: list[dict]) -> dict:
    """Counts and fit quality over ``fits.csv`` rows."""
    ok = [r for r in rows if str(r["status"]).startswith("ok")]
    out = {
        "sources": len(rows),
        "ok": len(ok),
        "rejected": sum(str(r["status"]).startswith("rejected") for r in rows),
        "failed": sum(str(r["status"]).startswith("failed") for r in rows),
        "images": {s: sum(int(r["views"] or 0) for r in ok if r["split"] == s) for s in ("train", "val")},
        "layouts": {k: sum((r.get("layout") or "unrecorded") == k for r in ok) for k in sorted({r.get("layout") or "unrecorded" for r in ok})},
    }
    lab = [(float(r["yaw"]), float(r["label_yaw"])) for r in ok if r["label_yaw"] not in ("", None)]
    if lab:
        d = np.array([a - b for a, b in lab])
        out["fitted_vs_label_yaw"] = {"n": len(d), "mae": round(float(np.abs(d).mean()), 3), "median_abs": round(float(np.median(np.abs(d))), 3)}
    if ok:
        out["rms_mm_median"] = round(float(np.median([float(r["rms_mm"]) for r in ok])), 3)
    return out
