"""Draw ``docs/conventions.png``: what positive yaw, pitch and roll look like.

Four panels: frontal, yaw +30, pitch +30, roll +30. Each rotates the package's
3D face template (468 points, mm, head axes of ``Frame.GL``) with
:func:`openheadpose.core.rotation.euler_to_matrix`, projects it orthographically with
:func:`openheadpose.inference.draw.project_points` and draws the head axes with
:func:`openheadpose.inference.draw.draw_axes`, so the picture shows what the code does.

Usage::

    python tools/make_convention_figure.py            # writes docs/conventions.png
    python tools/make_convention_figure.py -o out.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from openheadpose.inference.draw import AXIS_COLOURS, draw_axes, project_axes, project_points  # noqa: E402
from openheadpose.inference.pose_stages import face_template  # noqa: E402
from openheadpose.core.rotation import euler_to_matrix  # noqa: E402

PANEL = 300  # pixels per (square) panel
MM_TO_PX = 1.35  # the ~160 mm tall template fills about 70 % of a panel

PANELS = [
    ((0.0, 0.0, 0.0), "frontal: yaw = pitch = roll = 0"),
    ((30.0, 0.0, 0.0), "yaw = +30°\n(nose to image left)"),
    ((0.0, 30.0, 0.0), "pitch = +30°\n(looks up)"),
    ((0.0, 0.0, 30.0), "roll = +30°\n(clockwise on screen)"),
]


def render_panel(points: np.ndarray, yaw: float, pitch: float, roll: float) -> np.ndarray:
    """One RGB panel: template dots coloured by depth, head axes on top."""
    R = euler_to_matrix(yaw, pitch, roll)
    img = np.full((PANEL, PANEL, 3), 255, np.uint8)
    centre = (PANEL / 2.0, PANEL / 2.0 + 8)
    # Thin grey cross-hair: the upright reference the rotated face is compared with.
    cv2.line(img, (PANEL // 2, 0), (PANEL // 2, PANEL), (215, 215, 215), 1)
    cv2.line(img, (0, int(centre[1])), (PANEL, int(centre[1])), (215, 215, 215), 1)

    uv = project_points(points, R, centre, MM_TO_PX)
    depth = (points @ R.T)[:, 2]  # camera z: larger = nearer the viewer
    order = np.argsort(depth)  # far points first so near ones stay visible
    norm = (depth - depth.min()) / max(np.ptp(depth), 1e-9)
    colours = (plt.get_cmap("Greys")(0.3 + 0.65 * norm)[:, :3] * 255).astype(int)
    for k in order:
        cv2.circle(img, (int(round(uv[k, 0])), int(round(uv[k, 1]))), 2, tuple(int(c) for c in colours[k]), -1, cv2.LINE_AA)

    length = 95.0
    img = draw_axes(img, R, centre, length)
    tips = project_axes(R, centre, length)
    for name, tip, colour in zip("xyz", tips, AXIS_COLOURS):
        # Label each tip slightly beyond it, along the axis direction.
        d = tip - np.asarray(centre)
        n = np.linalg.norm(d)
        pos = tip + (d / n * 12 if n > 1e-6 else np.array([10.0, -10.0]))
        cv2.putText(img, name, (int(pos[0]) - 5, int(pos[1]) + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.55, colour, 2, cv2.LINE_AA)
    return img


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "conventions.png")
    args = parser.parse_args(argv)

    points = face_template().points
    fig, axes = plt.subplots(1, len(PANELS), figsize=(12, 4.1), dpi=100)
    for ax, ((yaw, pitch, roll), title) in zip(axes, PANELS):
        ax.imshow(render_panel(points, yaw, pitch, roll))
        ax.set_title(title, fontsize=12)
        ax.set_axis_off()
    fig.text(
        0.5,
        0.025,
        r"$R = (R_z(\mathrm{roll})\,R_y(\mathrm{yaw})\,R_x(\mathrm{pitch}))^\top$  maps head → camera (Frame.GL);"
        "  angles in degrees, orthographic view.\n"
        "Head axes: x red = the person's left, y green = top of the head, z blue = out of the nose."
        "   Template dots: darker = nearer the viewer.",
        ha="center",
        fontsize=9.5,
    )
    fig.subplots_adjust(left=0.01, right=0.99, top=0.85, bottom=0.13, wspace=0.04)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    # A 256-colour palette keeps the PNG small (< 200 KB) without visible loss.
    Image.fromarray(rgb).quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(args.output, optimize=True)
    plt.close(fig)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
