"""Decoding one image into ``(H, W, 3)`` uint8 RGB, whatever its depth, channels or EXIF orientation.

OpenCV's BGR order stops at this module's boundary.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


VIDEO_EXTS: frozenset[str] = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})


from openheadpose.io.errors import InputError, OutputError  # noqa: E402,F401 - their home is io.errors; most importers name them here


#: How every image is decoded (``cv2.imdecode``): ANYDEPTH keeps 16-bit samples so they can be
#: shifted here (IMREAD_COLOR rounds colour TIFFs by /257 instead); ANYCOLOR gives gray or BGR
#: and drops alpha; leaving out IMREAD_IGNORE_ORIENTATION makes OpenCV apply the EXIF orientation.
IMREAD_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file into an ``(H, W, 3)`` uint8 RGB array.

    * EXIF orientation is applied (OpenCV's ``imdecode`` does it unless told to ignore
      it), so the array is upright as a photo viewer shows it.
    * Grayscale (and gray + alpha) becomes 3 equal channels; palette images are expanded.
    * Alpha is **dropped**, not composited: the colour stored under transparent pixels
      is kept as is.
    * 16-bit samples are scaled to 8 bits by ``>> 8`` (65535 -> 255, 256 -> 1), never
      clipped; floating-point images (e.g. 32-bit TIFF) follow :func:`to_uint8`.
    * The header is read first and an image of more pixels than the limit
      (:func:`openheadpose.io.limits.max_pixels`: 100 megapixels unless
      ``OPENHEADPOSE_MAX_PIXELS`` or ``--max-pixels`` says otherwise) is refused before
      a pixel is decoded (:mod:`openheadpose.io.limits`).

    The bytes are read with ``np.fromfile`` and decoded from memory, which works for
    non-ASCII paths where ``cv2.imread`` fails on some platforms.

    Args:
        path: image file.

    Returns:
        ``(H, W, 3)`` uint8 RGB image.

    Raises:
        InputError: missing file, a directory, an empty file, a header that names no
            image format, or bytes OpenCV cannot decode (corrupt, or truncated beyond what it
            can recover).
        TooManyPixels: over the pixel limit (an :class:`InputError`).
    """
    from openheadpose.io.limits import check_image_header
    from openheadpose.io.noise import native_stderr_to

    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot access ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{p}: is a directory, not an image")
    if not stat.S_ISREG(st.st_mode):
        # A FIFO or device would block or stream forever in np.fromfile.
        raise InputError(f"{p}: not a regular file")
    if st.st_size == 0:
        raise InputError(f"{p}: empty file")
    try:
        with open(p, "rb") as f:
            check_image_header(f, p)  # a few kilobytes read: nothing decoded yet
        data = np.fromfile(p, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror or exc})") from None

    try:
        with native_stderr_to():  # libpng prints its complaints itself (openheadpose.io.noise)
            img = cv2.imdecode(data, IMREAD_FLAGS)
    except cv2.error as exc:  # e.g. over OpenCV's pixel-count limit
        raise InputError(f"{p}: not a readable image ({exc.err or exc})") from None
    if img is None or img.size == 0:
        raise InputError(f"{p}: not a readable image (unknown format, or corrupt or truncated data)")
    return to_rgb8(img, p)


def to_uint8(img: np.ndarray, name: object = "image") -> np.ndarray:
    """Any sample depth to uint8, the one rule for files and for arrays given to the API.

    16-bit samples are shifted (``>> 8``: 65535 -> 255, 256 -> 1); floating-point
    samples are taken as [0, 1] when none exceeds 1, else as [0, 255], and clipped.

    Raises:
        InputError: an unsupported sample type (the message names ``name``).
    """
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return (img >> 8).astype(np.uint8)
    if img.dtype.kind == "f":
        f = np.nan_to_num(img.astype(np.float64))
        if f.size and f.max() <= 1.0:
            f = f * 255.0
        return (np.clip(f, 0.0, 255.0) + 0.5).astype(np.uint8)
    raise InputError(f"{name}: not a readable image (unsupported sample type {img.dtype})")


def to_rgb8(img: np.ndarray, name: object = "image") -> np.ndarray:
    """An OpenCV decode result (gray/BGR/BGRA, any depth; :data:`IMREAD_FLAGS`) as uint8 RGB.

    Raises:
        InputError: an unsupported sample type (:func:`to_uint8`).
    """
    img = to_uint8(img, name)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Accept ``(H, W)`` or ``(H, W, 1|3|4)`` arrays of any depth; return ``(H, W, 3)`` uint8 RGB.

    A 4-channel image is taken as RGBA and its alpha dropped; depth follows
    :func:`openheadpose.io.images.to_uint8`.
    """
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or min(a.shape[:2]) < 1:
        raise ValueError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    a = to_uint8(a)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a[:, :, :3])


#: cv2 flags decoding a JPEG at 1/2, 1/4 and 1/8 of its size (libjpeg's DCT scaling: the
#: smaller image costs a fraction of the full decode, not a decode and a resize).
REDUCED_FLAGS: dict[int, int] = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def read_image_reduced(path: str | os.PathLike, min_side: int) -> tuple[np.ndarray, int]:
    """Decode a large JPEG at a reduced size whose long side still reaches ``min_side``.

    The reduction is the largest of 8, 4 and 2 that keeps the long side >= ``min_side``
    (pixel ``(x, y)`` of the result covers ``(x * factor, y * factor)`` of the full image);
    any other file, or a JPEG smaller than ``2 * min_side``, is read whole by
    :func:`read_image` (factor 1). EXIF orientation is applied as there; the result is
    8-bit RGB (a reduced decode is always 8-bit colour).

    Args:
        path: image file.
        min_side: the smallest long side the caller needs (e.g. a detector's input).

    Returns:
        ``(image, factor)``: ``(H, W, 3)`` uint8 RGB and the reduction (1, 2, 4 or 8).

    Raises:
        InputError: as :func:`read_image`.
    """
    p = Path(path)
    try:
        jpeg = stat.S_ISREG(p.stat().st_mode)  # never open a FIFO or device here
        if jpeg:
            with open(p, "rb") as fh:
                jpeg = fh.read(2) == b"\xff\xd8"
    except OSError:
        jpeg = False  # read_image says what is wrong with it
    if not jpeg:
        return read_image(p), 1
    from openheadpose.io.limits import check_image_header

    try:  # the header only, and the pixel limit applies here as in read_image
        with open(p, "rb") as fh:
            _, width, height = check_image_header(fh, p)
    except (InputError, OSError):
        return read_image(p), 1  # which says what is wrong with it (over the pixel limit included)
    long_side = max(width, height)
    factor = next((f for f in (8, 4, 2) if long_side // f >= min_side), 1)
    if factor == 1:
        return read_image(p), 1
    img = cv2.imdecode(np.fromfile(p, dtype=np.uint8), REDUCED_FLAGS[factor])
    if img is None or img.size == 0:
        return read_image(p), 1
    return to_rgb8(img, p), factor
