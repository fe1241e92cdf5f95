"""Evaluation plots: error versus |yaw|, per-angle error histograms, and a worst-case contact sheet.

Written as PNG files with matplotlib's non-interactive Agg backend (the charts)
and OpenCV (the contact sheet, drawn with :mod:`openheadpose.inference.draw`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openheadpose.core.metrics import euler_errors
from openheadpose.inference.draw import draw_axes, draw_label
from openheadpose.io.writers import atomic_write_bytes, atomic_write_image

ANGLES = ("yaw", "pitch", "roll")


def _figure_png(fig) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def error_vs_yaw(result, path: str | Path, bin_width: float = 10.0) -> None:
    """Mean absolute error of each angle in |true yaw| bins, with the face count per bin."""
    plt = _pyplot()
    err = euler_errors(result.pred_deg, result.true_deg)
    ay = np.abs(result.true_deg[:, 0])
    edges = np.arange(0.0, 100.0 + bin_width, bin_width)
    centres = (edges[:-1] + edges[1:]) / 2
    fig, ax = plt.subplots(figsize=(7, 4))
    counts = np.histogram(ay, edges)[0]
    for k, a in enumerate(ANGLES):
        if np.all(np.isnan(err[:, k])):
            continue
        means = [np.nanmean(err[(ay >= lo) & (ay < hi), k]) if np.any((ay >= lo) & (ay < hi)) else np.nan for lo, hi in zip(edges[:-1], edges[1:])]
        ax.plot(centres, means, marker="o", label=a)
    ax.set_xlabel("|true yaw| (deg)")
    ax.set_ylabel("mean absolute error (deg)")
    ax.set_title(f"{result.model} on {result.dataset} ({result.crop} crops, {result.n_detected} faces)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax2 = ax.twinx()
    ax2.bar(centres, counts, width=bin_width * 0.8, alpha=0.12, color="grey")
    ax2.set_ylabel("faces per bin")
    atomic_write_bytes(path, _figure_png(fig))
    plt.close(fig)


def error_histograms(result, path: str | Path) -> None:
    """Histograms of the signed error (pred - true, wrapped at 360) of each angle."""
    plt = _pyplot()
    d = result.pred_deg - result.true_deg
    d = (d + 180.0) % 360.0 - 180.0
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharey=True)
    for k, (ax, a) in enumerate(zip(axes, ANGLES)):
        v = d[:, k][np.isfinite(d[:, k])]
        if len(v):
            ax.hist(np.clip(v, -45, 45), bins=np.arange(-45, 46, 2.5), color=f"C{k}")
            ax.set_title(f"{a}: MAE {np.mean(np.abs(v)):.2f}, bias {np.mean(v):+.2f}")
        else:
            ax.set_title(f"{a}: not labelled")
        ax.set_xlabel("pred - true (deg, clipped to +-45)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("faces")
    fig.suptitle(f"{result.model} on {result.dataset} ({result.crop} crops, {result.n_detected} faces)")
    atomic_write_bytes(path, _figure_png(fig))
    plt.close(fig)


def contact_sheet(result, path: str | Path, columns: int = 4) -> None:
    """The worst cases, each with the predicted axes (bright) and the true axes (thin, grey-tinted) drawn."""
    import cv2

    cells = []
    for w in result.worst:
        img = w.thumb
        c = (img.shape[1] / 2, img.shape[0] / 2)
        if w.R_true is not None:
            faded = draw_axes(img, w.R_true, c, img.shape[0] * 0.42)
            img = cv2.addWeighted(img, 0.45, faded, 0.55, 0)  # true axes: paler
        img = draw_axes(img, w.R_pred, c, img.shape[0] * 0.3)
        t = ["true " + " ".join("-" if np.isnan(v) else f"{v:.0f}" for v in w.true_deg), "pred " + " ".join(f"{v:.0f}" for v in w.pred_deg)]
        img = draw_label(img, [w.name[-18:], *t, f"err {w.error:.1f}"], (2, img.shape[0] - 2))
        cells.append(img)
    if not cells:
        return
    side = cells[0].shape[0]
    rows = -(-len(cells) // columns)
    sheet = np.full((rows * side, columns * side, 3), 255, np.uint8)
    for i, c in enumerate(cells):
        r, k = divmod(i, columns)
        sheet[r * side : (r + 1) * side, k * side : (k + 1) * side] = c
    header = np.full((28, sheet.shape[1], 3), 255, np.uint8)
    cv2.putText(header, "worst faces: short bright axes = predicted, long pale axes = true (x red, y green, z blue)",
                (4, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    atomic_write_image(path, np.concatenate([header, sheet]))


def write_plots(result, directory: str | Path, stem: str | None = None) -> list[Path]:
    """All three plots into ``directory``; returns the written paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = stem or f"{result.dataset}_{result.crop}"
    paths = [directory / f"{stem}_error_vs_yaw.png", directory / f"{stem}_histograms.png", directory / f"{stem}_worst.png"]
    error_vs_yaw(result, paths[0])
    error_histograms(result, paths[1])
    contact_sheet(result, paths[2])
    return [p for p in paths if p.exists()]
