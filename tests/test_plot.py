"""``headpose predict --plot``: yaw, pitch and roll over time per track, with the sigma band."""

from __future__ import annotations

import numpy as np

from openheadpose.core.rotation import euler_to_matrix
from openheadpose.inference.plot import AngleTrace, plot_angles
from openheadpose.inference.results import FrameResult, Heads


def _frames(n: int = 40, fps: float = 20.0) -> list[FrameResult]:
    """Two tracked heads: head 0 turns its yaw from -30 to +30 deg; head 1 holds 10 deg and is away for frames 15-24."""
    out = []
    for t in range(n):
        yaws = [-30 + 60 * t / (n - 1)] + ([10.0] if not 15 <= t < 25 else [])
        R = euler_to_matrix(np.array(yaws), np.zeros(len(yaws)), np.zeros(len(yaws)))
        heads = Heads(np.tile([0.0, 0, 10, 10], (len(yaws), 1)), np.ones(len(yaws)), R, np.full((len(yaws), 3), 2.0),
                      track_ids=np.arange(len(yaws)), raw_rotations=R)
        out.append(FrameResult("clip.mp4", t, 64, 64, heads, fps=fps))
    return out


def test_trace_keeps_each_track_in_seconds():
    trace = AngleTrace()
    for r in _frames():
        trace.add(r)
    assert sorted(trace.series) == [("clip.mp4", 0), ("clip.mp4", 1)]
    s0, s1 = trace.series[("clip.mp4", 0)], trace.series[("clip.mp4", 1)]
    assert len(s0["t"]) == 40 and len(s1["t"]) == 30  # head 1 away for 10 frames
    np.testing.assert_allclose(s0["t"][-1], 39 / 20.0)
    np.testing.assert_allclose([s0["yaw"][0], s0["yaw"][-1]], [-30.0, 30.0], atol=1e-6)
    assert s0["sigma_yaw"][0] == 2.0


def test_plot_draws_a_line_and_a_band_per_head(tmp_path):
    """The PNG has three panels; the first head's colour (matplotlib's C0) is drawn as a line
    and, lighter, as the sigma band: both shades of it appear in the image."""
    import matplotlib.image as mpimg

    trace = AngleTrace()
    for r in _frames():
        trace.add(r)
    path = plot_angles(trace, tmp_path / "angles.png")
    img = mpimg.imread(path)[..., :3]
    assert img.shape[0] > 500 and img.shape[1] > 800
    c0 = np.array([0x1F, 0x77, 0xB4]) / 255  # the line
    band = 1 - 0.18 * (1 - c0)  # C0 at alpha 0.18 over white
    near = lambda c: (np.abs(img - c).max(-1) < 0.04).sum()  # noqa: E731
    assert near(c0) > 200 and near(band) > 2000, (near(c0), near(band))


def test_an_empty_trace_still_draws(tmp_path):
    assert plot_angles(AngleTrace(), tmp_path / "none.png").stat().st_size > 1000
