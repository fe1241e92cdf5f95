"""Start-up time and peak memory of the commands a new user runs first, in this environment.

Each command runs as a fresh process ``--repeats`` times; the table gives the median wall
time and the peak resident memory of the child (``ru_maxrss``). The reference in the same
run is a bare ``python -c "import numpy, cv2"`` (what any OpenCV tool pays). Whether
``import openheadpose.cli`` (what ``headpose`` loads before running a command) imports
PyTorch is recorded too: inference never should.

Usage::

    python benchmarks/bench_startup.py          # about 1 min

writes ``benchmarks/results/startup.json``; ``make_results.py`` shows it.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the benchmarks package

from benchmarks.common import run_header, write_result  # noqa: E402

_MEASURE = """
import resource, subprocess, sys, time
t = time.perf_counter()
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd={cwd!r})
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)
"""


def measure(cmd: list[str], repeats: int, cwd: str) -> dict:
    times, rss, codes = [], [], set()
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", _MEASURE.format(cwd=cwd), *cmd], capture_output=True, text=True, check=True).stdout.split()
        times.append(float(out[0]))
        rss.append(int(out[1]) / 1024)
        codes.add(int(out[2]))
    return {"command": " ".join(Path(cmd[0]).name if i == 0 else c for i, c in enumerate(cmd)), "median_s": round(statistics.median(times), 3),
            "min_s": round(min(times), 3), "peak_rss_mib": round(max(rss), 1), "exit_codes": sorted(codes)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "startup.json")
    args = ap.parse_args(argv)
    started = _dt.datetime.now(_dt.timezone.utc)
    headpose = str(Path(sys.executable).with_name("headpose"))
    torch_imported = subprocess.run(
        [sys.executable, "-c", "import sys, openheadpose.cli; print('torch' in sys.modules)"], capture_output=True, text=True, check=True
    ).stdout.strip() == "True"
    with tempfile.TemporaryDirectory() as tmp:
        rows = {
            "reference: import numpy, cv2": measure([sys.executable, "-c", "import numpy, cv2"], args.repeats, tmp),
            "headpose --help": measure([headpose, "--help"], args.repeats, tmp),
            "headpose predict --help": measure([headpose, "predict", "--help"], args.repeats, tmp),
            "README first command (headpose predict example:astronaut --save out --json -)": measure(
                [headpose, "predict", "example:astronaut", "--save", "out", "--json", "-", "-q"], args.repeats, tmp
            ),
        }
    doc = {
        **run_header("startup", 1, started),
        "torch_installed": importlib.util.find_spec("torch") is not None,
        "import_openheadpose_cli_imports_torch": torch_imported,
        "face_models": _face_models(),
        "rows": rows,
    }
    for name, r in rows.items():
        print(f"{r['median_s']:7.3f} s  {r['peak_rss_mib']:7.1f} MiB  {name}")
    print(f"torch installed: {doc['torch_installed']}; imported by `import openheadpose.cli`: {torch_imported}")
    write_result(args.out, doc)
    return 0


def _face_models() -> dict:
    from openheadpose.inference.backends.litert import MODEL_FILES, find_model

    return {m: (found[1] if (found := find_model(m)) else None) for m in MODEL_FILES}


if __name__ == "__main__":
    sys.exit(main())
