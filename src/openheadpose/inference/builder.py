"""The one place that turns names and options into a :class:`~openheadpose.inference.pipeline.HeadPoseEstimator`.

``headpose predict``, ``interact`` and ``evaluate`` and the Python API all call
:func:`build_estimator`; every option works for every model or is refused here
with a message that says why.
"""

from __future__ import annotations

import math
from typing import Any

from openheadpose.core.camera import Camera, read_calibration
from openheadpose.inference.backends.litert import SOURCES
from openheadpose.inference.backends.onnx import load_network
from openheadpose.inference.defaults import STREAM, default_tracker
from openheadpose.inference.head_detector import HEAD_MIN_SCORE
from openheadpose.inference.keypoint_sources import DEFAULT_SOURCE, KEYPOINT_SOURCES
from openheadpose.inference.model_names import check_model_name
from openheadpose.inference.pipeline import (
    HeadPoseEstimator,
    default_landmarker,
    default_pose,
)
from openheadpose.inference.placement import HeadPlacer
from openheadpose.inference.pose_stages import POSE_STAGES, KeypointPose, NetworkPose

#: The model name of the landmark pipeline (detector + FaceMesh + a pose stage).
DEFAULT_MODEL = "default"


def focal_factor(fov_deg: float | None) -> float | None:
    """Focal length over the image's width for a horizontal field of view of ``fov_deg``."""
    return None if fov_deg is None else 0.5 / math.tan(math.radians(fov_deg) / 2)


def build_estimator(
    model: str = DEFAULT_MODEL,
    weights=None,
    *,
    detector: str | Any | None = None,
    landmarker: str | Any | None = None,
    pose: str | None = None,
    keypoints: str | None = None,
    min_score: float | None = None,
    fov: float | None = None,
    max_detect_side: int = 1920,
    track: bool = STREAM.track,
    smooth: bool = STREAM.smooth,
    camera=None,
    mirror: bool | None = None,
    upright: bool | None = None,
) -> HeadPoseEstimator:
    """The estimator for a model name and the options of ``headpose predict``.

    * ``model="default"``: detector -> ``landmarker`` (FaceMesh) -> ``pose`` stage
      (default :func:`default_pose`; any ``POSE_STAGES`` name).
    * an image network (``hopenet-synth``, ``fsanet``, ``onnx``...): detector ->
      the network on its crop -- from the detector's box, or placed by FaceMesh
      when ``landmarker`` is given.
    * a keypoint network (``hhpnet``, ``heatmap-cnn``): a keypoint source
      (``keypoints``, default ``facemesh``) -> the network; the ``body`` source
      finds people itself and takes no detector.

    Args:
        model: ``"default"`` or a network name (see :func:`~openheadpose.inference.backends.onnx.load_network`).
        weights: the network's ``.onnx`` file (shipped weights when omitted, where there are some).
        detector: a ``DETECTORS`` name or callable (default :func:`~openheadpose.inference.pipeline.default_detector`).
        landmarker: a ``LANDMARKERS`` name, or ``"none"``; default ``facemesh`` for the
            default model (when its model file is installed; else none, and the pose
            network reads the detector's box) and the facemesh keypoint source, none for an
            image network.
        pose: the default model's pose stage (a ``POSE_STAGES`` name).
        keypoints: a ``KEYPOINT_SOURCES`` name, for keypoint networks.
        min_score: minimum head score (default 0.5 when a landmarker or the body
            source confirms a face, 0.75 for a detector alone).
        fov: the camera's horizontal field of view in degrees (across the image's width):
            report rotations in the camera's frame instead of relative to each
            face's line of sight.
        max_detect_side: images larger than this are detected on a downscaled copy.
        track: :meth:`~openheadpose.inference.pipeline.HeadPoseEstimator.stream` follows
            heads through each video or camera stream and gives them ``track_ids``
            (:class:`~openheadpose.inference.tracking.HeadTracker`); ``False``: every frame
            on its own, as ``predict`` does.
        smooth: with ``track``, fuse each head's readings over time (``Heads.raw_rotations`` keeps them)
            and smooth its box. ``track`` and ``smooth`` default to :data:`~openheadpose.inference.defaults.STREAM`.
        camera: a calibrated camera (:class:`~openheadpose.core.camera.Camera`, or the path of
            an OpenCV calibration file, :func:`~openheadpose.core.camera.read_calibration`):
            landmarks are undistorted before heads are placed, and rotations are reported in
            the camera's frame, as with ``fov``. Without ``camera`` or ``fov``, heads are
            placed with an assumed 60-degree camera (see :mod:`openheadpose.core.camera`).
        mirror: read every face twice, as it is and mirrored, and average the two poses
            (:class:`~openheadpose.inference.pose_stages.NetworkPose`'s ``mirror``). ``None``:
            on for image networks (:data:`~openheadpose.inference.pose_stages.MIRROR_DEFAULT`),
            off for keypoint networks (no measured sigma for their mean yet); the geometric
            stage is mirror-symmetric by construction and refuses ``True``.
        upright: read each face with landmarks turned upright and turn its pose back
            (:class:`~openheadpose.inference.pose_stages.NetworkPose`'s ``upright``). ``None``:
            :data:`~openheadpose.inference.pose_stages.UPRIGHT_DEFAULT` for image networks; a
            stage that crops no image ignores it.

    Raises:
        KeyError: an unknown stage or model name (the message suggests the closest).
        ValueError: missing or wrong weights, or an option the model cannot use.
    """
    cam = _camera(camera, fov)
    # a calibrated camera turns rotations into its frame after the pose stage (the placement
    # step); --fov does it inside the pose stage, as before
    est = _build(model, weights, detector, landmarker, pose, keypoints, min_score, fov, max_detect_side)
    est.placer = HeadPlacer(cam, rotations_in_camera_frame=fov is not None, report_camera_frame=camera is not None, from_boxes=est.placer.from_boxes)
    _set_mirror(est.pose, mirror)
    if upright is not None and hasattr(est.pose, "upright"):
        est.pose.upright = bool(upright)
    est.tracker = default_tracker(track, smooth)
    return est


def _camera(camera, fov: float | None) -> Camera:
    """The one camera of ``camera`` (a :class:`Camera` or a calibration file) and ``fov``; both is an error."""
    if camera is not None and fov is not None:
        raise ValueError("--camera gives the field of view already: leave --fov out")
    if camera is None:
        return Camera.assumed() if fov is None else Camera.from_fov(fov)
    return camera if isinstance(camera, Camera) else read_calibration(camera)


def _set_mirror(stage, mirror: bool | None) -> None:
    """Give the pose stage the ``mirror`` option, or refuse it for a stage that reads no image."""
    if mirror is None:
        return
    if hasattr(stage, "mirror"):
        stage.mirror = bool(mirror)
    elif mirror:
        raise ValueError(f"--mirror: the {getattr(stage, 'name', 'chosen')} pose stage reads no image crop or keypoints (a rigid fit of landmarks is mirror-symmetric already)")


def _build(model, weights, detector, landmarker, pose, keypoints, min_score, fov, max_detect_side) -> HeadPoseEstimator:
    ff = focal_factor(fov)
    if detector == "heads" and min_score is None:
        min_score = HEAD_MIN_SCORE  # its score is person detection x presence, not a face detector's
    if keypoints is not None:
        KEYPOINT_SOURCES.get(keypoints)  # a typo fails here, before any model loads
    if model == DEFAULT_MODEL:
        if weights is not None:
            raise ValueError("the default model (detector + landmarks + pose stage) takes no --weights; name a network with --model")
        if keypoints is not None:
            raise ValueError("--keypoints is for keypoint networks (--model hhpnet, heatmap-cnn); the default model reads face landmarks")
        if landmarker is None:
            landmarker = default_landmarker()
        elif landmarker == "none":
            landmarker = None
        pose = pose or default_pose()
        if landmarker is None and pose == "geometric":
            raise ValueError(f"the geometric pose stage fits FaceMesh's landmarks, whose model is not installed: {' or '.join(SOURCES.values())}")
        stage = POSE_STAGES.create(pose, **({} if ff is None else {"focal_factor": ff}))
        return HeadPoseEstimator(detector, landmarker, stage, min_score=min_score, max_detect_side=max_detect_side)
    if pose is not None:
        raise ValueError(f"--pose chooses the default model's pose stage; with --model {model} the network is the pose stage")
    if weights is None:  # with --weights, the file says which network it holds (load_network checks)
        check_model_name(model)
    net = load_network(model, weights)
    if net.takes_keypoints:
        source = KEYPOINT_SOURCES.create(keypoints or DEFAULT_SOURCE)
        if getattr(source, "finds_heads", False):
            if detector is not None:
                raise ValueError(f"the {keypoints} keypoint source has its own person detector: leave --detector out")
            if landmarker is not None:
                raise ValueError(f"the {keypoints} keypoint source reads body landmarks: leave --landmarker out")
        elif source.landmarker is None and landmarker is not None:
            raise ValueError(f"the {source.name} keypoint source reads the detector's own points: leave --landmarker out")
        landmarker = landmarker or source.landmarker
        return HeadPoseEstimator(detector, landmarker, KeypointPose(net, focal_factor=ff), keypoints=source, min_score=min_score, max_detect_side=max_detect_side)
    if keypoints is not None:
        raise ValueError(f"--keypoints is for keypoint networks (hhpnet, heatmap-cnn); {net.name!r} reads image crops")
    return HeadPoseEstimator(detector, landmarker, NetworkPose(net, focal_factor=ff), min_score=min_score, max_detect_side=max_detect_side)
