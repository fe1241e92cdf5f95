"""Angles over time: yaw, pitch and roll of each tracked head with its sigma band.

``headpose predict clip.mp4 --plot angles.png`` records every frame with :class:`AngleTrace`
and draws it with :func:`plot_angles` (matplotlib, Agg: no display needed).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from openheadpose.inference.results import FrameResult

ANGLES = ("yaw", "pitch", "roll")


class AngleTrace:
    """Per head (its ``track_id``, or its place left to right without a tracker): the time,
    the reported angles, their sigma and the per-frame reading's angles, frame by frame.

    Example:
        >>> from openheadpose.inference.results import Heads
        >>> trace = AngleTrace()
        >>> trace.add(FrameResult("clip", 0, 64, 64, Heads(np.zeros((1, 4)), np.ones(1), np.eye(3)[None]), fps=25.0))
        >>> trace.series[("clip", 0)]["t"]
        [0.0]
    """

    def __init__(self):
        self.series: dict[tuple[str, int], dict[str, list]] = defaultdict(lambda: defaultdict(list))

    def add(self, res: FrameResult) -> None:
        if res.error or not len(res.heads):
            return
        h = res.heads
        euler = h.euler
        raw = None if h.raw_rotations is None else type(h)(h.boxes, h.scores, h.raw_rotations, angles=h.angles).euler
        t = res.frame / res.fps if res.fps else float(res.frame)
        for i in range(len(h)):
            key = (res.source, int(h.track_ids[i]) if h.track_ids is not None else i)
            s = self.series[key]
            s["t"].append(t)
            for k, name in enumerate(ANGLES):
                s[name].append(float(getattr(euler, name)[i]))
                s["sigma_" + name].append(float(h.sigma[i, k]) if h.sigma is not None else np.nan)
                s["raw_" + name].append(float(getattr(raw, name)[i]) if raw is not None else np.nan)
            s["seconds"].append(bool(res.fps))

    def __len__(self) -> int:
        return len(self.series)


def plot_angles(trace: AngleTrace, path: str | Path, title: str | None = None) -> Path:
    """Draw ``trace`` into ``path`` (PNG, SVG or PDF by its suffix): one panel per angle, one
    colour per head, a band of +-1 sigma around each line where the pose stage gives sigma, and
    each frame's own reading as faint dots where the rotations were fused."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, axes = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True, constrained_layout=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    seconds = True
    for n, ((source, tid), s) in enumerate(sorted(trace.series.items())):
        c = colours[n % len(colours)]
        t = np.asarray(s["t"])
        seconds &= all(s["seconds"])
        label = f"head {tid}" + (f" ({Path(source).name})" if len({k[0] for k in trace.series}) > 1 else "")
        for ax, name in zip(axes, ANGLES):
            y = np.asarray(s[name])
            raw = np.asarray(s["raw_" + name])
            if np.isfinite(raw).any():
                ax.plot(t, raw, ".", color=c, alpha=0.25, markersize=2)
            gaps = np.r_[False, np.diff(t) > 1.5 * np.median(np.diff(t))] if len(t) > 2 else np.zeros(len(t), bool)
            ts, ys = np.insert(t, np.flatnonzero(gaps), np.nan), np.insert(y, np.flatnonzero(gaps), np.nan)
            ax.plot(ts, ys, color=c, lw=1.2, label=label if name == "yaw" else None)
            sg = np.asarray(s["sigma_" + name])
            if np.isfinite(sg).any():
                sg = np.insert(sg, np.flatnonzero(gaps), np.nan)
                ax.fill_between(ts, ys - sg, ys + sg, color=c, alpha=0.18, lw=0)
            ax.set_ylabel(f"{name} (deg)")
            ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("time (s)" if seconds else "frame")
    if trace.series:
        axes[0].legend(loc="upper right", fontsize=8, ncol=min(4, len(trace.series)))
    else:
        axes[0].text(0.5, 0.5, "no heads", transform=axes[0].transAxes, ha="center")
    axes[0].set_title(title or "head pose over time: line = reported (fused), band = +-1 sigma, dots = each frame's reading")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
