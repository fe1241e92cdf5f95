"""Unlabelled photos as a ``headpose synth`` source: faces and landmarks found by our own pipeline.

``photos:DIR`` (or one image file) yields one :class:`~openheadpose.datasets.base.PoseSample`
per face that the default detector (score >= 0.75) and the FaceMesh landmarker find: the picture
cut to a square of 2.2x the landmarks' extent around the face (border pixels
repeated outside the photo), at most ``max_side`` pixels, with FaceMesh's 468
points in that crop and no pose label (the fitter then starts from several yaws).
Unreadable files are listed in ``failures`` and skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from openheadpose.datasets.base import PoseSample
from openheadpose.io.images import IMAGE_EXTS, InputError, read_image

__all__ = ["PhotoFaces", "open_source"]


class PhotoFaces:
    """Faces in a folder of photos (recursive) or one photo."""

    def __init__(self, root: str | Path, max_side: int = 256, min_presence: float = 0.5, context: float = 2.2, min_score: float = 0.75):
        self.root = Path(root)
        if not self.root.exists():
            raise FileNotFoundError(f"{self.root}: no such file or folder")
        if self.root.is_file():
            self.files = [self.root]
        else:
            self.files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))
        self.max_side, self.min_presence, self.context, self.min_score = max_side, min_presence, context, min_score
        self.failures: list[str] = []

    def __iter__(self) -> Iterator[PoseSample]:
        from openheadpose.inference.detectors import DETECTORS
        from openheadpose.inference.landmarkers import LANDMARKERS
        from openheadpose.inference.pipeline import default_detector
        from openheadpose.inference.results import Detections
        from openheadpose.specs.crops import square_box, take_pixels

        det, lmk = DETECTORS.create(default_detector()), LANDMARKERS.create("facemesh")
        for f in self.files:
            try:
                img = read_image(f)
            except InputError as exc:
                self.failures.append(str(exc))
                continue
            d = det(img)
            keep = d.scores >= self.min_score  # BlazeFace's false positives (chips, glasses) score 0.5-0.7
            lm = lmk(img, Detections(d.boxes[keep], d.scores[keep], None if d.keypoints is None else d.keypoints[keep]))
            rel = f.name if self.root.is_file() else f.relative_to(self.root).as_posix()
            for k in range(len(lm)):
                if lm.presence[k] < self.min_presence:
                    continue
                pts = lm.points[k, :, :2]
                box = np.round(square_box(np.concatenate([pts.min(0), pts.max(0)]), self.context))
                side = box[2] - box[0]
                crop = take_pixels(img, box, int(min(side, self.max_side)), "edge", interp="area")
                scale = crop.shape[0] / side
                p = (pts - box[:2]) * scale
                yield PoseSample(
                    name=f"{rel}#{k}", rotation=None, euler=np.full(3, np.nan), box=np.concatenate([p.min(0), p.max(0)]),
                    landmarks=p, image=crop,
                )


def open_source(spec: str):
    """``photos:PATH`` -> :class:`PhotoFaces`; anything else -> :func:`openheadpose.datasets.registry.open_dataset`."""
    if spec.startswith("photos:"):
        return PhotoFaces(spec.split(":", 1)[1])
    from openheadpose.datasets.registry import open_dataset

    return open_dataset(spec)
