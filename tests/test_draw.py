"""Tests of openheadpose.inference.draw: copies, not mutation; the axes point where the convention says."""

from __future__ import annotations

import numpy as np
import pytest

from openheadpose.inference.draw import annotate, draw_axes, draw_box, draw_cube, draw_label, project_axes
from openheadpose.inference.results import Heads
from openheadpose.core.rotation import euler_to_matrix

CENTRE = (100.0, 100.0)
LENGTH = 50.0


def _image(h: int = 240, w: int = 320) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(60, 200, size=(h, w, 3), dtype=np.uint8)


def _heads(sigma: np.ndarray | None = None) -> Heads:
    R = euler_to_matrix(np.array([20.0, -35.0]), np.array([-10.0, 5.0]), np.array([5.0, 0.0]))
    boxes = np.array([[40.0, 60.0, 140.0, 170.0], [180.0, 50.0, 290.0, 180.0]])
    return Heads(boxes, np.array([0.9, 0.8]), R, sigma)


@pytest.mark.parametrize("style", ["axes", "cube"])
def test_annotate_returns_changed_copy(style):
    img = _image()
    before = img.copy()
    heads = _heads()
    out = annotate(img, heads, style=style)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert out is not img and not np.shares_memory(out, img)
    np.testing.assert_array_equal(img, before)  # caller's array untouched
    for x1, y1, x2, y2 in heads.boxes.astype(int):
        inside = (slice(y1 + 5, y2 - 5), slice(x1 + 5, x2 - 5))
        assert np.any(out[inside] != img[inside]), "the pose glyph must be drawn inside the box"


def test_annotate_empty_heads():
    img = _image()
    out = annotate(img, Heads.empty())
    np.testing.assert_array_equal(out, img)
    assert out is not img


def test_annotate_with_sigma_and_without_angles():
    img = _image()
    out = annotate(img, _heads(np.array([[2.0, 1.5, 0.8], [4.0, 3.0, 1.0]])))
    assert out.shape == img.shape
    plain = annotate(img, _heads(), show_angles=False)
    assert np.any(out != plain)  # the labels were written


def test_annotate_rejects_bad_input():
    with pytest.raises(ValueError):
        annotate(_image(), _heads(), style="arrows")
    with pytest.raises(ValueError):
        annotate(_image().astype(np.float32), _heads())


def test_convention_frontal_axes():
    tips = project_axes(np.eye(3), CENTRE, LENGTH)
    np.testing.assert_allclose(tips[0], [150.0, 100.0], atol=1e-9)  # x: person's left = image right
    np.testing.assert_allclose(tips[1], [100.0, 50.0], atol=1e-9)  # y: up = smaller image y
    np.testing.assert_allclose(tips[2], CENTRE, atol=1e-9)  # z points at the viewer


def test_convention_yaw_moves_nose_left():
    tips = project_axes(euler_to_matrix(30.0, 0.0, 0.0), CENTRE, LENGTH)
    # sin(30) * 50 = 25 px to the left
    np.testing.assert_allclose(tips[2], [75.0, 100.0], atol=1e-9)


def test_convention_pitch_moves_nose_up():
    tips = project_axes(euler_to_matrix(0.0, 30.0, 0.0), CENTRE, LENGTH)
    np.testing.assert_allclose(tips[2], [100.0, 75.0], atol=1e-9)


def test_convention_roll_is_clockwise():
    tips = project_axes(euler_to_matrix(0.0, 0.0, 30.0), CENTRE, LENGTH)
    # the top of the head tips to the image's right: clockwise on screen
    assert tips[1, 0] > CENTRE[0] + 20 and tips[1, 1] < CENTRE[1]
    np.testing.assert_allclose(tips[1], [125.0, 100.0 - 50.0 * np.cos(np.deg2rad(30.0))], atol=1e-9)


def test_draw_functions_return_copies():
    img = _image()
    before = img.copy()
    R = euler_to_matrix(15.0, 10.0, -5.0)
    for out in (
        draw_axes(img, R, (160, 120), 60),
        draw_cube(img, R, (160, 120), 60),
        draw_box(img, [20, 20, 120, 120], (255, 0, 0)),
        draw_label(img, ["yaw 1.0", "pitch 2.0"], (10, 100)),
    ):
        assert out.shape == img.shape and np.any(out != img)
    np.testing.assert_array_equal(img, before)


def test_draw_label_stays_inside_image():
    img = _image(60, 80)
    out = draw_label(img, "a long label that overflows", (70, 5))
    assert out.shape == img.shape


def _label_rects(heads, shape):
    from openheadpose.inference.draw import _angle_text, _label_size, font_scale, place_labels

    scale = font_scale(np.zeros(shape, np.uint8))
    thick = max(1, int(round(scale * 1.5)))
    e = heads.euler
    sizes = [_label_size([_angle_text(e.yaw[i], e.pitch[i], e.roll[i], None)], scale, thick) for i in range(len(heads))]
    corners = place_labels(heads.boxes, sizes, (shape[1], shape[0]))
    return np.array([[x, y, x + w, y + h] for (x, y), (w, h) in zip(corners, sizes)])


def _overlaps(rects, others):
    from openheadpose.core.geometry import box_iou

    return box_iou(rects, others) > 0


def test_labels_never_cover_each_other_or_a_face_on_the_group_photo(media, estimator):
    """group-t1: six heads close together; every label clear of every other label and face box."""
    import cv2

    img = cv2.cvtColor(cv2.imread(str(media / "group-t1.jpg")), cv2.COLOR_BGR2RGB)
    heads = estimator(img)
    rects = _label_rects(heads, img.shape)
    assert len(rects) == 6
    pair = _overlaps(rects, rects)
    np.fill_diagonal(pair, False)
    assert not pair.any() and not _overlaps(rects, heads.boxes).any()
    assert (rects[:, :2] >= 0).all() and (rects[:, 2] <= img.shape[1]).all() and (rects[:, 3] <= img.shape[0]).all()


def test_labels_of_a_row_of_touching_faces_stay_apart():
    """Five faces side by side, each narrower than its label: every label still finds a free place."""
    from openheadpose.core.rotation import euler_to_matrix
    from openheadpose.inference.results import Heads

    boxes = np.array([[100.0 + 60 * i, 200, 155 + 60 * i, 255] for i in range(5)])
    heads = Heads(boxes, np.ones(5), euler_to_matrix(np.full(5, -45.0), np.full(5, 30.0), np.full(5, -12.0)))
    rects = _label_rects(heads, (480, 640, 3))
    pair = _overlaps(rects, rects)
    np.fill_diagonal(pair, False)
    assert not pair.any() and not _overlaps(rects, boxes).any()
