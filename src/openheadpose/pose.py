"""Pose estimators: turn landmarks, or the image crops they place, into head rotations.

A pose estimator is a callable ``estimator(image_rgb, landmarks) -> PoseOutput``:

- ``geometric``: a robust rigid fit of the FaceMesh points to a 3D face;
- ``hopenet-synth`` (the default), ``fsanet-synth``: our shipped image networks (and any image network
  through :class:`NetworkPose`): the network's own crop recipe placed by
  FaceMesh's points, then the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from scipy.optimize import least_squares

from .landmarks import Landmarks
from .registry import Registry
from .rotation import from_axis_angle, look_at_rotation, orthonormalize, to_axis_angle

POSE_ESTIMATORS: Registry = Registry("pose estimator")


@dataclass(frozen=True)
class PoseOutput:
    """Rotations ``(N, 3, 3)`` in ``Frame.GL`` and per-angle sigma ``(N, 3)`` degrees (or None)."""

    rotations: np.ndarray
    sigma: np.ndarray | None = None


@dataclass(frozen=True)
class FaceTemplate:
    """A rigid 3D face: ``points`` ``(468, 3)`` in mm, head axes of ``Frame.GL``.

    The points are the 3DDFA Basel-Face-Model mean shape sampled at the 468
    FaceMesh landmarks (see ``tools/build_face_template.py``), so a rotation
    fitted to it is in the frame of the AFLW2000 / 300W-LP labels.
    """

    points: np.ndarray
    landmarks68: np.ndarray
    mirror_partner: np.ndarray


@lru_cache(maxsize=None)
def face_template() -> FaceTemplate:
    with resources.files("openheadpose.data").joinpath("face_template.npz").open("rb") as f:
        z = np.load(f)
        return FaceTemplate(z["points"].astype(np.float64), z["landmarks68"].astype(np.float64), z["mirror_partner"])


def similarity_fit(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None):
    """Weighted Umeyama: ``(s, R, t)`` minimising ``sum w |s R src + t - dst|^2``.

    Args:
        src, dst: ``(P, 3)`` corresponding points.
        weights: ``(P,)`` non-negative weights (uniform if None).
    """
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    ms, md = w @ src, w @ dst
    a, b = src - ms, dst - md
    C = (b * w[:, None]).T @ a
    U, S, Vt = np.linalg.svd(C)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    R = U @ D @ Vt
    s = np.trace(np.diag(S) @ D) / (w @ (a**2).sum(1))
    return s, R, md - s * R @ ms


def robust_similarity_fit(src: np.ndarray, dst: np.ndarray, huber: float = 3.0, iterations: int = 4):
    """:func:`similarity_fit` reweighted ``iterations`` times with Huber weights on the
    residuals measured in ``src`` units (``huber``: the Huber threshold in those units)."""
    w = np.ones(len(src))
    for _ in range(iterations):
        s, R, t = similarity_fit(src, dst, w)
        r = np.linalg.norm(s * src @ R.T + t - dst, axis=1) / s
        w = np.minimum(1.0, huber / np.maximum(r, 1e-9))
    return s, R, t


def camera_frame(R: np.ndarray, centre: np.ndarray, image_shape, focal_factor: float) -> np.ndarray:
    """Turn an apparent rotation (relative to the line of sight through ``centre``, pixels)
    into the camera's frame: a pinhole of focal ``focal_factor * max(W, H)`` pixels
    centred on the image."""
    h, w = image_shape[:2]
    f = focal_factor * max(h, w)
    ray = np.array([centre[0] - w / 2.0, -(centre[1] - h / 2.0), -f])
    return look_at_rotation(ray) @ R


class GeometricPose:
    """Robust rigid fit of FaceMesh landmarks to a 3D face model.

    1. Landmarks go to ``Frame.GL`` (x right, y up, z towards the viewer).
    2. A scaled-orthographic fit aligns the template to them: first a 3D
       similarity (Umeyama) with Huber-weighted iterations, then -- by default --
       a refinement on the 2D image positions alone with a robust loss, because
       FaceMesh's depth is less reliable than its image positions and
       compresses profiles.
    3. The crop's perspective: a face off the optical axis is seen from the side
       even when it faces along the camera's axis. By default the *apparent*
       rotation is reported -- the pose relative to the line of sight, which is
       what AFLW2000 / 300W-LP / BIWI labels and every published model give.
       With ``focal_factor`` set (a pinhole camera of focal
       ``focal_factor * max(W, H)`` pixels centred on the image) the rotation is
       turned from the face's viewing ray to the optical axis, giving the pose
       in the camera's frame, which is what geometry between several heads needs.

    Gives no sigma (``None``): a rigid fit has no calibrated uncertainty.
    """

    def __init__(self, refine_2d: bool = True, focal_factor: float | None = None, huber_mm: float = 3.0):
        self.template = face_template()
        self.refine_2d = refine_2d
        self.focal_factor = focal_factor
        self.huber_mm = huber_mm

    def fit_one(self, pts_img: np.ndarray) -> np.ndarray:
        """Apparent rotation ``(3, 3)`` for one face's landmarks ``(468, 3)`` (image pixels, z towards viewer)."""
        P = pts_img * np.array([1.0, -1.0, 1.0])
        T = self.template.points
        s, R, t = robust_similarity_fit(T, P, self.huber_mm)
        if not self.refine_2d:
            return R
        scale_px = s
        x0 = np.concatenate([to_axis_angle(R), [np.log(s)], t[:2]])

        def residuals(x):
            Rx = from_axis_angle(x[:3])
            proj = np.exp(x[3]) * T @ Rx[:2].T + x[4:6]
            return ((proj - P[:, :2]) / scale_px).ravel()

        sol = least_squares(residuals, x0, loss="soft_l1", f_scale=self.huber_mm, method="trf", x_scale="jac", max_nfev=50)
        return from_axis_angle(sol.x[:3])

    def __call__(self, image: np.ndarray, landmarks: Landmarks) -> PoseOutput:
        rots = np.zeros((len(landmarks), 3, 3))
        for i, pts in enumerate(landmarks.points):
            R = self.fit_one(pts)
            if self.focal_factor is not None:
                R = camera_frame(R, pts[:, :2].mean(0), image.shape, self.focal_factor)
            rots[i] = orthonormalize(R)
        return PoseOutput(rots, None)


@POSE_ESTIMATORS.register("geometric", help="robust rigid fit of FaceMesh landmarks to a 3D face (no network; the default when our network's weights are absent)")
def _make_geometric(**kw):
    return GeometricPose(**kw)


def landmarks68_from_facemesh(points: np.ndarray, iterations: int = 3) -> np.ndarray:
    """The 68 landmarks ``(68, 2)`` (image pixels) of a face whose FaceMesh points are ``points`` ``(468, 3)``.

    A 3D similarity fit (Huber-weighted Umeyama, as in :class:`GeometricPose`)
    carries the template face onto the FaceMesh points, and the template's 68
    landmarks -- hidden jaw-contour points included -- follow. That is how
    AFLW2000's ``pt3d_68`` and ``headpose synth``'s ``pt2d`` place them (fixed
    vertices of a fitted 3D face), so the ``face-1.1`` crop of these points is
    the crop the network was trained on. (The nearest FaceMesh point to each
    landmark would not do: FaceMesh's oval stops up to 26 mm short of the jaw
    contour, and turned faces would get crops up to 13 % too narrow.)
    """
    t = face_template()
    P = np.asarray(points, np.float64)[:, :3] * np.array([1.0, -1.0, 1.0])
    s, R, tr = robust_similarity_fit(t.points, P, 3.0, iterations)
    L = s * t.landmarks68 @ R.T + tr
    return L[:, :2] * np.array([1.0, -1.0])


class NetworkPose:
    """An image pose network on crops placed by the landmarks.

    The network's own crop recipe (``model.crop``) is applied to the 68
    landmarks :func:`landmarks68_from_facemesh` places, so a
    network trained on 68-landmark crops (``face-1.1``, ``3ddfa``) sees what it
    was trained on; recipes defined on other points (AFLW's 21) get a close
    but not identical box. Landmark boxes beat detector boxes: they follow the
    face, not the detector's habits, and are the same from frame to frame.

    Args:
        model: a name :func:`~openheadpose.predictors.load_model` knows
            (``hopenet-synth``, ``fsanet-synth``: the shipped weights), or a loaded crop model.
        weights: its ``.onnx`` file, for names without packaged weights.
        focal_factor: as in :class:`GeometricPose`: report rotations in the camera's frame.
        batch_size: crops per network call.
    """

    def __init__(self, model="hopenet-synth", weights=None, focal_factor: float | None = None, batch_size: int = 32):
        from .crops import CROPS

        if isinstance(model, str):
            from .predictors import load_model

            model = load_model(model, weights)
        if getattr(model, "takes_keypoints", False):
            raise ValueError(f"{model.name}: a keypoint network, not an image network; use --model {model.name} instead of --pose")
        self.model = model
        self.recipe = CROPS[model.crop]
        self.focal_factor = focal_factor
        self.batch_size = batch_size

    def crop_boxes(self, image_shape, landmarks: Landmarks) -> np.ndarray:
        """``(N, 4)`` integer crop boxes, one per face."""
        return np.array([self.recipe.expand_landmarks(landmarks68_from_facemesh(p), image_shape) for p in landmarks.points]).reshape(-1, 4)

    def __call__(self, image: np.ndarray, landmarks: Landmarks) -> PoseOutput:
        n = len(landmarks)
        if n == 0:
            return PoseOutput(np.zeros((0, 3, 3)), None)
        size = self.model.input_size
        boxes = self.crop_boxes(image.shape, landmarks)
        rots, sigmas = [], []
        for i in range(0, n, self.batch_size):
            crops = np.stack([self.recipe(image, b, size) for b in boxes[i : i + self.batch_size]])
            pred = self.model.predict(crops)
            rots.append(pred.rotations)
            sigmas.append(pred.sigma)
        R = np.concatenate(rots).astype(np.float64)
        if self.focal_factor is not None:
            centres = landmarks.points[:, :, :2].mean(1)
            R = np.stack([camera_frame(r, c, image.shape, self.focal_factor) for r, c in zip(R, centres)])
        sigma = None if any(s is None for s in sigmas) else np.concatenate(sigmas)
        return PoseOutput(orthonormalize(R), sigma)


def _register_shipped() -> None:
    from functools import partial

    from .predictors import DEFAULT_POSE_NETWORK, SHIPPED_IMAGE_NETWORKS

    for name, what in SHIPPED_IMAGE_NETWORKS.items():
        default = " (default)" if name == DEFAULT_POSE_NETWORK else ""
        POSE_ESTIMATORS.register(name, help=f"our {what}, trained on headpose synth data, on its crop placed by FaceMesh{default}")(partial(NetworkPose, name))


_register_shipped()

