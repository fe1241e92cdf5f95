"""Video: follow every head from frame to frame, give it an identity, fuse its readings.

A :class:`HeadTracker` is the pipeline's tracker slot; :meth:`HeadPoseEstimator.stream
<openheadpose.inference.pipeline.HeadPoseEstimator.stream>` feeds it the frames of one
stream (a video or a camera) in order. Per frame:

1. **Detect rarely.** The detector and FaceMesh run on the whole frame on the first frame,
   every ``detect_every`` frames (default 30: about a second), and whenever a track was lost the frame before (a head may
   have come back) -- as MediaPipe's and 3DDFA_V2's trackers do.
2. **Follow between detections.** With a FaceMesh landmarker each head is followed from its
   previous landmarks, moved by its velocity (one FaceMesh pass on the crop they place).
   When FaceMesh loses confidence -- a head turned to profile -- the head's last image patch
   is searched for around its predicted place (normalised cross-correlation); if it is still
   there (correlation >= ``min_patch_score``: the check that the crop still holds the head),
   the pose network reads the head's crop moved with it, instead of the track being dropped.
3. **Associate.** Detections are matched to the tracks' motion-predicted boxes by
   ``scipy.optimize.linear_sum_assignment`` on 1 - IoU (gated); unmatched detections start
   new tracks. Ids are never reused within a stream. A track that is not seen coasts along
   its path for up to ``max_missed`` frames (1.5 s at 30 fps), so a head hidden behind another
   and reappearing on its path keeps its id. Where two followed heads converge on one face
   (one passing in front of the other), the one that moved less against its prediction
   keeps the face and the other coasts.
4. **Fuse on SO(3).** Each track's rotation is the state of an error-state Kalman filter on
   SO(3) with a still and a constant-angular-velocity model mixed
   (:class:`~openheadpose.inference.fusion.RotationKalman`): every frame's reading is fused by
   its sigma, so a still head's estimate averages many readings and a turning head is
   followed without lag. ``Heads.raw_rotations`` keeps each frame's reading, ``Heads.sigma``
   the fused head's sigma. Boxes are smoothed by a One-Euro filter in pixels.
5. **Crops that do not drift.** FaceMesh followed from its own landmarks re-crops along its
   own eye line, and pass after pass that line drifts in roll (on a face turned 41 degrees the
   crop went from -11 to -4 degrees in three frames while the head held still), and the pose
   network's crop, placed from those landmarks, drifts with it: a bias the filter cannot
   average away. So a followed head's FaceMesh crop keeps the eye line FaceMesh found when the
   detector last placed it, turned by the head's own in-plane turn since (from its fused
   rotation; ``anchor_roll``), and the detector re-anchors every ``detect_every`` frames.
   (On the short four-face video of ``bench_video.py --quick`` this took the readings' mean
   error from 6.66 to 6.41 degrees, against 6.14 for readings re-anchored by the detector on
   every frame, at the cost of a detection and a second FaceMesh pass per frame.)
6. **Both views, upright.** With a pose stage that reads a face and its mirror image
   (``mirror``), both are read every frame, each face turned upright first (the pose stage's
   ``upright``: the network errs on tilted faces, and a head turning in the image plane is one).
   Reading one view per frame in turn (``alternate_views``), each moved to the two views'
   midpoint by the track's estimate of their offset (:meth:`HeadTracker._centred`), costs less
   but measured worse: the offset changes faster than a track learns it.

Without a FaceMesh landmarker (image networks on the detector's box, keypoint networks) the
detector runs on every frame and the tracker only associates and smooths.

Dimension legend: N heads in a frame, T live tracks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from openheadpose.core.geometry import box_iou, points_box
from openheadpose.core.rotation import exp_so3, log_so3, screen_angle
from openheadpose.inference.fusion import RotationKalman
from openheadpose.inference.results import Faces, Heads

#: Memory, in pairs of plain and mirrored reads, of the view offset's exponential average
#: (the offset changes as the head turns).
VIEW_PAIRS = 10

#: A head counts as still (FaceMesh may be skipped) when the fusion gives it this probability of
#: being still and its box moved under MOVE_TO_SKIP_PX pixels a frame.
STILL_TO_SKIP = 0.9
MOVE_TO_SKIP_PX = 1.0

#: Side in pixels of the grey patch kept per head for re-localising it without landmarks.
PATCH = 32


def _alpha(cutoff_hz: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Smoothing factor of a first-order low-pass with this cutoff at time step ``dt``."""
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz) * dt))


class OneEuro:
    """The One-Euro filter (Casiez et al., CHI 2012) on a vector: cutoff ``min_cutoff + beta * |speed|``.

    Args:
        min_cutoff: cutoff in Hz when still (lower: steadier).
        beta: cutoff added per unit/s of speed (higher: less lag when moving).
        d_cutoff: cutoff in Hz of the speed estimate.
    """

    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None

    def __call__(self, x: np.ndarray, dt: float, scale: float = 1.0) -> np.ndarray:
        """Filter one sample; ``scale`` multiplies the still cutoff (< 1: smooth more)."""
        x = np.asarray(x, np.float64)
        if self.x is None:
            self.x, self.dx = x.copy(), np.zeros_like(x)
            return x
        self.dx = self.dx + _alpha(self.d_cutoff, dt) * ((x - self.x) / dt - self.dx)
        cutoff = self.min_cutoff * scale + self.beta * float(np.linalg.norm(self.dx))
        self.x = self.x + _alpha(cutoff, dt) * (x - self.x)
        return self.x.copy()


@dataclass
class Track:
    """One head followed through a stream."""

    id: int
    box: np.ndarray
    mesh: np.ndarray | None = None
    crop_box: np.ndarray | None = None
    patch: np.ndarray | None = None
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    steps: list = field(default_factory=list)  # the last few per-frame box displacements
    missed: int = 0
    hits: int = 0
    score: float = 1.0
    tentative: bool = False  # first seen scoring below confirm_score: not reported until detected again
    fusion: RotationKalman = field(default_factory=RotationKalman)
    box_filter: OneEuro = field(default_factory=lambda: OneEuro(min_cutoff=1.0, beta=0.02))

    reused: int = 0  # frames in a row its landmarks were reused (FaceMesh skipped)
    last_read: tuple | None = None  # (reading, its view, frame) for the view offset
    view_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))  # half the mirrored-minus-plain reading (rotation vector)
    view_pairs: int = 0
    anchor_axis: np.ndarray | None = None  # FaceMesh's eye line (image x axis of its crop) when last detected
    anchor_angle: float = 0.0  # the head's in-plane angle (degrees, ccw on screen) then

    def predicted(self) -> np.ndarray:
        return self.box + self.velocity * (1 + self.missed)


@dataclass
class _Seen:
    """What one frame says about one head before its pose."""

    box: np.ndarray
    score: float
    mesh: np.ndarray | None = None
    crop_box: np.ndarray | None = None
    detected: bool = False  # placed by the detector this frame (not followed)
    reused: bool = False  # FaceMesh skipped: the head's last landmarks, moved by its velocity


def _cover(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection of two boxes over the smaller one's area (1: one lies inside the other)."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(w * h / small) if small > 0 else 0.0


def _near(box: np.ndarray, predicted: np.ndarray, tolerance: float = 0.35) -> bool:
    """Whether ``box``'s centre lies within ``tolerance`` of a box side from the predicted centre."""
    size = max(predicted[2] - predicted[0], predicted[3] - predicted[1], 1.0)
    return bool(np.hypot(*((box[:2] + box[2:]) / 2 - (predicted[:2] + predicted[2:]) / 2)) <= tolerance * size)


def _near_another(box: np.ndarray, others: list[np.ndarray], reach: float = 0.8) -> bool:
    """Whether another head's box, grown by ``reach`` of its size on every side (its hair, its
    shoulders: what can cover this one), touches ``box``."""
    for o in others:
        w, h = o[2] - o[0], o[3] - o[1]
        grown = o + np.array([-reach * w, -reach * h, reach * w, reach * h])
        if _cover(box, grown) > 0:
            return True
    return False


def _grey_patch(image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    x1, y1, x2, y2 = np.round(box).astype(int)
    h, w = image.shape[:2]
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 - x1 < 8 or y2 - y1 < 8:
        return None
    grey = cv2.cvtColor(np.ascontiguousarray(image[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (PATCH, PATCH), interpolation=cv2.INTER_AREA)


def _find_patch(image: np.ndarray, patch: np.ndarray, box: np.ndarray, search: float = 0.5) -> tuple[np.ndarray, float]:
    """Where ``patch`` (a head seen in ``box``'s size) best matches around ``box``: the moved box and its correlation."""
    w, h = box[2] - box[0], box[3] - box[1]
    s = PATCH / max(w, 1.0)
    pad = np.array([-search * w, -search * h, search * w, search * h])
    area = np.round(box + pad).astype(int)
    H, W = image.shape[:2]
    area = np.array([max(0, area[0]), max(0, area[1]), min(W, area[2]), min(H, area[3])])
    if area[2] - area[0] < w * 0.6 or area[3] - area[1] < h * 0.6:
        return box, -1.0
    region = cv2.cvtColor(np.ascontiguousarray(image[area[1] : area[3], area[0] : area[2]]), cv2.COLOR_RGB2GRAY)
    region = cv2.resize(region, (max(PATCH, round(region.shape[1] * s)), max(PATCH, round(region.shape[0] * PATCH / max(h, 1.0)))), interpolation=cv2.INTER_AREA)
    if region.shape[0] < PATCH or region.shape[1] < PATCH:
        return box, -1.0
    res = cv2.matchTemplate(region, patch, cv2.TM_CCOEFF_NORMED)
    _, score, _, (mx, my) = cv2.minMaxLoc(res)
    x = area[0] + mx / s
    y = area[1] + my * max(h, 1.0) / PATCH
    return np.array([x, y, x + w, y + h]), float(score)


class HeadTracker:
    """Follows every head of one stream; ids are unique within it (see the module docstring).

    Args:
        detect_every: run the full detector at least every this many frames.
        max_missed: frames a track may go unseen (coasting on its path) before it ends.
        min_presence: FaceMesh's face presence needed to follow a head by its landmarks.
        min_patch_score: correlation with the head's last patch needed to follow it without landmarks.
        min_iou: IoU a detection needs with a track's predicted box to continue it.
        confirm_score: a head first seen scoring below this is tentative: the detector runs
            again on the next frame, and the head is reported (and gets its id) only if it is
            detected there too -- a false detection in a single frame never becomes a track
            that the patch would then follow (lettering in ``../shared/media/no_face.mp4``
            scores 0.52 in one frame). Heads scoring this much, and every head of a stream's
            first frame (a still image is a one-frame stream), are reported at once.
        smooth: fuse rotations over time and smooth boxes (each frame's reading stays in ``Heads.raw_rotations``).
        fps: frame rate used for the filters when the stream does not say.
        anchor_roll: a followed head's FaceMesh crop keeps the eye line of its last detection,
            turned by the head's in-plane turn since (module docstring, step 5).
        skip_still: on a still head, skip FaceMesh on up to this many frames in a row (the pose
            network reads the crop of its last landmarks); 0 (the default): FaceMesh on every
            frame. 1 ran 15-20 % faster on the tuning clips (``benchmarks/video_tune.py``) with
            the same error, but a head that vanishes at a cut is still reported on that frame
            from its reused landmarks (``tests/test_tracking.py::test_a_cut_loses_no_frame``
            fails with it), so it is off.
        alternate_views: with a pose stage that reads each face and its mirror image
            (``mirror``, the default for image networks), read only one of them per frame, in
            turn, and let the fusion average them (with ``smooth``); else (the default) both
            every frame. Off: on the tuning clips (``benchmarks/video_tune.py``, 12 aflw-extra
            faces, upright reads) reading both views took the tracked error from 1.71 to 1.55
            degrees (``--no-track``: 1.73) and still-head jitter from 0.131 / 0.373 to 0.071 /
            0.150 deg/frame (from the 10th still frame / over every still frame), for about 7 %
            of the frame rate: the two views' offset changes faster than a track can learn it.
    """

    def __init__(
        self,
        detect_every: int = 30,
        max_missed: int = 45,
        min_presence: float = 0.5,
        min_patch_score: float = 0.7,
        min_iou: float = 0.2,
        confirm_score: float = 0.75,
        smooth: bool = True,
        fps: float = 30.0,
        anchor_roll: bool = True,
        alternate_views: bool = False,
        skip_still: int = 0,
    ):
        self.detect_every = detect_every
        self.max_missed = max_missed
        self.min_presence = min_presence
        self.min_patch_score = min_patch_score
        self.min_iou = min_iou
        self.confirm_score = confirm_score
        self.smooth = smooth
        self.fps = fps
        self.anchor_roll = anchor_roll
        self.alternate_views = alternate_views
        self.skip_still = skip_still
        self.reset()

    def reset(self) -> None:
        """Forget every track: a new stream starts (ids start from 0 again)."""
        self.tracks: list[Track] = []
        self.next_id = 0
        self.frame = 0
        self.last_detect = -(10**9)
        self.lost_last_frame = False

    # ------------------------------------------------------------------ the frame
    def step(self, estimator, image: np.ndarray, fps: float | None = None) -> tuple[Heads, dict[str, float]]:
        """Heads of the next frame of the stream, with ``track_ids`` (and smoothed rotations)."""
        import time

        timings: dict[str, float] = {}
        dt = 1.0 / (fps or self.fps)
        can_follow = getattr(estimator.landmarker, "follow", None) is not None and getattr(estimator.pose, "needs", "") != "keypoints"
        tentative = any(t.tentative for t in self.tracks)
        detect = (not can_follow) or not self.tracks or self.lost_last_frame or tentative or self.frame - self.last_detect >= self.detect_every
        seen: dict[int, _Seen] = {}
        new: list[_Seen] = []
        faces = None
        if detect:
            faces = estimator.find_faces(image, timings)
            self.last_detect = self.frame
            seen, new = self._associate(faces)
        if can_follow:
            t0 = time.perf_counter()
            detected = [v.box for v in seen.values()]  # heads the detector placed this frame
            followed: dict[int, _Seen] = {}
            for k in range(len(self.tracks)):
                if k not in seen and not self.tracks[k].tentative:  # a tentative head must be detected again
                    others = [t.predicted() for j, t in enumerate(self.tracks) if j != k]
                    s = self._follow(estimator, image, self.tracks[k], detected, others)
                    if s is not None:
                        followed[k] = s
            seen.update(followed)  # two followed heads on one face: _resolve_collisions keeps the likelier
            self._resolve_collisions(seen)
            timings["follow"] = time.perf_counter() - t0
            missing = [k for k, t in enumerate(self.tracks) if k not in seen and not t.tentative]
            if missing and not detect:
                # a head could not be followed (a cut, a turn FaceMesh gave up on): the detector
                # looks for it in this frame rather than the next, so no frame of a visible head is lost
                faces = estimator.find_faces(image, timings)
                self.last_detect = self.frame
                found, new = self._associate(faces)
                seen.update({k: v for k, v in found.items() if k in missing})
            new = [s for s in new if not any(box_iou(s.box[None], v.box[None])[0, 0] > 0.3 for v in seen.values())]
        # new tracks, numbered left to right
        for s in sorted(new, key=lambda s: s.box[0]):
            sure = s.score >= self.confirm_score or self.frame == 0  # a stream's first frame (a still image) has no next one to wait for
            self.tracks.append(Track(self.next_id if sure else -1, s.box.copy(), tentative=not sure))
            seen[len(self.tracks) - 1] = s
            self.next_id += int(sure)
        t0 = time.perf_counter()
        order = sorted(seen, key=lambda k: seen[k].box[0])  # left to right
        self._view = None  # the view this frame's readings took ("plain" / "mirrored" in turn), None: both or n/a
        rotations, sigma, angles = self._poses(estimator, image, [seen[k] for k in order], faces)
        timings["pose"] = time.perf_counter() - t0
        # update tracks
        self.lost_last_frame = False
        out_boxes, out_R, out_ids, out_scores, out_mesh, out_raw, out_rows = [], [], [], [], [], [], []
        fused_sigma: list[np.ndarray] = []
        keep = np.ones(len(order), bool)
        for j, k in enumerate(order):
            tr, s = self.tracks[k], seen[k]
            if rotations[j] is None:  # no pose for it (a stage that needs landmarks it lost)
                keep[j] = False
                continue
            if tr.hits and not _near_another(s.box, [seen[o].box for o in seen if o != k]):
                # The box centre's motion (its size is held while coasting), the median of the
                # last five steps, and none taken next to another head: a head going behind
                # another loses its box from one side, which is no motion of the head.
                c = ((s.box[:2] + s.box[2:]) - (tr.box[:2] + tr.box[2:])) / 2 / (1 + tr.missed)
                tr.steps = (tr.steps + [np.concatenate([c, c])])[-5:]
                tr.velocity = np.median(np.stack(tr.steps), axis=0)
            gap = 1 + tr.missed  # frames since this head's last reading
            tr.box, tr.missed, tr.hits, tr.score = s.box.copy(), 0, tr.hits + 1, s.score
            if tr.tentative and tr.hits >= 2 and s.detected:  # detected again: a head after all
                tr.tentative, tr.id = False, self.next_id
                self.next_id += 1
            covered = any(_cover(s.box, seen[o].box) > 0.05 for o in seen if o != k)
            tr.reused = tr.reused + 1 if s.reused else 0
            if s.mesh is not None:
                tr.mesh = s.mesh
                if s.detected:
                    tr.anchor_axis = s.mesh[263, :2] - s.mesh[33, :2]  # FaceMesh's outer eye corners, as its own crop
                    tr.anchor_angle = float(screen_angle(rotations[j]))
                if not covered:  # a patch with part of another head in it would later find that head
                    tr.patch = _grey_patch(image, s.crop_box if s.crop_box is not None else s.box)
                tr.crop_box = s.crop_box
            elif s.crop_box is not None:
                if s.detected and not covered:  # a face FaceMesh did not confirm: the detector anchors its patch
                    tr.patch = _grey_patch(image, s.crop_box)
                tr.crop_box = s.crop_box
            sg = None if sigma is None else sigma[j]
            R = tr.fusion.update(self._centred(tr, rotations[j], dt), dt * gap, sg) if self.smooth else rotations[j]
            box = tr.box_filter(s.box, dt) if self.smooth else s.box
            if tr.tentative:
                continue
            if self.smooth and sg is not None:  # the fused head's sigma; an angle the stage does not estimate stays NaN
                fused_sigma.append(np.where(np.isfinite(sg), tr.fusion.sigma(), np.nan))  # (yaw, pitch, roll) columns
            out_rows.append(j)
            out_raw.append(rotations[j])
            out_boxes.append(box)
            out_R.append(R)
            out_ids.append(tr.id)
            out_scores.append(s.score)
            out_mesh.append(s.mesh)
        for k, tr in enumerate(self.tracks):
            if k not in seen or not keep[order.index(k)]:
                tr.missed += 1
                self.lost_last_frame = True
        # a tentative head not detected again is dropped (it never had an id)
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed and not (t.tentative and t.missed)]
        self.frame += 1
        raw = np.array(out_raw).reshape(-1, 3, 3)
        sig = None if sigma is None else np.asarray(sigma)[out_rows].reshape(-1, 3)
        if sig is None and not out_rows:  # no heads: an empty array, as Heads.empty() has
            sig = np.zeros((0, 3))
        if sig is not None and self.smooth:
            sig = np.array(fused_sigma).reshape(-1, 3)
        # a head without landmarks this frame gets a NaN row (as the pipeline gives it), so the
        # others keep theirs for the placement step that follows the tracker
        mesh = np.stack([np.full_like(next(m for m in out_mesh if m is not None), np.nan) if m is None else m for m in out_mesh]) if any(m is not None for m in out_mesh) else None
        heads = Heads(
            np.array(out_boxes).reshape(-1, 4),
            np.array(out_scores, np.float64),
            np.array(out_R).reshape(-1, 3, 3),
            sig,
            mesh,
            track_ids=np.array(out_ids, np.int64),
            raw_rotations=raw if self.smooth else None,
            angles=angles,
        )
        return heads, timings

    # ------------------------------------------------------------------ pieces
    def _centred(self, tr: Track, R: np.ndarray, dt: float) -> np.ndarray:
        """A one-view reading moved to the midpoint of the two views (what reading both gives).

        Plain and mirrored reads of a face differ by a bias of their own (the network is not
        exactly mirror-symmetric): ``R_mirrored = exp(o) M``, ``R_plain = exp(-o) M`` about their
        mean ``M``. Fused as they come, every other reading would jump by ``2|o|`` and the filter
        would follow the jumps. The track estimates ``o`` from consecutive reads of the two views
        (the earlier one moved on by the head's fused turn), from the first pair on, as an
        exponential average of :data:`VIEW_PAIRS` pairs' memory (it changes as the head turns), and fuses ``exp(-+o) R``.
        """
        if self._view is None:
            return R
        last = tr.last_read
        if last is not None and last[1] != self._view and last[2] == self.frame - 1:
            moved = exp_so3(tr.fusion.w * dt) @ last[0]
            half = log_so3(R @ moved.T) / 2.0 * (1.0 if self._view == "mirrored" else -1.0)
            tr.view_pairs += 1
            tr.view_offset = half if tr.view_pairs == 1 else tr.view_offset + (half - tr.view_offset) / VIEW_PAIRS
        tr.last_read = (R, self._view, self.frame)
        if tr.view_pairs == 0:
            return R
        return exp_so3(-tr.view_offset if self._view == "mirrored" else tr.view_offset) @ R

    def _associate(self, faces: Faces) -> tuple[dict[int, _Seen], list[_Seen]]:
        """Detections matched to live tracks (by track index) and the unmatched ones."""
        dets = [
            _Seen(faces.boxes[i], float(faces.scores[i]), faces.mesh[i] if faces.mesh is not None and np.isfinite(faces.mesh[i]).all() else None, detected=True)
            for i in range(len(faces))
        ]
        if not dets or not self.tracks:
            return {}, dets
        pred = np.stack([t.predicted() for t in self.tracks])
        boxes = np.stack([d.box for d in dets])
        iou = box_iou(pred, boxes)
        size = np.maximum(pred[:, 2] - pred[:, 0], pred[:, 3] - pred[:, 1])[:, None]
        dist = np.linalg.norm(((pred[:, None, :2] + pred[:, None, 2:]) - (boxes[None, :, :2] + boxes[None, :, 2:])) / 2, axis=-1) / size
        coasting = np.array([t.missed > 0 for t in self.tracks])[:, None]
        ok = (iou >= self.min_iou) | (coasting & (dist < 0.75))  # a hidden head's path is only roughly known
        cost = np.where(ok, dist, 1e6)
        from scipy.optimize import linear_sum_assignment  # here: scipy.optimize is slow to import (start-up, issue 32)

        rows, cols = linear_sum_assignment(cost)
        seen, used = {}, set()
        for r, c in zip(rows, cols):
            if ok[r, c]:
                seen[int(r)] = dets[c]
                used.add(int(c))
        return seen, [d for i, d in enumerate(dets) if i not in used]

    def _follow(self, estimator, image: np.ndarray, tr: Track, claimed: list[np.ndarray], others: list[np.ndarray] = ()) -> _Seen | None:
        """The head of ``tr`` in this frame without a detector: landmarks, else its patch.

        A head whose predicted place is mostly covered by a head already placed this frame is
        taken as hidden behind it (it coasts): following it there would latch onto the other face.
        The patch is only trusted away from other heads (``others``: their predicted boxes):
        next to one, it may have caught part of it.
        """
        pred = tr.predicted()
        if any(_cover(pred, c) > 0.3 for c in claimed):
            return None
        shift = tr.velocity[:2] * (1 + tr.missed)
        if (tr.mesh is not None and self.skip_still and not tr.missed and tr.reused < self.skip_still
                and tr.fusion.R is not None and tr.fusion.still > STILL_TO_SKIP and float(np.abs(tr.velocity[:2]).max()) < MOVE_TO_SKIP_PX):
            # A still head (the fusion says so, and its box does not move): FaceMesh is skipped and
            # the pose network reads the crop of its last landmarks; FaceMesh runs again at
            # least every skip_still + 1 frames, so a head that leaves is noticed.
            mesh = tr.mesh.copy()
            mesh[:, :2] += shift
            return _Seen(tr.box + np.tile(shift, 2), tr.score, mesh=mesh, reused=True)
        if tr.mesh is not None:
            axis = None
            if self.anchor_roll and tr.anchor_axis is not None and tr.fusion.R is not None:
                # the crop turned as the head turned since it was detected, not as its own
                # landmarks say: FaceMesh re-cropped from its own eye line drifts in roll
                a = math.radians(screen_angle(tr.fusion.predict(1.0 / self.fps)) - tr.anchor_angle)
                c, s_ = math.cos(a), math.sin(a)
                axis = np.array([c * tr.anchor_axis[0] + s_ * tr.anchor_axis[1], -s_ * tr.anchor_axis[0] + c * tr.anchor_axis[1]])
            mesh, presence = estimator.landmarker.follow(image, tr.mesh, shift, axis)
            box = points_box(mesh[None])[0]
            if presence >= self.min_presence and _near(box, pred) and not any(_cover(box, c) > 0.3 for c in claimed):
                return _Seen(box, presence * tr.score, mesh=mesh)
        if tr.missed or tr.patch is None or tr.crop_box is None or not hasattr(estimator.pose, "crop_boxes"):
            return None  # the patch continues a head seen a frame ago; it never re-finds a lost one (it could find another face)
        moved = tr.crop_box + np.tile(shift, 2)
        w, h = moved[2] - moved[0], moved[3] - moved[1]
        near = moved + np.array([-0.25 * w, -0.25 * h, 0.25 * w, 0.25 * h])
        if any(_cover(near, o) > 0.05 for o in list(claimed) + list(others)):
            return None
        box, score = _find_patch(image, tr.patch, moved)
        if score < self.min_patch_score or not _near(box, moved) or any(_cover(box, c) > 0.3 for c in claimed):
            return None
        d = box - tr.crop_box
        return _Seen(tr.box + d, tr.score, crop_box=box)

    def _resolve_collisions(self, seen: dict[int, _Seen]) -> None:
        """Two tracks on one face: the one that moved less against its prediction keeps it."""
        keys = list(seen)
        for a_i, a in enumerate(keys):
            for b in keys[a_i + 1 :]:
                if a not in seen or b not in seen:
                    continue
                if _cover(seen[a].box, seen[b].box) < 0.3:
                    continue
                da = np.abs(seen[a].box - self.tracks[a].predicted()).sum()
                db = np.abs(seen[b].box - self.tracks[b].predicted()).sum()
                del seen[b if db > da else a]

    def _poses(self, estimator, image: np.ndarray, items: list[_Seen], faces: Faces | None) -> tuple[list, np.ndarray | None, tuple]:
        """Rotations (``None`` where the stage cannot give one), sigma and the angles the stage estimates, for the seen heads in order."""
        n = len(items)
        angles = ("yaw", "pitch", "roll")
        if n == 0:
            return [], None, angles
        rotations: list = [None] * n
        sigma = np.full((n, 3), np.nan)
        have_sigma = False
        if getattr(estimator.pose, "needs", "") == "keypoints" and faces is not None:
            # a keypoint network reads what the keypoint source put on this frame's detections
            # (it runs on every frame: nothing is followed), so every head goes as detected
            with_mesh, with_crop, plain = [], [], list(range(n))
        else:
            with_mesh = [i for i, s in enumerate(items) if s.mesh is not None]
            with_crop = [i for i, s in enumerate(items) if s.mesh is None and s.crop_box is not None]
            plain = [i for i, s in enumerate(items) if s.mesh is None and s.crop_box is None]
        groups = []
        if with_mesh:
            m = np.stack([items[i].mesh for i in with_mesh])
            b = np.stack([items[i].box for i in with_mesh])
            groups.append((with_mesh, Faces(b, np.ones(len(b)), b, mesh=m)))
        if with_crop:
            b = np.stack([items[i].box for i in with_crop])
            groups.append((with_crop, Faces(b, np.ones(len(b)), b, crop_boxes=np.stack([items[i].crop_box for i in with_crop]))))
        if plain and faces is not None:  # no landmarks (none ran, or FaceMesh did not confirm): the detections as found
            idx = [int(np.argmin(np.abs(faces.boxes - items[i].box).sum(1))) for i in plain]
            groups.append((plain, faces[idx]))
        for rows, f in groups:
            if getattr(estimator.pose, "needs", "") == "mesh" and f.mesh is None:
                continue
            if f.mesh is not None and hasattr(estimator.pose, "crop_boxes"):  # where to look for the head without landmarks
                f = Faces(f.boxes, f.scores, f.detection_boxes, mesh=f.mesh, crop_boxes=estimator.pose.crop_boxes(image.shape, f))
                for r, cb in zip(rows, f.crop_boxes):
                    items[r].crop_box = np.asarray(cb, np.float64)
            if getattr(estimator.pose, "mirror", False) and self.alternate_views and self.smooth and self.frame > 0:
                # the mirrored read on every other frame: the fused pose averages both views
                # over time for the price of one read per frame (a stream's first frame, which
                # may be a still image on its own, reads both)
                self._view = ("plain", "mirrored")[self.frame % 2]
                pred = estimator.pose(image, f, view=self._view)
            else:
                pred = estimator.pose(image, f)
            angles = getattr(pred, "angles", angles)
            for r, R in zip(rows, pred.rotations):
                rotations[r] = np.asarray(R, np.float64)
            if pred.sigma is not None:
                sigma[rows] = pred.sigma
                have_sigma = True
        if have_sigma and not np.isnan(sigma[[i for i in range(n) if rotations[i] is not None]]).any():
            return rotations, sigma, angles
        return rotations, None, angles
