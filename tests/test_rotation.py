"""The rotation module: hand-checked cases and seeded round trips (no data needed)."""

import numpy as np
import pytest

from openheadpose.core import rotation as rot
from openheadpose.core.rotation import EulerConvention, Frame

RNG_SEED = 1234


def random_rotations(n: int) -> np.ndarray:
    q = np.random.default_rng(RNG_SEED).normal(size=(n, 4))
    return rot.from_quaternion(q)


NOSE = np.array([0.0, 0.0, 1.0])  # head z: out through the nose
UP = np.array([0.0, 1.0, 0.0])  # head y: top of the head


class TestConventionHandChecked:
    """Each case was worked out by hand from the AFLW definition R = (Rz(r) Ry(y) Rx(p))^T."""

    def test_convention_identity_is_frontal(self):
        assert np.allclose(rot.euler_to_matrix(0, 0, 0), np.eye(3))

    def test_convention_positive_yaw_turns_nose_to_image_left(self):
        nose = rot.euler_to_matrix(30, 0, 0) @ NOSE
        assert nose[0] == pytest.approx(-0.5)  # sin 30 towards -x (image left)
        assert nose[2] == pytest.approx(np.cos(np.radians(30)))

    def test_convention_positive_pitch_looks_up(self):
        nose = rot.euler_to_matrix(0, 20, 0) @ NOSE
        assert nose[1] == pytest.approx(np.sin(np.radians(20)))  # +y is image up in Frame.GL

    def test_convention_positive_roll_is_clockwise_on_screen(self):
        up = rot.euler_to_matrix(0, 0, 30) @ UP
        # top of the head moves to the image right: clockwise as seen on screen
        assert up[0] == pytest.approx(0.5)
        assert up[1] == pytest.approx(np.cos(np.radians(30)))

    def test_convention_composition_order(self):
        y, p, r = 40.0, -25.0, 15.0
        Y, P, Rr = np.radians([y, p, r])
        expected = (rot.rot_z(Rr) @ rot.rot_y(Y) @ rot.rot_x(P)).T
        assert np.allclose(rot.euler_to_matrix(y, p, r), expected)

    def test_elementary_matrices_are_right_handed(self):
        # Rz(90) takes x to y, Rx(90) takes y to z, Ry(90) takes z to x
        assert np.allclose(rot.rot_z(np.pi / 2) @ [1, 0, 0], [0, 1, 0])
        assert np.allclose(rot.rot_x(np.pi / 2) @ [0, 1, 0], [0, 0, 1])
        assert np.allclose(rot.rot_y(np.pi / 2) @ [0, 0, 1], [1, 0, 0])

    def test_opencv_frame_flips_y_and_z(self):
        R = rot.euler_to_matrix(30, 0, 0)
        R_cv = rot.change_frame(R, Frame.GL, Frame.OPENCV)
        # in OpenCV axes the head's facing direction is -z_head; it still points to image left (-x)
        facing = R_cv @ np.array([0, 0, -1.0])
        assert facing[0] < 0 and facing[2] < 0  # towards the camera (-z in OpenCV)
        assert np.allclose(rot.change_frame(R_cv, Frame.OPENCV, Frame.GL), R)

    def test_biwi_matrix_reads_as_aflw_angles(self):
        # BIWI / Hopenet: R_cv = Rx(-pitch) Ry(yaw) Rz(roll) in OpenCV axes
        y, p, r = 25.0, 10.0, -5.0
        Y, P, Rr = np.radians([y, p, r])
        biwi = rot.rot_x(-P) @ rot.rot_y(Y) @ rot.rot_z(Rr)
        e = rot.matrix_to_euler(rot.change_frame(biwi, Frame.OPENCV, Frame.GL))
        assert np.allclose([e.yaw, e.pitch, e.roll], [y, p, r])

    def test_openface_composition(self):
        rx, ry, rz = 10.0, -20.0, 5.0
        R = rot.euler_to_matrix(ry, rx, rz, EulerConvention.OPENFACE)
        expected_cv = rot.rot_x(np.radians(rx)) @ rot.rot_y(np.radians(ry)) @ rot.rot_z(np.radians(rz))
        assert np.allclose(rot.change_frame(R, Frame.GL, Frame.OPENCV), expected_cv)

    def test_mirror_negates_yaw_and_roll(self):
        e = rot.matrix_to_euler(rot.mirror_horizontal(rot.euler_to_matrix(30, 12, -7)))
        assert np.allclose([e.yaw, e.pitch, e.roll], [-30, 12, 7])


@pytest.mark.parametrize("convention", list(EulerConvention))
def test_euler_round_trip_seeded(convention):
    R = random_rotations(5000)
    e = rot.matrix_to_euler(R, convention)
    back = rot.euler_to_matrix(e.yaw, e.pitch, e.roll, convention)
    assert rot.geodesic_distance(R, back).max() < 1e-6
    assert np.all(np.abs(e.yaw) <= 90 + 1e-9)


def test_euler_angles_round_trip_inside_ranges():
    rng = np.random.default_rng(RNG_SEED)
    ang = np.stack([rng.uniform(-89, 89, 2000), rng.uniform(-179, 179, 2000), rng.uniform(-179, 179, 2000)], -1)
    e = rot.matrix_to_euler(rot.euler_to_matrix(ang[:, 0], ang[:, 1], ang[:, 2]))
    assert np.allclose(e.stack(), ang, atol=1e-7)


@pytest.mark.parametrize("yaw", [90.0, -90.0])
def test_gimbal_lock_compared_as_matrices(yaw):
    R = rot.euler_to_matrix(yaw, 30.0, 20.0)
    e = rot.matrix_to_euler(R)
    assert e.yaw == pytest.approx(yaw)
    assert e.roll == 0.0
    assert rot.geodesic_distance(R, e.to_matrix()) < 1e-6


def test_batched_shapes():
    R = random_rotations(24).reshape(2, 3, 4, 3, 3)
    e = rot.matrix_to_euler(R)
    assert e.yaw.shape == (2, 3, 4)
    assert rot.to_6d(R).shape == (2, 3, 4, 6)
    assert rot.to_quaternion(R).shape == (2, 3, 4, 4)
    assert rot.geodesic_distance(R, R).shape == (2, 3, 4)


def test_6d_quaternion_axis_angle_round_trips():
    R = random_rotations(2000)
    assert rot.geodesic_distance(R, rot.from_6d(rot.to_6d(R))).max() < 1e-6
    assert rot.geodesic_distance(R, rot.from_quaternion(rot.to_quaternion(R))).max() < 1e-6
    assert rot.geodesic_distance(R, rot.from_axis_angle(rot.to_axis_angle(R))).max() < 1e-6
    assert np.all(rot.to_quaternion(R)[:, 3] >= 0)


def test_from_6d_orthonormalises_noisy_input():
    R = random_rotations(100)
    noisy = rot.to_6d(R) + np.random.default_rng(0).normal(scale=0.01, size=(100, 6))
    assert rot.is_rotation(rot.from_6d(noisy)).all()


def test_geodesic_distance_known_angles():
    assert rot.geodesic_distance(np.eye(3), rot.euler_to_matrix(37, 0, 0)) == pytest.approx(37)
    assert rot.geodesic_distance(np.eye(3), rot.rot_x(np.pi)) == pytest.approx(180)
    R = random_rotations(50)
    assert np.allclose(rot.geodesic_distance(R, R), 0, atol=1e-5)


def test_wrap_degrees():
    assert np.allclose(rot.wrap_degrees([179, 181, -181, 360, 540]), [179, -179, 179, 0, -180])


def test_orthonormalize_and_is_rotation():
    R = random_rotations(10)
    assert rot.is_rotation(R).all()
    assert not rot.is_rotation(R * 1.01).any()
    assert not rot.is_rotation(R @ np.diag([1, 1, -1.0])).any()  # reflection
    assert np.allclose(rot.orthonormalize(R + 1e-3), rot.orthonormalize(R + 1e-3) @ np.eye(3))
    assert rot.is_rotation(rot.orthonormalize(R + 0.05)).all()


def test_look_at_rotation_points_axis_along_ray():
    d = np.array([[0.3, -0.2, -1.0], [0.0, 0.0, -1.0]])
    Q = rot.look_at_rotation(d)
    got = Q @ np.array([0, 0, -1.0])
    assert np.allclose(got, d / np.linalg.norm(d, axis=1, keepdims=True))
    assert np.allclose(Q[1], np.eye(3))


def test_rotate_in_plane_is_the_turned_picture():
    """Points of a head at any pose, projected (orthographic, GL: u = x, v = -y), then turned by
    cv2's rotation matrix, land where rotate_in_plane's pose projects them."""
    import cv2

    rng = np.random.default_rng(4)
    P = rng.normal(0, 50, (20, 3))  # head points (mm), head frame
    c = np.array([60.0, 70.0])  # the turn's centre in the picture

    def project(R):
        q = P @ np.asarray(R).T
        return np.stack([c[0] + q[:, 0], c[1] - q[:, 1]], axis=1)

    for yaw, pitch, roll, a in [(0, 0, 0, 25.0), (50, -20, 10, -15.0), (-80, 30, -5, 40.0)]:
        R = rot.euler_to_matrix(yaw, pitch, roll)
        M = cv2.getRotationMatrix2D(tuple(c), a, 1.0)
        turned = project(R) @ M[:, :2].T + M[:, 2]
        assert np.allclose(turned, project(rot.rotate_in_plane(R, a)), atol=1e-9)
    # a frontal face turned counter-clockwise on screen: AFLW roll (clockwise positive) drops by the turn
    e = rot.matrix_to_euler(rot.rotate_in_plane(rot.euler_to_matrix(0.0, 0.0, 10.0), 25.0))
    assert np.allclose([e.yaw, e.pitch, e.roll], [0.0, 0.0, -15.0], atol=1e-9)


def test_mirror_is_an_involution_and_mirrors_the_picture():
    """Mirroring twice is the identity (1e-12: float round-off), and the mirrored pose projects
    (orthographic, GL: u = x, v = -y) to the left-right flip of the original projection."""
    R = random_rotations(2000)
    assert np.abs(rot.mirror_horizontal(rot.mirror_horizontal(R)) - R).max() < 1e-12
    assert rot.is_rotation(rot.mirror_horizontal(R)).all()
    e, m = rot.matrix_to_euler(R[:50]), rot.matrix_to_euler(rot.mirror_horizontal(R[:50]))
    assert np.allclose(m.stack(), np.stack([-e.yaw, e.pitch, -e.roll], -1), atol=1e-9)
    # a head's points and their mirror (x -> -x in the head frame) seen through the mirrored pose
    P = np.random.default_rng(5).normal(0, 50, (30, 3))
    Pm = P * np.array([-1.0, 1.0, 1.0])
    for r in R[:20]:
        u = P @ r.T
        um = Pm @ rot.mirror_horizontal(r).T
        assert np.allclose(um[:, 0], -u[:, 0]) and np.allclose(um[:, 1:], u[:, 1:])


def test_mean_rotation_of_a_rotation_and_itself_is_itself():
    R = random_rotations(500)
    Q = rot.mean_rotation(np.stack([R, R], axis=1))
    assert rot.geodesic_distance(Q, R).max() < 1e-6


def test_mean_of_two_rotations_is_their_geodesic_midpoint():
    """For any two rotations less than 180 deg apart, the chordal mean is R1 @ exp(log(R1^T R2) / 2):
    halfway along the geodesic, at half the distance from each (1e-6 deg: SVD round-off)."""
    R1, R2 = random_rotations(1000), random_rotations(2000)[1000:]
    d = rot.geodesic_distance(R1, R2)
    keep = d < 179.0
    R1, R2, d = R1[keep], R2[keep], d[keep]
    Q = rot.mean_rotation(np.stack([R1, R2], axis=1))
    half = rot.from_axis_angle(rot.to_axis_angle(np.swapaxes(R1, -1, -2) @ R2) / 2)
    assert rot.geodesic_distance(Q, R1 @ half).max() < 1e-6
    assert np.allclose(rot.geodesic_distance(Q, R1), d / 2, atol=1e-6)
    assert np.allclose(rot.geodesic_distance(Q, R2), d / 2, atol=1e-6)


def test_mean_rotation_weights_and_shapes():
    R = random_rotations(12).reshape(4, 3, 3, 3)
    assert rot.mean_rotation(R).shape == (4, 3, 3)
    # all weight on one rotation gives that rotation
    w = np.array([0.0, 1.0, 0.0])
    assert rot.geodesic_distance(rot.mean_rotation(R, w), R[:, 1]).max() < 1e-6
    with pytest.raises(ValueError):
        rot.mean_rotation(np.eye(3))


def test_from_axis_angle_matches_scipy():
    """The Rodrigues form (no SciPy on a photo's path, issue 32) against scipy's, tiny, ordinary
    and near-pi angles, batched shapes kept."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(3)
    axes = rng.normal(size=(300, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.concatenate([rng.uniform(0, np.pi, 200), rng.uniform(0, 1e-8, 50), np.pi - rng.uniform(0, 1e-6, 50)])
    v = axes * angles[:, None]
    assert np.abs(rot.from_axis_angle(v) - Rotation.from_rotvec(v).as_matrix()).max() < 1e-12
    assert rot.from_axis_angle(v.reshape(30, 10, 3)).shape == (30, 10, 3, 3)
    assert np.allclose(rot.from_axis_angle(np.zeros(3)), np.eye(3))


def test_screen_angle_moves_with_an_in_plane_turn_and_levels_the_roll():
    """``screen_angle`` grows by exactly the in-plane turn (``rotate_in_plane``), and turning a
    head back by it leaves AFLW roll 0 -- what the upright read levels a face by."""
    from openheadpose.core.rotation import euler_to_matrix, matrix_to_euler, rotate_in_plane, screen_angle

    for yaw, pitch, roll in ((0.0, 0.0, 20.0), (40.0, 10.0, 15.0), (-60.0, -20.0, -5.0), (70.0, 0.0, 0.0)):
        R = euler_to_matrix(yaw, pitch, roll)
        for a in (-30.0, 7.0, 45.0):
            assert float(screen_angle(rotate_in_plane(R, a)) - screen_angle(R)) == pytest.approx(a, abs=1e-9)
        level = matrix_to_euler(rotate_in_plane(R, -screen_angle(R)))
        assert float(level.roll) == pytest.approx(0.0, abs=1e-9)
    assert float(screen_angle(euler_to_matrix(0.0, 0.0, 20.0))) == pytest.approx(-20.0)  # roll > 0: clockwise on screen
