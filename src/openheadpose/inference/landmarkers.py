"""Face landmarkers: MediaPipe FaceMesh (468 points with relative depth).

A landmarker is a callable ``landmarker(image_rgb, detections) -> Landmarks``.
"""

from __future__ import annotations

import numpy as np

from openheadpose.core.geometry import RotatedSquare
from openheadpose.core.registry import Registry
from openheadpose.inference.backends.litert import TFLiteModel, model_path, sigmoid
from openheadpose.inference.results import Detections, Landmarks

LANDMARKERS: Registry = Registry("landmarker")

# FaceMesh indices of the outer eye corners (person's right, person's left),
# MediaPipe's choice for the roll of a landmark-derived crop.
_RIGHT_EYE_OUTER, _LEFT_EYE_OUTER = 33, 263


class FaceMesh:
    """MediaPipe FaceMesh (``face_landmark.tflite``, 192x192 input) on detector crops.

    The crop is the detection box grown 1.5x, squared and turned so the eyes are
    level (from the detector's eye keypoints when it gives them). With
    ``refine=True`` (``facemesh``, the default) a second pass re-crops from the first pass's
    landmarks, as MediaPipe's tracker does; ``refine="auto"`` (``facemesh-auto``) does so only
    where the first pass's face-presence score is under :attr:`REFINE_SCORE`: there the box
    fitted the face badly, and the second look keeps faces the first would lose. It saves about
    1.2 ms a face. It is not the default: on held-out photos it matched two passes, but end to end
    on AFLW2000-dev it costs 0.03 deg MAE (pitch +0.04, roll +0.06; measured once, after the rule
    chose it: ``benchmarks/speed_settings.py``), more than issue 32 allows. A likely cause, not
    tested: a first pass's crop is turned by BlazeFace's eye keypoints, the second's by FaceMesh's
    own eye line, and the roll error grew most.
    """

    side = 192

    #: ``refine="auto"`` runs the second pass only when the first pass's face-presence score is
    #: under this. Chosen by the rule in ``benchmarks/speed_settings.py`` (held-out real photos with
    #: their fitted pose and aflw-extra's yaw labels, never AFLW2000): the second pass then runs on
    #: about one face in five, with no face lost there and the error of two passes on every face.
    #: (The older rule also sent faces whose crop moved, resized or turned: no better there, more passes.)
    REFINE_SCORE = 0.999

    def __init__(self, refine: bool | str = True, scale: float = 1.5):
        if refine not in (True, False, "auto"):
            raise ValueError(f"refine must be True, False or 'auto', got {refine!r}")
        self.model = TFLiteModel(model_path("face_landmark"))
        self.refine = refine
        self.scale = scale

    def _roi_from_detection(self, box: np.ndarray, kps: np.ndarray | None) -> RotatedSquare:
        centre = (box[:2] + box[2:]) / 2.0
        size = float(np.max(box[2:] - box[:2])) * self.scale
        axis = (kps[1] - kps[0]) if kps is not None else np.array([1.0, 0.0])
        return RotatedSquare.from_axis(centre, size, axis)

    def _roi_from_landmarks(self, pts: np.ndarray, axis: np.ndarray | None = None) -> RotatedSquare:
        if axis is None:
            axis = pts[_LEFT_EYE_OUTER, :2] - pts[_RIGHT_EYE_OUTER, :2]
        roi = RotatedSquare.from_axis(np.zeros(2), 1.0, axis)
        # bounding box in the rotated frame, so the crop hugs a tilted face
        local = pts[:, :2] @ np.stack([roi.ex, roi.ey], axis=1)
        lo, hi = local.min(0), local.max(0)
        centre = np.stack([roi.ex, roi.ey], axis=1) @ ((lo + hi) / 2.0)
        return RotatedSquare(centre, float(np.max(hi - lo)) * self.scale, roi.ex)

    def _run(self, image: np.ndarray, roi: RotatedSquare) -> tuple[np.ndarray, float]:
        M = roi.affine(self.side)
        crop = roi.warp(image, self.side)
        x = crop.astype(np.float32)[None] / 255.0
        raw, flag = self.model(x)
        pts = raw.reshape(-1, 3).astype(np.float64)
        xy = pts[:, :2] @ M[:, :2].T + M[:, 2]
        z = -pts[:, 2] * roi.size / self.side  # MediaPipe z grows away from the viewer
        return np.concatenate([xy, z[:, None]], axis=1), float(sigmoid(flag.ravel()[0]))

    def _needs_second_pass(self, roi: RotatedSquare, roi2: RotatedSquare, score: float) -> bool:
        """Whether to look again on the crop ``roi2`` the first pass's landmarks place (the first
        pass read ``roi`` and scored ``score``): where its face-presence score says the box fitted badly."""
        return score < self.REFINE_SCORE

    def follow(self, image: np.ndarray, previous: np.ndarray, shift=(0.0, 0.0), axis=None) -> tuple[np.ndarray, float]:
        """One pass on the crop the previous frame's landmarks ``(468, 3)`` place, moved by ``shift``
        ``(dx, dy)`` pixels: how MediaPipe follows a face between detections. ``axis`` (2,): the
        crop's x axis in the image, instead of the previous landmarks' eye line (a tracker that
        knows the head's in-plane turn keeps the crop from drifting in roll pass after pass).
        Returns the landmarks and the face-presence score."""
        pts = np.asarray(previous, np.float64).copy()
        pts[:, :2] += np.asarray(shift, np.float64)
        return self._run(image, self._roi_from_landmarks(pts, None if axis is None else np.asarray(axis, np.float64)))

    def __call__(self, image: np.ndarray, detections: Detections) -> Landmarks:
        out_p, out_s = [], []
        for i in range(len(detections)):
            kps = None if detections.keypoints is None else detections.keypoints[i]
            roi = self._roi_from_detection(detections.boxes[i], kps)
            pts, score = self._run(image, roi)
            roi2 = self._roi_from_landmarks(pts)
            if self.refine is True or (self.refine == "auto" and self._needs_second_pass(roi, roi2, score)):
                pts2, score2 = self._run(image, roi2)
                if score2 >= score or score2 > 0.5:
                    pts, score = pts2, score2
            out_p.append(pts)
            out_s.append(score)
        if not out_p:
            return Landmarks(np.zeros((0, 468, 3)), np.zeros((0,)))
        return Landmarks(np.stack(out_p), np.array(out_s))


@LANDMARKERS.register("facemesh", help="MediaPipe FaceMesh, 468 points, two passes on every face (default)")
def _make_facemesh(**kw):
    return FaceMesh(**kw)


@LANDMARKERS.register("facemesh-auto", help="MediaPipe FaceMesh, a second pass only where the first one's face-presence score is low (faster, less accurate)")
def _make_facemesh_auto(**kw):
    return FaceMesh(refine="auto", **kw)


@LANDMARKERS.register("facemesh-fast", help="MediaPipe FaceMesh, one pass from the detection box")
def _make_facemesh_fast(**kw):
    return FaceMesh(refine=False, **kw)
