"""Pose stages: turn what the stages before found on a face into its rotation.

A pose stage is a callable ``stage(image_rgb, faces) -> PosePrediction`` that
reads one kind of evidence from :class:`~openheadpose.inference.results.Faces`
(its ``needs``):

- ``mesh``: :class:`GeometricPose`, a robust rigid fit of the FaceMesh points to a 3D face;
- ``mesh`` or the detector's box: :class:`NetworkPose`, an image network on its own
  crop recipe -- placed by the 68 landmarks the mesh gives when there is a mesh
  (our default, ``hopenet-synth``), else by the detector's box and the recipe's
  detector-box variant;
- ``keypoints``: :class:`KeypointPose`, a keypoint network (HHP-Net, the heatmap CNN)
  on the nose, eyes and ears a keypoint source found.

Every stage can report rotations in the camera's frame instead of relative to the
line of sight (``focal_factor``; ``headpose predict --fov``).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from openheadpose.assets import (
    DEFAULT_POSE_NETWORK,
    SHIPPED_IMAGE_NETWORKS,
    face_template,
)
from openheadpose.core.geometry import camera_frame, robust_similarity_fit
from openheadpose.core.registry import Registry
from openheadpose.core.rotation import from_axis_angle, orthonormalize, to_axis_angle
from openheadpose.inference.backends.onnx import load_network
from openheadpose.inference.results import Faces
from openheadpose.specs.crops import CROPS
from openheadpose.specs.spec import PosePrediction

POSE_STAGES: Registry = Registry("pose stage")


def _require(faces: Faces, field: str, message: str) -> None:
    if len(faces) and getattr(faces, field) is None:
        raise ValueError(message)


def _to_camera_frame(R: np.ndarray, centres: np.ndarray, image_shape, focal_factor: float | None) -> np.ndarray:
    """Rotations ``(N, 3, 3)`` turned from each face's line of sight (through ``centres`` ``(N, 2)``) to the optical axis."""
    if focal_factor is None:
        return R
    return np.stack([camera_frame(r, c, image_shape, focal_factor) for r, c in zip(R, centres)]).reshape(-1, 3, 3)


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
       ``focal_factor * W`` pixels centred on the image, ``W`` its width) the rotation is
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

    name = "geometric"
    #: What this stage reads from :class:`~openheadpose.inference.results.Faces`.
    needs = "mesh"

    def __call__(self, image: np.ndarray, faces: Faces) -> PosePrediction:
        _require(faces, "mesh", "the geometric pose stage fits FaceMesh's landmarks: it needs --landmarker facemesh")
        if len(faces) == 0:
            return PosePrediction(np.zeros((0, 3, 3)), None)
        rots = np.zeros((len(faces), 3, 3))
        for i, pts in enumerate(faces.mesh):
            R = self.fit_one(pts)
            rots[i] = R
        rots = orthonormalize(_to_camera_frame(rots, faces.mesh[:, :, :2].mean(1), image.shape, self.focal_factor))
        return PosePrediction(rots, None)


@POSE_STAGES.register("geometric", help="robust rigid fit of FaceMesh landmarks to a 3D face (no network; the default when our network's weights are absent)")
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


def _angles(model) -> tuple[str, ...]:
    """The Euler angles a network estimates (its spec's; all three for a model without one)."""
    return tuple(getattr(getattr(model, "spec", None), "angles", ("yaw", "pitch", "roll")))


def _has_mesh(faces: Faces, i: int) -> bool:
    """Whether face ``i`` has landmarks (a face FaceMesh did not confirm has a NaN row)."""
    return faces.mesh is not None and bool(np.isfinite(faces.mesh[i]).all())


class NetworkPose:
    """An image pose network on its own crop of each face.

    With a mesh (a landmarker ran), the network's crop recipe (``model.crop``) is
    applied to the 68 landmarks :func:`landmarks68_from_facemesh` places, so a
    network trained on 68-landmark crops (``face-1.1``, ``3ddfa``) sees what it
    was trained on; recipes defined on other points (AFLW's 21) get a close but
    not identical box. Landmark boxes beat detector boxes: they follow the face,
    not the detector's habits, and are the same from frame to frame. Without a
    mesh the crop comes from the detector's box through the recipe's
    detector-box variant (``CropRecipe.from_detection``).

    Args:
        model: a network name :func:`~openheadpose.inference.backends.onnx.load_network` knows
            (``hopenet-synth``, ``fsanet-synth``: the shipped weights), or a loaded crop model.
        weights: its ``.onnx`` file, for names without packaged weights.
        focal_factor: report rotations in the camera's frame (see :func:`~openheadpose.core.geometry.camera_frame`).
        batch_size: crops per network call (results do not depend on it).
    """

    needs = "mesh or detector box"

    def __init__(self, model="hopenet-synth", weights=None, focal_factor: float | None = None, batch_size: int = 32):
        self.name = model if isinstance(model, str) else getattr(model, "name", type(model).__name__)
        if isinstance(model, str):
            model = load_network(model, weights)
        if getattr(model, "takes_keypoints", False):
            raise ValueError(f"{model.name}: a keypoint network, not an image network; use --model {model.name} instead of --pose")
        self.model = model
        self.recipe = CROPS[model.crop]
        self.focal_factor = focal_factor
        self.batch_size = batch_size

    def crop_boxes(self, image_shape, faces: Faces) -> np.ndarray:
        """``(N, 4)`` integer crop boxes, one per face."""
        if faces.crop_boxes is not None:
            return np.asarray(faces.crop_boxes).reshape(-1, 4)
        boxes = [
            self.recipe.expand_landmarks(landmarks68_from_facemesh(faces.mesh[i]), image_shape)
            if _has_mesh(faces, i)
            else self.recipe.from_detection(b, image_shape)
            for i, b in enumerate(faces.detection_boxes)
        ]
        return np.array(boxes).reshape(-1, 4)

    def __call__(self, image: np.ndarray, faces: Faces) -> PosePrediction:
        return self.many([(image, faces)])[0]

    def many(self, items: list[tuple[np.ndarray, Faces]]) -> list[PosePrediction]:
        """One prediction per ``(image, faces)`` pair, the crops of all of them through the
        network in calls of up to ``batch_size`` (several photos' faces share a call)."""
        size = self.model.input_size
        crops = [self.recipe(image, b, size) for image, faces in items if len(faces) for b in self.crop_boxes(image.shape, faces)]
        rots, sigmas = [], []
        for i in range(0, len(crops), self.batch_size):
            pred = self.model.predict(np.stack(crops[i : i + self.batch_size]))
            rots.append(np.asarray(pred.rotations, np.float64))
            sigmas.append(pred.sigma)
        R_all = np.concatenate(rots) if rots else np.zeros((0, 3, 3))
        sigma_all = None if not sigmas or any(s is None for s in sigmas) else np.concatenate(sigmas)
        out, at = [], 0
        for image, faces in items:
            n = len(faces)
            if n == 0:
                out.append(PosePrediction(np.zeros((0, 3, 3)), None))
                continue
            out.append(self._finish(image, faces, R_all[at : at + n], None if sigma_all is None else sigma_all[at : at + n]))
            at += n
        return out

    def _finish(self, image: np.ndarray, faces: Faces, R: np.ndarray, sigma) -> PosePrediction:
        n = len(faces)
        centres = np.array([faces.mesh[i, :, :2].mean(0) if _has_mesh(faces, i) else (faces.boxes[i, :2] + faces.boxes[i, 2:]) / 2 for i in range(n)])
        R = _to_camera_frame(R, centres, image.shape, self.focal_factor)
        return PosePrediction(orthonormalize(R), sigma, _angles(self.model))


class KeypointPose:
    """A keypoint network (HHP-Net, the heatmap CNN) on the nose, eyes and ears of each face.

    Sigma is calibrated for the keypoint source: ``faces.keypoint_source`` (the
    source's registry name) goes to ``model.predict_keypoints(..., source=...)``,
    which applies the file's per-source factors
    (:class:`~openheadpose.core.calibration.SourceCalibration`); an unknown or
    missing name gets the factor baked into the file.

    Args:
        model: a network with ``predict_keypoints(points, conf, boxes, source=None)``
            (:class:`~openheadpose.inference.backends.onnx.OnnxPoseModel` of a keypoint network),
            or a name :func:`~openheadpose.inference.backends.onnx.load_network` knows.
        weights: its ``.onnx`` file, for names without packaged weights.
        focal_factor: report rotations in the camera's frame.
    """

    needs = "keypoints"

    def __init__(self, model="hhpnet", weights=None, focal_factor: float | None = None):
        if isinstance(model, str):
            model = load_network(model, weights)
        self.name = getattr(model, "name", type(model).__name__)
        if not callable(getattr(model, "predict_keypoints", None)):
            raise ValueError(f"{getattr(model, 'name', model)!r} is not a keypoint model (it has no predict_keypoints)")
        self.model = model
        self.focal_factor = focal_factor

    def __call__(self, image: np.ndarray, faces: Faces) -> PosePrediction:
        _require(faces, "keypoints", f"{self.model.name} reads head keypoints: the pipeline needs a keypoint source (--keypoints)")
        if len(faces) == 0:
            return self.model.predict_keypoints(np.zeros((0, 5, 2)), np.zeros((0, 5)), np.zeros((0, 4)))
        pred = self.model.predict_keypoints(faces.keypoints, faces.keypoint_conf, faces.boxes, source=faces.keypoint_source)
        R = _to_camera_frame(np.asarray(pred.rotations, np.float64), faces.keypoints.mean(1), image.shape, self.focal_factor)
        return PosePrediction(R, pred.sigma, _angles(self.model))


def _register_shipped() -> None:
    from functools import partial

    for name, what in SHIPPED_IMAGE_NETWORKS.items():
        default = " (default)" if name == DEFAULT_POSE_NETWORK else ""
        POSE_STAGES.register(name, help=f"our {what}, trained on headpose synth data, on its crop placed by FaceMesh{default}")(partial(NetworkPose, name))


_register_shipped()
