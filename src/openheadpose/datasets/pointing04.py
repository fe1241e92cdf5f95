"""The Pointing'04 Head Pose Image Database: angles read from the file names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

from openheadpose.core.rotation import (
    euler_to_matrix,
    matrix_to_euler,
    rot_x,
    rot_y,
)
from openheadpose.datasets.base import (
    _P04_NAME,
    DatasetError,
    DatasetReader,
    PoseSample,
    _image_size,
    _rel,
)
from openheadpose.io.images import InputError


@dataclass(frozen=True)
class Pointing04Name:
    """The fields of a Pointing'04 file name ``person[ne]<PP><S><NN><tilt><pan>``.

    Attributes:
        person: 1..15. series: 1 or 2. index: 0..92 within the series.
        tilt: vertical angle in degrees (-90 looks at the floor, +90 at the ceiling).
        pan: horizontal angle in degrees.
    """

    person: int
    series: int
    index: int
    tilt: int
    pan: int


class Pointing04(DatasetReader):
    """Head Pose Image Database of Pointing'04 (Gourier, Hall, Crowley 2004):
    ``PersonPP/personPPSNN<tilt><pan>.jpg`` (``personne...`` in the first
    release) with a ``.txt`` of the same name holding the face box.

    File name (crowley-coutaz.fr "Head Pose Image Database" page): person 01-15,
    series 1-2, index 00-92, then tilt (vertical angle: -90, -60, -30, -15, 0,
    +15, +30, +60, +90) and pan (horizontal angle: -90 .. +90 in 15 deg
    steps), e.g. ``personne01146-15+30.jpg``: person 1, series 1, index 46,
    tilt -15, pan +30. The ``.txt``: the image name, ``Face``, then the face
    centre x, y, width, height (one number a line). The ``Front`` folder
    (copies of frontal images) is skipped.

    Convention:
        tilt: the page says tilt -90 / +90 means "looking at the bottom / the
        top", so ``pitch = +tilt`` (AFLW: positive pitch looks up).

        pan: the sign is drawn only in a picture on the database page and could
        not be established from any text source. We follow the usage of code
        that trains on AFLW and Pointing'04 together (rafabs97/headpose_final
        stores AFLW yaw and Pointing'04 pan as one quantity, mirroring both
        alike), i.e. ``yaw = pan_sign * pan`` with ``pan_sign = +1`` (positive
        pan: nose towards the image's left). Check it on a real image before
        trusting yaw signs; ``pan_sign=-1`` flips it.

        angles="aflw" (default): the labels are read as AFLW Euler angles,
        ``euler = (pan_sign*pan, tilt, 0)``, ``rotation = euler_to_matrix(*euler)``:
        what published Pointing'04 errors compare against.
        angles="fick": the subjects stared at markers placed at azimuth pan and
        elevation tilt on a half sphere (pan is undefined at tilt +-90, as the
        database's grid reflects), so the face direction is that ray: yaw about
        the vertical, then tilt about the turned head's left-right axis,
        ``rotation = Ry(-pan_sign*pan) @ Rx(-tilt)`` and ``euler`` its AFLW
        angles. The two readings agree when pan or tilt is 0 and differ by up
        to about 40 deg when both are large (pan 60, tilt 30 -> AFLW 48.6 / 49.1 / 40.9).

    Fields:
        box: the ``.txt`` face box ``[cx - w/2, cy - h/2, cx + w/2, cy + h/2]``;
        without a readable ``.txt`` the whole image (its size read from the
        file header) and the problem is recorded in ``failures``.

    Args:
        root: the database folder (``Person01`` ... ``Person15``), one person
            folder, or any folder holding such images.
        pan_sign: +1 or -1, see Convention.
        angles: ``"aflw"`` or ``"fick"``, see Convention.
        standard_filter: drop faces beyond +-99 deg (none: angles stop at 90).
    """

    kind = "pointing04"

    def __init__(
        self,
        root: str | Path,
        pan_sign: int = 1,
        angles: Literal["aflw", "fick"] = "aflw",
        standard_filter: bool = True,
    ):
        super().__init__(Path(root), standard_filter)
        if pan_sign not in (1, -1):
            raise ValueError(f"pan_sign must be +1 or -1, not {pan_sign!r}")
        if angles not in ("aflw", "fick"):
            raise ValueError(f"angles must be 'aflw' or 'fick', not {angles!r}")
        self.pan_sign, self.angles = pan_sign, angles
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: not a folder (expected Pointing'04 PersonPP/person*.jpg + .txt)")
        files = sorted(self.root.rglob("person*.jpg"))
        self.files = [f for f in files if "Front" not in f.relative_to(self.root).parts[:-1]]
        if not self.files:
            n_jpg = sum(1 for _ in self.root.rglob("*.jpg"))
            raise DatasetError(
                f"{self.root}: expected Pointing'04 images person[ne]PPSNN<tilt><pan>.jpg (e.g. personne01146-15+30.jpg) "
                f"with .txt face boxes; found {n_jpg} .jpg file(s), none named so (outside Front/)"
            )

    @staticmethod
    def parse_name(name: str) -> Pointing04Name:
        """The fields of a Pointing'04 file name.

        >>> Pointing04.parse_name("personne01146-15+30.jpg")
        Pointing04Name(person=1, series=1, index=46, tilt=-15, pan=30)

        Raises:
            ValueError: the name does not follow the database's grammar.
        """
        m = _P04_NAME.match(Path(name).stem)
        if not m:
            raise ValueError(f"{name!r} is not a Pointing'04 name person[ne]PPSNN<tilt><pan> (e.g. personne01146-15+30.jpg)")
        person, series, index, tilt, pan = (int(g) for g in m.groups())
        if abs(tilt) > 90 or abs(pan) > 90:
            raise ValueError(f"{name!r}: Pointing'04 angles stop at 90 deg")
        return Pointing04Name(person, series, index, tilt, pan)

    def _count(self) -> int:
        return len(self.files)

    def _box(self, img: Path) -> np.ndarray:
        txt = img.with_suffix(".txt")
        try:
            tokens = txt.read_text(errors="replace").split()
            after = tokens[tokens.index("Face") + 1 :] if "Face" in tokens else tokens[-4:]
            cx, cy, w, h = (float(t) for t in after[:4])
            if w <= 0 or h <= 0:
                raise ValueError(f"face size {w:g} x {h:g}")
            return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        except Exception as exc:  # noqa: BLE001 - the box falls back to the whole image
            problem = "missing" if isinstance(exc, FileNotFoundError) else f"unreadable ({exc})"
            self._fail(txt, f"{problem}; box = the whole image")
            W, H = _image_size(img)
            return np.array([0.0, 0.0, W, H])

    def _samples(self) -> Iterator[PoseSample]:
        for img in self.files:
            try:
                p = self.parse_name(img.name)
            except ValueError as exc:
                self._fail(img, exc)
                continue
            yaw, tilt = float(self.pan_sign * p.pan), float(p.tilt)
            if self.angles == "aflw":
                euler = np.array([yaw, tilt, 0.0])
                R = euler_to_matrix(*euler)
            else:
                R = rot_y(np.deg2rad(-yaw)) @ rot_x(np.deg2rad(-tilt))
                euler = matrix_to_euler(R).stack()
            try:
                box = self._box(img)
            except InputError as exc:
                self._fail(img, exc)
                continue
            yield PoseSample(name=_rel(img, self.root), rotation=R, euler=euler, box=box, image_path=img)
