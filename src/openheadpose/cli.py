"""The ``headpose`` command line: a thin shell over the Python API."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import click

EXIT_OK, EXIT_SOME_FAILED, EXIT_ALL_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 130

CSV_HEADER = ["source", "frame", "head", "x1", "y1", "x2", "y2", "score", "yaw", "pitch", "roll", "sigma_yaw", "sigma_pitch", "sigma_roll"]


def _err(msg: str) -> None:
    click.echo(f"headpose: {msg}", err=True)


def _has_display() -> bool:
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class _SaveNames:
    """Output file names under ``--save DIR``: the input's name, disambiguated by its folders."""

    def __init__(self, root: Path):
        self.root = root
        self.used: set[str] = set()

    def __call__(self, source: str, suffix: str) -> Path:
        p = Path(source.replace(":", "_"))
        name = p.stem + suffix
        parts = [x for x in p.parent.parts if x not in ("/", ".", "..")]
        while name in self.used and parts:
            name = parts.pop() + "_" + name
        base, i = name, 1
        while name in self.used:
            name = f"{Path(base).stem}-{i}{suffix}"
            i += 1
        self.used.add(name)
        return self.root / name


def _csv_rows(res) -> list[list]:
    rows = []
    for i, h in enumerate(res.heads.to_list()):
        sig = h["sigma"] or [None, None, None]
        rows.append([res.source, res.frame, i, *h["box"], h["score"], h["yaw"], h["pitch"], h["roll"], *sig])
    return rows


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="openheadpose")
def cli() -> None:
    """openheadpose: find every head in photos, folders, videos and camera streams and say which way it is turned.

    \b
    Examples:
      headpose predict example:astronaut --save out --json -
      headpose predict photos/ --json heads.jsonl --csv heads.csv
      headpose predict clip.mp4 --save out --draw cube
      headpose predict 0 --show            # webcam 0
      headpose models                      # the stages you can choose
    """


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--save", "save_dir", type=click.Path(file_okay=False, path_type=Path), help="Write annotated images / videos into this folder.")
@click.option("--json", "json_path", metavar="PATH|-", help="Write JSON Lines (one object per image or frame); '-' is standard output.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Write one CSV row per head.")
@click.option("--show", is_flag=True, help="Show a live window (needs a display; press q to stop).")
@click.option("--draw", type=click.Choice(["axes", "cube"]), default="axes", show_default=True, help="How to draw each head's pose.")
@click.option("--detector", default=None, help="Face detector (see `headpose models`). [default: blazeface, or haar without MediaPipe]")
@click.option("--landmarker", default="facemesh", show_default=True, help="Landmarker (see `headpose models`).")
@click.option("--pose", "pose_name", default=None, help="Pose stage of the default model (see `headpose models`). [default: hopenet-synth, our network on a crop placed by FaceMesh; also fsanet-synth; geometric: a rigid fit of the landmarks]")
@click.option("--model", "model_name", default="default", show_default=True, help="'default' (detector + FaceMesh + the --pose stage); hopenet-synth or fsanet-synth (our packaged networks alone, cropped from the detector's box, no FaceMesh); hhpnet; or an image pose network given by --weights (e.g. fsanet, hopenet, onnx).")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="An .onnx file from `headpose convert` / `headpose export` for --model (hhpnet, hopenet-synth, fsanet-synth: our shipped weights when omitted).")
@click.option("--keypoints", "keypoint_source", type=click.Choice(["blazeface", "facemesh", "pose"]), default=None,
              help="Where keypoint networks (--model hhpnet, heatmap-cnn) get nose, eyes and ears: facemesh (FaceMesh on detected faces), "
                   "blazeface (the detector's own points, fastest) or pose (MediaPipe Pose: people found by their body). [default: facemesh]")
@click.option("--min-score", type=click.FloatRange(0, 1), default=None, help="Minimum head score. [default: 0.5 when a landmarker or pose model confirms the face (default model, facemesh, pose), 0.75 for a detector alone]")
@click.option("--fov", type=click.FloatRange(1, 179), default=None, help="Horizontal field of view in degrees: report rotations in the camera frame instead of relative to the line of sight.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def predict(sources, save_dir, json_path, csv_path, show, draw, detector, landmarker, pose_name, model_name, weights, keypoint_source, min_score, fov, quiet) -> None:
    """Estimate the pose of every head in SOURCES.

    SOURCES are image files, video files, folders (searched recursively),
    glob patterns ('shots/*.jpg'), camera indices (0) or example:astronaut.

    \b
    Exit status: 0 when every input was processed, 1 when some failed,
    2 when none could be, 130 when interrupted.

    \b
    Examples:
      headpose predict example:astronaut --save out --json -
      headpose predict group.jpg --json - --draw cube --save out
      headpose predict videos/ --save out --csv heads.csv
      headpose convert fsanet FSA-Net/pre-trained/300W_LP_models fsanet.onnx
      headpose predict clip.mp4 --model fsanet --weights fsanet.onnx --save out
      headpose predict group.jpg --model hhpnet --keypoints pose --json -
    """
    import math

    from .draw import annotate
    from .io import CsvWriter, JsonLinesWriter
    from .pipeline import HeadPoseEstimator

    expanded, n_failed, show = expand_or_exit(sources, show)

    pose_kwargs = {}
    if fov is not None:
        pose_kwargs["focal_factor"] = 0.5 / math.tan(math.radians(fov) / 2)
    try:
        if model_name == "default":
            from .pipeline import default_pose
            from .pose import POSE_ESTIMATORS

            pose = POSE_ESTIMATORS.create(pose_name or default_pose(), **pose_kwargs)
            est = HeadPoseEstimator(detector=detector, landmarker=landmarker, pose=pose, min_score=0.5 if min_score is None else min_score)
        else:
            from .keypoints import build_estimator

            est = build_estimator(model_name, weights, keypoint_source, detector, min_score)
    except (KeyError, RuntimeError, ValueError) as exc:
        _err(str(exc.args[0]) if exc.args else str(exc))
        sys.exit(EXIT_ALL_FAILED)

    with contextlib.ExitStack() as stack:
        json_w = stack.enter_context(JsonLinesWriter(json_path)) if json_path else None
        csv_w = stack.enter_context(CsvWriter(csv_path, CSV_HEADER)) if csv_path else None

        def handle(src, fr, want_image: bool):
            res = est.process(fr.image, src.name, fr.index)

            def write():
                if json_w is not None:
                    json_w.write(res.to_dict())
                if csv_w is not None:
                    for row in _csv_rows(res):
                        csv_w.write(row)

            return write, annotate(fr.image, res.heads, style=draw) if want_image else None

        code = run_frames(expanded, n_failed, handle, save_dir, show, quiet, "headpose")
    sys.exit(code)


def expand_or_exit(sources, show: bool) -> tuple[list, int, bool]:
    """Expand SOURCES (each bad one named on stderr); exit 2 when none is left. Returns (sources, n_bad, show)."""
    from .io import InputError, expand_sources

    expanded, n_failed = [], 0
    for spec in sources:
        try:
            expanded.extend(expand_sources(spec))
        except InputError as exc:
            _err(str(exc))
            n_failed += 1
    if not expanded:
        sys.exit(EXIT_ALL_FAILED)
    if show and not _has_display():
        _err("--show ignored: no display")
        show = False
    return expanded, n_failed, show


def run_frames(expanded, n_failed: int, handle, save_dir, show: bool, quiet: bool, window: str) -> int:
    """The frame loop shared by ``predict`` and ``interact``; returns the exit status.

    ``handle(source, frame, want_image)`` processes one frame and returns
    ``(write, image)``: a function writing its records, and the annotated RGB image
    (or None unless ``want_image``). A frame's records, image and video frame are
    written together with Ctrl-C held back, so the outputs always agree. Annotated images and
    videos go under ``save_dir``; one bad input never stops the others; Ctrl-C
    keeps every finished frame (the callers' writers commit on KeyboardInterrupt).
    """
    from tqdm import tqdm

    from .io import count_frames

    names = _SaveNames(save_dir) if save_dir else None
    n_ok, interrupted = 0, False
    with tqdm(total=count_frames(expanded), unit="frame", disable=quiet, dynamic_ncols=True, file=sys.stderr) as bar:
        try:
            for src in expanded:
                ok = _run_source(src, handle, names, show, bar, window)
                n_ok += ok
                n_failed += not ok
        except KeyboardInterrupt:
            interrupted = True
    if show:
        import cv2

        cv2.destroyAllWindows()
    if interrupted:
        _err("interrupted; the outputs hold every frame finished before")
        return EXIT_INTERRUPTED
    return EXIT_OK if n_failed == 0 else EXIT_SOME_FAILED if n_ok else EXIT_ALL_FAILED


@contextlib.contextmanager
def _hold_interrupt():
    """Defer Ctrl-C (SIGINT) to the end of the block (main thread only; elsewhere a no-op)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *a: caught.append(a))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


def _run_source(src, handle, names, show, bar, window: str) -> bool:
    """Process every frame of one source; True when it was processed without error."""
    import cv2

    from .io import VideoWriter, atomic_write_image

    n_frames, failed = 0, False
    with contextlib.ExitStack() as stack:
        video = None
        try:
            for fr in src.frames():
                bar.update(1)
                if fr.error:
                    _err(fr.error)
                    failed = True
                    continue
                write, vis = handle(src, fr, names is not None or show)
                n_frames += 1
                with _hold_interrupt():
                    write()
                    if names is not None and vis is not None and src.kind in ("video", "camera"):
                        if video is None:
                            video = stack.enter_context(VideoWriter(names(src.name, ".mp4"), fps=fr.fps or 25.0))
                        video.write(vis)
                    elif names is not None and vis is not None:
                        atomic_write_image(names(src.name, ".jpg"), vis)
                if show and vis is not None:
                    cv2.imshow(window, cv2.cvtColor(vis, cv2.COLOR_RGB2BGR))
                    if cv2.waitKey(1) & 0xFF == ord("q"):
                        break
        except Exception as exc:  # one bad input never stops the others (Ctrl-C is no Exception: it propagates)
            _err(f"{src.name}: {exc}")
            return False
    return n_frames > 0 and not failed


def _dataset_kinds() -> list[str]:
    from .datasets import DATASETS

    return DATASETS.names()


@cli.command()
@click.option("--dataset", "kind", type=click.Choice(_dataset_kinds()), default="aflw2000", show_default=True, help="Dataset format.")
@click.option("--root", type=click.Path(exists=True, path_type=Path), required=True, help="Dataset folder (or file, for csv / biwi-npz).")
@click.option("--model", "model_name", default="default", show_default=True, help="Model to score (`headpose models` lists them).")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Weights file for --model.")
@click.option("--crop", type=click.Choice(["gt", "detect"]), default="gt", show_default=True, help="gt: faces cut from the labels with the model's own recipe; detect: our detector on the full image. (Keypoint networks: see --keypoints.)")
@click.option("--keypoints", "keypoints", default=None, metavar="SOURCE", help="Keypoint networks (hhpnet, heatmap-cnn): pose, blazeface or facemesh run on the full image, or 'labels' (the dataset's labelled landmarks). [default: facemesh]")
@click.option("--detector", default=None, help="Face detector for --crop detect, or of the blazeface / facemesh keypoint sources (default: the pipeline's).")
@click.option("--landmarker", default="facemesh", show_default=True, help="Landmarker of the default model.")
@click.option("--pose", "pose_name", default=None, help="Pose stage of the default model. [default: hopenet-synth; also fsanet-synth; geometric: a rigid fit of the landmarks]")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1), help="Crops per model call (results do not depend on it).")
@click.option("--no-filter", is_flag=True, help="Keep faces beyond +-99 deg (the standard filter drops them).")
@click.option("--split", default=None, help="Score only a named split, e.g. protocol2-test (BIWI Protocol 2's 8 test videos).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the result as JSON.")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False, path_type=Path), help="Write PNG plots here: error vs |yaw|, histograms, worst cases.")
@click.option("--per-image", is_flag=True, help="Include every face's label and prediction in the JSON (keep such files out of public repositories: they copy the dataset's labels).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def evaluate(kind, root, model_name, weights, crop, keypoints, detector, landmarker, pose_name, batch_size, no_filter, split, json_path, plots_dir, per_image, quiet) -> None:
    """Score a model on a labelled dataset: MAE per angle, MAEV, geodesic error, share within 5/10/15 deg.

    Faces outside +-99 deg are dropped (the standard filter) and counted; with
    --crop detect, faces the detector misses are counted and left out of the
    errors. Every result states its image count and crop recipe.

    Keypoint networks (--model hhpnet: our shipped weights without --weights) run
    behind a keypoint source (--keypoints); the source's head that overlaps the
    labelled face most (IoU >= 0.2) is scored, the others count as missed. Models
    with a sigma also report the share of errors within +-1 and +-2 sigma (a
    calibrated sigma gives 68.3 % and 95.4 %).

    \b
    Examples:
      headpose evaluate --root data/AFLW2000 --crop gt --json aflw_gt.json --plots plots/
      headpose evaluate --dataset biwi --root data/hpdb --split protocol2-test --model onnx --weights biwi.onnx
      headpose evaluate --dataset csv --root my_faces.csv
      headpose evaluate --root data/AFLW2000 --model hhpnet --keypoints blazeface --json hhp.json
    """
    from .datasets import DatasetError, SplitView, open_dataset
    from .evaluate import evaluate as run_evaluation
    from .io import atomic_write_bytes
    from .predictors import load_model

    try:
        data = open_dataset(f"{kind}:{root}", standard_filter=not no_filter)
        if split:
            data = SplitView(data, split, kind)
        if keypoints is not None:
            from .keypoints import KEYPOINT_SOURCES, LABELS

            if keypoints != LABELS:
                KEYPOINT_SOURCES.get(keypoints)  # a typo fails here, before any model loads
        model = load_model(model_name, weights=weights, detector=detector, landmarker=landmarker, pose=pose_name)
        if getattr(model, "takes_keypoints", False):
            from .keypoints import DEFAULT_SOURCE

            keypoints = keypoints or DEFAULT_SOURCE
            if keypoints == "pose" and detector is not None:
                raise ValueError("the pose keypoint source has its own person detector: leave --detector out")
        elif keypoints is not None:
            raise ValueError(f"--keypoints is for keypoint networks (hhpnet, heatmap-cnn); {getattr(model, 'name', model_name)!r} reads images")
    except (DatasetError, KeyError, RuntimeError, ValueError, OSError) as exc:
        _err(str(exc.args[0]) if exc.args else str(exc))
        sys.exit(EXIT_ALL_FAILED)
    res = run_evaluation(
        model, data, crop=crop, name=f"{kind}:{split}" if split else kind, batch_size=batch_size, detector=detector, progress=not quiet, keypoints=keypoints
    )
    d = res.to_dict(per_image=per_image)
    for f in res.failures:
        _err(f)
    filt = "no angle filter" if no_filter else f"after the +-99 deg filter ({d['n_filtered_out']} dropped)"
    how = f"keypoints {keypoints}" if keypoints else f"crop {crop} ({d['crop_recipe']})"
    click.echo(f"{kind}: {d['n_images']} faces {filt}, {d['n_failed']} unreadable; model {d['model']}, {how}")
    click.echo(f"scored {d['n_detected']}, missed {d['n_missed']}")

    def f(v):
        return "  -  " if v is None or v != v else f"{v:5.2f}"

    m, u = d["mae"], d["mae_unwrapped"]
    click.echo(f"MAE  yaw {f(m['yaw'])}  pitch {f(m['pitch'])}  roll {f(m['roll'])}  mean {f(m['mean'])}   (unwrapped mean {f(u['mean'])})")
    if d["maev"] == d["maev"]:
        click.echo(f"MAEV {d['maev']:.2f}  geodesic {d['geodesic']:.2f}  within 5/10/15 deg: " + " / ".join(f"{100 * v:.1f}%" for v in d["within"].values()))
    for k, v in d["by_abs_yaw"].items():
        click.echo(f"  |yaw| {k:>7s}: n={v['n']:5d}  MAE {f(v['mae'])}  yaw MAE {f(v['mae_yaw'])}")
    cov = d.get("sigma_coverage")
    if cov:
        from .calibration import GAUSS_1SIGMA, GAUSS_2SIGMA

        def pct(v):
            return "  -  " if v is None else f"{100 * v:4.1f}%"

        for z, key, g in ((1, "within_1sigma", GAUSS_1SIGMA), (2, "within_2sigma", GAUSS_2SIGMA)):
            c = cov[key]
            click.echo(f"within +-{z} sigma  yaw {pct(c['yaw'])}  pitch {pct(c['pitch'])}  roll {pct(c['roll'])}   (Gaussian {100 * g:.1f}%)")
    try:
        if plots_dir:
            from .plots import write_plots

            for p in write_plots(res, plots_dir):
                click.echo(f"wrote {p}")
        if json_path:
            d["command"] = " ".join(["headpose"] + sys.argv[1:])
            atomic_write_bytes(json_path, _dumps(d).encode())
    except OSError as exc:
        _err(f"cannot write results: {exc}")
        sys.exit(EXIT_ALL_FAILED)
    sys.exit(EXIT_OK if d["n_detected"] else EXIT_ALL_FAILED)


def _dumps(d: dict) -> str:
    """JSON with NaN written as null (strict JSON has no NaN)."""
    import json
    import math

    def clean(o):
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        return o

    return json.dumps(clean(d), indent=1)


def _need_torch(what: str) -> None:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        _err(f"{what} needs PyTorch: pip install 'openheadpose[torch]'")
        sys.exit(EXIT_ALL_FAILED)


@cli.command()
@click.argument("kind", type=click.Choice(["fsanet", "hopenet", "hhpnet"]))
@click.argument("src", type=click.Path(exists=True, path_type=Path))
@click.argument("dst", type=click.Path(dir_okay=False, path_type=Path))
def convert(kind, src, dst) -> None:
    """Convert an original checkpoint into an openheadpose model (.onnx to run, .pt to train on).

    \b
    fsanet   official FSA-Net Keras .h5 (any variant, either protocol); a folder of
             the three capsule models gives the Caps-Fusion ensemble
    hopenet  Hopenet / HopelessNet .pkl snapshots (ResNet, SqueezeNet, MobileNetV2)
    hhpnet   official HHP-Net TensorFlow SavedModel folders

    \b
    Examples:
      headpose convert fsanet 300W_LP_models/fsanet_capsule_3_16_2_21_5/fsanet_capsule_3_16_2_21_5.h5 capsule.onnx
      headpose convert fsanet 300W_LP_models capsfusion.onnx
      headpose convert hopenet squeezenet_1_0.pkl hopelessnet.onnx
      headpose convert hhpnet model_w300_biwi hhpnet.onnx
    """
    _need_torch("convert")
    if dst.suffix.lower() not in (".onnx", ".pt"):
        _err(f"{dst}: the output must end in .onnx (to run) or .pt (to train on)")
        sys.exit(EXIT_ALL_FAILED)
    from .convert import CONVERTERS

    try:
        out = CONVERTERS[kind](src, dst)
    except (ValueError, KeyError, OSError, ImportError) as exc:  # the importers' messages name the file
        _err(str(exc.args[0]) if exc.args else str(exc))
        sys.exit(EXIT_ALL_FAILED)
    click.echo(f"wrote {out or dst}")


@cli.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(dir_okay=False, path_type=Path))
def export(checkpoint, dst) -> None:
    """Export an openheadpose checkpoint (.pt, from `headpose train` or `convert`) to ONNX with its metadata.

    \b
    Example:
      headpose export runs/fsanet/best.pt fsanet.onnx
      headpose predict photo.jpg --model onnx --weights fsanet.onnx
    """
    _need_torch("export")
    from .models import create_model, load_checkpoint
    from .models.export import export_onnx

    try:
        _, spec = load_checkpoint(checkpoint)
        model = create_model(spec.name, weights=checkpoint)
        export_onnx(model, dst)
    except (ValueError, KeyError, OSError) as exc:
        _err(f"{checkpoint}: {exc.args[0] if exc.args else exc}")
        sys.exit(EXIT_ALL_FAILED)
    click.echo(f"wrote {dst}")


@cli.command()
def models() -> None:
    """List everything that can be chosen by name: pipeline stages, networks, crop recipes, datasets."""
    import importlib.util

    from .crops import CROPS
    from .datasets import DATASETS
    from .detectors import DETECTORS
    from .landmarks import LANDMARKERS
    from .pipeline import default_detector
    from .pose import POSE_ESTIMATORS

    for title, reg in (("detectors", DETECTORS), ("landmarkers", LANDMARKERS), ("pose estimators", POSE_ESTIMATORS), ("datasets", DATASETS)):
        click.echo(f"{title}:")
        for name, text in reg.describe().items():
            click.echo(f"  {name:18s} {text}")
    click.echo(f"default detector here: {default_detector()}")
    click.echo("crop recipes:")
    for name in CROPS.names():
        click.echo(f"  {name:18s} {CROPS[name].reference.split(';')[0].split('. ')[0]}")
    if importlib.util.find_spec("torch") is None:
        click.echo("networks: install PyTorch (pip install 'openheadpose[torch]') to list, train and export them")
        return
    from .models import MODELS, list_models

    click.echo("networks (--model NAME --weights FILE.onnx; train/export need PyTorch):")
    for name in list_models():
        sp = MODELS[name].spec
        p = sp.preprocessing
        click.echo(f"  {name:26s} codec {sp.codec:15s} input {p.input_size} {p.channels:9s} crop {p.crop}")


def _register_train() -> None:
    from .train.cli import train  # imports only click here; torch when the command runs

    cli.add_command(train)


_register_train()


def _register_interact() -> None:
    from .interact_cli import interact  # after cli exists: it reuses the helpers above

    cli.add_command(interact)


_register_interact()


def _register_synth() -> None:
    from .synth.cli import synth

    cli.add_command(synth)


_register_synth()


def main() -> None:
    cli(prog_name="headpose")


if __name__ == "__main__":
    main()
