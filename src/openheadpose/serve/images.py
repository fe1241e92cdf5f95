"""Uploaded bytes to an ``(H, W, 3)`` uint8 RGB image, refusing what must not be decoded.

Order matters: the header is read first, by the guard every entry point shares
(:mod:`openheadpose.io.limits`), so an image whose width x height exceeds the limit is refused
before a single pixel is decoded (a 50 kB PNG can hold gigapixels), in the words
``headpose predict`` uses. A truncated file is told apart from a file that is no
image at all. The pixels are then decoded by OpenCV with the flags of
:func:`openheadpose.io.read_image` (EXIF orientation applied, 16-bit shifted, alpha
dropped), so a service answer and ``headpose predict`` see the same pixels.
"""

from __future__ import annotations

import io

import cv2
import numpy as np

from openheadpose.io.images import IMREAD_FLAGS, InputError, to_rgb8
from openheadpose.serve.errors import ApiError

#: Formats decoded (Pillow's names): those ``headpose predict`` reads (``openheadpose.io.IMAGE_EXTS``).
FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "BMP": "BMP", "TIFF": "TIFF", "WEBP": "WebP"}


def _looks_like_text(data: bytes) -> bool:
    head = data[:256]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def check_header(data: bytes, name: str, max_pixels: int) -> tuple[str, int, int]:
    """The image's format, width and height from its header alone.

    Raises:
        ApiError: 400 ``empty_body`` / ``not_an_image``, 415 ``unsupported_format``,
            413 ``too_many_pixels``.
    """
    from PIL import Image, UnidentifiedImageError

    from openheadpose.io.limits import over_limit_message, read_header

    if not data:
        raise ApiError(400, "empty_body", f"{name}: empty body; send the image's bytes (raw, or as the 'file' field of a multipart form)")
    supported = ", ".join(sorted(set(FORMATS.values())))
    try:
        fmt, w, h = read_header(io.BytesIO(data), name)  # the guard `headpose predict` uses (openheadpose.io.limits)
    except InputError:
        fmt = None
    if fmt is None:  # not one of ours: a format we do not read (415), or no image at all (400)
        try:
            with Image.open(io.BytesIO(data)) as im:
                fmt = im.format
        except Image.DecompressionBombError:  # a huge image in a format we do not read
            raise ApiError(415, "unsupported_format", f"{name}: an image format this server does not read; send {supported}") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            hint = ("; this server never reads a file named in a request: send the image's bytes" if _looks_like_text(data) else "")
            raise ApiError(400, "not_an_image", f"{name}: not an image (no known image format in its first bytes){hint}") from None
    if fmt not in FORMATS:
        raise ApiError(415, "unsupported_format", f"{name}: {fmt} images are not supported; send {supported}")
    if w * h > max_pixels:
        raise ApiError(413, "too_many_pixels", over_limit_message(name, w, h, max_pixels))
    return fmt, w, h


def decode_image(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    """Decode an uploaded image into ``(H, W, 3)`` uint8 RGB after :func:`check_header`.

    Truncation is found by letting Pillow read every byte of the image data (JPEG at an
    eighth of the size: the whole entropy-coded stream is read, a sixty-fourth of the
    pixels are made), which names the problem where OpenCV only says it failed.

    Raises:
        ApiError: as :func:`check_header`, and 400 ``truncated_image`` / ``corrupt_image``.
    """
    from openheadpose.io.limits import open_header

    fmt, w, h = check_header(data, name, max_pixels)
    try:
        im = open_header(io.BytesIO(data), name)
    except InputError:  # Pillow refuses a PNG whose ancillary chunk fails its CRC; OpenCV reads it, as in `headpose predict`
        im = None
    try:
        if im is not None:
            with im:
                im.draft(None, (max(1, w // 8), max(1, h // 8)))  # JPEG only; a no-op for the others
                im.load()
    except OSError as exc:
        if "truncated" in str(exc):
            raise ApiError(400, "truncated_image", f"{name}: truncated {FORMATS[fmt]} image ({exc}); send the whole file") from None
        raise ApiError(400, "corrupt_image", f"{name}: corrupt {FORMATS[fmt]} image ({exc})") from None
    except (SyntaxError, ValueError) as exc:
        raise ApiError(400, "corrupt_image", f"{name}: corrupt {FORMATS[fmt]} image ({exc})") from None
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), IMREAD_FLAGS)
    except cv2.error as exc:
        raise ApiError(400, "corrupt_image", f"{name}: not a readable {FORMATS[fmt]} image ({exc.err or exc})") from None
    if img is None or img.size == 0:
        raise ApiError(400, "corrupt_image", f"{name}: not a readable {FORMATS[fmt]} image (corrupt data)")
    try:
        return to_rgb8(img, name)
    except InputError as exc:  # a sample type we do not read
        raise ApiError(415, "unsupported_format", str(exc)) from None
