"""Crop recipes: exact boxes by hand, pixel handling, and FSA-Net's crop pixel-for-pixel."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from openheadpose.specs.crops import CROPS, landmark_box, square_box, take_pixels


def test_landmark_box_ignores_invisible_points():
    pts = np.array([[10.0, 20.0], [np.nan, np.nan], [30.0, 5.0]])
    assert landmark_box(pts).tolist() == [10.0, 5.0, 30.0, 20.0]
    with pytest.raises(ValueError, match="at least 2"):
        landmark_box(np.array([[1.0, 2.0], [np.nan, np.nan]]))


def test_fsanet_widens_by_0_6_and_clips():
    r = CROPS["fsanet"]
    # int-truncated first (100.7 -> 100), then 0.6 of w=100 / h=80 on every side
    pts = np.array([[100.7, 100.2], [150.0, 150.0], [200.9, 180.5]])
    assert r.expand_landmarks(pts, (450, 450)).tolist() == [40, 52, 260, 228]
    # clipped to the image, the last row/column excluded as in the original
    assert r.from_detection(np.array([10.0, 10.0, 440.0, 440.0]), (450, 450)).tolist() == [0, 0, 449, 449]


def test_hopenet_widening_is_sequential_like_the_original():
    # x1 -= 0.4 w; y1 -= 0.4 h; x2 += 0.4 (widened w); y2 += 0.12 (widened h)
    box = CROPS["hopenet"].expand_landmarks(np.array([[100.0, 100.0], [200.0, 200.0]]), (450, 450))
    assert box.tolist() == [60, 60, 256, 216]


def test_3ddfa_roi_box_is_the_square_diagonal():
    box = CROPS["3ddfa"].expand_landmarks(np.array([[100.0, 100.0], [200.0, 150.0]]), (450, 450))
    side = 100 * np.sqrt(2)
    assert box.tolist() == np.round([150 - side / 2, 125 - side / 2, 150 + side / 2, 125 + side / 2]).tolist()
    det = CROPS["3ddfa"].from_detection(np.array([100.0, 100.0, 200.0, 200.0]), (450, 450))
    assert det.tolist() == [71.0, 85.0, 229.0, 243.0]  # side int(1.58*100), centre 14 px lower


def test_start_box_prefers_the_declared_landmarks():
    s = SimpleNamespace(
        landmarks=np.array([[0.0, 0.0], [10.0, 10.0]]),
        landmarks68=np.array([[5.0, 5.0], [50.0, 60.0]]),
        box=np.array([1.0, 2.0, 3.0, 4.0]),
    )
    assert CROPS["fsanet"].start_box(s).tolist() == [0, 0, 10, 10]
    assert CROPS["3ddfa"].start_box(s).tolist() == [5, 5, 50, 60]
    s2 = SimpleNamespace(landmarks=None, landmarks68=None, box=np.array([1.0, 2.0, 3.0, 4.0]))
    assert CROPS["3ddfa"].start_box(s2).tolist() == [1, 2, 3, 4]


def test_take_pixels_pads_black_or_clips():
    img = np.full((10, 10, 3), 200, np.uint8)
    pad = take_pixels(img, np.array([-10, 0, 10, 10]), 20, "pad", "squash", "linear")
    assert pad.shape == (20, 20, 3)
    assert pad[:, :9].max() == 0 and pad[:, 11:].min() == 200
    clip = take_pixels(img, np.array([-10, 0, 10, 10]), 20, "clip", "squash", "linear")
    assert clip.min() == 200
    with pytest.raises(ValueError, match="empty crop"):
        take_pixels(img, np.array([20, 20, 30, 30]), 8, "clip")


def test_short_side_resize_centre_crops():
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, 20:60] = 255  # the centre square is white
    out = take_pixels(img, np.array([0, 0, 80, 40]), 20, "pad", "short-side", "area")
    assert out.shape == (20, 20, 3) and out.min() == 255


def test_shaw_crop_centres_on_the_landmark_mean():
    # mean (130, 100): pulled right of the box centre (150) by the points' spread
    pts = np.array([[100.0, 80.0], [110.0, 120.0], [120.0, 100.0], [190.0, 100.0]])
    box = CROPS["shaw"].expand_landmarks(pts, (450, 450))
    assert box.tolist() == [int(130 - 54), int(100 - 54), int(130 + 54), int(100 + 54)]  # side 1.2 x width 90


def test_square_box():
    assert square_box(np.array([0.0, 0.0, 10.0, 20.0]), 1.5).tolist() == [-10.0, -5.0, 20.0, 25.0]


def test_fsanet_crop_matches_reference_fixture_pixel_for_pixel(shared):
    """The 24 AFLW2000-dev faces in fsanet_tf_reference.npz were cropped by FSA-Net's own
    script; our recipe must give the same bytes (BGR in, BGR out: the recipe is colour-blind)."""
    import cv2
    import scipy.io as sio

    z = np.load(shared / "fixtures/fsanet_tf_reference.npz")
    r = CROPS["fsanet"]
    for i, name in enumerate(z["names"][:24]):
        img = cv2.imread(str(shared / f"data/aflw2000-dev/{name}.jpg"))
        pt2d = sio.loadmat(shared / f"data/aflw2000-dev/{name}.mat")["pt2d"].T.astype(np.float64)
        pt2d[(pt2d < 0).any(axis=1)] = np.nan  # FSA-Net keeps only points with positive coordinates
        crop = r(img, r.expand_landmarks(pt2d[np.isfinite(pt2d).all(1)], img.shape), 64)
        np.testing.assert_array_equal(crop, z["input_bgr_uint8"][i], err_msg=str(name))


def test_edge_padding_repeats_the_border():
    from openheadpose.specs.crops import take_pixels

    im = np.arange(25, dtype=np.uint8).reshape(5, 5)
    out = take_pixels(im, [-2, -1, 3, 4], 5, "edge", interp="linear")
    assert out[0].tolist() == [0, 0, 0, 1, 2]  # rows above and columns left repeat row / column 0
    assert out[:, 0].tolist() == [0, 0, 5, 10, 15]
    assert np.array_equal(take_pixels(im, [0, 0, 5, 5], 5, "edge"), im)  # inside: untouched


def test_face_crop_is_a_square_on_the_68_point_extent():
    from openheadpose.specs.crops import CROPS

    pts = np.array([[40.0, 50.0], [80.0, 130.0], [60.0, 90.0]])
    box = CROPS["face-1.1"].expand_landmarks(pts, (200, 200))
    assert box.tolist() == [16.0, 46.0, 104.0, 134.0]  # side 1.1 x 80, centred on (60, 90)


def test_face_crop_from_a_detector_box_targets_the_same_square():
    from openheadpose.specs.crops import CROPS

    box = CROPS["face-1.1"].from_detection(np.array([0.0, 0.0, 100.0, 100.0]), (400, 400))
    side = box[2] - box[0]
    assert side == pytest.approx(1.1 * 0.953 * 100, abs=1.0)  # the 68-point extent is 0.953 x the box
    assert (box[1] + box[3]) / 2 == pytest.approx(50 + 7, abs=1.0)  # and sits 0.07 box sides lower
