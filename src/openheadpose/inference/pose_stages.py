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

Every stage takes ``view`` (:data:`VIEWS`): a network can read each face as it is
(``"plain"``), its mirror image with the pose mapped back
(:func:`~openheadpose.core.rotation.mirror_horizontal`; ``"mirrored"``), or both in one
batch averaged on SO(3) (:func:`~openheadpose.core.rotation.mean_rotation`; ``"both"``).
No network is exactly mirror-symmetric, so the two reads err in opposite directions and
their mean is better than either (``benchmarks/README.md``, "The mirrored read").
The returned rotation is always that of the face as the image shows it.
"""

from __future__ import annotations

import cv2
import numpy as np

from openheadpose.assets import (
    DEFAULT_POSE_NETWORK,
    SHIPPED_IMAGE_NETWORKS,
    face_template,
)
from openheadpose.core.geometry import camera_frame, robust_similarity_fit
from openheadpose.core.registry import Registry
from openheadpose.core.rotation import (
    from_axis_angle,
    mean_rotation,
    mirror_horizontal,
    orthonormalize,
    rotate_in_plane,
    screen_angle,
    to_axis_angle,
)
from openheadpose.inference.backends.onnx import load_network
from openheadpose.inference.results import Faces
from openheadpose.specs.crops import CROPS, take_pixels
from openheadpose.specs.keypoint_input import MIRROR_KEYPOINTS
from openheadpose.specs.spec import PosePrediction

POSE_STAGES: Registry = Registry("pose stage")

#: The ways a stage can read a face: as it is, its mirror image (pose mapped back), or both averaged.
VIEWS = ("plain", "mirrored", "both")
#: Whether an image network reads every face twice (plain and mirrored) unless told otherwise:
#: the one default that ``NetworkPose``, the builder, the CLI (``--mirror/--no-mirror``) and the
#: service (``mirror``) share.
MIRROR_DEFAULT = True
#: Whether an image network reads a face with landmarks turned upright and turns the pose it
#: reads back (:func:`upright_crop`). Chosen by the rule declared in ``benchmarks/upright_check.py``
#: on aflw-extra (not AFLW2000; 600 faces, the second look on): yaw MAE 6.93 -> 6.90 on the photos
#: as they are, 8.43 -> 7.12 on photos turned by -30 degrees, 7.37 -> 6.87 over five turns.
UPRIGHT_DEFAULT = True
#: What levels a face: ``"roll"``, the screen angle of the template fitted to its landmarks (its
#: up axis drawn vertical: AFLW roll 0; 6.87 over the five turns), or ``"eyes"``, its eye line (6.90).
UPRIGHT_BY = "roll"


def resolve_view(view: str | None, mirror: bool) -> str:
    """The view a call reads: ``view`` as given, else ``"both"`` for a stage built with ``mirror``, else ``"plain"``."""
    if view is None:
        return "both" if mirror else "plain"
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)} (or None: the stage's default), got {view!r}")
    return view


def both_sigma_factor(model) -> np.ndarray:
    """``(3,)`` per-angle factor turning the single-read sigma into that of the two reads' mean.

    Measured on held-out photos (``tools/calibrate_sigma.py``; ``notes["sigma_both"]`` of the
    model's file). Two reads of one face are correlated, so it is not ``1/sqrt(2)``; a model
    whose file has none keeps the single-read sigma (factor 1): the mean's error is not larger
    than a single read's on average, so that sigma is too wide rather than too narrow.
    """
    cal = getattr(model, "both_calibration", None)
    return np.ones(3) if cal is None else np.asarray(cal.scale, np.float64)


def _combine(plain: PosePrediction, mirrored: PosePrediction, view: str, model) -> tuple[np.ndarray, np.ndarray | None]:
    """Rotations ``(N, 3, 3)`` and sigma ``(N, 3)`` (or ``None``) of a view, from the reads of
    the faces (``plain``) and of their mirror images (``mirrored``, in the mirrored frame)."""
    if view == "plain":
        return np.asarray(plain.rotations, np.float64), plain.sigma
    back = mirror_horizontal(mirrored.rotations)  # the mirror image's pose, mapped back to the face's
    if view == "mirrored":
        return back, mirrored.sigma  # |yaw| and |roll| keep their size under the mirror: so does their sigma
    R = mean_rotation(np.stack([np.asarray(plain.rotations, np.float64), back], axis=1))
    if plain.sigma is None or mirrored.sigma is None:
        return R, None
    sigma = (np.asarray(plain.sigma, np.float64) + np.asarray(mirrored.sigma, np.float64)) / 2
    return R, sigma * both_sigma_factor(model)


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

        from scipy.optimize import least_squares  # here: scipy.optimize is slow to import (start-up, issue 32)

        sol = least_squares(residuals, x0, loss="soft_l1", f_scale=self.huber_mm, method="trf", x_scale="jac", max_nfev=50)
        return from_axis_angle(sol.x[:3])

    name = "geometric"
    #: What this stage reads from :class:`~openheadpose.inference.results.Faces`.
    needs = "mesh"

    def __call__(self, image: np.ndarray, faces: Faces, view: str | None = None) -> PosePrediction:
        """``view`` is accepted for a common signature and ignored: a rigid fit of a face and of
        its mirror image gives mirrored poses by construction (the template is symmetric)."""
        resolve_view(view, False)
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
    return _template_fit(points, iterations)[0]


def _template_fit(points: np.ndarray, iterations: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The 68 landmarks (:func:`landmarks68_from_facemesh`) and the fitted template's rotation
    ``(3, 3)`` (``Frame.GL``: the head's pose as its landmarks' shape gives it)."""
    t = face_template()
    P = np.asarray(points, np.float64)[:, :3] * np.array([1.0, -1.0, 1.0])
    s, R, tr = robust_similarity_fit(t.points, P, 3.0, iterations)
    L = s * t.landmarks68 @ R.T + tr
    return L[:, :2] * np.array([1.0, -1.0]), R


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
        batch_size: faces per network call (results do not depend on it).
        mirror: read every face twice by default -- its crop and the crop's mirror image in
            one batch, the two poses averaged on SO(3) (``view="both"``); ``False``: once
            (``view="plain"``). A call's ``view`` overrides it.
        upright: a face with landmarks is read turned level and the pose turned back
            (:func:`upright_crop`): the network then reads every face near zero roll, where its
            training data are densest; ``False``: the recipe's axis-aligned crop. Faces without
            landmarks always get the axis-aligned crop.
        upright_by: what levels a face (:data:`UPRIGHT_BY`): ``"roll"``, the screen angle of the
            template fitted to its landmarks, or ``"eyes"``, its eye line.
    """

    needs = "mesh or detector box"

    def __init__(self, model="hopenet-synth", weights=None, focal_factor: float | None = None, batch_size: int = 32, mirror: bool = MIRROR_DEFAULT,
                 upright: bool = UPRIGHT_DEFAULT, upright_by: str = UPRIGHT_BY):
        self.name = model if isinstance(model, str) else getattr(model, "name", type(model).__name__)
        if isinstance(model, str):
            model = load_network(model, weights)
        if getattr(model, "takes_keypoints", False):
            raise ValueError(f"{model.name}: a keypoint network, not an image network; use --model {model.name} instead of --pose")
        self.model = model
        self.recipe = CROPS[model.crop]
        self.focal_factor = focal_factor
        self.batch_size = batch_size
        self.mirror = bool(mirror)
        self.upright = bool(upright)
        if upright_by not in ("roll", "eyes"):
            raise ValueError(f"upright_by must be 'roll' or 'eyes', not {upright_by!r}")
        self.upright_by = upright_by
        self._fits: list = []  # (mesh, its template fit) of the last few faces read

    def _fit(self, mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:func:`_template_fit` of one face's mesh, remembered for the faces of the last call
        (a tracker asks for the crop boxes and then the poses of the same faces)."""
        for seen, fit in self._fits:
            if np.array_equal(seen, mesh):
                return fit
        fit = _template_fit(mesh)
        self._fits = (self._fits + [(np.array(mesh, copy=True), fit)])[-8:]
        return fit

    def crop_boxes(self, image_shape, faces: Faces) -> np.ndarray:
        """``(N, 4)`` integer crop boxes, one per face."""
        if faces.crop_boxes is not None:
            return np.asarray(faces.crop_boxes).reshape(-1, 4)
        boxes = [
            self.recipe.expand_landmarks(self._fit(faces.mesh[i])[0], image_shape)
            if _has_mesh(faces, i)
            else self.recipe.from_detection(b, image_shape)
            for i, b in enumerate(faces.detection_boxes)
        ]
        return np.array(boxes).reshape(-1, 4)

    def __call__(self, image: np.ndarray, faces: Faces, view: str | None = None) -> PosePrediction:
        """The pose of each face; ``view``: ``"plain"``, ``"mirrored"``, ``"both"`` or ``None``
        (``"both"`` when the stage was built with ``mirror``, else ``"plain"``). The mirrored
        read flips the crop left-right and maps its pose back; the result is always the pose
        of the face as the image shows it."""
        return self.many([(image, faces)], view)[0]

    def many(self, items: list[tuple[np.ndarray, Faces]], view: str | None = None) -> list[PosePrediction]:
        """One prediction per ``(image, faces)`` pair, the crops of all of them through the
        network in calls of up to ``batch_size`` faces (several photos' faces share a call),
        each read as ``view`` (see :meth:`__call__`)."""
        view = resolve_view(view, self.mirror)
        size = self.model.input_size
        crops, turns = [], []
        for image, faces in items:
            if not len(faces):
                continue
            boxes = self.crop_boxes(image.shape, faces)
            for i, b in enumerate(boxes):
                if self.upright and _has_mesh(faces, i):
                    pts68, R_fit = self._fit(faces.mesh[i])
                    tilt = _eye_line_angle(pts68) if self.upright_by == "eyes" else float(screen_angle(R_fit))
                    crop, angle = upright_crop(self.recipe, image, pts68, size, tilt)
                else:
                    crop, angle = self.recipe(image, b, size), 0.0
                crops.append(crop)
                turns.append(angle)
        rots, sigmas = [], []
        for i in range(0, len(crops), self.batch_size):
            pred = read_crops(self.model, np.stack(crops[i : i + self.batch_size]), view)
            rots.append(np.asarray(pred.rotations, np.float64))
            sigmas.append(pred.sigma)
        R_all = np.concatenate(rots) if rots else np.zeros((0, 3, 3))
        if any(turns):
            R_all = rotate_in_plane(R_all, np.asarray(turns))  # the upright crop's pose turned back with the face
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


def _eye_line_angle(points68: np.ndarray) -> float:
    """Angle (degrees, counter-clockwise on screen) of the line through the outer eye corners (iBUG 36, 45)."""
    d = points68[45] - points68[36]
    return float(np.degrees(np.arctan2(-d[1], d[0])))  # on screen: image y points down


def upright_crop(recipe, image: np.ndarray, points68: np.ndarray, size: int, angle: float) -> tuple[np.ndarray, float]:
    """The recipe's crop of a face turned upright, and the angle it was turned by.

    The face, tilted ``angle`` degrees counter-clockwise on screen (``NetworkPose.upright_by``
    says how that is measured), is turned level about its landmarks' centre, the recipe's box is
    taken around the turned landmarks, and its pixels are sampled straight from ``image``
    through one affine map (no whole-image turn). A network then reads every face near zero
    roll, where its training data are densest; the pose it reads is turned back by the
    returned angle (:func:`~openheadpose.core.rotation.rotate_in_plane`).
    """
    centre = points68.mean(axis=0)
    A = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), -angle, 1.0)  # turns the face level
    level = points68 @ A[:, :2].T + A[:, 2]
    x1, y1, x2, y2 = (int(v) for v in recipe.expand_landmarks(level, (1 << 30, 1 << 30)))  # the box, unclipped
    A[:, 2] -= (x1, y1)
    border = cv2.BORDER_REPLICATE if recipe.outside == "edge" else cv2.BORDER_CONSTANT
    patch = cv2.warpAffine(image, A, (x2 - x1, y2 - y1), flags=cv2.INTER_LINEAR, borderMode=border)
    return take_pixels(patch, (0, 0, x2 - x1, y2 - y1), size, "pad", recipe.resize, recipe.interp), angle


def read_crops(model, crops: np.ndarray, view: str = "plain") -> PosePrediction:
    """An image network's pose of crops ``(B, S, S, 3)`` (RGB uint8) read as ``view``.

    ``"mirrored"`` reads each crop flipped left-right and maps the pose back
    (:func:`~openheadpose.core.rotation.mirror_horizontal`); ``"both"`` reads the crops and
    their mirror images in one batch and averages the two poses of each face on SO(3). The
    poses are always those of the crops as given. The one place the pose stage and the
    evaluator (``headpose evaluate``'s own-crop mode) read a crop twice.
    """
    crops = np.asarray(crops)
    k = len(crops)
    view = resolve_view(view, False)
    batch = {"plain": crops, "mirrored": crops[:, :, ::-1], "both": np.concatenate([crops, crops[:, :, ::-1]])}[view]
    pred = model.predict(np.ascontiguousarray(batch))
    sig = pred.sigma
    plain = PosePrediction(pred.rotations[:k], None if sig is None else sig[:k])
    mirrored = PosePrediction(pred.rotations[len(batch) - k :], None if sig is None else sig[len(batch) - k :])
    R, sigma = _combine(plain, mirrored, view, model)
    return PosePrediction(R, sigma, _angles(model))


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
        mirror: read every head twice by default -- its keypoints and their mirror image
            (mirrored about the head box's centre, left and right eye and ear swapped), the
            two poses averaged on SO(3). Off unless asked: a keypoint network's mirrored
            read has no measured sigma factor yet (see :func:`both_sigma_factor`).
    """

    needs = "keypoints"

    def __init__(self, model="hhpnet", weights=None, focal_factor: float | None = None, mirror: bool = False):
        if isinstance(model, str):
            model = load_network(model, weights)
        self.name = getattr(model, "name", type(model).__name__)
        if not callable(getattr(model, "predict_keypoints", None)):
            raise ValueError(f"{getattr(model, 'name', model)!r} is not a keypoint model (it has no predict_keypoints)")
        self.model = model
        self.focal_factor = focal_factor
        self.mirror = bool(mirror)

    def __call__(self, image: np.ndarray, faces: Faces, view: str | None = None) -> PosePrediction:
        """The pose of each head; ``view`` as for :class:`NetworkPose` (``None``: ``"both"`` when
        built with ``mirror``, else ``"plain"``)."""
        view = resolve_view(view, self.mirror)
        _require(faces, "keypoints", f"{self.model.name} reads head keypoints: the pipeline needs a keypoint source (--keypoints)")
        if len(faces) == 0:
            return self.model.predict_keypoints(np.zeros((0, 5, 2)), np.zeros((0, 5)), np.zeros((0, 4)))
        pts, conf, boxes = np.asarray(faces.keypoints, np.float64), np.asarray(faces.keypoint_conf, np.float64), np.asarray(faces.boxes, np.float64)
        n = len(pts)
        if view != "plain":
            mpts, mconf = mirror_keypoints(pts, boxes), conf[:, MIRROR_KEYPOINTS]
            pts, conf, boxes = (mpts, mconf, boxes) if view == "mirrored" else (np.concatenate([pts, mpts]), np.concatenate([conf, mconf]), np.concatenate([boxes, boxes]))
        pred = self.model.predict_keypoints(pts, conf, boxes, source=faces.keypoint_source)
        sig = pred.sigma
        plain = PosePrediction(pred.rotations[:n], None if sig is None else sig[:n])
        mirrored = PosePrediction(pred.rotations[-n:], None if sig is None else sig[-n:])
        R, sigma = _combine(plain, mirrored, view, self.model)
        R = _to_camera_frame(R, faces.keypoints.mean(1), image.shape, self.focal_factor)
        return PosePrediction(R, sigma, _angles(self.model))


def mirror_keypoints(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The five head keypoints ``(N, 5, 2)`` of each head's mirror image about its box's
    vertical centre line (``boxes`` ``(N, 4)``), left and right eye and ear swapped, so that
    the box stays where it is and the mirrored head is read in the same place."""
    p = np.asarray(points, np.float64)[:, MIRROR_KEYPOINTS].copy()
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    p[..., 0] = (b[:, 0] + b[:, 2])[:, None] - p[..., 0]
    return p


def _register_shipped() -> None:
    from functools import partial

    for name, what in SHIPPED_IMAGE_NETWORKS.items():
        default = " (default)" if name == DEFAULT_POSE_NETWORK else ""
        POSE_STAGES.register(name, help=f"our {what}, trained on headpose synth data, on its crop placed by FaceMesh{default}")(partial(NetworkPose, name))


_register_shipped()
