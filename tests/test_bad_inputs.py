"""What a new user and a fuzzer found (issue 31): one pixel guard everywhere, quiet stderr, honest exit
codes, discoverable models, faithful outputs, no leftovers, and outputs that never harm their target.

Every bad input is made here, small: the decompression bomb is a PNG header claiming 30000 x 30000
pixels over a few kilobytes of zlib data, never a large file in the repository. Special output paths
are made in temporary folders (``os.mkfifo``; ``os.mknod`` for a character device, as root only):
never the real ``/dev/null``.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

PY = sys.executable


def png_bomb(width: int = 30000, height: int = 30000, rows: int = 64) -> bytes:
    """A valid PNG header claiming ``width`` x ``height`` RGB pixels, with ``rows`` rows of zeros compressed."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    idat = zlib.compress(b"\0" * (width * 3 + 1) * rows, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))  # fmt: skip


def run_cli(*args, env=None, timeout=300):
    # the library log levels an in-process CLI call (CliRunner, in other tests) may have set here: a child
    # would take them for the user's, which --verbose keeps
    e = {k: v for k, v in os.environ.items() if k not in ("OPENCV_LOG_LEVEL", "OPENCV_FFMPEG_LOGLEVEL")}
    e.update(env or {})
    return subprocess.run([PY, "-m", "openheadpose.cli", *map(str, args)], capture_output=True, text=True, timeout=timeout, env=e)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A good photo, a bomb, a PNG with a broken ancillary chunk, an mp4 without its index, a text file named .jpg."""
    from skimage.data import astronaut

    d = tmp_path_factory.mktemp("bad-inputs")
    good = cv2.cvtColor(cv2.resize(astronaut(), (256, 256), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(d / "good.png"), good)
    (d / "bomb.png").write_bytes(png_bomb())
    ok, buf = cv2.imencode(".png", good)
    data = bytearray(buf.tobytes())
    # an iCCP-like ancillary chunk with a wrong CRC after IHDR: libpng warns ("libpng warning: ...") and decodes
    bad = bytes(data[:33]) + struct.pack(">I", 4) + b"tEXt" + b"a\0bc" + b"\0\0\0\0" + bytes(data[33:])
    (d / "badcrc.png").write_bytes(bad)
    w = cv2.VideoWriter(str(d / "full.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(10):  # noise: frames big enough that half the file ends inside the data, before the index
        w.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    w.release()
    full = (d / "full.mp4").read_bytes()
    (d / "nomoov.mp4").write_bytes(full[: len(full) // 2])  # mp4v puts its index last: cut, it has none
    (d / "full.mp4").unlink()
    (d / "text.jpg").write_text("not an image\n")
    return d


# --------------------------------------------------------------------------- 1. the pixel guard


def test_bomb_refused_from_its_header_with_little_memory(inputs):
    """read_image refuses the 30000 x 30000 bomb before decoding: under 400 MB peak (decoding it takes 2.7 GB)."""
    # ru_maxrss also counts the memory the child had before exec (this pytest process's, copied by fork),
    # so the peak of the child's own address space (VmHWM, Linux) is used where there is one
    code = (
        "import resource, sys\n"
        "from openheadpose.io import read_image, TooManyPixels\n"
        "try:\n    read_image(sys.argv[1])\nexcept TooManyPixels as exc:\n    print(exc)\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n    peak = int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])\n"
        "except (OSError, StopIteration):\n    pass\n"
        "print(peak)\n"
    )
    r = subprocess.run([PY, "-c", code, str(inputs / "bomb.png")], capture_output=True, text=True, timeout=120)
    msg, peak_kb = r.stdout.strip().splitlines()
    assert "bomb.png: 30000x30000 pixels (900 megapixels) is over the limit of 100 megapixels" in msg, r.stdout + r.stderr
    assert "--max-pixels" in msg and "OPENHEADPOSE_MAX_PIXELS" in msg
    assert int(peak_kb) < 400_000, peak_kb  # Python + numpy + OpenCV + Pillow import to ~150 MB; the pixels would be 2.7 GB


def test_reduced_decode_keeps_the_limit_and_the_geometry(tmp_path, monkeypatch):
    """The folder stream's reduced JPEG decode (issue 32) reads the header through the same guard:
    a photo over the limit is refused, not decoded small; under it, 1/4 of a 2048 px JPEG is 512 px."""
    from openheadpose.io import TooManyPixels
    from openheadpose.io.images import read_image_reduced

    img = np.random.default_rng(0).integers(0, 255, (1536, 2048, 3), dtype=np.uint8)
    path = tmp_path / "big.jpg"
    assert cv2.imwrite(str(path), img)
    reduced, factor = read_image_reduced(path, 500)
    assert factor == 4 and reduced.shape == (384, 512, 3)
    monkeypatch.setenv("OPENHEADPOSE_MAX_PIXELS", "3M")  # 2048 x 1536 = 3.1 megapixels
    with pytest.raises(TooManyPixels, match="over the limit of 3 megapixels"):
        read_image_reduced(path, 500)


def test_limit_from_env_and_setter(inputs, monkeypatch):
    from openheadpose.io import InputError, TooManyPixels, read_image, set_max_pixels
    from openheadpose.io.limits import DEFAULT_MAX_PIXELS, max_pixels

    assert max_pixels() == DEFAULT_MAX_PIXELS == 100_000_000
    monkeypatch.setenv("OPENHEADPOSE_MAX_PIXELS", "0.06M")  # 60,000 < 256 x 256
    with pytest.raises(TooManyPixels, match=r"256x256 pixels \(0.065536 megapixels\) is over the limit of 0.06 megapixels"):
        read_image(inputs / "good.png")
    set_max_pixels("70000")  # the option wins over the variable
    try:
        assert read_image(inputs / "good.png").shape == (256, 256, 3)
    finally:
        set_max_pixels(None)
    monkeypatch.setenv("OPENHEADPOSE_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="OPENHEADPOSE_MAX_PIXELS"):
        max_pixels()
    monkeypatch.delenv("OPENHEADPOSE_MAX_PIXELS")
    with pytest.raises(InputError, match="no JPEG, PNG, BMP, TIFF or WebP header"):
        read_image(inputs / "text.jpg")
    assert read_image(inputs / "badcrc.png").shape == (256, 256, 3)  # Pillow refuses its header; its IHDR still gives the size


def test_service_refuses_with_the_same_words(inputs):
    from openheadpose.io.limits import over_limit_message
    from openheadpose.serve.errors import ApiError
    from openheadpose.serve.images import check_header

    with pytest.raises(ApiError) as info:
        check_header((inputs / "bomb.png").read_bytes(), "bomb.png", 40_000_000)
    assert info.value.status == 413 and info.value.message == over_limit_message("bomb.png", 30000, 30000, 40_000_000)
    assert "decompression bomb DOS" not in info.value.message  # Pillow's words no longer leak


def test_api_stream_and_video_frames_share_the_guard(inputs, estimator):
    from openheadpose.io.limits import check_pixels

    res = list(estimator.stream([str(inputs / "bomb.png"), str(inputs / "good.png")]))
    assert "over the limit of 100 megapixels" in res[0].error and res[1].ok and len(res[1].heads) == 1
    with pytest.raises(Exception, match="clip.mp4: 20000x20000 pixels"):
        check_pixels("clip.mp4", 20000, 20000)


# --------------------------------------------------------------------------- 1-3, 6: one CLI run over every bad input


def test_cli_bad_inputs_quiet_stderr_exit_and_outputs(inputs, tmp_path):
    out = tmp_path / "out"
    names = ["good.png", "bomb.png", "badcrc.png", "nomoov.mp4", "text.jpg"]
    r = run_cli("predict", *(inputs / n for n in names), "7", "--save", out, "--json", tmp_path / "h.jsonl", "--csv", tmp_path / "h.csv", "-q")
    assert r.returncode == 1, r.stderr  # some failed
    lines = r.stderr.strip().splitlines()
    assert all(line.startswith("headpose: ") for line in lines), r.stderr  # no libpng / FFmpeg / OpenCV lines
    assert sum("bomb.png" in line and "over the limit" in line for line in lines) == 1
    assert any("nomoov.mp4: cannot open video" in line for line in lines)
    assert any("camera:7" in line for line in lines) and any("text.jpg" in line for line in lines)
    assert sorted(p.name for p in out.iterdir()) == ["badcrc.png", "good.png"]  # PNG stays PNG
    recs = [json.loads(x) for x in (tmp_path / "h.jsonl").read_text().splitlines()]
    assert [Path(x["source"]).name for x in recs] == ["good.png", "badcrc.png"]
    assert not list(tmp_path.glob(".*.part")) and not list(out.glob(".*"))

    v = run_cli("predict", inputs / "nomoov.mp4", inputs / "badcrc.png", "--verbose", "-q")
    assert "moov atom not found" in v.stderr and "libpng" in v.stderr  # --verbose gives the libraries' lines back


def test_cli_all_failed_writes_nothing(inputs, tmp_path):
    """Exit 2 (nothing read) leaves --json and --csv as they were, whether the input is missing or unreadable."""
    old = tmp_path / "h.jsonl"
    old.write_text("kept\n")
    for bad in (inputs / "bomb.png", tmp_path / "missing.png"):
        r = run_cli("predict", bad, "--json", old, "--csv", tmp_path / "h.csv", "-q")
        assert r.returncode == 2, r.stderr
        assert old.read_text() == "kept\n" and not (tmp_path / "h.csv").exists()
        assert not list(tmp_path.glob(".*"))


def test_truncated_video_exits_1_and_keeps_its_frames(tmp_path):
    """run_frames: a video cut short (a frame-less warning) is a failure (1), its frames are still written."""
    from openheadpose.cli._common import EXIT_ALL_FAILED, EXIT_OK, EXIT_SOME_FAILED, run_frames
    from openheadpose.inference.results import FrameResult, Heads
    from openheadpose.io import Source

    class Fake:
        def __init__(self, warn: str | None, kind: str):
            self.warn, self.kind = warn, kind

        def stream(self, src, keep_images=True):
            for i in range(3):
                yield FrameResult(src.name, i, 8, 8, Heads.empty(), image=np.zeros((8, 8, 3), np.uint8))
            if self.warn:
                yield FrameResult(src.name, 3, 0, 0, Heads.empty(), warning=f"{src.name}: {self.warn}")

    written = []

    def handle(res, want):
        return (lambda: written.append(res.frame)), None

    def code(est, kind):
        src = Source(f"x.{'mp4' if kind == 'video' else 'cam'}", kind, path=Path("x.mp4"), camera=0)
        return run_frames(est, [src], 0, handle, None, False, True, "t")

    assert code(Fake(None, "video"), "video") == EXIT_OK
    assert code(Fake("read 3 of the 6 frames its header promises", "video"), "video") == EXIT_SOME_FAILED
    assert code(Fake("dropped 2 of 3 frames", "camera"), "camera") == EXIT_OK  # a camera's drops are no failure
    assert written == [0, 1, 2] * 3
    assert EXIT_ALL_FAILED == 2


def test_truncated_video_source_says_so(media, tmp_path):
    """The issue's case: an mp4 with its index first, cut in half, reads fewer frames than promised."""
    from openheadpose.io import expand_sources

    data = (media / "WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "half.mp4"
    cut.write_bytes(data[: len(data) // 2])
    frames = list(expand_sources(str(cut))[0].frames())
    assert frames[-1].warning and "of the 472 frames its header promises" in frames[-1].warning
    assert 100 < len(frames) - 1 < 472


# --------------------------------------------------------------------------- 4. models


def test_models_listed_without_torch():
    code = "import sys; sys.modules['torch'] = None\nfrom openheadpose.cli import main\nsys.argv = ['headpose', 'models']\nmain()"
    r = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for name in ("default", "hopenet-synth", "fsanet-synth", "realheponet", "hhpnet", "heatmap-cnn", "fsanet", "hopenet", "onnx"):
        assert f"\n  {name} " in r.stdout, name
    assert "needs --weights" in r.stdout and "install PyTorch" in r.stdout


def test_unknown_model_named_with_a_close_match():
    from openheadpose.inference.builder import build_estimator
    from openheadpose.inference.model_names import is_known
    from openheadpose.serve.config import ServeConfig
    from openheadpose.serve.engine import EstimatorCache
    from openheadpose.serve.errors import ApiError

    with pytest.raises(KeyError, match=r"unknown model 'hopenet-synt'; choose from default, .*\(did you mean 'hopenet-synth'\?\)"):
        build_estimator("hopenet-synt")
    cache = EstimatorCache(ServeConfig())
    for name, words in (("nope", "unknown model 'nope'; choose from"), ("fsanet", "needs a weights file, which a request cannot send")):
        with pytest.raises(ApiError) as info:
            cache.get(cache.key({"model": name}))
        assert info.value.status == 422 and words in info.value.message
    assert all(is_known(n) for n in ("fsanet", "fsanet-capsule", "hopenet-resnet50", "rot6d", "onnx"))
    r = run_cli("predict", "example:astronaut", "--model", "nope", "-q")
    assert r.returncode == 2 and "unknown model 'nope'; choose from" in r.stderr and "needs --weights" not in r.stderr


def test_registered_names_match_the_torch_registry():
    pytest.importorskip("torch")
    from openheadpose.inference.model_names import REGISTERED
    from openheadpose.models import list_models

    assert sorted(REGISTERED) == sorted(list_models())


# --------------------------------------------------------------------------- 5. faithful outputs


def test_video_writer_h264_when_pyav_else_mp4v(tmp_path, monkeypatch):
    from openheadpose.io import VideoWriter
    from openheadpose.io import writers

    frames = [np.full((47, 63, 3), 10 * i, np.uint8) for i in range(12)]  # odd size: padded for yuv420p
    if writers.h264_available():
        with VideoWriter(tmp_path / "a.mp4", fps=12, bit_rate=200_000) as w:
            for f in frames:
                w.write(f)
        assert w.codec == "h264"
        cap = cv2.VideoCapture(str(tmp_path / "a.mp4"))
        assert int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").lower() in (b"h264", b"avc1")
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    monkeypatch.setattr(writers, "h264_available", lambda: False)
    with VideoWriter(tmp_path / "b.mp4", fps=12) as w:
        for f in frames:
            w.write(f)
    assert w.codec == "mp4v" and int(cv2.VideoCapture(str(tmp_path / "b.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == 12


def _heads(box, yaw=20.0, pitch=-10.0, roll=5.0):
    from openheadpose.core.rotation import euler_to_matrix
    from openheadpose.inference.results import Heads

    return Heads(np.array([box], float), np.array([0.9]), euler_to_matrix(yaw, pitch, roll)[None], sigma=np.array([[4.0, 5.0, 2.0]]),
                 track_ids=np.array([0]))  # fmt: skip


def test_label_fits_a_small_photo_and_spares_the_arrowheads():
    from openheadpose.inference.draw import _label_size, annotate, font_scale, place_labels, project_axes, wrap_label

    img = np.zeros((112, 112, 3), np.uint8)
    heads = _heads([30, 25, 82, 90])
    out = annotate(img, heads)
    changed = np.argwhere(np.any(out != img, axis=2))
    assert len(changed)  # something drawn, and every label line wrapped or scaled to fit the width
    assert all(_label_size([line], 0.25, 1)[0] <= 112 for line in wrap_label("#0 y+20~4 p-10~5 r+5~2", 0.25, 1, 112))
    # a label placed by place_labels with the arrowheads to avoid covers none of them when there is room
    tips = project_axes(heads.rotations[0], (256, 256), 60)
    avoid = np.array([[x - 6, y - 6, x + 6, y + 6] for x, y in tips])
    size = _label_size(["#0 y+20~4 p-10~5 r+5~2"], font_scale(np.zeros((512, 512, 3))), 1)
    corner = place_labels(np.array([[200.0, 200, 312, 312]]), [size], (512, 512), avoid=avoid)[0]
    rect = np.array([*corner, corner[0] + size[0], corner[1] + size[1]])
    assert not any((rect[0] < a[2] and a[0] < rect[2] and rect[1] < a[3] and a[1] < rect[3]) for a in avoid)


def test_legends():
    from openheadpose.apps.interaction import INTERACTION_LEGEND, InteractionConfig, draw_interaction, find_interactions
    from openheadpose.inference.draw import POSE_LEGEND, annotate

    img = np.full((600, 800, 3), 128, np.uint8)
    heads = _heads([300, 100, 420, 240])
    plain, with_legend = annotate(img, heads), annotate(img, heads, legend=True)
    bottom = slice(540, 600)
    assert np.array_equal(plain[bottom], img[bottom]) and not np.array_equal(with_legend[bottom], img[bottom])
    assert "~ 1 sigma" in POSE_LEGEND and "disc" in INTERACTION_LEGEND[0]
    inter = find_interactions(heads, (800, 600), InteractionConfig())
    assert not np.array_equal(draw_interaction(img, heads, inter, legend=True)[bottom], draw_interaction(img, heads, inter)[bottom])


# --------------------------------------------------------------------------- 6. leftovers


def test_stale_part_files_of_dead_runs_removed(tmp_path):
    from openheadpose.io import JsonLinesWriter, VideoWriter

    dead = tmp_path / ".h.jsonl.999999999-ab12.part"  # no such process
    live = tmp_path / f".h.jsonl.{os.getppid()}-cd34.part"  # a running one: never touched
    other = tmp_path / ".x.jsonl.999999999-ef56.part"  # another output's
    for p in (dead, live, other):
        p.write_text("{")
    with JsonLinesWriter(tmp_path / "h.jsonl") as w:
        w.write({"a": 1})
    assert not dead.exists() and live.exists() and other.exists()
    old_video = tmp_path / ".v.part.mp4"  # earlier versions' fixed name
    old_video.write_bytes(b"half")
    with VideoWriter(tmp_path / "v.mp4", fps=5) as w:
        w.write(np.zeros((16, 16, 3), np.uint8))
    assert not old_video.exists() and (tmp_path / "v.mp4").stat().st_size > 0


def test_no_heads_sigma_is_an_empty_array():
    from openheadpose.inference.results import Heads

    assert Heads.empty().sigma.shape == (0, 3)


# --------------------------------------------------------------------------- 7. special output paths


def test_fifo_written_through_never_replaced(tmp_path):
    from openheadpose.io import JsonLinesWriter, atomic_write_bytes

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for write in (lambda: _jsonl(JsonLinesWriter, fifo), lambda: atomic_write_bytes(fifo, b'{"a":1}\n')):
        got = []
        reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
        reader.start()
        write()
        reader.join(10)
        assert got == [b'{"a":1}\n'] and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["fifo"]


def _jsonl(cls, path):
    with cls(path) as w:
        w.write({"a": 1})


def test_symlink_target_replaced_link_kept(tmp_path):
    from openheadpose.io import CsvWriter, atomic_write_image

    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "h.csv"
    target.write_text("old\n")
    link = tmp_path / "h.csv"
    link.symlink_to(target)
    with CsvWriter(link, ["a"]) as w:
        w.write([1])
    assert link.is_symlink() and target.read_text() == "a\n1\n"
    dangling = tmp_path / "pic.png"
    dangling.symlink_to(tmp_path / "data" / "new.png")
    atomic_write_image(dangling, np.zeros((4, 4, 3), np.uint8))
    assert dangling.is_symlink() and (tmp_path / "data" / "new.png").stat().st_size > 0
    assert sorted(os.listdir(tmp_path / "data")) == ["h.csv", "new.png"]  # no temporary file left in either folder


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="making a character device needs root")
def test_char_device_written_through_never_replaced(tmp_path):
    """A private copy of /dev/null (major 1, minor 3), made in a temporary folder: never the real one."""
    from openheadpose.io import CsvWriter, JsonLinesWriter, atomic_write_bytes

    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    with JsonLinesWriter(null) as w:
        w.write({"a": 1})
    with CsvWriter(null, ["a"]) as w:
        w.write([1])
    atomic_write_bytes(null, b"x")
    assert stat.S_ISCHR(os.lstat(null).st_mode) and os.listdir(tmp_path) == ["null"]


def test_link_to_proc_fd_written_through(tmp_path):
    """``/dev/stdout`` is a link to ``/proc/self/fd/1``: the same link, made in a temporary folder
    (a regression must never be able to replace the real one)."""
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    code = f"from openheadpose.io import JsonLinesWriter\nwith JsonLinesWriter({str(link)!r}) as w:\n    w.write({{'b': 3}})\n"
    r = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == '{"b":3}\n', r.stderr
    assert link.is_symlink() and os.listdir(tmp_path) == ["stdout"]


# --------------------------------------------------------------------------- 8. evaluate --crop detect


def test_boxless_label_matches_the_surest_head():
    from openheadpose.evaluation.evaluate import match_face

    boxes = np.array([[52.8, 183.6, 304.0, 477.0]])  # a 45-degree face in a 512 x 512 photo: IoU 0.28 with the image
    assert match_face(boxes, np.array([0.93]), np.array([0, 0, 512, 512.0]), (512, 512, 3), 0.3) == 0
    assert match_face(boxes, np.array([0.93]), np.array([400, 0, 512, 100.0]), (512, 512, 3), 0.3) is None


def test_ray_unit_marks_a_cut_video_short(tmp_path):
    """--engine ray's units tell a video cut short (its frames kept, exit 1) from a whole one, as run_frames does."""
    pytest.importorskip("pyarrow")
    from openheadpose.inference.results import FrameResult, Heads
    from openheadpose.scale.ray_engine import process_unit
    from openheadpose.scale.units import WorkUnit

    class Fake:
        def stream(self, src, keep_images=True):
            yield FrameResult(src.name, 0, 8, 8, Heads.empty())
            yield FrameResult(src.name, 1, 0, 0, Heads.empty(), warning=f"{src.name}: read 1 of the 4 frames its header promises")

    unit = WorkUnit(0, "video", (("cut.mp4", "video", str(tmp_path / "cut.mp4")),))
    meta = process_unit(Fake(), unit, tmp_path)
    assert meta["status"] == {"cut.mp4": "short"} and meta["frames"] == 1 and len(meta["warnings"]) == 1
