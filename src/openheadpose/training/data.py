"""Training data: samples from any reader, the model's own crop, seeded pose-aware augmentation.

Flow of one training item (index ``i`` in epoch ``e``)::

    PoseSample --input.start--> Item(picture, crop box, pose[, head keypoints])
      --before_cut (InPlaneRotation, BoxJitter)--> --input.cut (the model's crop recipe)--> Item(crop, pose)
      --after_cut (Mirror, Blur, ColourJitter, Occlusion)--> input.encode + codec.encode --> dict of arrays

Every random number comes from ``np.random.default_rng([seed, e, i])``, created
for that item alone, so an item is the same whichever worker process (or how
many, or which DDP rank) builds it; the global random state is never used.
Samplers yield ``(epoch, index)`` keys, so persistent or fresh workers need no
``set_epoch``.

Each transform changes the image and the pose together: :class:`Mirror` flips
the crop and turns the rotation into ``S R S`` (``S = diag(-1, 1, 1)``;
:func:`openheadpose.core.rotation.mirror_horizontal`), which negates yaw and roll;
:class:`InPlaneRotation` turns the picture about the face and the rotation into
``Rz(a) R`` (:func:`openheadpose.core.rotation.rotate_in_plane`).

Dimension legend: S model input side, K = 5 head keypoints (COCO order: nose,
left eye, right eye, left ear, right ear; "left" is the person's left).
"""

from __future__ import annotations

import hashlib
import math
import signal
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, Sequence

import numpy as np

from openheadpose.core.rotation import euler_to_matrix, matrix_to_euler, mirror_horizontal, rotate_in_plane
from openheadpose.datasets.base import DatasetError, PoseSample
from openheadpose.datasets.registry import open_dataset  # noqa: F401  (re-exported)
from openheadpose.datasets.splits import SPLITS, biwi_protocol2, select_split
from openheadpose.specs.codecs import get_codec
from openheadpose.specs.crops import CROPS
from openheadpose.specs.keypoint_input import MIRROR_KEYPOINTS

__all__ = [
    "Item",
    "BoxJitter",
    "Mirror",
    "InPlaneRotation",
    "Blur",
    "ColourJitter",
    "Occlusion",
    "Augmentation",
    "default_augmentation",
    "ImageInput",
    "KeypointInput",
    "model_input",
    "head_keypoints",
    "PoseDataset",
    "EpochBatchSampler",
    "ShardSampler",
    "Source",
    "read_sources",
    "SPLITS",
    "biwi_protocol2",
    "select_split",
    "in_validation",
    "split_validation",
    "item_rng",
    "read_targets",
    "apply_targets",
]

#: Share of the training samples that the name hash sends to validation when no --val is given.
VAL_FRACTION = 0.05

#: Dataset kinds that are test sets in every standard protocol: never drawn into validation.
TEST_ONLY_KINDS = ("aflw2000",)


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one item: a function of ``(seed, epoch, index)`` only."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch), int(index)])


# --------------------------------------------------------------------------- items and transforms
@dataclass
class Item:
    """A face on its way to the network.

    Attributes:
        image: ``(H, W, 3)`` RGB uint8, the whole picture before the cut, the
            ``(S, S, 3)`` crop after it; ``None`` for keypoint models (no pixels needed).
        box: ``(4,)`` crop box ``[x1, y1, x2, y2]`` in picture pixels (before the cut).
        euler: ``(3,)`` (yaw, pitch, roll) degrees, AFLW convention, NaN = unlabelled.
        rotation: ``(3, 3)`` in ``Frame.GL``, or ``None`` for partial labels.
        points: ``(K, 2)`` head keypoints (picture pixels before the cut, input
            pixels after), NaN rows invisible; ``None`` for image models.
        cut: whether the crop has been taken.
        size: S.
    """

    image: np.ndarray | None
    box: np.ndarray
    euler: np.ndarray
    rotation: np.ndarray | None
    points: np.ndarray | None = None
    cut: bool = False
    size: int = 0


class BoxJitter:
    """Shift and scale the crop box (before the cut): the face moves and zooms in the crop.

    The pose is unchanged (a translated, scaled crop of the same head).

    Args:
        p: probability.
        shift: largest centre shift, as a share of the box width / height.
        scale: range of the side's scale factor.
    """

    def __init__(self, p: float = 1.0, shift: float = 0.08, scale: tuple[float, float] = (0.88, 1.12)):
        self.p, self.shift, self.scale = p, shift, scale

    def __call__(self, item: Item, rng: np.random.Generator) -> Item:
        if item.cut:
            raise ValueError("BoxJitter moves the crop box: it must run before the cut")
        if rng.random() >= self.p:
            return item
        x1, y1, x2, y2 = np.asarray(item.box, np.float64)
        w, h = x2 - x1, y2 - y1
        s = rng.uniform(*self.scale)
        dx, dy = rng.uniform(-self.shift, self.shift, 2) * (w, h)
        cx, cy = (x1 + x2) / 2 + dx, (y1 + y2) / 2 + dy
        box = np.round([cx - s * w / 2, cy - s * h / 2, cx + s * w / 2, cy + s * h / 2])
        if box[2] <= box[0] or box[3] <= box[1]:
            return item
        return replace(item, box=box)


class InPlaneRotation:
    """Turn the picture about the crop box's centre (before the cut), and the pose with it.

    A turn about the optical axis changes every Euler angle of a turned head, not only
    roll, so the label is recomputed from the rotation:
    ``R' = Rz(a) R`` (:func:`~openheadpose.core.rotation.rotate_in_plane`). The box keeps
    its centre and size; keypoints turn with the picture; the picture's edge is
    replicated into the corners. Samples without a full rotation (yaw-only labels)
    are left as they are.

    Args:
        p: probability.
        degrees: largest turn either way.
    """

    def __init__(self, p: float = 0.5, degrees: float = 20.0):
        self.p, self.degrees = p, degrees

    def __call__(self, item: Item, rng: np.random.Generator) -> Item:
        if item.cut:
            raise ValueError("InPlaneRotation turns the whole picture: it must run before the cut")
        if rng.random() >= self.p or item.rotation is None:
            return item
        import cv2

        a = float(rng.uniform(-self.degrees, self.degrees))
        x1, y1, x2, y2 = np.asarray(item.box, np.float64)
        M = cv2.getRotationMatrix2D(((x1 + x2) / 2, (y1 + y2) / 2), a, 1.0)
        rotation = rotate_in_plane(item.rotation, a)
        out = replace(item, rotation=rotation, euler=matrix_to_euler(rotation).stack())
        if item.image is not None:
            h, w = item.image.shape[:2]
            out.image = cv2.warpAffine(item.image, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if item.points is not None:
            pts = np.asarray(item.points, np.float64)
            out.points = pts @ M[:, :2].T + M[:, 2]  # NaN rows stay NaN
        return out


class Mirror:
    """Flip the crop left-right and the pose with it: ``R' = S R S``, yaw and roll negate.

    Keypoints flip too (``x' = S - 1 - x`` in input pixels) and the person's left and
    right swap. Runs after the cut.
    """

    def __init__(self, p: float = 0.5):
        self.p = p

    @staticmethod
    def apply(item: Item) -> Item:
        """The mirrored item (no randomness)."""
        if not item.cut:
            raise ValueError("Mirror flips the crop: it must run after the cut")
        e = np.asarray(item.euler, np.float64)
        out = replace(
            item,
            euler=np.array([-e[0], e[1], -e[2]]),
            rotation=None if item.rotation is None else mirror_horizontal(item.rotation),
        )
        if item.image is not None:
            out.image = np.ascontiguousarray(item.image[:, ::-1])
        if item.points is not None:
            pts = item.points[MIRROR_KEYPOINTS].copy()
            pts[:, 0] = item.size - 1 - pts[:, 0]
            out.points = pts
        return out

    def __call__(self, item: Item, rng: np.random.Generator) -> Item:
        return self.apply(item) if rng.random() < self.p else item


class Blur:
    """Gaussian blur of the crop, sigma drawn in crop pixels (the pose is unchanged)."""

    def __init__(self, p: float = 0.2, sigma: tuple[float, float] = (0.3, 1.5)):
        self.p, self.sigma = p, sigma

    def __call__(self, item: Item, rng: np.random.Generator) -> Item:
        if rng.random() >= self.p or item.image is None:
            return item
        import cv2

        s = float(rng.uniform(*self.sigma))
        return replace(item, image=cv2.GaussianBlur(item.image, (0, 0), s, borderType=cv2.BORDER_REFLECT101))


class ColourJitter:
    """Brightness, contrast and saturation, each a factor in ``[1 - a, 1 + a]`` (pose unchanged)."""

    def __init__(self, p: float = 0.8, brightness: float = 0.25, contrast: float = 0.25, saturation: float = 0.3):
        self.p, self.b, self.c, self.s = p, brightness, contrast, saturation

    def __call__(self, item: Item, rng: np.random.Generator) -> Item:
        if rng.random() >= self.p or item.image is None:
            return item
        fb, fc, fs = rng.uniform(1 - self.b, 1 + self.b), rng.uniform(1 - self.c, 1 + self.c), rng.uniform(1 - self.s, 1 + self.s)
        x = item.image.astype(np.float32) * fb
        gray = x @ np.array([0.299, 0.587, 0.114], np.float32)
        x = gray.mean() + fc * (x - gray.mean())
        gray = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        x = gray + fs * (x - gray)
        return replace(item, image=np.clip(np.rint(x), 0, 255).astype(np.uint8))


class Occlusion:
    """A random rectangle of the crop filled with one random colour (pose unchanged)."""

    def __init__(self, p: float = 0.2, area: tuple[float, float] = (0.02, 0.15), aspect: tuple[float, float] = (0.5, 2.0)):
        self.p, self.area, self.aspect = p, area, aspect

    def __call__(self, item: Item, rng: np.random.Generator) -> Item:
        if rng.random() >= self.p or item.image is None:
            return item
        H, W = item.image.shape[:2]
        a = rng.uniform(*self.area) * H * W
        r = math.exp(rng.uniform(math.log(self.aspect[0]), math.log(self.aspect[1])))
        h, w = max(1, min(H, int(round(math.sqrt(a * r))))), max(1, min(W, int(round(math.sqrt(a / r)))))
        y, x = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
        img = item.image.copy()
        img[y : y + h, x : x + w] = rng.integers(0, 256, 3, dtype=np.uint8)
        return replace(item, image=img)


@dataclass(frozen=True)
class Augmentation:
    """Transforms before the cut (on the crop box) and after it (on the crop)."""

    before_cut: tuple = ()
    after_cut: tuple = ()

    def __bool__(self) -> bool:
        return bool(self.before_cut or self.after_cut)


def default_augmentation() -> Augmentation:
    """Box jitter; then mirror (p 0.5), blur (0.2), colour (0.8), occlusion (0.2)."""
    return Augmentation((BoxJitter(),), (Mirror(), Blur(), ColourJitter(), Occlusion()))


def strong_augmentation() -> Augmentation:
    """``default`` plus an in-plane turn (p 0.5, up to +-20 deg) and occlusion twice as often (0.4).

    Turns cover roll and the mixing of the angles that roll causes; occluders make the
    network read a partly hidden face. Measured once here (the 68-point fine-tune in
    ``benchmarks/README.md``), yaw and pitch improved on the synthesized val faces and
    roll did not: compare it with ``default`` before relying on it.
    """
    return Augmentation((InPlaneRotation(), BoxJitter()), (Mirror(), Blur(), ColourJitter(), Occlusion(p=0.4)))


AUGMENTATIONS: dict[str, Callable[[], Augmentation]] = {"default": default_augmentation, "strong": strong_augmentation, "none": Augmentation}


# --------------------------------------------------------------------------- model inputs
#: Largest labelled face box (pixels) a training sample may have.
MAX_FACE_PX = 20000.0


class ImageInput:
    """Pixels: the model's own crop recipe, then its :class:`~openheadpose.specs.spec.Preprocessing`."""

    needs_image = True

    def __init__(self, spec):
        self.pre = spec.preprocessing
        self.size = int(self.pre.input_size)
        CROPS[self.pre.crop]  # an unknown recipe fails here

    @property
    def recipe(self):
        # looked up, not stored: recipes hold closures, and spawned workers must pickle this object
        return CROPS[self.pre.crop]

    def start(self, sample: PoseSample) -> Item:
        image = sample.load_image()
        return Item(image, self.recipe.from_sample(sample, image.shape), _euler(sample), _rotation(sample))

    def cut(self, item: Item) -> Item:
        return replace(item, image=self.recipe(item.image, item.box, self.size), cut=True, size=self.size)

    def encode(self, item: Item) -> np.ndarray:
        return self.pre(item.image[None])[0]

    def problems(self, samples: Sequence[PoseSample]) -> list[str]:
        """Samples whose labelled face box cannot be right: not finite, or wider than
        :data:`MAX_FACE_PX` pixels (a broken label; its crop would not fit in memory).
        Images themselves are checked when loaded."""
        out = []
        for s in samples:
            box = self.recipe.start_box(s)
            if not np.isfinite(box).all() or max(box[2] - box[0], box[3] - box[1]) > MAX_FACE_PX:
                out.append(f"{s.name}: implausible face box {np.round(box, 1).tolist()}")
        return out


#: Landmark indices (0-based) of the COCO head keypoints, per landmark scheme; -1 = absent.
#: AFLW 21 (order in ../shared README; 'left' there is the image's left, the person's right):
#: nose tip 15, person's left eye = image-right eye centre 11, right eye 8, left ear 17, right ear 13.
#: Checked on aflw-yaw: for yaw > 30 deg (nose towards the image's left) point 13 is
#: hidden in 1572 of 1575 faces and point 17 visible in 74%, the reverse for yaw < -30.
_AFLW21 = np.array([14, 10, 7, 16, 12])


def head_keypoints(sample: PoseSample) -> np.ndarray:
    """``(5, 2)`` COCO head keypoints (nose, left eye, right eye, left ear, right ear) in picture pixels.

    From AFLW's 21 landmarks (AFLW2000, aflw-yaw) or 68-point landmarks (300W-LP:
    nose tip 30, eye centres = means of 36-41 / 42-47; no ears, so NaN). NaN rows
    are invisible points.

    Raises:
        ValueError: the sample has no landmarks of a known scheme.
    """
    lm = sample.landmarks
    if lm is not None and len(lm) == 21:
        return np.asarray(lm, np.float64)[_AFLW21].copy()
    pts = lm if lm is not None and len(lm) == 68 else sample.landmarks68
    if pts is not None and len(pts) == 68:
        p = np.asarray(pts, np.float64)
        nan = np.full(2, np.nan)
        return np.stack([p[30], p[42:48].mean(0), p[36:42].mean(0), nan, nan])
    raise ValueError(f"{sample.name}: keypoint models need facial landmarks (AFLW 21 or 68 points); this sample has none")


class KeypointInput:
    """Head keypoints instead of pixels (``channels="keypoints"`` / ``"heatmaps"``); no image is loaded.

    The crop box is ``square-1.5`` around the landmarks; keypoints are mapped into an
    ``S x S`` frame spanning it (S = the heatmap side, or 96 for vectors, whose
    normalisation removes position and scale). Visible keypoints get confidence 1.
    ``keypoints`` -> ``models.hhpnet.keypoints_to_input``;
    ``heatmaps`` -> ``models.heatmap.render_heatmaps``.
    """

    needs_image = False

    def __init__(self, spec):
        self.pre = spec.preprocessing
        self.channels = self.pre.channels
        self.size = int(self.pre.input_size) if self.channels == "heatmaps" else 96

    @property
    def recipe(self):
        return CROPS["square-1.5"]

    def start(self, sample: PoseSample) -> Item:
        pts = head_keypoints(sample)
        # square-1.5 ignores the image shape (it pads rather than clips), so none is needed
        box = self.recipe.from_sample(sample, (0, 0))
        return Item(None, box, _euler(sample), _rotation(sample), points=pts)

    def cut(self, item: Item) -> Item:
        b = np.asarray(item.box, np.float64)
        scale = self.size / (b[2:] - b[:2])
        pts = (item.points - b[:2] + 0.5) * scale - 0.5
        return replace(item, points=pts, cut=True, size=self.size)

    def encode(self, item: Item) -> np.ndarray:
        conf = np.all(np.isfinite(item.points), axis=1).astype(np.float64)
        if self.channels == "keypoints":
            from openheadpose.models.hhpnet import keypoints_to_input

            return keypoints_to_input(item.points, conf)[0]
        from openheadpose.models.heatmap import render_heatmaps

        return render_heatmaps(item.points[None], conf[None], size=self.size)[0]

    def problems(self, samples: Sequence[PoseSample]) -> list[str]:
        """``"<name>: <why>"`` for every sample without usable head keypoints."""
        out = []
        for s in samples:
            try:
                pts = head_keypoints(s)
            except ValueError as exc:
                out.append(str(exc))
                continue
            if np.isfinite(pts).all(axis=1).sum() < 2:
                out.append(f"{s.name}: fewer than 2 visible head keypoints")
        return out


def model_input(spec):
    """The input builder for a model's spec (pixels, keypoint vectors or keypoint heatmaps)."""
    ch = spec.preprocessing.channels
    if ch in ("rgb", "bgr", "gray"):
        return ImageInput(spec)
    if ch in ("keypoints", "heatmaps"):
        return KeypointInput(spec)
    raise ValueError(f"model {spec.name!r}: no training input for channels={ch!r} (known: rgb, bgr, gray, keypoints, heatmaps)")


def _euler(sample: PoseSample) -> np.ndarray:
    return np.asarray(sample.euler, np.float64).copy()


def _rotation(sample: PoseSample) -> np.ndarray | None:
    return None if sample.rotation is None else np.asarray(sample.rotation, np.float64).copy()


# --------------------------------------------------------------------------- distillation targets
def read_targets(path) -> dict[str, np.ndarray]:
    """A teacher's poses as ``{sample name: (3,) yaw, pitch, roll degrees}`` from a CSV with
    columns ``name,yaw,pitch,roll`` (e.g. ``tools/distil_targets.py``'s two-read poses)."""
    import csv

    out: dict[str, np.ndarray] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        rows = csv.DictReader(fh)
        missing = {"name", "yaw", "pitch", "roll"} - set(rows.fieldnames or ())
        if missing:
            raise DatasetError(f"{path}: missing column(s) {', '.join(sorted(missing))} (expected name,yaw,pitch,roll)")
        for line, r in enumerate(rows, start=2):
            if r["name"] in out:
                raise DatasetError(f"{path}:{line}: {r['name']} appears twice")
            out[r["name"]] = np.array([float(r["yaw"]), float(r["pitch"]), float(r["roll"])])
    return out


def apply_targets(samples: Sequence[PoseSample], targets: dict[str, np.ndarray], own_weight: float = 0.0) -> tuple[list[PoseSample], int]:
    """Samples relabelled with a teacher's poses (distillation), and how many had one.

    Per angle: where the sample has its own label, ``own_weight * own + (1 - own_weight) * teacher``;
    where it has none (e.g. pitch and roll of aflw-yaw), the teacher's. Samples without a target
    keep their labels. The rotation is rebuilt from the mixed angles, so every transform
    (:class:`Mirror`, :class:`InPlaneRotation`) moves the new label with the picture.

    >>> s = PoseSample("a.jpg", None, np.array([10.0, np.nan, np.nan]), np.zeros(4))
    >>> (t,), n = apply_targets([s], {"a.jpg": np.array([20.0, 5.0, -2.0])}, own_weight=0.5)
    >>> n, [round(float(v), 6) for v in t.euler], t.rotation.shape
    (1, [15.0, 5.0, -2.0], (3, 3))
    """
    if not 0.0 <= own_weight <= 1.0:
        raise ValueError(f"own_weight must be in [0, 1], not {own_weight}")
    out, n = [], 0
    for s in samples:
        t = targets.get(s.name)
        if t is None:
            out.append(s)
            continue
        own = np.asarray(s.euler, np.float64)
        e = np.where(np.isfinite(own), own_weight * np.nan_to_num(own) + (1.0 - own_weight) * t, t)
        out.append(replace(s, euler=e, rotation=euler_to_matrix(*e)))
        n += 1
    return out, n


# --------------------------------------------------------------------------- dataset and samplers
class PoseDataset:
    """A map-style dataset over materialised samples; images are loaded per item.

    ``dataset[(epoch, index)]`` (or ``dataset[index]`` for epoch 0) returns a dict of
    numpy arrays: ``input`` (the network input), ``euler`` ``(3,)`` float32 (0 where
    unlabelled), ``mask`` ``(3,)`` bool, ``index``, and the codec's targets from
    ``codec.encode`` (``bins`` for binned, ``rotation`` for rot6d).

    Args:
        samples: the samples (a list; indexed by position).
        spec: the model's :class:`~openheadpose.specs.spec.ModelSpec` (input recipe and codec).
        augmentation: transforms (``Augmentation()`` for none).
        seed: the run's seed.
    """

    def __init__(self, samples: Sequence[PoseSample], spec, augmentation: Augmentation | None = None, seed: int = 0):
        self.samples = list(samples)
        self.spec = spec
        self.input = model_input(spec)
        self.codec = get_codec(spec.codec)
        self.augmentation = augmentation or Augmentation()
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.samples)

    def item(self, epoch: int, index: int) -> Item:
        """The augmented, cut item (before encoding) -- for tests and inspection."""
        rng = item_rng(self.seed, epoch, index)
        item = self.input.start(self.samples[index])
        for t in self.augmentation.before_cut:
            item = t(item, rng)
        item = self.input.cut(item)
        for t in self.augmentation.after_cut:
            item = t(item, rng)
        return item

    def __getitem__(self, key) -> dict[str, np.ndarray]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        item = self.item(epoch, index)
        mask = np.isfinite(item.euler)
        filled = np.where(mask, item.euler, 0.0)
        out = {k: np.asarray(v)[0] for k, v in self.codec.encode(filled[None]).items()}
        out.update(input=np.ascontiguousarray(self.input.encode(item), np.float32), euler=filled.astype(np.float32), mask=mask, index=np.int64(index))
        return out


class EpochBatchSampler:
    """Batches of ``(epoch, index)`` keys: a seeded permutation per epoch, split across ranks.

    The permutation is ``torch.randperm(n, generator seeded with seed + epoch)``;
    global batch ``b`` is ``perm[b*B:(b+1)*B]`` and rank ``r`` of ``W`` takes its
    items ``r, r+W, ...``, so the W ranks together see exactly the one-process batch.
    An incomplete last global batch is dropped (every step has B items).

    Args:
        n: dataset size. global_batch: B (a multiple of ``world``).
        start_step: skip this many batches of the epoch (exact mid-epoch resume).
    """

    def __init__(self, n: int, global_batch: int, seed: int, shuffle: bool = True, rank: int = 0, world: int = 1):
        if global_batch % world:
            raise ValueError(f"the global batch {global_batch} is not a multiple of the {world} processes")
        self.n, self.batch, self.seed, self.shuffle, self.rank, self.world = n, global_batch, seed, shuffle, rank, world
        self.epoch, self.start_step = 0, 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        self.epoch, self.start_step = epoch, start_step

    def steps(self) -> int:
        """Steps in a full epoch."""
        return self.n // self.batch

    def __len__(self) -> int:
        return max(0, self.steps() - self.start_step)

    def order(self) -> list[int]:
        import torch

        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator()
        g.manual_seed(int(self.seed) + int(self.epoch))
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        perm = self.order()
        for b in range(self.start_step, self.steps()):
            glob = perm[b * self.batch : (b + 1) * self.batch]
            yield [(self.epoch, i) for i in glob[self.rank :: self.world]]


class ShardSampler:
    """Validation batches: rank ``r`` takes items ``r, r+W, ...`` in order, batched by ``batch``."""

    def __init__(self, n: int, batch: int, rank: int = 0, world: int = 1):
        self.idx = list(range(rank, n, world))
        self.batch = batch

    def __len__(self) -> int:
        return math.ceil(len(self.idx) / self.batch)

    def __iter__(self):
        for b in range(0, len(self.idx), self.batch):
            yield [(0, i) for i in self.idx[b : b + self.batch]]


def worker_init(_worker_id: int) -> None:
    """DataLoader workers ignore Ctrl-C / SIGTERM: the main process stops them at a step boundary.

    (No ``cv2.setNumThreads`` here: called in a forked child of a process whose
    OpenCV thread pool is running, it deadlocks.)
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


# --------------------------------------------------------------------------- reading and splits
@dataclass
class Source:
    """The samples read from one ``kind:path`` spec."""

    spec: str
    kind: str
    samples: list[PoseSample] = field(default_factory=list)
    n_failed: int = 0
    n_filtered: int = 0
    summary: str = ""


def in_validation(name: str, fraction: float = VAL_FRACTION) -> bool:
    """Whether the name hash puts a sample in the validation split (about ``fraction`` of names).

    The rule depends on the name alone (not on order, count or process):

    >>> sum(in_validation(f"img{i:05d}.jpg") for i in range(10000))
    499
    """
    h = int.from_bytes(hashlib.sha1(name.encode("utf-8")).digest()[:8], "big")
    return h / 2.0**64 < fraction


def split_validation(sources: Sequence[Source], fraction: float = VAL_FRACTION) -> tuple[list[PoseSample], list[PoseSample]]:
    """(train, val): the name hash sends about ``fraction`` of each source to validation;
    AFLW2000 samples (a test set) always stay out of validation."""
    train, val = [], []
    for src in sources:
        for s in src.samples:
            (val if src.kind not in TEST_ONLY_KINDS and in_validation(s.name, fraction) else train).append(s)
    return train, val


def read_sources(specs: Sequence[str], split: str | None = None, limit: int | None = None, log: Callable[[str], None] = print) -> list[Source]:
    """Read every ``kind:path`` spec into memory (labels only; images stay on disk).

    Args:
        split: a named split (see :data:`SPLITS`) applied to every spec.
        limit: stop after this many samples in total (smoke runs).
        log: receives one summary line per dataset (and a warning when some entries failed).

    Raises:
        DatasetError: a bad spec or path, or a dataset of which nothing could be read
            (the message counts what was read and what failed, with the first failures).
    """
    out: list[Source] = []
    total = 0
    for spec in specs:
        reader = open_dataset(spec)
        kind = spec.partition(":")[0].strip().lower()
        src = Source(spec, kind)
        for s in reader:
            if limit is not None and total >= limit:
                break
            src.samples.append(s)
            total += 1
        src.n_failed, src.n_filtered = len(reader.failures), reader.n_filtered
        if not src.samples:
            first = "; ".join(reader.failures[:3]) or "no entries"
            raise DatasetError(f"{spec}: 0 samples read, {len(reader.failures)} failed: {first}")
        if split is not None:
            before = len(src.samples)
            src.samples = select_split(src.samples, split, kind, spec)
            if not src.samples:
                raise DatasetError(f"{spec}: split {split!r} keeps 0 of {before} samples (are the video folders named 01..24?)")
        src.summary = f"{spec}: {len(src.samples)} samples" + (f" ({split})" if split else "") + f", {src.n_filtered} filtered, {src.n_failed} failed"
        log(src.summary)
        if reader.failures:
            log(f"  warning: {len(reader.failures)} entries of {spec} failed, e.g. {reader.failures[0]}")
        out.append(src)
        if limit is not None and total >= limit:
            break
    return out
