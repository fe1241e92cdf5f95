"""Who looks at whom: view cones, mutual gaze and interaction levels from head poses.

From the heads of one image (box positions, rotations and their sigma) this module
decides, for every pair, whether and how strongly each head looks at the other, whether
the gaze is mutual, an interaction level per pair and groups of interacting heads. It
is the application of HHP-Net (Cantarini et al., WACV 2022): people looking at each
other (LAEO, Marin-Jimenez et al.) judged from head poses, with each pose's
uncertainty widening the person's view cone. The geometry is pure numpy;
:func:`draw_interaction` (OpenCV, imported when called) draws it.

Dimension legend: N heads, P = N (N - 1) / 2 unordered pairs.

The reasoning and measurements behind it: ``docs/design-notes.md`` (Who looks at whom).

Frames of a video are analysed one by one (no smoothing over time).

Example:
    >>> from openheadpose.inference.results import FrameResult, Heads
    >>> from openheadpose.core.rotation import euler_to_matrix
    >>> boxes = np.array([[0, 0, 100, 100], [400, 0, 500, 100]], float)
    >>> # positive yaw turns the nose to the image's left: the left head turns right (-60)
    >>> R = euler_to_matrix(np.array([-60.0, 60.0]), 0.0, 0.0)
    >>> inter = find_interactions(Heads(boxes, np.ones(2), R), image_size=(640, 480))
    >>> p = inter.pairs[0]
    >>> (p.a, p.b, p.mutual, round(p.score, 2))
    (0, 1, True, 0.85)
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from openheadpose.assets import face_template
from openheadpose.core.rotation import look_at_rotation
from openheadpose.inference.results import FrameResult, Heads

__all__ = [
    "DepthModel",
    "InteractionConfig",
    "GazeGeometry",
    "Pair",
    "Group",
    "Interaction",
    "facing_directions",
    "face_sizes",
    "focal_length",
    "camera_rotations",
    "head_positions",
    "cone_half_angles",
    "gaze_geometry",
    "look_scores",
    "camera_scores",
    "find_interactions",
    "draw_interaction",
]

_LN2 = math.log(2.0)

#: Width / height of FaceMesh's landmark box on an upright frontal face (0.86-0.87 on
#: the frontal faces of media/group-t1.jpg); only the roll correction uses it.
_FACE_ASPECT = 0.87

#: Height of the face template (FaceMesh's points, top to chin) in metres, 0.159: a head
#: size in the ``size`` model is the height of an upright face's landmark box, so with
#: positions ``distance`` (head sizes) is ``distance_m`` over this.
FACE_HEIGHT_M = float(np.ptp(face_template().points[:, 1])) / 1000.0


class DepthModel(str, enum.Enum):
    """How heads are placed in depth (see the module docstring).

    ``POSITION``: the heads' own positions in the camera frame (``Heads.positions``, metres,
    with their sigma: :mod:`openheadpose.core.placement`); a frame whose heads are not all
    placed falls back to ``SIZE``. ``SIZE``: a pinhole, every head the same size.
    ``PLANE``: every head at one depth.
    """

    PLANE = "plane"
    SIZE = "size"
    POSITION = "position"


@dataclass(frozen=True)
class InteractionConfig:
    """Constants of the view-cone model; the module docstring says why these values.

    Attributes:
        cone_deg: half-angle of the view cone without uncertainty, degrees.
        max_cone_deg: the widest half-angle sigma can open the cone to.
        sigma_gain: ``alpha = sqrt(cone_deg**2 + (sigma_gain * sigma)**2)``; the same
            gain widens the cone in depth by ``depth_sigma_deg``.
        depth: ``DepthModel.POSITION`` (the heads' positions), ``DepthModel.SIZE`` (bigger
            faces are nearer) or ``DepthModel.PLANE``.
        depth_sigma_deg: uncertainty of the elevation of the line between two heads
            (their unknown depth difference), degrees; with ``POSITION`` it comes from the
            positions' sigma instead.
        fov_deg: field of view across the image's longer side, for ``SIZE``.
        apparent_rotations: the heads' rotations are relative to each face's line of
            sight (what every pose model here reports unless told a field of view), so
            ``SIZE`` turns them into the camera frame with its pinhole. Set False for
            rotations already in the camera frame (``headpose predict --fov``).
        group_threshold: minimum pair score of an edge in the group graph.
    """

    cone_deg: float = 30.0
    max_cone_deg: float = 60.0
    sigma_gain: float = math.sqrt(2.0 * _LN2)
    depth: DepthModel = DepthModel.POSITION
    depth_sigma_deg: float = 20.0
    fov_deg: float = 60.0
    apparent_rotations: bool = True
    group_threshold: float = 0.25

    def __post_init__(self):
        object.__setattr__(self, "depth", DepthModel(self.depth))
        if not 0 < self.cone_deg <= self.max_cone_deg < 90:
            raise ValueError(f"need 0 < cone_deg <= max_cone_deg < 90, got {self.cone_deg} and {self.max_cone_deg}")
        if not 0 <= self.depth_sigma_deg <= 45:
            raise ValueError(f"depth_sigma_deg must be in [0, 45], got {self.depth_sigma_deg}")
        if not 0 < self.fov_deg < 180:
            raise ValueError(f"fov_deg must be in (0, 180), got {self.fov_deg}")
        if self.sigma_gain < 0:
            raise ValueError(f"sigma_gain must be >= 0, got {self.sigma_gain}")
        if not 0 <= self.group_threshold <= 1:
            raise ValueError(f"group_threshold must be in [0, 1], got {self.group_threshold}")


# --------------------------------------------------------------------------- geometry


def facing_directions(rotations: np.ndarray) -> np.ndarray:
    """Unit facing directions ``(N, 3)`` (``R[:, :, 2]``, ``Frame.GL``) of rotations ``(N, 3, 3)``.

    Convention:
        ``g = R @ [0, 0, 1]``; ``g_x > 0``: the nose points to the image's right,
        ``g_y > 0``: up, ``g_z > 0``: towards the camera. Positive AFLW yaw turns the
        nose to the image's LEFT (``g_x < 0``).

    Example:
        >>> from openheadpose.core.rotation import euler_to_matrix
        >>> facing_directions(euler_to_matrix(-90.0, 0.0, 0.0)).round(6) + 0.0
        array([[1., 0., 0.]])
    """
    R = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    return R[:, :, 2].copy()


def face_sizes(boxes: np.ndarray, rotations: np.ndarray | None = None) -> np.ndarray:
    """Face sizes ``(N,)`` in pixels (the height of an upright frontal face's box), from
    boxes ``(N, 4)`` and, for the roll correction, rotations ``(N, 3, 3)``.

    The upright box of a face ``h`` tall and ``k h`` wide (``k = 0.87``) turned in the
    image plane by ``r`` is ``h (|cos r| + k |sin r|)`` tall and ``h (k |cos r| + |sin r|)``
    wide; the size is the larger of the two estimates of ``h``, because a face turned
    sideways (yaw) or up/down (pitch) narrows one side of its box only. ``r`` is the
    angle of the head's up axis ``R[:2, 1]`` from the image's up; without rotations, or
    when that axis points at the camera, ``r = 0``.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w = np.maximum(b[:, 2] - b[:, 0], 1e-6)
    h = np.maximum(b[:, 3] - b[:, 1], 1e-6)
    c, s = np.ones(len(b)), np.zeros(len(b))
    if rotations is not None and len(b):
        up = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)[:, :2, 1]
        norm = np.linalg.norm(up, axis=-1)
        ok = norm > 1e-6
        safe = np.where(ok, norm, 1.0)
        c = np.where(ok, np.abs(up[:, 1]) / safe, 1.0)
        s = np.where(ok, np.abs(up[:, 0]) / safe, 0.0)
    k = _FACE_ASPECT
    return np.maximum(h / (c + k * s), w / (k * c + s))


def focal_length(image_size: Sequence[int], fov_deg: float) -> float:
    """Pinhole focal length in pixels: ``(max(W, H) / 2) / tan(fov / 2)`` -- ``fov`` spans
    the image's longer side, as in ``headpose predict --fov``."""
    return 0.5 * float(max(image_size[0], image_size[1])) / math.tan(math.radians(fov_deg) / 2.0)


def _centres(boxes: np.ndarray) -> np.ndarray:
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2.0, (boxes[:, 1] + boxes[:, 3]) / 2.0], axis=-1)


def camera_rotations(rotations: np.ndarray, boxes: np.ndarray, image_size: Sequence[int], fov_deg: float) -> np.ndarray:
    """Turn apparent rotations ``(N, 3, 3)`` (relative to each face's line of sight) into
    the camera frame: ``R_cam = look_at_rotation(ray) @ R``, the ray from a pinhole at
    the image centre through the box centre (:func:`openheadpose.core.rotation.look_at_rotation`)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    W, H = float(image_size[0]), float(image_size[1])
    c = _centres(b)
    ray = np.stack([c[:, 0] - W / 2.0, -(c[:, 1] - H / 2.0), np.full(len(b), -focal_length(image_size, fov_deg))], axis=-1)
    return look_at_rotation(ray) @ np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)


def head_positions(
    boxes: np.ndarray,
    depth: DepthModel | str = DepthModel.SIZE,
    image_size: Sequence[int] | None = None,
    fov_deg: float = 60.0,
    rotations: np.ndarray | None = None,
) -> np.ndarray:
    """Head positions ``(N, 3)`` in ``Frame.GL`` axes from boxes ``(N, 4)``.

    Args:
        boxes: ``[x1, y1, x2, y2]`` pixels.
        depth: ``size``: pinhole camera, every head the same size; in head sizes,
            ``((u - cx) / s, -(v - cy) / s, -f / s)`` with ``s`` from :func:`face_sizes`
            and ``f`` from :func:`focal_length`: bigger faces are nearer the camera.
            ``plane``: ``(u, -v, 0)`` in pixels (box centres, y flipped to point up).
        image_size: ``(W, H)``; needed by ``size``.
        fov_deg: field of view for ``size``.
        rotations: ``(N, 3, 3)`` for the roll correction of the sizes (``size`` only).
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    u, v = _centres(b).T
    if DepthModel(depth) is DepthModel.PLANE:
        return np.stack([u, -v, np.zeros_like(u)], axis=-1)
    if image_size is None:
        raise ValueError("depth='size' needs image_size=(width, height); pass it, or use depth='plane'")
    W, H = float(image_size[0]), float(image_size[1])
    f = focal_length(image_size, fov_deg)
    s = face_sizes(b, rotations)
    return np.stack([(u - W / 2.0) / s, -(v - H / 2.0) / s, -f / s], axis=-1)


def cone_half_angles(sigma: np.ndarray | None, n: int, config: InteractionConfig | None = None) -> np.ndarray:
    """View-cone half-angles ``(N,)`` in degrees, widened by the heads' sigma ``(N, 3)`` (or ``None``).

    ``alpha = min(max_cone, sqrt(cone**2 + (gain * s)**2))``,
    ``s = sqrt((sigma_yaw**2 + sigma_pitch**2) / 2)``; roll's sigma does not move the
    facing direction and is ignored. Non-finite sigma counts as none.
    """
    config = InteractionConfig() if config is None else config
    alpha = np.full(n, float(config.cone_deg))
    if sigma is None:
        return alpha
    sg = np.asarray(sigma, dtype=np.float64).reshape(n, 3)
    s = np.sqrt((sg[:, 0] ** 2 + sg[:, 1] ** 2) / 2.0)
    s = np.where(np.isfinite(s), s, 0.0)
    return np.minimum(config.max_cone_deg, np.hypot(config.cone_deg, config.sigma_gain * s))


@dataclass(frozen=True)
class GazeGeometry:
    """Angles in degrees between each head's facing direction and the line to each other head.

    Attributes:
        theta: ``(N, N)`` full 3D angle ``theta[a, b]`` in [0, 180].
        side: ``(N, N)`` deviation across the line (out of the vertical plane through
            the line and the camera axis), in [0, 90].
        depth: ``(N, N)`` signed deviation in elevation (+: a faces nearer the camera
            than the line to b), in (-180, 180].

    The diagonal, and heads at one image position, are 180 / 90 / 180.
    """

    theta: np.ndarray
    side: np.ndarray
    depth: np.ndarray


def gaze_geometry(positions: np.ndarray, facing: np.ndarray) -> GazeGeometry:
    """Angles between a's facing direction and the line a -> b, for every ordered pair.

    Args:
        positions: ``(N, 3)`` head positions (:func:`head_positions`).
        facing: ``(N, 3)`` unit facing directions (:func:`facing_directions`).

    Convention:
        ``d = P_b - P_a`` with image-plane direction ``u`` (unit) and elevation
        ``e0 = atan2(d_z, |d_xy|)``; ``n = (-u_y, u_x, 0)``.
        ``side = asin|g . n|``, ``depth = wrap(atan2(g_z, g_xy . u) - e0)``,
        ``theta = acos(g . d / |d|)``; ``cos(theta) = cos(side) cos(depth)``.
    """
    P = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    g = np.asarray(facing, dtype=np.float64).reshape(-1, 3)
    n = len(P)
    d = P[None, :, :] - P[:, None, :]  # d[a, b] = P_b - P_a
    lateral = np.hypot(d[..., 0], d[..., 1])
    ok = lateral > 1e-9
    safe = np.where(ok, lateral, 1.0)
    ux, uy = d[..., 0] / safe, d[..., 1] / safe
    e0 = np.arctan2(d[..., 2], safe)
    along = g[:, None, 0] * ux + g[:, None, 1] * uy  # g_xy . u
    across = -g[:, None, 0] * uy + g[:, None, 1] * ux  # g . n
    gz = np.broadcast_to(g[:, None, 2], (n, n))
    side = np.degrees(np.arcsin(np.clip(np.abs(across), 0.0, 1.0)))
    depth = np.degrees(np.arctan2(gz, along) - e0)
    depth = (depth + 180.0) % 360.0 - 180.0
    cos_theta = along * np.cos(e0) + gz * np.sin(e0)
    theta = np.degrees(np.arccos(np.clip(cos_theta, -1.0, 1.0)))
    bad = ~ok | np.eye(n, dtype=bool)
    return GazeGeometry(np.where(bad, 180.0, theta), np.where(bad, 90.0, side), np.where(bad, 180.0, depth))


def look_scores(geometry: GazeGeometry, alpha_deg: np.ndarray, alpha_depth_deg: np.ndarray | None = None) -> np.ndarray:
    """Looking scores ``2 ** -((side / alpha)**2 + (depth / alpha_depth)**2)`` in [0, 1].

    Args:
        geometry: :func:`gaze_geometry`'s angles.
        alpha_deg: ``(N,)`` cone half-angles of the lookers (row a uses a's).
        alpha_depth_deg: ``(N,)`` half-angles in depth, or ``(N, N)`` one per ordered pair;
            ``None``: the same as ``alpha_deg``.

    Returns:
        ``(N, N)``; 0.5 on the cone's edge, 0 on the diagonal.
    """
    a = np.asarray(alpha_deg, dtype=np.float64).reshape(-1, 1)
    ad = a if alpha_depth_deg is None else np.asarray(alpha_depth_deg, dtype=np.float64)
    ad = ad if ad.ndim == 2 else ad.reshape(-1, 1)  # (N, N): one per pair (positions' sigma)
    look = np.exp(-_LN2 * ((geometry.side / a) ** 2 + (geometry.depth / ad) ** 2))
    np.fill_diagonal(look, 0.0)
    return look


def camera_scores(rotations: np.ndarray, alpha_deg: np.ndarray) -> np.ndarray:
    """How much each head looks at the camera, ``2 ** -(theta_cam / alpha)**2``, ``(N,)``.

    Args:
        rotations: ``(N, 3, 3)`` apparent rotations (relative to each face's line of
            sight, what pose models report): ``theta_cam = acos(R[2, 2])``.
        alpha_deg: ``(N,)`` cone half-angles.
    """
    gz = facing_directions(rotations)[:, 2]
    theta = np.degrees(np.arccos(np.clip(gz, -1.0, 1.0)))
    return np.exp(-_LN2 * (theta / np.asarray(alpha_deg, dtype=np.float64)) ** 2)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Pair:
    """Two heads ``a < b`` (indices into the frame's heads) and how they look at each other.

    Attributes:
        a, b: head indices.
        look_ab, look_ba: looking scores in [0, 1] (0.5 on the cone's edge).
        theta_ab, theta_ba: 3D angle in degrees between the looker's facing direction
            and the line to the other head.
        a_looks_at_b, b_looks_at_a: the other head is inside the looker's view cone.
        mutual: both look at each other.
        score: the pair's interaction level, ``(look_ab + look_ba) / 2``.
        distance: between the heads, in head sizes.
        distance_m: between the heads in metres (``depth="position"``), else ``None``.
        distance_sigma_m: its standard deviation from the positions' sigma, else ``None``.
    """

    a: int
    b: int
    look_ab: float
    look_ba: float
    theta_ab: float
    theta_ba: float
    a_looks_at_b: bool
    b_looks_at_a: bool
    mutual: bool
    score: float
    distance: float
    distance_m: float | None = None
    distance_sigma_m: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of this pair."""
        return {
            "a": self.a,
            "b": self.b,
            "a_looks_at_b": self.a_looks_at_b,
            "b_looks_at_a": self.b_looks_at_a,
            "mutual": self.mutual,
            "score": round(self.score, 4),
            "look_ab": round(self.look_ab, 4),
            "look_ba": round(self.look_ba, 4),
            "theta_ab": round(self.theta_ab, 2),
            "theta_ba": round(self.theta_ba, 2),
            "distance": round(self.distance, 3),
            "distance_m": None if self.distance_m is None else round(self.distance_m, 4),
            "distance_sigma_m": None if self.distance_sigma_m is None else round(self.distance_sigma_m, 4),
        }


@dataclass(frozen=True)
class Group:
    """Heads joined by pairs scoring at least the group threshold.

    Attributes:
        members: head indices, ascending (two or more).
        score: the group's interaction level, the mean pair score over every pair of members.
    """

    members: tuple[int, ...]
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"members": list(self.members), "score": round(self.score, 4)}


@dataclass(frozen=True)
class Interaction:
    """Who looks at whom among the N heads of one image.

    Attributes:
        look: ``(N, N)`` looking scores, ``look[a, b]`` = a looks at b; 0 on the diagonal.
        cone_look: ``(N, N)`` the cone scores before the camera's competition.
        camera: ``(N,)`` how much each head looks at the camera.
        geometry: the angles behind them (:class:`GazeGeometry`).
        cone_deg: ``(N,)`` view-cone half-angles in degrees (sigma included).
        cone_depth_deg: ``(N,)`` half-angles in depth (depth uncertainty included); with
            ``depth="position"`` ``(N, N)``, one per ordered pair.
        facing: ``(N, 3)`` unit facing directions in ``Frame.GL`` used by the geometry
            (in the camera frame for ``depth="size"``).
        pairs: every unordered pair ``a < b``, in order (P of them).
        groups: groups of two or more heads, ordered by their first member.
        config: the constants used.
    """

    look: np.ndarray
    cone_look: np.ndarray
    camera: np.ndarray
    geometry: GazeGeometry
    cone_deg: np.ndarray
    cone_depth_deg: np.ndarray
    facing: np.ndarray
    pairs: tuple[Pair, ...]
    groups: tuple[Group, ...]
    config: InteractionConfig = field(default_factory=InteractionConfig)

    def __len__(self) -> int:
        return len(self.cone_deg)

    @property
    def scores(self) -> np.ndarray:
        """``(N, N)`` symmetric pair scores ``(look + look.T) / 2``."""
        return (self.look + self.look.T) / 2.0

    @property
    def mutual_pairs(self) -> list[tuple[int, int]]:
        """``(a, b)`` of the pairs in mutual gaze."""
        return [(p.a, p.b) for p in self.pairs if p.mutual]

    def pair(self, a: int, b: int) -> Pair:
        """The pair of heads a and b (either order)."""
        a, b = sorted((int(a), int(b)))
        n = len(self)
        if not 0 <= a < b < n:
            raise IndexError(f"no pair ({a}, {b}) among {n} heads")
        return self.pairs[a * n - a * (a + 1) // 2 + (b - a - 1)]

    def to_dict(self) -> dict[str, Any]:
        """``{"pairs": [...], "groups": [...], "camera": [...]}`` (JSON fields of ``headpose interact``)."""
        return {
            "pairs": [p.to_dict() for p in self.pairs],
            "groups": [g.to_dict() for g in self.groups],
            "camera": [round(float(c), 4) for c in self.camera],
        }


def interaction_record(frame: FrameResult, inter: Interaction) -> dict[str, Any]:
    """The JSON record ``headpose interact --json`` writes for one frame (and ``POST /v1/interact`` answers).

    ``source``, ``frame``, ``width``, ``height``, ``heads`` (as ``headpose predict``), then
    ``pairs``, ``groups`` and ``camera``. On a tracked stream each pair also names its heads by
    ``track_a`` / ``track_b`` (their ``track_id``), which stay the same from frame to frame
    where ``a`` / ``b`` (indices into ``heads``) need not.
    """
    rec = frame.to_dict()
    rec.update(inter.to_dict())
    ids = frame.heads.track_ids
    if ids is not None:
        for p in rec["pairs"]:
            p["track_a"], p["track_b"] = int(ids[p["a"]]), int(ids[p["b"]])
    return rec


def _components(n: int, edges: list[tuple[int, int]]) -> list[list[int]]:
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    comps: dict[int, list[int]] = {}
    for i in range(n):
        comps.setdefault(root(i), []).append(i)
    return sorted((c for c in comps.values() if len(c) > 1), key=lambda c: c[0])


def find_interactions(
    heads: Heads,
    image_size: Sequence[int] | None,
    config: InteractionConfig | None = None,
) -> Interaction:
    """Decide for every pair of heads who looks at whom, mutual gaze, pair and group levels.

    Args:
        heads: N heads (boxes, rotations in ``Frame.GL``, optional sigma in degrees).
        image_size: ``(W, H)`` in pixels of the image the heads come from (the
            default ``DepthModel.SIZE`` needs it; ``None`` will do for ``PLANE``).
        config: the model's constants (default :class:`InteractionConfig`).

    Returns:
        An :class:`Interaction` with N (N - 1) / 2 pairs in the heads' order.
    """
    config = InteractionConfig() if config is None else config
    if config.depth is DepthModel.POSITION:
        if _placed(heads):
            return _find_with_positions(heads, config)
        config = replace(config, depth=DepthModel.SIZE)  # not every head placed: faces' sizes instead
    n = len(heads)
    boxes = np.asarray(heads.boxes, dtype=np.float64).reshape(-1, 4)
    R = np.asarray(heads.rotations, dtype=np.float64).reshape(-1, 3, 3)
    P = head_positions(boxes, config.depth, image_size, config.fov_deg, R)
    # R_app: relative to each line of sight (where the camera is, and what is drawn);
    # R_cam: in the camera's frame (for the geometry between heads). One and the same
    # without perspective (``plane``).
    R_app = R_cam = R
    if config.depth is DepthModel.SIZE and n:
        if config.apparent_rotations:
            R_cam = camera_rotations(R, boxes, image_size, config.fov_deg)
        else:
            Q = camera_rotations(np.broadcast_to(np.eye(3), R.shape), boxes, image_size, config.fov_deg)
            R_app = np.swapaxes(Q, -1, -2) @ R
    g = facing_directions(R_cam)
    geo = gaze_geometry(P, g)
    alpha = cone_half_angles(heads.sigma, n, config)
    alpha_depth = np.hypot(alpha, config.sigma_gain * config.depth_sigma_deg)
    cone = look_scores(geo, alpha, alpha_depth)
    cam = camera_scores(R_app, alpha) if n else np.zeros(0)
    total = cone + cam[:, None]
    look = np.where(total > 0, cone * cone / np.where(total > 0, total, 1.0), 0.0)
    unit = face_sizes(boxes, heads.rotations) if config.depth is DepthModel.PLANE else np.ones(n)
    dist = np.linalg.norm(P[None] - P[:, None], axis=-1) / ((unit[:, None] + unit[None, :]) / 2.0)
    return _assemble(look, cone, cam, geo, alpha, alpha_depth, g, dist, None, None, config)


def _assemble(look, cone, cam, geo, alpha, alpha_depth, g, dist, dist_m, dist_sigma_m, config) -> Interaction:
    """Pairs and groups from the ``(N, N)`` looking scores and distances."""
    n = len(look)
    pairs, edges = [], []
    for a in range(n):
        for b in range(a + 1, n):
            lab, lba = float(look[a, b]), float(look[b, a])
            score = (lab + lba) / 2.0
            dm = None if dist_m is None else float(dist_m[a, b])
            ds = None if dist_sigma_m is None else float(dist_sigma_m[a, b])
            pairs.append(
                Pair(a, b, lab, lba, float(geo.theta[a, b]), float(geo.theta[b, a]),
                     lab >= 0.5, lba >= 0.5, lab >= 0.5 and lba >= 0.5, score, float(dist[a, b]), dm, ds)
            )  # fmt: skip
            if score >= config.group_threshold:
                edges.append((a, b))
    S = (look + look.T) / 2.0
    groups = []
    for members in _components(n, edges):
        iu = np.triu_indices(len(members), 1)
        groups.append(Group(tuple(members), float(S[np.ix_(members, members)][iu].mean())))
    return Interaction(look, cone, cam, geo, alpha, alpha_depth, g, tuple(pairs), tuple(groups), config)


def _placed(heads: Heads) -> bool:
    """Every head has a position and its sigma (``Heads.positions``)."""
    return (
        heads.positions is not None and heads.position_sigma is not None and heads.transforms is not None
        and bool(np.isfinite(heads.positions).all() and np.isfinite(heads.position_sigma).all())
    )  # fmt: skip


def _find_with_positions(heads: Heads, config: InteractionConfig) -> Interaction:
    """:func:`find_interactions` with the heads' own positions (metres) and their sigma.

    The camera-frame rotations are the transforms'; the apparent ones (for the camera's
    competition) are those turned back by each head's viewing ray ``look_at(P)`` -- the
    camera is the origin. The elevation of the line a -> b is uncertain by the positions'
    sigma: ``sigma_e = sqrt(|d_xy|^2 var(d_z) + d_z^2 var(d_xy along it)) / |d|^2``
    (radians; the two heads' errors independent), which widens the cone in depth per pair
    as ``depth_sigma_deg`` does in the other models.
    """
    n = len(heads)
    P = np.asarray(heads.positions, np.float64).reshape(-1, 3)
    V = np.asarray(heads.position_sigma, np.float64).reshape(-1, 3) ** 2
    R_cam = np.asarray(heads.transforms, np.float64).reshape(-1, 4, 4)[:, :3, :3]
    R_app = np.swapaxes(look_at_rotation(P), -1, -2) @ R_cam if n else R_cam
    g = facing_directions(R_cam)
    geo = gaze_geometry(P, g)
    alpha = cone_half_angles(heads.sigma, n, config)
    d = P[None, :, :] - P[:, None, :]
    var = V[None, :, :] + V[:, None, :]
    lat = np.hypot(d[..., 0], d[..., 1])
    norm2 = np.maximum((d**2).sum(-1), 1e-12)
    safe = np.where(lat > 1e-9, lat, 1.0)
    var_lat = (d[..., 0] / safe) ** 2 * var[..., 0] + (d[..., 1] / safe) ** 2 * var[..., 1]
    sigma_e = np.degrees(np.sqrt(lat**2 * var[..., 2] + d[..., 2] ** 2 * var_lat) / norm2)
    alpha_depth = np.hypot(alpha[:, None], config.sigma_gain * np.minimum(sigma_e, 45.0))
    cone = look_scores(geo, alpha, alpha_depth)
    cam = camera_scores(R_app, alpha) if n else np.zeros(0)
    total = cone + cam[:, None]
    look = np.where(total > 0, cone * cone / np.where(total > 0, total, 1.0), 0.0)
    dist_m = np.sqrt(norm2) * (1 - np.eye(n))
    dist_sigma = np.sqrt(((d**2) * var).sum(-1) / norm2)
    return _assemble(look, cone, cam, geo, alpha, alpha_depth, g, dist_m / FACE_HEIGHT_M, dist_m, dist_sigma, config)


# --------------------------------------------------------------------------- drawing

_CONE_PALETTE = (
    (66, 135, 245), (245, 130, 48), (60, 180, 75), (240, 50, 230), (70, 240, 240),
    (255, 225, 25), (230, 25, 75), (145, 30, 180), (210, 245, 60), (0, 128, 128),
)  # fmt: skip
_MUTUAL_COLOUR = (40, 255, 80)
_ONE_WAY_COLOUR = (255, 190, 0)
_WEAK_COLOUR = (190, 190, 190)


def _screen_cone(g: np.ndarray, alpha_deg: float) -> tuple[float, float, float]:
    """Screen direction (degrees, image axes), on-screen half-angle and axis foreshortening.

    A cone of half-angle alpha around ``g`` (elevation phi out of the image plane),
    seen orthographically from its apex, spans ``asin(sin(alpha) / cos(phi))`` to either
    side of its projected axis; 180 when it contains the line of sight (a full disc).
    """
    gx, gy, gz = (float(v) for v in g)
    cos_phi = math.hypot(gx, gy)
    direction = math.degrees(math.atan2(-gy, gx))  # image y points down
    s = math.sin(math.radians(alpha_deg))
    half = 180.0 if cos_phi <= s else math.degrees(math.asin(s / cos_phi))
    return direction, half, cos_phi


def draw_interaction(
    img: np.ndarray,
    heads: Heads,
    interaction: Interaction,
    cone_length: float = 3.0,
    min_link_score: float = 0.25,
    show_cones: bool = True,
    legend: bool = False,
) -> np.ndarray:
    """Draw view cones, head numbers and pair links with their scores.

    Args:
        img: RGB ``uint8`` image ``(H, W, 3)``; not modified.
        heads: the N heads the interaction was computed from.
        interaction: :func:`find_interactions`'s result for these heads.
        cone_length: slant length of a cone in head sizes; its drawn radius is that
            times the axis foreshortening ``cos(phi)`` (at least 0.6 head sizes), so a
            face turned to the camera shows a short, wide cone.
        min_link_score: pairs scoring below this get no link.
        show_cones: draw the translucent cones.
        legend: write :data:`INTERACTION_LEGEND` in the corner that covers no face, where it
            fits (``headpose interact --save`` does).

    Returns:
        A new image. Cones are translucent wedges of each head's colour
        (orthographic outline of the 3D cone, half-angle ``cone_deg`` with sigma);
        links join box centres: green and thick for a mutual gaze, amber for a one-way
        look (an arrowhead at the head being looked at), grey otherwise, thicker for
        higher scores, with the score written at the middle; ``#i`` numbers the heads
        as in the JSON. A cone that contains the line of sight -- the head looks at the
        camera, within its cone -- is seen end-on and drawn as a full disc.
    """
    import cv2

    from openheadpose.inference.draw import (
        box_inplace,
        check_image,
        font_scale,
        label_inplace,
        line_thickness,
        to_point,
    )

    out = check_image(img).copy()
    n = len(heads)
    if n == 0:
        return out
    if len(interaction) != n:
        raise ValueError(f"the interaction has {len(interaction)} heads, heads has {n}")
    thick = line_thickness(out)
    scale = font_scale(out)
    text_thick = max(1, int(round(scale * 1.5)))
    boxes = np.asarray(heads.boxes, dtype=np.float64)
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=-1)
    sizes = face_sizes(boxes, heads.rotations)
    # On screen the apparent rotations (relative to each line of sight) show where a
    # head points: a camera-frame direction towards the camera projects to a point.
    facing = facing_directions(heads.rotations)
    colours = [_CONE_PALETTE[i % len(_CONE_PALETTE)] for i in range(n)]

    if show_cones:
        layer = out.copy()
        for i in range(n):
            direction, half, cos_phi = _screen_cone(facing[i], float(interaction.cone_deg[i]))
            radius = max(cone_length * sizes[i] * cos_phi, 0.6 * sizes[i])
            c = to_point(centres[i])
            r = int(round(radius))
            if half >= 180.0:
                cv2.circle(layer, c, r, colours[i], -1, cv2.LINE_AA)
            else:
                cv2.ellipse(layer, c, (r, r), direction, -half, half, colours[i], -1, cv2.LINE_AA)
        out = cv2.addWeighted(layer, 0.35, out, 0.65, 0.0)
        for i in range(n):  # crisp outlines on top of the blend
            direction, half, cos_phi = _screen_cone(facing[i], float(interaction.cone_deg[i]))
            radius = int(round(max(cone_length * sizes[i] * cos_phi, 0.6 * sizes[i])))
            if half < 180.0:
                cv2.ellipse(out, to_point(centres[i]), (radius, radius), direction, -half, half, colours[i], max(1, thick // 2), cv2.LINE_AA)

    for i in range(n):
        box_inplace(out, boxes[i], colours[i], thick)

    labels = []
    for p in sorted(interaction.pairs, key=lambda p: p.score):  # strongest drawn last, on top
        if p.score < min_link_score:
            continue
        ca, cb = centres[p.a], centres[p.b]
        colour = _MUTUAL_COLOUR if p.mutual else _ONE_WAY_COLOUR if (p.a_looks_at_b or p.b_looks_at_a) else _WEAK_COLOUR
        w = thick + int(round(3 * thick * p.score)) + (thick if p.mutual else 0)
        cv2.line(out, to_point(ca), to_point(cb), colour, w, cv2.LINE_AA)
        length = float(np.linalg.norm(cb - ca))
        for looker, target, looks in ((p.a, p.b, p.a_looks_at_b), (p.b, p.a, p.b_looks_at_a)):
            if not looks or length <= 1:
                continue
            unit = (centres[target] - centres[looker]) / length
            tip = centres[target] - unit * 0.5 * sizes[target]  # at the edge of the looked-at face
            tail = tip - unit * min(0.4 * length, 1.2 * float(np.mean(sizes)))
            cv2.arrowedLine(out, to_point(tail), to_point(tip), colour, w + thick, cv2.LINE_AA, tipLength=0.35)
        labels.append(((ca + cb) / 2, f"{p.score:.2f}" + (" mutual" if p.mutual else ""), colour))
    for mid, text, colour in labels:
        label_inplace(out, [text], (mid[0] - 2 * scale * 10, mid[1] + scale * 10), colour, scale, text_thick)
    for i in range(n):
        label_inplace(out, [f"#{i}"], (boxes[i, 0], boxes[i, 1] - thick), colours[i], scale, text_thick)
    if legend:
        from openheadpose.inference.draw import draw_legend_inplace

        draw_legend_inplace(out, INTERACTION_LEGEND, boxes)
    return out


#: What :func:`draw_interaction`'s marks mean (its legend; README "Reading the pictures").
INTERACTION_LEGEND = (
    "wedge: where a head looks (its view cone); disc: it looks at the camera",
    "line: green mutual, amber one-way (arrow at the one looked at), grey weak; number: score",
)
