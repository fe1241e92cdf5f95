"""Write the BIWI Protocol 2 video split: ``src/openheadpose/assets/biwi_protocol2.json``.

Protocol 2 (FSA-Net, Yang et al., CVPR 2019, and every paper that compares with
its BIWI table) trains on about 70% of BIWI Kinect Head Pose's 24 videos and
tests on the rest. FSA-Net's ``data/TYY_create_db_biwi_70_30.py`` draws the
videos as::

    randFlag = np.zeros(24); randFlag[0:16] = 1; randFlag = np.random.permutation(randFlag)

with no seed, and the list it drew was never published, so its exact split
cannot be recreated. We keep its construction and counts -- 16 training and 8
test videos (0.7 x 24 = 16.8 is no whole number of videos; FSA-Net took 16) --
and fix the draw with a seeded generator (``numpy.random.default_rng(2019)``,
2019 for FSA-Net's year; any fixed seed would do). The list is committed, so
every run and every user gets the same videos; this script only documents and
re-checks how it was made (the file, not this script, is the split: a future
numpy that changed ``Generator.permutation`` would fail ``--check``, not move it).

Why by video: consecutive frames of one video are near copies, so a split by
frame would test on faces seen in training. BIWI holds 20 people in 24 videos
(4 people were recorded twice) without a per-folder identity list in its files,
so, as in FSA-Net, a person recorded twice may fall on both sides.

Usage:
    python tools/make_biwi_split.py           # (re)write the file
    python tools/make_biwi_split.py --check   # exit 1 if the committed file differs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SEED = 2019
N_VIDEOS, N_TRAIN = 24, 16
OUT = Path(__file__).resolve().parents[1] / "src" / "openheadpose" / "assets" / "biwi_protocol2.json"


def make() -> dict:
    flag = np.zeros(N_VIDEOS)
    flag[:N_TRAIN] = 1
    flag = np.random.default_rng(SEED).permutation(flag)
    videos = [f"{i + 1:02d}" for i in range(N_VIDEOS)]  # BIWI's hpdb folders 01 .. 24
    return {
        "protocol": "BIWI Protocol 2 (FSA-Net 70/30 by video)",
        "train": [v for v, f in zip(videos, flag) if f == 1],
        "test": [v for v, f in zip(videos, flag) if f == 0],
        "method": f"FSA-Net's draw (16 of 24 videos to training), numpy.random.default_rng({SEED}).permutation",
        "made_by": "tools/make_biwi_split.py",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed file instead of writing it")
    args = ap.parse_args()
    text = json.dumps(make(), indent=1) + "\n"
    if args.check:
        ok = OUT.is_file() and OUT.read_text() == text
        print(f"{OUT}: {'matches' if ok else 'DIFFERS from'} the seeded draw")
        return 0 if ok else 1
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
