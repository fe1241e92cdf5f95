"""Tests for openheadpose.io: image decoding, source expansion, atomic writers."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from openheadpose.io.writers import CsvWriter, JsonLinesWriter, VideoWriter, atomic_write_bytes, atomic_write_image
from openheadpose.io.sources import Frame, count_frames, expand_sources
from openheadpose.io.images import InputError, OutputError, read_image


def _write_png(path, arr: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", arr)
    assert ok
    path.write_bytes(buf.tobytes())


def _write_video(path, n: int = 10, size=(64, 48), fps: float = 12.0) -> list[np.ndarray]:
    """Write ``n`` frames whose mean brightness encodes the frame number; return them (BGR)."""
    w, h = size
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert vw.isOpened()
    frames = []
    for i in range(n):
        f = np.full((h, w, 3), (20 * i) % 256, np.uint8)
        vw.write(f)
        frames.append(f)
    vw.release()
    return frames


def _read_video(path) -> tuple[int, float]:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return n, fps


# --------------------------------------------------------------------------- read_image
def test_read_image_color_is_rgb(tmp_path):
    bgr = np.zeros((5, 7, 3), np.uint8)
    bgr[..., 2] = 200  # red in OpenCV's BGR order
    _write_png(tmp_path / "red.png", bgr)
    img = read_image(tmp_path / "red.png")
    assert img.shape == (5, 7, 3) and img.dtype == np.uint8
    assert (img[..., 0] == 200).all() and (img[..., 1:] == 0).all()


def test_read_image_grayscale_becomes_three_channels(tmp_path):
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    _write_png(tmp_path / "g.png", gray)
    img = read_image(tmp_path / "g.png")
    assert img.shape == (4, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], gray)


def test_read_image_rgba_drops_alpha(tmp_path):
    rgba = np.zeros((3, 3, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)  # RGB
    rgba[..., 3] = 0  # fully transparent: the stored colour must survive (dropped, not composited)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = read_image(tmp_path / "a.png")
    assert img.shape == (3, 3, 3)
    assert tuple(img[1, 1]) == (10, 20, 30)


def test_read_image_16bit_png_is_shifted_not_clipped(tmp_path):
    g16 = np.array([[65535, 256, 255, 1000]], np.uint16)
    _write_png(tmp_path / "g16.png", g16)
    img = read_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(img[0, :, 0], [255, 1, 0, 3])


def test_read_image_16bit_color_tiff_is_shifted(tmp_path):
    c16 = np.array([[[65535, 511, 1000], [256, 255, 65280]]], np.uint16)  # BGR
    ok, buf = cv2.imencode(".tiff", c16)
    (tmp_path / "c16.tiff").write_bytes(buf.tobytes())
    img = read_image(tmp_path / "c16.tiff")
    np.testing.assert_array_equal(img, (c16 >> 8).astype(np.uint8)[..., ::-1])


def test_read_image_palette_png(tmp_path):
    pal = Image.new("P", (4, 2))
    pal.putpalette([200, 100, 50] + [0, 0, 0] * 255)
    pal.save(tmp_path / "p.png")
    img = read_image(tmp_path / "p.png")
    assert img.shape == (2, 4, 3)
    assert tuple(img[0, 0]) == (200, 100, 50)


def test_read_image_applies_exif_orientation(tmp_path):
    # Stored 40 wide x 20 tall with a bright left band; orientation 6 = "rotate 90° CW
    # to display", so the upright image is 20 wide x 40 tall with the band on top.
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :10] = 255
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    img = read_image(tmp_path / "rot.jpg")
    assert img.shape == (40, 20, 3)
    assert img[:8].mean() > 200 and img[-20:].mean() < 30


def test_read_image_unicode_path(tmp_path):
    p = tmp_path / "visage_été_头.png"
    _write_png(p, np.full((2, 3, 3), 7, np.uint8))
    assert read_image(p).shape == (2, 3, 3)


def _bad_input(kind: str, d):
    if kind == "missing":
        return d / "missing.jpg"
    if kind == "directory":
        return d
    p = d / f"{kind}.jpg"
    p.write_bytes(b"" if kind == "zero-byte" else b"hello, not a jpeg\n")
    return p


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("missing", "no such file"),
        ("directory", "is a directory"),
        ("zero-byte", "empty file"),
        ("text-named-jpg", "not a readable image"),
    ],
)
def test_read_image_errors_name_file_and_reason(tmp_path, kind, reason):
    path = _bad_input(kind, tmp_path)
    with pytest.raises(InputError) as ei:
        read_image(path)
    assert str(path) in str(ei.value)
    assert reason in str(ei.value)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_read_image_truncated_raises(tmp_path, ext):
    rng = np.random.default_rng(0)
    ok, buf = cv2.imencode(ext, rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    p = tmp_path / f"trunc{ext}"
    p.write_bytes(buf.tobytes()[:100])
    with pytest.raises(InputError, match="not a readable image"):
        read_image(p)


# --------------------------------------------------------------------------- sources
def _touch_image(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_png(path, np.zeros((2, 2, 3), np.uint8))


def test_expand_directory_recursive_sorted_and_filtered(tmp_path):
    for rel in ["b.png", "a.PNG", "sub/c.png", "sub/deeper/d.png", ".hidden.png", ".git/e.png"]:
        _touch_image(tmp_path / rel)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub" / "clip.mp4").write_bytes(b"")
    srcs = expand_sources(str(tmp_path))
    names = [os.path.relpath(s.name, tmp_path) for s in srcs]
    assert names == ["a.PNG", "b.png", "sub/c.png", "sub/clip.mp4", "sub/deeper/d.png"]
    assert [s.kind for s in srcs] == ["image", "image", "image", "video", "image"]


def test_expand_empty_directory_raises(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(InputError, match="no images or videos"):
        expand_sources(str(tmp_path))


def test_expand_glob_sorted(tmp_path):
    for name in ["img2.png", "img1.png", "other.png"]:
        _touch_image(tmp_path / name)
    srcs = expand_sources(str(tmp_path / "img?.png"))
    assert [os.path.basename(s.name) for s in srcs] == ["img1.png", "img2.png"]
    with pytest.raises(InputError, match="no image or video files match"):
        expand_sources(str(tmp_path / "nothing*.png"))


def test_expand_missing_path_raises(tmp_path):
    with pytest.raises(InputError, match="no such file or directory"):
        expand_sources(str(tmp_path / "nope.jpg"))


def test_expand_file_kinds(tmp_path):
    _touch_image(tmp_path / "x.jpeg")
    (tmp_path / "v.MOV").write_bytes(b"\0")
    (tmp_path / "doc.pdf").write_bytes(b"%PDF")
    assert [s.kind for s in expand_sources(str(tmp_path / "x.jpeg"))] == ["image"]
    assert [s.kind for s in expand_sources(str(tmp_path / "v.MOV"))] == ["video"]
    with pytest.raises(InputError, match="unsupported file type"):
        expand_sources(str(tmp_path / "doc.pdf"))


def test_expand_camera_index_without_opening(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (src,) = expand_sources("0")
    assert (src.kind, src.name, src.camera) == ("camera", "camera:0", 0)
    assert count_frames([src]) is None
    # A digit string that is an existing file is that file, not a camera.
    _touch_image(tmp_path / "3")
    with pytest.raises(InputError, match="unsupported file type"):
        expand_sources("3")


def test_example_source_yields_astronaut():
    (src,) = expand_sources("example:astronaut")
    assert (src.kind, src.name) == ("example", "example:astronaut")
    frames = list(src.frames())
    assert len(frames) == 1 and frames[0].error is None
    assert frames[0].image.shape == (512, 512, 3) and frames[0].image.dtype == np.uint8
    with pytest.raises(InputError, match="unknown example"):
        expand_sources("example:nope")


def test_bad_image_in_folder_becomes_error_frame(tmp_path):
    _touch_image(tmp_path / "good.png")
    (tmp_path / "bad.jpg").write_text("not an image")
    srcs = expand_sources(str(tmp_path))
    frames = [f for s in srcs for f in s.frames()]
    assert [os.path.basename(f.source) for f in frames] == ["bad.jpg", "good.png"]
    assert frames[0].image is None and "bad.jpg" in frames[0].error and "not a readable image" in frames[0].error
    assert frames[1].error is None and frames[1].image.shape == (2, 2, 3)
    assert count_frames(srcs) == 2


def test_video_source_streams_frames_with_fps_and_total(tmp_path):
    path = tmp_path / "clip.mp4"
    written = _write_video(path, n=10, size=(64, 48), fps=12.0)
    (src,) = expand_sources(str(path))
    assert src.kind == "video"
    assert count_frames([src]) == 10
    frames = list(src.frames())
    assert len(frames) == 10
    assert [f.index for f in frames] == list(range(10))
    assert all(f.error is None and f.image.shape == (48, 64, 3) for f in frames)
    assert frames[0].fps == pytest.approx(12.0) and frames[0].total == 10
    # Lossy codec: compare brightness within a tolerance far below the 20-level step.
    assert [round(float(f.image.mean()) / 20) for f in frames] == [int(w.mean()) // 20 for w in written]


def test_truncated_video_does_not_crash(tmp_path):
    path = tmp_path / "clip.mp4"
    _write_video(path, n=10)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    frames = list(expand_sources(str(path))[0].frames())
    assert len(frames) >= 1
    assert all((f.image is None) == (f.error is not None or f.warning is not None) for f in frames)
    assert all(isinstance(f, Frame) for f in frames)


def _damaged_avi(path, n=10, keep=0.6):
    """An MJPG AVI whose index still lists ``n`` frames but whose last frames' bytes are zeroed."""
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(n):
        w.write(np.full((48, 64, 3), i * 20, np.uint8))
    w.release()
    d = bytearray(path.read_bytes())
    movi, idx = d.find(b"movi"), d.find(b"idx1")
    start = movi + int((idx - movi) * keep)
    d[start:idx] = bytes(idx - start)
    path.write_bytes(bytes(d))


def test_short_video_says_how_many_frames_it_read(tmp_path):
    """A video that ends before its header's frame count ends with a frame-less warning saying so."""
    path = tmp_path / "cut.avi"
    _damaged_avi(path)
    frames = list(expand_sources(str(path))[0].frames())
    good = [f for f in frames if f.image is not None]
    assert 0 < len(good) < 10 and all(f.error is None for f in frames)
    assert frames[-1].image is None and frames[-1].warning == f"{path}: read {len(good)} of the 10 frames its header promises; the rest did not decode (a truncated or damaged file?)"


def test_unopenable_video_yields_one_error_frame(tmp_path):
    path = tmp_path / "junk.avi"
    path.write_bytes(b"definitely not a video" * 10)
    frames = list(expand_sources(str(path))[0].frames())
    assert len(frames) == 1 and frames[0].image is None
    assert "junk.avi" in frames[0].error


# --------------------------------------------------------------------------- writers
def _leftovers(d) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.startswith("."))


def test_atomic_write_image_roundtrip_and_parents(tmp_path):
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[..., 0] = 255  # red
    out = tmp_path / "new" / "dir" / "red.png"
    atomic_write_image(out, rgb)
    np.testing.assert_array_equal(read_image(out), rgb)
    assert _leftovers(out.parent) == []
    with pytest.raises(OutputError):
        atomic_write_image(tmp_path / "x.unknownext", rgb)


def test_atomic_write_bytes_replaces_and_keeps_old_on_failure(tmp_path):
    out = tmp_path / "f.bin"
    atomic_write_bytes(out, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(out, "not bytes")  # type: ignore[arg-type]
    assert out.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_jsonl_commits_on_success(tmp_path):
    out = tmp_path / "r.jsonl"
    with JsonLinesWriter(out) as w:
        w.write({"frame": 0, "yaw": np.float32(1.5), "box": np.array([1, 2])})
        w.write({"frame": 1, "yaw": float("nan")})
        assert not out.exists()  # nothing at the final path until commit
    lines = out.read_text().splitlines()
    assert [json.loads(x) for x in lines] == [{"frame": 0, "yaw": 1.5, "box": [1, 2]}, {"frame": 1, "yaw": None}]
    assert _leftovers(tmp_path) == []


def test_jsonl_exception_leaves_no_file(tmp_path):
    out = tmp_path / "r.jsonl"
    with pytest.raises(RuntimeError):
        with JsonLinesWriter(out) as w:
            w.write({"frame": 0})
            raise RuntimeError("boom")
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_jsonl_exception_keeps_previous_file(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text("previous\n")
    with pytest.raises(ValueError):
        with JsonLinesWriter(out) as w:
            w.write({"frame": 0})
            raise ValueError("boom")
    assert out.read_text() == "previous\n"


def test_jsonl_keyboard_interrupt_keeps_complete_lines(tmp_path):
    out = tmp_path / "r.jsonl"
    with pytest.raises(KeyboardInterrupt):
        with JsonLinesWriter(out) as w:
            for i in range(3):
                w.write({"frame": i, "text": "x" * 1000})
            raise KeyboardInterrupt
    text = out.read_text()
    assert text.endswith("\n")
    assert [json.loads(x)["frame"] for x in text.splitlines()] == [0, 1, 2]
    assert _leftovers(tmp_path) == []


def test_jsonl_stdout_flushes_each_record(capsys):
    with JsonLinesWriter("-") as w:
        w.write({"a": 1})
        assert capsys.readouterr().out == '{"a":1}\n'


def test_csv_writer(tmp_path):
    out = tmp_path / "r.csv"
    with CsvWriter(out, ["source", "frame", "yaw"]) as w:
        w.write({"source": "a,b.jpg", "frame": 0, "yaw": np.float64(1.25)})
        w.write(["c.jpg", 1, None])
        with pytest.raises(ValueError, match="not in the CSV header"):
            w.write({"yaw_typo": 1})
        with pytest.raises(ValueError, match="2 values"):
            w.write(["c.jpg", 1])
    assert out.read_bytes() == b'source,frame,yaw\r\n"a,b.jpg",0,1.25\r\nc.jpg,1,\r\n'

    out2 = tmp_path / "r2.csv"
    with pytest.raises(RuntimeError):
        with CsvWriter(out2, ["a"]) as w:
            w.write([1])
            raise RuntimeError
    assert not out2.exists() and _leftovers(tmp_path) == []


def test_video_writer_produces_readable_file(tmp_path):
    out = tmp_path / "sub" / "out.mp4"
    with VideoWriter(out, fps=10.0) as vw:
        for i in range(7):
            vw.write(np.full((48, 64, 3), 30 * i, np.uint8))
        assert not out.exists()
        with pytest.raises(ValueError, match="32x32"):
            vw.write(np.zeros((32, 32, 3), np.uint8))
    n, fps = _read_video(out)
    assert (n, fps) == (7, pytest.approx(10.0))
    assert _leftovers(out.parent) == []


def test_video_writer_error_removes_partial(tmp_path):
    out = tmp_path / "out.avi"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, fps=5) as vw:
            vw.write(np.zeros((48, 64, 3), np.uint8))
            raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_video_writer_keyboard_interrupt_keeps_frames(tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(out, fps=5) as vw:
            for _ in range(4):
                vw.write(np.zeros((48, 64, 3), np.uint8))
            raise KeyboardInterrupt
    assert _read_video(out)[0] == 4


def test_video_writer_rejects_unknown_extension(tmp_path):
    with pytest.raises(OutputError, match="unsupported video extension"):
        VideoWriter(tmp_path / "out.gif")


def test_live_source_drops_frames_instead_of_queueing(tmp_path):
    """A source read at its frame rate (as a camera) and a consumer slower than it: the consumer
    always gets the newest frame, indices keep increasing, and the skipped frames are counted."""
    import time

    import cv2

    from openheadpose.io.sources import _live_frames

    path = tmp_path / "clip.mp4"
    _write_video(path, n=40, fps=40.0)
    frames = []
    for f in _live_frames("clip", cv2.VideoCapture(str(path)), 40.0, pace_fps=40.0):
        frames.append(f)
        time.sleep(0.08)  # a consumer at about 12 frames/s
    got = [f for f in frames if f.image is not None]
    idx = [f.index for f in got]
    assert idx == sorted(set(idx)) and len(got) < 30 and sum(f.dropped for f in got) > 10
    assert all(i == got[k - 1].index + 1 + got[k].dropped for k, i in enumerate(idx) if k)
    assert frames[-1].warning is not None and "dropped" in frames[-1].warning
