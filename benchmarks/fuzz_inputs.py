"""Malformed inputs and special output paths through ``headpose predict``: exit code, message, memory.

Every input is made here, small, in a temporary folder (the decompression bombs are headers over a
few kilobytes of data): nothing large is kept or committed. Each malformed input runs beside a good
photo, as a user's folder would hold it::

    headpose predict good.png BAD --save out --json h.jsonl --csv h.csv -q

and the row records the exit status (1 expected: the good photo is processed, the bad input named),
the tool's lines on stderr (and whether any other line got there), whether the good photo's record,
row and annotated copy were written, whether every output parses and no ``.part`` file is left, and
the child's peak resident memory (``os.wait4``). Inputs that are not files (a camera index that does
not exist, a dangling symlink, an empty folder, a FIFO) run the same way. Special output paths --
a FIFO with a reader, a symlink, a character device (a private copy of /dev/null made with
``os.mknod`` in the temporary folder, as root only; never the real one) and a private link to
``/proc/self/fd/1`` (what ``/dev/stdout`` is; never ``/dev/stdout`` itself) -- are
given to ``--json`` / ``--csv``, and the row says whether the path is still what it was and the data
arrived.

    python benchmarks/fuzz_inputs.py            # -> benchmarks/results/fuzz.json; then make_results.py

Uses ``../shared/media/WolfgangLanger_Pexels.mp4`` (an mp4 with its index first) for the video cut
in half when it is there; the row is left out otherwise.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import write_result  # noqa: E402
OUT = ROOT / "benchmarks" / "results" / "fuzz.json"
SHARED = Path(os.environ.get("OPENHEADPOSE_SHARED", ROOT.parent / "shared"))

#: The children run this checkout's package (whatever the working folder), never an older install.
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]))


def check_writer_is_safe() -> None:
    """Refuse to run when the children would import a writer that renames over special files (an
    older install): the special-output rows would then replace them."""
    code = "import openheadpose.io.writers as w, sys; sys.exit(0 if hasattr(w, 'output_target') else 1)"
    if subprocess.run([sys.executable, "-c", code], env=ENV).returncode != 0:
        sys.exit(f"the openheadpose the children import ({ROOT / 'src'}) has no output_target: refusing to give it special files")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int, height: int, rows: int = 64) -> bytes:
    """A PNG header claiming ``width`` x ``height`` RGB pixels over ``rows`` rows of compressed zeros."""
    idat = zlib.compress(b"\0" * (width * 3 + 1) * rows, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def jpeg_claiming(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its frame header (SOF0) rewritten to claim ``width`` x ``height``."""
    i = jpeg.index(b"\xff\xc0")
    return jpeg[: i + 5] + struct.pack(">HH", height, width) + jpeg[i + 9 :]


def make_inputs(d: Path, good_bgr: np.ndarray) -> dict[str, tuple[str, str]]:
    """name -> (path or spec, what it is)."""
    png = cv2.imencode(".png", good_bgr)[1].tobytes()
    jpg = cv2.imencode(".jpg", good_bgr)[1].tobytes()
    items: dict[str, tuple[str, str]] = {}

    def file(name: str, data: bytes, what: str) -> None:
        (d / name).write_bytes(data)
        items[name] = (str(d / name), what)

    file("bomb.png", png_bomb(30000, 30000), "PNG header claiming 30000x30000 (900 MP) over 175 kB")
    file("bomb-tall.png", png_bomb(1000, 200000, rows=8), "PNG claiming 1000x200000 (200 MP, over Pillow's own 179 MP ceiling)")
    file("bomb.jpg", jpeg_claiming(jpg, 60000, 60000), "JPEG whose frame header claims 60000x60000")
    # made in a child: 324 MB of pixels in this process would count in every later child's peak (fork copies it)
    cv2.imwrite(str(d / "small.png"), good_bgr)
    code = ("import cv2, sys; im = cv2.resize(cv2.imread(sys.argv[1]), (12000, 9000)); "
            "cv2.imwrite(sys.argv[2], im, [cv2.IMWRITE_JPEG_QUALITY, 80])")
    subprocess.run([sys.executable, "-c", code, str(d / "small.png"), str(d / "photo-108mp.jpg")], check=True)
    (d / "small.png").unlink()
    items["photo-108mp.jpg"] = (str(d / "photo-108mp.jpg"), "a real 12000x9000 JPEG (108 MP; about 1.2 GB peak if decoded)")
    file("truncated.jpg", jpg[: len(jpg) // 2], "JPEG cut in half")
    file("truncated.png", png[: len(png) // 2], "PNG cut in half")
    file("badcrc.png", png[:33] + _chunk(b"tEXt", b"a\0bc")[:-4] + b"\0\0\0\0" + png[33:], "PNG with an ancillary chunk failing its CRC (libpng warns, decodes)")
    file("empty.jpg", b"", "zero bytes")
    file("text.jpg", b"hello, not an image\n", "text named .jpg")
    file("random.png", np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(), "4 kB of random bytes named .png")
    gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
    file("gif.jpg", gif, "a GIF named .jpg")
    file("depth16.png", cv2.imencode(".png", good_bgr.astype(np.uint16) * 257)[1].tobytes(), "16-bit PNG (valid)")
    file("one-pixel.png", cv2.imencode(".png", good_bgr[:1, :1])[1].tobytes(), "1x1 PNG (valid, no face)")
    file("notes.txt", b"hello\n", "unsupported extension")
    rng = np.random.default_rng(0)
    w = cv2.VideoWriter(str(d / "full.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for _ in range(10):
        w.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    w.release()
    full = (d / "full.mp4").read_bytes()
    (d / "full.mp4").unlink()
    file("nomoov.mp4", full[: len(full) // 2], "mp4 cut in half, its index (written last) lost")
    file("empty.mp4", b"", "zero-byte mp4")
    src = SHARED / "media" / "WolfgangLanger_Pexels.mp4"
    if src.is_file():
        data = src.read_bytes()
        file("half.mp4", data[: len(data) // 2], "mp4 with its index first, cut in half (shared media: 472 frames promised)")
    (d / "folder.jpg").mkdir()
    items["folder.jpg"] = (str(d / "folder.jpg"), "a folder named .jpg")
    (d / "empty-folder").mkdir()
    items["empty-folder"] = (str(d / "empty-folder"), "an empty folder")
    os.symlink(d / "nowhere.png", d / "dangling.png")
    items["dangling.png"] = (str(d / "dangling.png"), "a dangling symlink")
    os.mkfifo(d / "fifo.png")
    items["fifo.png"] = (str(d / "fifo.png"), "a FIFO named .png (nobody writes to it)")
    items["camera 7"] = ("7", "a camera index that does not exist")
    items["missing.png"] = (str(d / "missing.png"), "a path that does not exist")
    return items


def run(args: list[str], cwd: Path, stdin_fifo_reader: Path | None = None, timeout: float = 600) -> dict:
    """One ``headpose`` process: exit code, stdout, stderr, wall time and peak resident memory (MiB)."""
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "openheadpose.cli", *args], cwd=cwd, stdout=out, stderr=err, env=ENV)
    deadline = time.time() + timeout
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.time() > deadline:
            p.kill()
            pid, status, usage = os.wait4(p.pid, 0)
            break
        time.sleep(0.05)
    p.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    return {"code": p.returncode, "stdout": out.read().decode("utf-8", "replace"), "stderr": err.read().decode("utf-8", "replace"),
            "seconds": round(time.perf_counter() - t0, 2), "peak_mib": round(usage.ru_maxrss / 1024, 1)}  # fmt: skip


def outputs_intact(work: Path) -> tuple[bool, bool]:
    """(good photo's record, row and picture written; every output parses and no temporary file is left)."""
    try:
        recs = [json.loads(x) for x in (work / "h.jsonl").read_text().splitlines()]
        rows = list(csv.DictReader(io.StringIO((work / "h.csv").read_text())))
    except (OSError, ValueError):
        return False, False
    pics = list((work / "out").glob("*")) if (work / "out").is_dir() else []
    good = any(Path(r["source"]).name == "good.png" for r in recs) and any(Path(r["source"]).name == "good.png" for r in rows)
    good = good and any(p.name == "good.png" for p in pics)
    readable = all(cv2.imread(str(p)) is not None for p in pics if p.suffix != ".mp4")
    leftovers = [p for p in work.rglob(".*") if p.name.endswith(".part") or ".part." in p.name]
    return good, readable and not leftovers


def tool_lines(stderr: str) -> tuple[list[str], list[str]]:
    lines = [x for x in stderr.splitlines() if x.strip()]
    return [x for x in lines if x.startswith("headpose: ")], [x for x in lines if not x.startswith("headpose: ")]


def special_outputs(d: Path, good: Path) -> list[dict]:
    rows = []

    def kind(p: Path) -> str:
        m = os.lstat(p).st_mode
        return "symlink" if stat.S_ISLNK(m) else "FIFO" if stat.S_ISFIFO(m) else "char device" if stat.S_ISCHR(m) else "regular file" if stat.S_ISREG(m) else "other"

    fifo = d / "out.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    r = run([ "predict", str(good), "--json", str(fifo), "-q"], d)
    reader.join(30)
    rows.append({"output": "--json FIFO (a reader waiting)", "code": r["code"], "kept": kind(fifo), "data_arrived": bool(got and got[0].count(b"\n") == 1),
                 "peak_mib": r["peak_mib"], "stderr": tool_lines(r["stderr"])[0][:1]})  # fmt: skip

    (d / "real").mkdir()
    target = d / "real" / "h.jsonl"
    target.write_text("old\n")
    link = d / "link.jsonl"
    link.symlink_to(target)
    r = run(["predict", str(good), "--json", str(link), "-q"], d)
    rows.append({"output": "--json symlink to a file in another folder", "code": r["code"], "kept": kind(link),
                 "data_arrived": target.read_text().count("\n") == 1 and target.read_text() != "old\n",
                 "leftovers": sorted(p.name for p in (d / "real").iterdir() if p.name != "h.jsonl"), "peak_mib": r["peak_mib"]})  # fmt: skip

    if hasattr(os, "geteuid") and os.geteuid() == 0:
        null = d / "null"
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a private copy of /dev/null, in the temporary folder
        r = run(["predict", str(good), "--json", str(null), "--csv", str(null), "-q"], d)
        rows.append({"output": "--json and --csv a character device (a private copy of /dev/null, as root)", "code": r["code"], "kept": kind(null),
                     "data_arrived": True, "peak_mib": r["peak_mib"]})  # fmt: skip
    else:
        rows.append({"output": "--json a character device", "skipped": "not root: os.mknod needs it"})

    # /dev/stdout is a link to /proc/self/fd/1: the same link, made privately, so no run can harm /dev
    stdout_link = d / "stdout"
    stdout_link.symlink_to("/proc/self/fd/1")
    r = run(["predict", str(good), "--json", str(stdout_link), "-q"], d)
    rows.append({"output": "--json a link to /proc/self/fd/1 (what /dev/stdout is; a private copy)", "code": r["code"], "kept": kind(stdout_link),
                 "data_arrived": r["stdout"].count("\n") == 1 and r["stdout"].startswith("{"), "peak_mib": r["peak_mib"]})  # fmt: skip
    return rows


def _own_rss_mib() -> float | None:
    try:
        return round(int(next(x for x in open("/proc/self/status") if x.startswith("VmRSS")).split()[1]) / 1024, 1)
    except (OSError, StopIteration):
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    check_writer_is_safe()
    from skimage.data import astronaut

    good_bgr = cv2.cvtColor(cv2.resize(astronaut(), (256, 256), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
    rows, expected = [], {}
    with tempfile.TemporaryDirectory(prefix="headpose-fuzz-") as tmp:
        d = Path(tmp)
        good = d / "good.png"
        cv2.imwrite(str(good), good_bgr)
        inputs = make_inputs(d, good_bgr)
        for name, (spec, what) in inputs.items():
            work = d / f"run-{len(rows)}"
            work.mkdir()
            r = run(["predict", str(good), spec, "--save", str(work / "out"), "--json", str(work / "h.jsonl"), "--csv", str(work / "h.csv"), "-q"], work)
            ours, other = tool_lines(r["stderr"])
            good_done, intact = outputs_intact(work)
            valid = name in ("depth16.png", "one-pixel.png", "badcrc.png")  # readable: processed, exit 0
            expected = 0 if valid else 1
            rows.append({"input": name, "what": what, "code": r["code"], "expected_code": expected,
                         "message": " | ".join(x.replace(str(d) + "/", "").replace(str(work) + "/", "") for x in ours),
                         "other_stderr_lines": len(other), "good_processed": good_done, "outputs_intact": intact,
                         "peak_mib": r["peak_mib"], "seconds": r["seconds"]})  # fmt: skip
            print(f"{name:16s} exit {r['code']} (want {expected})  {r['peak_mib']:7.1f} MiB  {rows[-1]['message'][:110]}", flush=True)
        special = special_outputs(d, good)
        for s in special:
            print(s, flush=True)
    import cv2 as _cv2

    result = {
        "command": "python benchmarks/fuzz_inputs.py",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, OpenCV {_cv2.__version__}",
        "root": hasattr(os, "geteuid") and os.geteuid() == 0,
        "each_run": "headpose predict good.png INPUT --save out --json h.jsonl --csv h.csv -q",
        "inputs": rows,
        "special_outputs": special,
        "all_expected": all(r["code"] == r["expected_code"] and r["good_processed"] and r["outputs_intact"] and r["other_stderr_lines"] == 0 for r in rows)
        and all(s.get("skipped") or (s["code"] == 0 and s["data_arrived"] and s["kept"] in ("FIFO", "symlink", "char device")) for s in special),
        "max_peak_mib": max(r["peak_mib"] for r in rows),
        # ru_maxrss counts what a child held before exec too: this script's resident memory, copied by fork
        "parent_rss_mib": _own_rss_mib(),
    }
    write_result(args.out, result)
    print(f"every input as expected: {result['all_expected']}, peak at most {result['max_peak_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
