"""Labelled test videos synthesised from still photos with a known head rotation.

A video is a list of ``(frame, heads)``: ``frame`` is an ``(H, W, 3)`` uint8 RGB
image, ``heads`` a list with one dict per ground-truth head::

    {"rotation": (3, 3) head-to-camera rotation, Frame.GL,
     "box": (4,) [x1, y1, x2, y2] in frame pixels (extent of the 68 landmarks, may leave the frame),
     "identity": int, stable for the whole video,
     "visible": float in [0, 1], share of the box's area where this head is front-most and inside the frame,
     "source": the photo's name}

Why the labels are exact
------------------------
Each head is a whole photo (or a square crop of one) pasted into the frame by a
similarity transform: a rotation by ``a`` degrees **counter-clockwise on screen**
about the photo's centre (``cv2.getRotationMatrix2D(centre, +a, s)``; image y
points down), a scale ``s`` and a shift. Shifting or scaling the picture leaves
the head's rotation unchanged (the labels are weak-perspective, like the pose
networks' view of a crop); turning it counter-clockwise on screen is a positive
rotation about the camera's z axis in ``Frame.GL`` (x right, y up, z towards the
viewer), so the new label is ``R' = rot_z(+a) @ R``. For a frontal face this is an
AFLW roll of ``roll - a`` (positive AFLW roll turns the face clockwise on screen).
``benchmarks/bench_video.py`` checks the sign with the project's own estimator on
every run (``convention_check`` in its output). The box is the extent of the
photo's 68 landmarks carried by the same transform.

Photos come from AFLW2000-dev (``/work/shared/data/aflw2000-dev``), which is for
evaluation only: these videos measure, they never train or tune anything.

Scenarios (30 fps, 640x480, ~5 s by default; every function takes ``n_frames``):

* :func:`still_head` -- one head that does not move; only sensor noise.
* :func:`inplane_turns` -- a short still start, then sinusoidal in-plane turns
  with shifts and zoom.
* :func:`profile_head` -- a profile (|yaw| > 60), still for the first half, then moving.
* :func:`crossing_faces` -- two face crops moving horizontally in opposite
  directions; the front one hides the back one for about a second, then both go on.
* :func:`face_change_clip` -- the issue's harder video: four faces one after another (yaw
  -41 to 62), each still, turning with shifts and zoom, then still again; 640x360, faces of
  100-150 px, sensor noise of 3, encoded as mp4 and decoded back (:func:`encode_decode`).
* :func:`long_loop_clip` -- a lazily rendered periodic clip (a head that moves and
  turns, then leaves for a while) for long-video memory tests; see :func:`write_video`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from openheadpose.core.rotation import rot_z

FPS = 30
FRAME_SIZE = (640, 480)  # (width, height)
NOISE_SIGMA = 2.0  # grey levels of Gaussian sensor noise per frame

Head = dict  # see the module docstring
Video = list  # list[tuple[np.ndarray, list[Head]]]


# --------------------------------------------------------------------------- photos


def load_dataset(root: str | Path):
    """The AFLW2000 reader over ``root`` (standard +-99 degree filter)."""
    from openheadpose.datasets import AFLW2000

    return AFLW2000(root)


def pick_samples(samples: Sequence[Any], kind: str, n: int) -> list[Any]:
    """``n`` photos of one kind, spread evenly over the (sorted) dataset: deterministic.

    kind: ``"frontal"`` (|yaw| < 25, |pitch| < 20, |roll| < 15 degrees) or
    ``"profile"`` (|yaw| > 60, |pitch| < 25). Only faces whose landmark box lies
    inside the photo with a margin are used.
    """
    def inside(s) -> bool:
        x1, y1, x2, y2 = s.box
        return x1 > 15 and y1 > 15 and x2 < 435 and y2 < 435 and (x2 - x1) > 80

    yaw, pitch, roll = (lambda s: abs(s.euler[0])), (lambda s: abs(s.euler[1])), (lambda s: abs(s.euler[2]))
    if kind == "frontal":
        ok = [s for s in samples if yaw(s) < 25 and pitch(s) < 20 and roll(s) < 15 and inside(s)]
    elif kind == "profile":
        ok = [s for s in samples if yaw(s) > 60 and pitch(s) < 25 and inside(s)]
    else:
        raise ValueError(f"kind must be 'frontal' or 'profile', not {kind!r}")
    ok.sort(key=lambda s: s.name)
    if len(ok) < n:
        raise ValueError(f"only {len(ok)} {kind} photos, {n} wanted")
    idx = np.linspace(0, len(ok) - 1, n + 2)[1:-1].round().astype(int)
    return [ok[i] for i in idx]


# --------------------------------------------------------------------------- rendering


@dataclass
class Layer:
    """One pasted picture: a photo, the part of it that is pasted, and its labels.

    Attributes:
        image: ``(h, w, 3)`` uint8 RGB photo.
        mask: ``(h, w)`` float32 in [0, 1], the pasted part (feathered edge).
        rotation: ``(3, 3)`` label of the photo as shot (Frame.GL).
        points: ``(K, 2)`` face points in photo pixels (the box is their extent).
        pivot: ``(x, y)`` photo pixel placed at the layer's centre and turned about.
        identity: ground-truth identity.
        name: the photo's name.
    """

    image: np.ndarray
    mask: np.ndarray
    rotation: np.ndarray
    points: np.ndarray
    pivot: tuple[float, float]
    identity: int
    name: str


@dataclass(frozen=True)
class Place:
    """Where a layer goes in one frame: centre (frame pixels), in-plane angle
    (degrees, counter-clockwise on screen) and scale (frame pixels per photo pixel)."""

    cx: float
    cy: float
    angle: float = 0.0
    scale: float = 1.0
    still: int = -1  # frames the head has held this place (0: the first still frame), -1 while it moves


def _feathered(h: int, w: int, rect: tuple[int, int, int, int], feather: float = 2.0) -> np.ndarray:
    x1, y1, x2, y2 = rect
    m = np.zeros((h, w), np.float32)
    m[max(y1, 0):min(y2, h), max(x1, 0):min(x2, w)] = 1.0
    if feather > 0:
        m = cv2.GaussianBlur(m, (0, 0), feather)
        # keep the inside solid: feather only outwards from 1 px inside the edge
        inner = np.zeros_like(m)
        inner[max(y1, 0) + 2:min(y2, h) - 2, max(x1, 0) + 2:min(x2, w) - 2] = 1.0
        m = np.maximum(m, inner)
    return m


def photo_layer(sample, identity: int = 0) -> Layer:
    """The whole photo as a layer, turned about its centre."""
    img = sample.load_image()
    h, w = img.shape[:2]
    return Layer(img, _feathered(h, w, (0, 0, w, h), 0.0), np.asarray(sample.rotation, float),
                 _points(sample), (w / 2.0, h / 2.0), identity, sample.name)


def crop_layer(sample, identity: int = 0, expand: float = 1.8) -> Layer:
    """A square crop around the face box (side ``expand`` x the box's longer side,
    within the photo), turned about the box's centre."""
    img = sample.load_image()
    h, w = img.shape[:2]
    x1, y1, x2, y2 = np.asarray(sample.box, float)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half = expand * max(x2 - x1, y2 - y1) / 2
    rect = (round(cx - half), round(cy - half), round(cx + half), round(cy + half))
    return Layer(img, _feathered(h, w, rect), np.asarray(sample.rotation, float), _points(sample),
                 (cx, cy), identity, sample.name)


def _points(sample) -> np.ndarray:
    if getattr(sample, "landmarks68", None) is not None:
        return np.asarray(sample.landmarks68, float)
    x1, y1, x2, y2 = np.asarray(sample.box, float)
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])


def affine(layer: Layer, place: Place) -> np.ndarray:
    """The 2x3 photo -> frame transform (OpenCV's sense of angle: counter-clockwise on screen)."""
    M = cv2.getRotationMatrix2D(layer.pivot, place.angle, place.scale)
    M[:, 2] += np.array([place.cx, place.cy]) - np.asarray(layer.pivot)
    return M


def label(layer: Layer, place: Place) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth of a placed layer: ``rot_z(+angle) @ R`` and the landmarks' extent."""
    R = rot_z(math.radians(place.angle)) @ layer.rotation
    pts = np.c_[layer.points, np.ones(len(layer.points))] @ affine(layer, place).T
    return R, np.r_[pts.min(0), pts.max(0)]


def make_background(size: tuple[int, int] = FRAME_SIZE, kind: str = "grey", photo: np.ndarray | None = None,
                    seed: int = 0) -> np.ndarray:
    """A static background: ``"grey"`` (a soft, slightly tinted low-frequency texture)
    or ``"blur"`` (``photo`` stretched over the frame and blurred beyond recognition)."""
    w, h = size
    if kind == "blur":
        if photo is None:
            raise ValueError("a blurred background needs a photo")
        return cv2.GaussianBlur(cv2.resize(photo, (w, h)), (0, 0), 30)
    if kind != "grey":
        raise ValueError(f"background kind must be 'grey' or 'blur', not {kind!r}")
    rng = np.random.default_rng(seed)
    low = rng.normal(0, 1, (h // 40 + 2, w // 40 + 2, 3)).astype(np.float32)
    tex = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    grad = np.linspace(-12, 12, h, dtype=np.float32)[:, None, None]
    bg = np.array([118, 122, 126], np.float32) + grad + 6 * tex
    return np.clip(bg, 0, 255).astype(np.uint8)


@dataclass
class Clip:
    """A video described by its layers (back to front) and a motion ``t -> [Place | None]``
    (``None``: that layer is absent in frame ``t``); frames are rendered on demand."""

    layers: list[Layer]
    motion: Callable[[int], list[Place | None]]
    n_frames: int
    background: np.ndarray
    noise_sigma: float = NOISE_SIGMA
    seed: int = 0
    fps: float = FPS
    name: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return self.background.shape[1], self.background.shape[0]

    def __len__(self) -> int:
        return self.n_frames

    def frame(self, t: int) -> tuple[np.ndarray, list[Head]]:
        """Frame ``t`` and its ground truth (the same pixels on every call: the noise is seeded by ``(seed, t)``)."""
        w, h = self.size
        out = self.background.astype(np.float32)
        places = self.motion(t)
        masks: list[np.ndarray | None] = []
        for layer, place in zip(self.layers, places):
            if place is None:
                masks.append(None)
                continue
            M = affine(layer, place)
            img = cv2.warpAffine(layer.image, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            m = cv2.warpAffine(layer.mask, M, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
            out = out * (1.0 - m[..., None]) + img.astype(np.float32) * m[..., None]
            masks.append(m)
        heads = []
        for i, (layer, place) in enumerate(zip(self.layers, places)):
            if place is None:
                continue
            R, box = label(layer, place)
            heads.append({"rotation": R, "box": box, "identity": layer.identity,
                          "visible": _visible_share(box, i, masks, (w, h)), "source": layer.name, "still": place.still})
        if self.noise_sigma > 0:
            rng = np.random.default_rng((self.seed, t))
            out += rng.normal(0.0, self.noise_sigma, out.shape).astype(np.float32)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8), heads

    def __iter__(self) -> Iterator[tuple[np.ndarray, list[Head]]]:
        for t in range(self.n_frames):
            yield self.frame(t)

    def render(self) -> Video:
        """Every frame, in memory."""
        return list(self)


def _visible_share(box: np.ndarray, i: int, masks: list[np.ndarray | None], size: tuple[int, int]) -> float:
    """Share of the box's area where layer ``i`` is front-most (and inside the frame)."""
    w, h = size
    x1, y1, x2, y2 = box
    area = max((x2 - x1) * (y2 - y1), 1e-9)
    ix1, iy1 = int(max(math.floor(x1), 0)), int(max(math.floor(y1), 0))
    ix2, iy2 = int(min(math.ceil(x2), w)), int(min(math.ceil(y2), h))
    if ix2 <= ix1 or iy2 <= iy1:
        return 0.0
    vis = masks[i][iy1:iy2, ix1:ix2].astype(np.float64)
    for m in masks[i + 1:]:
        if m is not None:
            vis = vis * (1.0 - m[iy1:iy2, ix1:ix2])
    return float(min(vis.sum() / area, 1.0))


def _base_scale(layer: Layer, face_px: float) -> float:
    """Scale at which the face box's longer side is ``face_px`` frame pixels."""
    pts = layer.points
    return face_px / float(max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1])))


# --------------------------------------------------------------------------- scenarios


def still_head_clip(sample, n_frames: int = 150, size: tuple[int, int] = FRAME_SIZE, face_px: float = 150.0,
                    noise_sigma: float = NOISE_SIGMA, seed: int = 0, background: str = "grey") -> Clip:
    """(a) A head that does not move at all; frames differ only by sensor noise."""
    layer = photo_layer(sample)
    place = Place(size[0] / 2, size[1] / 2, 0.0, _base_scale(layer, face_px))
    bg = make_background(size, background, layer.image, seed)
    return Clip([layer], lambda t: [place], n_frames, bg, noise_sigma, seed, name=f"still:{sample.name}",
                info={"scenario": "still", "photos": [sample.name], "euler": _euler(sample)})


def inplane_turns_clip(sample, n_frames: int = 150, size: tuple[int, int] = FRAME_SIZE, face_px: float = 150.0,
                       amplitude_deg: float = 30.0, period_frames: int = 60, still_frames: int = 15,
                       shift_px: tuple[float, float] = (80.0, 40.0), zoom: float = 0.2,
                       noise_sigma: float = NOISE_SIGMA, seed: int = 1, background: str = "grey") -> Clip:
    """(b) Still for ``still_frames``, then the head turns in the image plane,
    ``amplitude_deg * sin(2 pi t / period_frames)``, while it drifts by up to
    ``shift_px`` and zooms by up to +-``zoom`` (slower, incommensurate periods)."""
    layer = photo_layer(sample)
    s0 = _base_scale(layer, face_px)
    cx0, cy0 = size[0] / 2, size[1] / 2
    bg = make_background(size, background, layer.image, seed)

    def motion(t: int) -> list[Place]:
        u = max(t - still_frames, 0)
        a = amplitude_deg * math.sin(2 * math.pi * u / period_frames)
        cx = cx0 + shift_px[0] * math.sin(2 * math.pi * u / (1.7 * period_frames))
        cy = cy0 + shift_px[1] * math.sin(2 * math.pi * u / (2.3 * period_frames))
        s = s0 * (1.0 + zoom * math.sin(2 * math.pi * u / (2.9 * period_frames)))
        return [Place(cx, cy, a, s)]

    return Clip([layer], motion, n_frames, bg, noise_sigma, seed, name=f"turns:{sample.name}",
                info={"scenario": "turns", "photos": [sample.name], "euler": _euler(sample),
                      "amplitude_deg": amplitude_deg, "period_frames": period_frames, "still_frames": still_frames})


def profile_head_clip(sample, n_frames: int = 150, size: tuple[int, int] = FRAME_SIZE, face_px: float = 150.0,
                      still_share: float = 0.5, noise_sigma: float = NOISE_SIGMA, seed: int = 2,
                      background: str = "grey") -> Clip:
    """(c) A profile: still for the first ``still_share`` of the clip, then it drifts
    sideways, zooms and turns gently in the image plane (+-12 degrees)."""
    layer = photo_layer(sample)
    s0 = _base_scale(layer, face_px)
    cx0, cy0 = size[0] / 2, size[1] / 2
    t0 = round(still_share * n_frames)
    span = max(n_frames - t0, 1)
    bg = make_background(size, background, layer.image, seed)

    def motion(t: int) -> list[Place]:
        u = max(t - t0, 0) / span  # 0 -> 1 over the moving part
        return [Place(cx0 + 100 * math.sin(math.pi * u), cy0 + 20 * math.sin(2 * math.pi * u),
                      12.0 * math.sin(2 * math.pi * u), s0 * (1.0 + 0.15 * math.sin(math.pi * u)))]

    return Clip([layer], motion, n_frames, bg, noise_sigma, seed, name=f"profile:{sample.name}",
                info={"scenario": "profile", "photos": [sample.name], "euler": _euler(sample), "still_frames": t0})


def crossing_faces_clip(front, back, n_frames: int = 150, size: tuple[int, int] = FRAME_SIZE, crop_px: float = 180.0,
                        hidden_frames: float = 30.0, expand: float = 1.8, noise_sigma: float = NOISE_SIGMA,
                        seed: int = 3, background: str = "grey") -> Clip:
    """(d) Two face crops (``crop_px`` wide) on one row, moving horizontally in opposite
    directions at constant speed; they meet mid-clip, where ``front`` covers more than
    half of ``back``'s face box for about ``hidden_frames`` frames (all of it for about
    ``(1 - 1 / expand) * hidden_frames``), then both carry on along their paths.
    ``front`` (identity 0) starts on the left, ``back`` (identity 1) on the right."""
    lb, lf = crop_layer(back, 1, expand), crop_layer(front, 0, expand)
    sb, sf = crop_px / (expand * _side(back)), crop_px / (expand * _side(front))
    # the back face is less than half visible while |dx| < crop_px / 2
    speed = crop_px / max(hidden_frames, 1.0) / 2
    cx0, cy = size[0] / 2, size[1] / 2
    mid = (n_frames - 1) / 2
    bg = make_background(size, background, lf.image, seed)

    def motion(t: int) -> list[Place]:
        d = speed * (t - mid)
        return [Place(cx0 - d, cy, 0.0, sb), Place(cx0 + d, cy, 0.0, sf)]

    return Clip([lb, lf], motion, n_frames, bg, noise_sigma, seed, name=f"crossing:{front.name}+{back.name}",
                info={"scenario": "crossing", "photos": [front.name, back.name], "euler": [_euler(front), _euler(back)],
                      "speed_px_per_frame": round(speed, 3), "crop_px": crop_px, "hidden_frames": hidden_frames})


def _side(sample) -> float:
    x1, y1, x2, y2 = np.asarray(sample.box, float)
    return max(x2 - x1, y2 - y1)


def _euler(sample) -> list[float]:
    return [round(float(v), 2) for v in sample.euler]


def still_head(sample, **kw) -> Video:
    """(a) as a list of ``(frame, heads)``; see :func:`still_head_clip`."""
    return still_head_clip(sample, **kw).render()


def inplane_turns(sample, **kw) -> Video:
    """(b) as a list of ``(frame, heads)``; see :func:`inplane_turns_clip`."""
    return inplane_turns_clip(sample, **kw).render()


def profile_head(sample, **kw) -> Video:
    """(c) as a list of ``(frame, heads)``; see :func:`profile_head_clip`."""
    return profile_head_clip(sample, **kw).render()


def crossing_faces(front, back, **kw) -> Video:
    """(d) as a list of ``(frame, heads)``; see :func:`crossing_faces_clip`."""
    return crossing_faces_clip(front, back, **kw).render()


# --------------------------------------------------------------------------- realistic clips (issue 29)

#: What the issue's videos were made like: 640x360, sensor noise of 3 grey levels, faces of
#: 100-150 px, mp4v (the bit rate OpenCV's mp4v encoder picks, about 1-2 Mbit/s here).
REAL_SIZE = (640, 360)
REAL_NOISE = 3.0
REAL_YAWS = (-41.0, -10.0, 25.0, 62.0)  # the four faces of the face-change clip, nearest found


def pick_yaws(samples: Sequence[Any], yaws: Sequence[float] = REAL_YAWS) -> list[Any]:
    """One photo per wanted yaw: the one nearest it (|pitch| < 20, |roll| < 15, landmarks well inside
    the photo; ties broken by name): deterministic, and a profile for a yaw of 60 or more."""
    def ok(s) -> bool:
        x1, y1, x2, y2 = s.box
        return abs(s.euler[1]) < 20 and abs(s.euler[2]) < 15 and x1 > 15 and y1 > 15 and x2 < 435 and y2 < 435 and x2 - x1 > 80

    pool = sorted((s for s in samples if ok(s)), key=lambda s: s.name)
    out = []
    for y in yaws:
        best = min((s for s in pool if s not in out), key=lambda s: abs(s.euler[0] - y))
        out.append(best)
    return out


def face_change_clip(samples: Sequence[Any], still: int = 30, turn: int = 90, size: tuple[int, int] = REAL_SIZE,
                     face_px: tuple[float, float] = (100.0, 150.0), amplitude_deg: float = 30.0, period_frames: int = 60,
                     noise_sigma: float = REAL_NOISE, seed: int = 5) -> Clip:
    """One face after another (a cut between them: a new identity): each is still for ``still``
    frames, turns in the image plane (``amplitude_deg * sin``, period ``period_frames``) while it
    drifts and zooms for ``turn`` frames, and stops dead (still again) for ``still`` frames where
    the turn left it. Face sizes go from ``face_px[0]`` to ``face_px[1]`` across the faces. The
    still stretches right after a cut and right after a stop are what a filter must settle on."""
    layers = [photo_layer(smp, identity=k) for k, smp in enumerate(samples)]
    seg = 2 * still + turn
    sizes = np.linspace(face_px[0], face_px[1], len(layers))
    scales = [_base_scale(layer, px) for layer, px in zip(layers, sizes)]
    cx0, cy0 = size[0] / 2, size[1] / 2
    bg = make_background(size, "grey", None, seed)

    def place(k: int, u: int, held: int) -> Place:
        a = amplitude_deg * math.sin(2 * math.pi * u / period_frames)
        cx = cx0 + 60.0 * math.sin(2 * math.pi * u / (1.3 * turn))
        cy = cy0 + 20.0 * math.sin(2 * math.pi * u / (0.9 * turn))
        return Place(cx, cy, a, scales[k] * (1.0 + 0.15 * math.sin(2 * math.pi * u / turn)), held)

    def motion(t: int) -> list[Place | None]:
        k, v = divmod(t, seg)
        out: list[Place | None] = [None] * len(layers)
        if v < still:
            out[k] = place(k, 0, v)
        elif v < still + turn:
            out[k] = place(k, v - still, -1)
        else:
            out[k] = place(k, turn, v - still - turn)
        return out

    return Clip(layers, motion, seg * len(layers), bg, noise_sigma, seed, name="faces:" + "+".join(s.name for s in samples),
                info={"scenario": "faces", "photos": [s.name for s in samples], "euler": [_euler(s) for s in samples],
                      "face_px": [round(float(x)) for x in sizes], "segment_frames": seg, "still_frames": still,
                      "turn_frames": turn, "amplitude_deg": amplitude_deg, "period_frames": period_frames})


def encode_decode(clip: Clip, folder: str | Path, fourcc: str = "mp4v") -> tuple[list[np.ndarray], list[list[Head]], dict[str, Any]]:
    """``clip`` written as a video file and read back: the decoded RGB frames (what a user's
    video gives the engine), each frame's ground truth, and the file's facts (kbit/s)."""
    path = Path(folder) / f"{clip.info.get('scenario', 'clip')}.mp4"
    w, h = clip.size
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(clip.fps), (w, h))
    if not vw.isOpened():
        raise RuntimeError(f"OpenCV cannot write {fourcc} video to {path}")
    gts = []
    try:
        for t in range(clip.n_frames):
            frame, heads = clip.frame(t)
            vw.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            gts.append(heads)
    finally:
        vw.release()
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    if len(frames) != len(gts):
        raise RuntimeError(f"{path}: {len(gts)} frames written, {len(frames)} decoded")
    kbit = path.stat().st_size * 8 / 1000 / (len(gts) / clip.fps)
    return frames, gts, {"fourcc": fourcc, "frames": len(frames), "kbit_per_s": round(kbit)}


# --------------------------------------------------------------------------- long videos


def long_loop_clip(sample, n_frames: int, size: tuple[int, int] = (640, 360), fps: float = 25.0,
                   loop_s: float = 10.0, away_s: float = 2.0, face_px: float = 120.0, seed: int = 4) -> Clip:
    """A periodic clip of any length, rendered lazily (no frames kept): each ``loop_s``
    seconds a head drifts and turns for ``loop_s - away_s`` seconds, then the frame is
    empty for ``away_s`` seconds (so a tracker starts and ends a track each loop).
    No sensor noise (rendering stays cheap on long videos)."""
    layer = photo_layer(sample)
    s0 = _base_scale(layer, face_px)
    loop = round(loop_s * fps)
    on = loop - round(away_s * fps)
    cx0, cy0 = size[0] / 2, size[1] / 2
    bg = make_background(size, "grey", None, seed)

    def motion(t: int) -> list[Place | None]:
        u = t % loop
        if u >= on:
            return [None]
        p = 2 * math.pi * u / on
        return [Place(cx0 + 90 * math.sin(p), cy0 + 20 * math.sin(2 * p), 20 * math.sin(2 * p), s0 * (1 + 0.15 * math.sin(p)))]

    return Clip([layer], motion, n_frames, bg, 0.0, seed, fps=fps, name=f"loop:{sample.name}",
                info={"scenario": "long-loop", "photos": [sample.name], "loop_frames": loop, "face_frames": on})


def write_video(clip: Clip, path: str | Path, fourcc: str = "mp4v") -> int:
    """Encode ``clip`` frame by frame (nothing kept in memory); returns the frames written."""
    w, h = clip.size
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(clip.fps), (w, h))
    if not vw.isOpened():
        raise RuntimeError(f"OpenCV cannot write {fourcc} video to {path}")
    n = 0
    try:
        for t in range(clip.n_frames):
            frame, _ = clip.frame(t)
            vw.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            n += 1
    finally:
        vw.release()
    return n
