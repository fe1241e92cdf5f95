"""Every rotation convention of openheadpose lives here, and nowhere else.

The rotation matrix is the internal truth; Euler angles exist only at the edges.
All functions are pure numpy and batched over any leading shape ``(*, 3, 3)``.

Frames
------
``Frame.GL`` (the canonical frame of this package, also 3DDFA's and MediaPipe's
face-geometry frame)::

    camera:  x -> image right,  y -> image up,  z -> towards the viewer
    head:    x -> the person's left (image right when facing the camera),
             y -> top of the head,  z -> out through the nose

``R`` maps head coordinates to camera coordinates: ``X_cam = s * R @ X_head + t``.
``R = I`` is an upright face looking straight into the camera, and the direction
the face points in is ``R[..., :, 2]``.

``Frame.OPENCV`` is the same physical rotation written in OpenCV's axes
(x right, y down, z into the scene) for both camera and head:
``R_cv = F @ R @ F`` with ``F = diag(1, -1, -1)``.

Public Euler angles (yaw, pitch, roll; degrees)
-----------------------------------------------
They follow the AFLW2000-3D / 300W-LP ``Pose_Para`` convention so that our
numbers compare directly with published ones::

    R = (Rz(roll) @ Ry(yaw) @ Rx(pitch)).T        (Frame.GL)

with the standard right-handed elementary matrices. Positive yaw turns the nose
towards the image's left (the person turns to their right), positive pitch
lifts the chin (looks up), positive roll turns the face clockwise on screen.
Ranges: yaw in [-90, 90], pitch and roll in (-180, 180].

See docs/conventions.md for a picture.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "screen_angle",
    "Frame",
    "EulerConvention",
    "EulerAngles",
    "rot_x",
    "rot_y",
    "rot_z",
    "euler_to_matrix",
    "matrix_to_euler",
    "change_frame",
    "mirror_horizontal",
    "mean_rotation",
    "exp_so3",
    "log_so3",
    "rotate_in_plane",
    "to_6d",
    "from_6d",
    "to_quaternion",
    "from_quaternion",
    "to_axis_angle",
    "from_axis_angle",
    "geodesic_distance",
    "wrap_degrees",
    "is_rotation",
    "orthonormalize",
    "look_at_rotation",
]

_F = np.diag([1.0, -1.0, -1.0])  # GL <-> OpenCV axes (its own inverse)


class Frame(str, enum.Enum):
    """Axis conventions of camera and head coordinates (see module docstring)."""

    GL = "gl"
    OPENCV = "opencv"


class EulerConvention(str, enum.Enum):
    """Named Euler conventions.

    Convention:
        AFLW: ``R_gl = (Rz(roll) @ Ry(yaw) @ Rx(pitch)).T`` -- AFLW2000-3D,
            300W-LP ``Pose_Para`` (pitch, yaw, roll order in the file), 3DDFA,
            FSA-Net, Hopenet and the public output of this package.
        BIWI: the BIWI Kinect ``frame_XXXXX_pose.txt`` matrix is a rotation in
            OpenCV axes, ``R_cv = Rx(-pitch) @ Ry(yaw) @ Rz(roll)``; the angles it
            yields (Hopenet / FSA-Net's BIWI loaders) are the AFLW angles of the
            same physical rotation, so a BIWI matrix is read with
            ``change_frame(M, Frame.OPENCV, Frame.GL)``.
        OPENFACE: OpenFace 2's ``pose_Rx, pose_Ry, pose_Rz`` (radians in its CSV):
            ``R_cv = Rx(pose_Rx) @ Ry(pose_Ry) @ Rz(pose_Rz)`` in OpenCV axes.
            Here the angles are exposed as pitch = pose_Rx, yaw = pose_Ry,
            roll = pose_Rz, in degrees.
    """

    AFLW = "aflw"
    BIWI = "biwi"
    OPENFACE = "openface"


@dataclass(frozen=True)
class EulerAngles:
    """Yaw, pitch and roll in degrees, arrays of equal shape ``(*)``.

    Attributes:
        yaw: rotation about the head's vertical axis.
        pitch: rotation about the head's left-right axis.
        roll: in-plane rotation.
        convention: the convention these numbers are expressed in.
    """

    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    convention: EulerConvention = EulerConvention.AFLW

    def stack(self) -> np.ndarray:
        """``(*, 3)`` array ordered (yaw, pitch, roll)."""
        return np.stack([self.yaw, self.pitch, self.roll], axis=-1)

    def to_matrix(self) -> np.ndarray:
        """The rotation in ``Frame.GL``; see :func:`euler_to_matrix`."""
        return euler_to_matrix(self.yaw, self.pitch, self.roll, self.convention)


def _elementary(angle, i: int, j: int) -> np.ndarray:
    a = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    out = np.zeros(a.shape + (3, 3))
    k = 3 - i - j
    out[..., k, k] = 1.0
    out[..., i, i] = c
    out[..., j, j] = c
    out[..., i, j] = -s
    out[..., j, i] = s
    return out


def rot_x(angle) -> np.ndarray:
    """Right-handed rotation about x by ``angle`` radians, shape ``(*, 3, 3)``."""
    return _elementary(angle, 1, 2)


def rot_y(angle) -> np.ndarray:
    """Right-handed rotation about y by ``angle`` radians, shape ``(*, 3, 3)``."""
    return _elementary(angle, 2, 0)


def rot_z(angle) -> np.ndarray:
    """Right-handed rotation about z by ``angle`` radians, shape ``(*, 3, 3)``."""
    return _elementary(angle, 0, 1)


def _swap(m: np.ndarray) -> np.ndarray:
    return np.swapaxes(m, -1, -2)


def change_frame(R: np.ndarray, src: Frame, dst: Frame) -> np.ndarray:
    """Express rotations ``(*, 3, 3)`` given in axes ``src`` in axes ``dst``.

    Convention:
        ``R_cv = F @ R_gl @ F`` with ``F = diag(1, -1, -1)``; the physical
        rotation is unchanged, only the axes it is written in.
    """
    R = np.asarray(R, dtype=np.float64)
    if Frame(src) == Frame(dst):
        return R.copy()
    return _F @ R @ _F


def euler_to_matrix(yaw, pitch, roll, convention: EulerConvention = EulerConvention.AFLW) -> np.ndarray:
    """Rotation matrices ``(*, 3, 3)`` in ``Frame.GL`` from Euler angles in degrees.

    Args:
        yaw, pitch, roll: broadcastable arrays of degrees.
        convention: how the angles compose (see :class:`EulerConvention`).

    Convention:
        AFLW / BIWI: ``R = (Rz(roll) @ Ry(yaw) @ Rx(pitch)).T``.
        OPENFACE: ``R = F @ (Rx(pitch) @ Ry(yaw) @ Rz(roll)) @ F``.

    Example:
        >>> R = euler_to_matrix(30.0, 0.0, 0.0)
        >>> bool(R[0, 2] < 0)   # positive yaw: the nose points to the image's left
        True
    """
    y, p, r = np.broadcast_arrays(*(np.deg2rad(np.asarray(v, dtype=np.float64)) for v in (yaw, pitch, roll)))
    convention = EulerConvention(convention)
    if convention in (EulerConvention.AFLW, EulerConvention.BIWI):
        return _swap(rot_z(r) @ rot_y(y) @ rot_x(p))
    if convention is EulerConvention.OPENFACE:
        return _F @ (rot_x(p) @ rot_y(y) @ rot_z(r)) @ _F
    raise ValueError(f"unknown Euler convention {convention!r}")


def matrix_to_euler(R: np.ndarray, convention: EulerConvention = EulerConvention.AFLW) -> EulerAngles:
    """Euler angles in degrees from rotations ``(*, 3, 3)`` in ``Frame.GL``.

    At gimbal lock (|yaw| = 90 for AFLW) roll is set to 0 and pitch absorbs the
    in-plane part, so ``euler_to_matrix(matrix_to_euler(R))`` still returns ``R``.

    Convention:
        see :func:`euler_to_matrix`; yaw in [-90, 90], pitch and roll in (-180, 180].
    """
    R = np.asarray(R, dtype=np.float64)
    convention = EulerConvention(convention)
    if convention in (EulerConvention.AFLW, EulerConvention.BIWI):
        M = _swap(R)  # M = Rz(roll) Ry(yaw) Rx(pitch): ZYX extraction
        cy = np.hypot(M[..., 0, 0], M[..., 1, 0])
        yaw = np.arctan2(-M[..., 2, 0], cy)
        regular = cy > 1e-9
        pitch = np.where(regular, np.arctan2(M[..., 2, 1], M[..., 2, 2]), np.arctan2(-M[..., 1, 2], M[..., 1, 1]))
        roll = np.where(regular, np.arctan2(M[..., 1, 0], M[..., 0, 0]), 0.0)
        # At the lock M = Rz(r) Ry(+-90) Rx(p) depends on p -+ r only; with roll
        # set to 0, M[1,2] = -sin(p) and M[1,1] = cos(p) recover pitch.
    elif convention is EulerConvention.OPENFACE:
        M = _F @ R @ _F  # M = Rx(pitch) Ry(yaw) Rz(roll): XYZ extraction
        cy = np.hypot(M[..., 0, 0], M[..., 0, 1])
        yaw = np.arctan2(M[..., 0, 2], cy)
        regular = cy > 1e-9
        pitch = np.where(regular, np.arctan2(-M[..., 1, 2], M[..., 2, 2]), np.arctan2(M[..., 2, 1], M[..., 1, 1]))
        roll = np.where(regular, np.arctan2(-M[..., 0, 1], M[..., 0, 0]), 0.0)
    else:
        raise ValueError(f"unknown Euler convention {convention!r}")
    return EulerAngles(np.rad2deg(yaw), np.rad2deg(pitch), np.rad2deg(roll), convention)


def mirror_horizontal(R: np.ndarray) -> np.ndarray:
    """The pose of the mirror image (image flipped left-right): ``M @ R @ M``, ``M = diag(-1, 1, 1)``.

    ``R`` is ``(*, 3, 3)`` in ``Frame.GL``. The map is its own inverse, so the same call
    takes a pose read on a mirrored image back to the original image.

    Convention:
        In AFLW angles this negates yaw and roll and keeps pitch:
        ``matrix_to_euler(mirror_horizontal(R))`` is ``(-yaw, pitch, -roll)``.

    Example:
        >>> a = matrix_to_euler(mirror_horizontal(euler_to_matrix(30.0, 10.0, -5.0)))
        >>> [round(float(v), 6) for v in a.stack()]
        [-30.0, 10.0, 5.0]
    """
    M = np.diag([-1.0, 1.0, 1.0])
    return M @ np.asarray(R, dtype=np.float64) @ M


def mean_rotation(R: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The chordal L2 mean of ``K`` rotations: ``(*, K, 3, 3)`` -> ``(*, 3, 3)``.

    The rotation nearest (Frobenius norm) to the weighted arithmetic mean of the
    matrices, i.e. the minimiser of ``sum_k w_k ||Q - R_k||_F^2`` over rotations Q
    (Hartley et al., "Rotation averaging", IJCV 2013), projected by SVD
    (:func:`orthonormalize`). For two rotations it is exactly their geodesic midpoint;
    for rotations a few degrees apart it is within a tiny fraction of a degree of the
    geodesic (Karcher) mean. Never average Euler angles instead: they wrap and lock.

    Args:
        R: ``(*, K, 3, 3)`` rotations, averaged over axis ``-3``.
        weights: ``(*, K)`` or ``(K,)`` non-negative weights (default equal).

    Example:
        >>> Q = mean_rotation(np.stack([euler_to_matrix(20.0, 0, 0), euler_to_matrix(-10.0, 0, 0)]))
        >>> round(float(matrix_to_euler(Q).yaw), 6)
        5.0
    """
    R = np.asarray(R, dtype=np.float64)
    if R.ndim < 3 or R.shape[-2:] != (3, 3):
        raise ValueError(f"expected rotations (*, K, 3, 3), got shape {R.shape}")
    if weights is None:
        return orthonormalize(R.mean(axis=-3))
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64), R.shape[:-2])
    return orthonormalize((w[..., None, None] * R).sum(axis=-3) / w.sum(axis=-1)[..., None, None])


def rotate_in_plane(R: np.ndarray, degrees) -> np.ndarray:
    """The pose of the image turned ``degrees`` counter-clockwise (as displayed) about the optical axis.

    Convention:
        ``Rz(degrees) @ R`` in ``Frame.GL`` (z towards the viewer, y up), the turn
        ``cv2.getRotationMatrix2D(centre, degrees, 1)`` makes (orthographic camera, turn
        about the principal point). A frontal face's AFLW roll changes by ``-degrees``:
        roll > 0 is the head tilted towards its right shoulder, clockwise as displayed.
    """
    a = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    return rot_z(a) @ np.asarray(R, dtype=np.float64)


def screen_angle(R: np.ndarray) -> np.ndarray:
    """The head's in-plane angle on screen: degrees, counter-clockwise, of its up axis's image.

    Convention:
        ``screen_angle(rotate_in_plane(R, a)) == screen_angle(R) + a``, and
        ``rotate_in_plane(R, -screen_angle(R))`` has AFLW roll 0 (the head's up axis drawn
        vertical): the turn that levels a face in the image.
    """
    R = np.asarray(R, dtype=np.float64)
    return np.degrees(np.arctan2(-R[..., 0, 1], R[..., 1, 1]))


def to_6d(R: np.ndarray) -> np.ndarray:
    """6D representation (Zhou et al. 2019, as in 6DRepNet): the first two columns, ``(*, 6)``.

    Convention:
        ``[R[:,0], R[:,1]]`` concatenated column-wise (x-column then y-column).
    """
    R = np.asarray(R, dtype=np.float64)
    return np.concatenate([R[..., :, 0], R[..., :, 1]], axis=-1)


def from_6d(d6: np.ndarray) -> np.ndarray:
    """Gram-Schmidt the 6D representation ``(*, 6)`` back into rotations ``(*, 3, 3)``."""
    d6 = np.asarray(d6, dtype=np.float64)
    a, b = d6[..., :3], d6[..., 3:]
    x = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b - np.sum(x * b, axis=-1, keepdims=True) * x
    y = b / np.linalg.norm(b, axis=-1, keepdims=True)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def _SciRot():
    """scipy's ``Rotation``, imported when first needed: ``scipy.spatial`` takes about 0.2 s to
    import, and a photo's path through the pipeline needs none of it (issue 32: start-up counts
    in a folder's throughput)."""
    from scipy.spatial.transform import Rotation

    return Rotation


def _scipy(R: np.ndarray):
    R = np.asarray(R, dtype=np.float64)
    return _SciRot().from_matrix(R.reshape(-1, 3, 3)), R.shape[:-2]


def to_quaternion(R: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(*, 4)`` ordered (x, y, z, w), scalar last (scipy's order), w >= 0."""
    rot, lead = _scipy(R)
    q = rot.as_quat(canonical=True)
    return q.reshape(lead + (4,))


def from_quaternion(q: np.ndarray) -> np.ndarray:
    """Rotations ``(*, 3, 3)`` from quaternions ``(*, 4)`` ordered (x, y, z, w)."""
    q = np.asarray(q, dtype=np.float64)
    return _SciRot().from_quat(q.reshape(-1, 4)).as_matrix().reshape(q.shape[:-1] + (3, 3))


def to_axis_angle(R: np.ndarray) -> np.ndarray:
    """Rotation vectors ``(*, 3)``: unit axis times angle in radians."""
    rot, lead = _scipy(R)
    return rot.as_rotvec().reshape(lead + (3,))


def from_axis_angle(v: np.ndarray) -> np.ndarray:
    """Rotations ``(*, 3, 3)`` from rotation vectors ``(*, 3)`` (radians), by Rodrigues' formula
    (vectorised :func:`exp_so3`; no SciPy import on a photo's path, issue 32).

    >>> v = np.array([[0.3, -1.2, 2.0], [0.0, 0.0, 0.0], [1e-10, 0.0, 0.0]])
    >>> R = from_axis_angle(v)
    >>> bool(np.allclose(R, [exp_so3(x) for x in v], atol=1e-12))
    True
    """
    v = np.asarray(v, dtype=np.float64)
    w = v.reshape(-1, 3)
    theta = np.linalg.norm(w, axis=-1)
    K = np.zeros((len(w), 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -w[:, 2], w[:, 1], -w[:, 0]
    K[:, 1, 0], K[:, 2, 0], K[:, 2, 1] = w[:, 2], -w[:, 1], w[:, 0]
    small = theta < 1e-9
    t = np.where(small, 1.0, theta)
    a = np.where(small, 1.0, np.sin(t) / t)  # first-order below 1e-9, as exp_so3
    b = np.where(small, 0.0, (1.0 - np.cos(t)) / t**2)
    R = np.eye(3) + a[:, None, None] * K + b[:, None, None] * (K @ K)
    return R.reshape(v.shape[:-1] + (3, 3))


def _hat(v: np.ndarray) -> np.ndarray:
    x, y, z = v
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


def exp_so3(v: np.ndarray) -> np.ndarray:
    """Rotation matrix of one rotation vector ``v`` (3,), radians (Rodrigues).

    :func:`from_axis_angle` for a single vector in closed form, without SciPy's per-call
    overhead: the tracker's fusion calls it several times per head and frame."""
    theta = math.sqrt(float(v @ v))
    K = _hat(v)
    if theta < 1e-9:
        return np.eye(3) + K
    return np.eye(3) + math.sin(theta) / theta * K + (1 - math.cos(theta)) / theta**2 * (K @ K)


def log_so3(R: np.ndarray) -> np.ndarray:
    """Rotation vector (3,), radians, of one rotation matrix ``R``; angle in [0, pi].

    :func:`to_axis_angle` for a single matrix in closed form (see :func:`exp_so3`)."""
    c = max(-1.0, min(1.0, (float(np.trace(R)) - 1.0) / 2.0))
    theta = math.acos(c)
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    if theta < 1e-7:
        return w / 2.0
    if theta > math.pi - 1e-4:  # near pi: axis from the symmetric part
        B = (R + np.eye(3)) / 2.0
        axis = np.sqrt(np.clip(np.diag(B), 0.0, None))
        k = int(np.argmax(axis))
        axis = B[k] / max(axis[k], 1e-12)
        axis /= np.linalg.norm(axis)
        if axis @ w < 0:
            axis = -axis
        return theta * axis
    return theta / (2.0 * math.sin(theta)) * w


def geodesic_distance(R1: np.ndarray, R2: np.ndarray) -> np.ndarray:
    """Angle in degrees of ``R1.T @ R2`` (the smallest rotation taking one to the other), in [0, 180]."""
    M = _swap(np.asarray(R1, dtype=np.float64)) @ np.asarray(R2, dtype=np.float64)
    # atan2 of (sin, cos) stays accurate near 0 and 180 degrees, where arccos does not
    cos = (np.trace(M, axis1=-2, axis2=-1) - 1.0) / 2.0
    vee = np.stack([M[..., 2, 1] - M[..., 1, 2], M[..., 0, 2] - M[..., 2, 0], M[..., 1, 0] - M[..., 0, 1]], -1)
    sin = np.linalg.norm(vee, axis=-1) / 2.0
    return np.rad2deg(np.arctan2(sin, cos))


def wrap_degrees(a, period: float = 360.0) -> np.ndarray:
    """Wrap angles into ``[-period/2, period/2)``."""
    a = np.asarray(a, dtype=np.float64)
    return (a + period / 2.0) % period - period / 2.0


def is_rotation(R: np.ndarray, atol: float = 1e-6) -> np.ndarray:
    """True where ``R`` is orthonormal with determinant +1 (within ``atol``)."""
    R = np.asarray(R, dtype=np.float64)
    ortho = np.all(np.abs(_swap(R) @ R - np.eye(3)) < atol, axis=(-2, -1))
    return ortho & (np.abs(np.linalg.det(R) - 1.0) < atol)


def orthonormalize(M: np.ndarray) -> np.ndarray:
    """Nearest rotation (Frobenius norm) to each ``(*, 3, 3)`` matrix, via SVD."""
    U, _, Vt = np.linalg.svd(np.asarray(M, dtype=np.float64))
    d = np.sign(np.linalg.det(U @ Vt))
    D = np.zeros(U.shape)
    D[..., 0, 0] = 1.0
    D[..., 1, 1] = 1.0
    D[..., 2, 2] = d
    return U @ D @ Vt


def look_at_rotation(direction: np.ndarray) -> np.ndarray:
    """Rotation ``(*, 3, 3)`` in ``Frame.GL`` turning the optical axis onto a viewing ray.

    The camera looks along ``-z`` in ``Frame.GL``; this is the rotation Q with
    ``Q @ [0, 0, -1] = d / |d|`` of least angle (no twist about the ray). A face
    seen off-centre looks turned by ``Q.T`` even when it faces the same way as a
    centred one: ``R_camera = Q @ R_apparent``.

    Args:
        direction: ``(*, 3)`` rays from the camera centre to the face, GL axes.
    """
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    a = np.broadcast_to(np.array([0.0, 0.0, -1.0]), d.shape)
    axis = np.cross(a, d)
    s = np.linalg.norm(axis, axis=-1, keepdims=True)
    c = np.sum(a * d, axis=-1, keepdims=True)
    angle = np.arctan2(s, c)
    unit = np.where(s > 1e-12, axis / np.maximum(s, 1e-12), 0.0)
    return from_axis_angle(unit * angle)
